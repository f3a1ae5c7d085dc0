"""dlcore.nn.utils: gradient clipping against a NumPy oracle and torch, and packed/padded
sequences against torch.nn.utils.rnn, their gradients (finite differences) and errors."""
import math

import numpy as np
import pytest

import dlcore
import dlcore.nn.utils as U
from dlcore.gradcheck import gradcheck
from dlcore.nn.utils import rnn as R
from helpers import assert_close

NORMS = [2.0, 1.0, math.inf, 3.0]


# ---- clip_grad_norm_ ---------------------------------------------------------------------
def _params(rng, dtype=np.float32):
    """Four parameters with random grads (scaled so clipping matters) and one with grad None."""
    shapes = [(3, 5), (7,), (2, 2, 3), (1,), (4,)]
    ps = [dlcore.nn.Parameter(rng.standard_normal(s).astype(dtype)) for s in shapes]
    for p in ps[:2] + ps[3:]:
        p.grad = dlcore.tensor(rng.standard_normal(p.shape).astype(dtype) * 3.0)
    return ps  # ps[2].grad is None


def _oracle_norm(grads, p):
    flat = np.concatenate([g.astype(np.float64).ravel() for g in grads])
    if p == math.inf:
        return np.abs(flat).max()
    return (np.abs(flat) ** p).sum() ** (1.0 / p)


@pytest.mark.parametrize("norm_type", NORMS)
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_numpy(rng, norm_type, max_norm):
    ps = _params(rng)
    before = [None if p.grad is None else p.grad.numpy().copy() for p in ps]
    grads = [g for g in before if g is not None]
    total = U.clip_grad_norm_(iter(ps), max_norm, norm_type=norm_type)  # a generator, as model.parameters()
    ref = _oracle_norm(grads, norm_type)
    assert total.shape == () and total.dtype == dlcore.float32
    assert_close(total.numpy(), ref, rtol=1e-6, what=f"total {norm_type}-norm")
    coef = min(1.0, max_norm / (ref + 1e-6))
    assert ps[2].grad is None
    for p, g in zip(ps, before):
        if g is not None:
            assert_close(p.grad.numpy(), g.astype(np.float64) * coef, atol=1e-7, rtol=1e-6, what="clipped grad")
    if max_norm < 1:
        assert _oracle_norm([p.grad.numpy() for p in ps if p.grad is not None], norm_type) <= max_norm * (1 + 1e-5)


@pytest.mark.parametrize("norm_type", NORMS)
def test_clip_grad_norm_torch(rng, norm_type):
    torch = pytest.importorskip("torch")
    ps = _params(rng, np.float64)
    tps = [torch.tensor(p.detach().numpy().copy(), requires_grad=True) for p in ps]
    for p, tp in zip(ps, tps):
        tp.grad = None if p.grad is None else torch.tensor(p.grad.numpy().copy())
    total = U.clip_grad_norm_(ps, 1.5, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, 1.5, norm_type=norm_type)
    assert total.dtype == dlcore.float64
    assert_close(total.numpy(), ttotal.numpy(), atol=0, rtol=1e-12, what="total norm vs torch")
    for p, tp in zip(ps, tps):
        assert (p.grad is None) == (tp.grad is None)
        if p.grad is not None:
            assert_close(p.grad.numpy(), tp.grad.numpy(), atol=0, rtol=1e-12, what="clipped grad vs torch")


def test_clip_grad_norm_single_tensor_and_empty(rng):
    p = dlcore.nn.Parameter(rng.standard_normal((4, 3)).astype(np.float32))
    g = rng.standard_normal((4, 3)).astype(np.float32)
    p.grad = dlcore.tensor(g)
    total = U.clip_grad_norm_(p, 0.1)
    assert_close(total.numpy(), np.linalg.norm(g.astype(np.float64)), rtol=1e-6)
    assert_close(np.linalg.norm(p.grad.numpy().astype(np.float64)), 0.1, rtol=1e-5)
    q = dlcore.nn.Parameter(np.ones(3, dtype=np.float32))
    assert U.clip_grad_norm_([q], 1.0).item() == 0.0  # no grads: norm 0, nothing touched
    assert q.grad is None


def test_clip_grad_norm_nonfinite(rng):
    ps = _params(rng)
    ps[0].grad.numpy()[1, 2] = np.inf
    with pytest.raises(RuntimeError, match=r"order 2\.0.*non-finite"):
        U.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    total = U.clip_grad_norm_(ps, 1.0)  # torch scales by max_norm / inf = 0 (inf * 0 = nan)
    assert math.isinf(total.item())
    assert np.isnan(ps[0].grad.numpy()[1, 2]) and np.all(ps[1].grad.numpy() == 0)


def test_clip_grad_norm_bad_args(rng):
    ps = _params(rng)
    with pytest.raises(TypeError, match="clip_grad_norm_: max_norm"):
        U.clip_grad_norm_(ps, "big")
    with pytest.raises(TypeError, match=r"parameters\[1\] must be a Tensor"):
        U.clip_grad_norm_([ps[0], np.zeros(3)], 1.0)


def test_clip_grad_value(rng):
    ps = _params(rng)
    before = [None if p.grad is None else p.grad.numpy().copy() for p in ps]
    U.clip_grad_value_(ps, 0.7)
    for p, g in zip(ps, before):
        if g is not None:
            np.testing.assert_array_equal(p.grad.numpy(), np.clip(g, -0.7, 0.7))
    assert any(np.any(np.abs(g) > 0.7) for g in before if g is not None)


def test_get_total_norm_and_clip_grads_with_norm(rng):
    ps = _params(rng)
    grads = [p.grad for p in ps if p.grad is not None]
    ref = _oracle_norm([g.numpy() for g in grads], 2.0)
    total = U.get_total_norm(grads)
    assert_close(total.numpy(), ref, rtol=1e-6)
    before = [g.numpy().copy() for g in grads]
    U.clip_grads_with_norm_(ps, 2.0, total)
    for g, b in zip(grads, before):
        assert_close(g.numpy(), b * (2.0 / (ref + 1e-6)), atol=1e-7, rtol=1e-6)


# ---- packed sequences --------------------------------------------------------------------
def _padded(rng, lengths, batch_first, feat=(3,), extra_steps=1):
    steps = max(lengths) + extra_steps
    shape = (len(lengths), steps) + feat if batch_first else (steps, len(lengths)) + feat
    return rng.standard_normal(shape)


def _oracle_pack(x, lengths, batch_first):
    """Packed data, batch_sizes and order by the definition: step by step, longest first."""
    xt = x.swapaxes(0, 1) if batch_first else x  # (T, B, *)
    order = sorted(range(len(lengths)), key=lambda b: -lengths[b])  # stable
    rows, sizes = [], []
    for t in range(max(lengths)):
        live = [b for b in order if lengths[b] > t]
        sizes.append(len(live))
        rows += [xt[t, b] for b in live]
    return np.stack(rows), np.array(sizes), np.array(order)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths", [[7, 5, 5, 2, 1], [3, 9, 1, 4, 4, 7], [1], [4, 4, 4]])
def test_pack_pad_round_trip(rng, lengths, batch_first):
    x = _padded(rng, lengths, batch_first)
    is_sorted = lengths == sorted(lengths, reverse=True)
    packed = R.pack_padded_sequence(dlcore.tensor(x), lengths, batch_first=batch_first, enforce_sorted=is_sorted)
    data, sizes, order = _oracle_pack(x, lengths, batch_first)
    np.testing.assert_array_equal(packed.data.numpy(), data)
    assert packed.batch_sizes.dtype == dlcore.int64
    np.testing.assert_array_equal(packed.batch_sizes.numpy(), sizes)
    if is_sorted:
        assert packed.sorted_indices is None and packed.unsorted_indices is None
    else:
        np.testing.assert_array_equal(packed.sorted_indices.numpy(), order)
        np.testing.assert_array_equal(packed.unsorted_indices.numpy(), np.argsort(order))
    out, out_lengths = R.pad_packed_sequence(packed, batch_first=batch_first, padding_value=-9.0,
                                             total_length=x.shape[1 if batch_first else 0] + 2)
    assert out_lengths.dtype == dlcore.int64
    np.testing.assert_array_equal(out_lengths.numpy(), lengths)
    want = np.full((x.shape[0] + 2, *x.shape[1:]) if not batch_first else (x.shape[0], x.shape[1] + 2, 3), -9.0)
    for b, n in enumerate(lengths):
        if batch_first:
            want[b, :n] = x[b, :n]
        else:
            want[:n, b] = x[:n, b]
    np.testing.assert_array_equal(out.numpy(), want)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_pack_pad_vs_torch(rng, batch_first, enforce_sorted):
    torch = pytest.importorskip("torch")
    trnn = torch.nn.utils.rnn
    lengths = [11, 8, 6, 3, 1] if enforce_sorted else [3, 11, 1, 8, 6]  # distinct: torch's sort order is defined
    x = _padded(rng, lengths, batch_first, feat=(2, 3))
    packed = R.pack_padded_sequence(dlcore.tensor(x), dlcore.tensor(lengths), batch_first, enforce_sorted)
    tpacked = trnn.pack_padded_sequence(torch.tensor(x), torch.tensor(lengths), batch_first, enforce_sorted)
    np.testing.assert_array_equal(packed.data.numpy(), tpacked.data.numpy())
    np.testing.assert_array_equal(packed.batch_sizes.numpy(), tpacked.batch_sizes.numpy())
    for mine, theirs in [(packed.sorted_indices, tpacked.sorted_indices),
                         (packed.unsorted_indices, tpacked.unsorted_indices)]:
        assert (mine is None) == (theirs is None)
        if mine is not None:
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    out, ls = R.pad_packed_sequence(packed, batch_first, 0.5, total_length=14)
    tout, tls = trnn.pad_packed_sequence(tpacked, batch_first, 0.5, total_length=14)
    np.testing.assert_array_equal(out.numpy(), tout.numpy())
    np.testing.assert_array_equal(ls.numpy(), tls.numpy())


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_pack_sequence_vs_torch(rng, batch_first, padding_side):
    torch = pytest.importorskip("torch")
    trnn = torch.nn.utils.rnn
    seqs = [rng.standard_normal((n, 4)) for n in (5, 2, 7, 1)]
    out = R.pad_sequence([dlcore.tensor(s) for s in seqs], batch_first, -1.0, padding_side)
    tout = trnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first, -1.0, padding_side)
    np.testing.assert_array_equal(out.numpy(), tout.numpy())
    packed = R.pack_sequence([dlcore.tensor(s) for s in seqs], enforce_sorted=False)
    tpacked = trnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    np.testing.assert_array_equal(packed.data.numpy(), tpacked.data.numpy())
    np.testing.assert_array_equal(packed.batch_sizes.numpy(), tpacked.batch_sizes.numpy())
    for mine, s in zip(R.unpack_sequence(packed), seqs):
        np.testing.assert_array_equal(mine.numpy(), s)


def test_pack_int64_tokens():
    ids = dlcore.tensor([[1, 2, 3], [4, 5, 0], [6, 0, 0]])  # (B, T) token ids, 0 = pad
    packed = R.pack_padded_sequence(ids, [3, 2, 1], batch_first=True)
    assert packed.data.dtype == dlcore.int64
    np.testing.assert_array_equal(packed.data.numpy(), [1, 4, 6, 2, 5, 3])
    np.testing.assert_array_equal(packed.batch_sizes.numpy(), [3, 2, 1])


def test_packed_sequence_fields():
    data = dlcore.tensor(np.arange(6.0).reshape(3, 2))
    ps = R.PackedSequence(data, np.array([2, 1]), sorted_indices=dlcore.tensor([1, 0]))
    assert ps.batch_sizes.dtype == dlcore.int64 and isinstance(ps.batch_sizes, dlcore.Tensor)
    np.testing.assert_array_equal(ps.unsorted_indices.numpy(), [1, 0])  # inverse of sorted_indices
    assert tuple(ps)[0] is data and ps._fields == ("data", "batch_sizes", "sorted_indices", "unsorted_indices")
    out, lengths = R.pad_packed_sequence(ps, batch_first=True)
    np.testing.assert_array_equal(lengths.numpy(), [1, 2])
    np.testing.assert_array_equal(out.numpy(), [[[2, 3], [0, 0]], [[0, 1], [4, 5]]])


# ---- gradients -----------------------------------------------------------------------------
@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_unpack_gradcheck(rng, batch_first):
    lengths = [2, 4, 1, 3]
    x = dlcore.tensor(_padded(rng, lengths, batch_first, feat=(2,)), requires_grad=True)

    def round_trip(x):
        packed = R.pack_padded_sequence(x, lengths, batch_first, enforce_sorted=False)
        data = packed.data * packed.data  # something non-linear on the packed rows
        out, _ = R.pad_packed_sequence(R.PackedSequence(data, *packed[1:]), batch_first, total_length=6)
        return out

    gradcheck(round_trip, [x])
    x.grad = None
    round_trip(x).sum().backward()
    g = x.grad.numpy()
    mask = np.zeros(x.shape, dtype=bool)
    for b, n in enumerate(lengths):
        if batch_first:
            mask[b, :n] = True
        else:
            mask[:n, b] = True
    np.testing.assert_allclose(g[mask], 2 * x.detach().numpy()[mask])
    assert np.all(g[~mask] == 0)  # padding gets no gradient


def test_pad_sequence_gradcheck(rng):
    seqs = [dlcore.tensor(rng.standard_normal((n, 3)), requires_grad=True) for n in (3, 1, 4)]
    gradcheck(lambda *s: R.pad_sequence(list(s), batch_first=True, padding_value=2.0), seqs)
    gradcheck(lambda *s: R.pad_sequence(list(s), padding_side="left"), seqs)
    gradcheck(lambda *s: R.pack_sequence(list(s), enforce_sorted=False).data, seqs)


# ---- errors ------------------------------------------------------------------------------
def test_pack_errors(rng):
    x = dlcore.tensor(rng.standard_normal((5, 3, 2)))
    with pytest.raises(ValueError, match="pack_padded_sequence: lengths must be sorted in decreasing order"):
        R.pack_padded_sequence(x, [2, 4, 1])
    with pytest.raises(ValueError, match=r"every length must be >= 1, got lengths \[3, 0, 1\]"):
        R.pack_padded_sequence(x, [3, 0, 1])
    with pytest.raises(ValueError, match="len\\(lengths\\) to equal the batch size 3, got 2"):
        R.pack_padded_sequence(x, [3, 2])
    with pytest.raises(ValueError, match="longest length 6 exceeds"):
        R.pack_padded_sequence(x, [6, 2, 1])
    with pytest.raises(ValueError, match="at least 2 dims"):
        R.pack_padded_sequence(dlcore.tensor([1.0, 2.0]), [1])
    packed = R.pack_padded_sequence(x, [4, 2, 1])
    with pytest.raises(ValueError, match="total_length to be at least .* got total_length=3"):
        R.pad_packed_sequence(packed, total_length=3)
    with pytest.raises(ValueError, match="batch_sizes .* add up to 7"):
        R.pad_packed_sequence(R.PackedSequence(x[0], packed.batch_sizes))
    with pytest.raises(ValueError, match="one trailing shape"):
        R.pad_sequence([dlcore.tensor(np.ones((2, 3))), dlcore.tensor(np.ones((2, 4)))])
    with pytest.raises(ValueError, match="padding_side"):
        R.pad_sequence([x[0]], padding_side="middle")
