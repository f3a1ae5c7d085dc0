"""CUDA nn kernels (csrc/cuda/nn.cu via dlcore.cuda.kernels.nn): take / index_add, embedding,
dropout and the LSTM cell against float64 NumPy oracles, in float32 and float64.

take and embedding forward are gathers (exact); index_add and embedding backward are checked
against a float64 np.add.at with the K-scaled bound, against a same-dtype sum in index order
(bitwise: the kernel's fixed order), against the CPU kernel (bitwise) and run-to-run. The
dropout mask is compared bit for bit with a NumPy Philox4x32-10 (itself checked on Random123's
known-answer vectors). Poisoned outputs (raw bindings) show every element is written.
Run: PYTHONPATH=python python3 -m pytest tests/cuda/test_cuda_nn.py -q -rs
"""
import numpy as np
import pytest

import dlcore
import dlcore.cuda
from dlcore import _C
from dlcore.cuda.array import DTYPE_CODE, empty, from_numpy
from helpers import assert_close, assert_close_reduction

pytestmark = pytest.mark.skipif(not dlcore.cuda.is_available(), reason="no CUDA device")

FLOATS = [np.float32, np.float64]


def kernels():
    from dlcore.cuda.kernels import nn

    return nn


def dev(x):
    x = np.asarray(x)
    return from_numpy(x, 0).reshape(x.shape)  # from_numpy gives 0-d arrays shape (1,)


def tol(dtype):
    """(atol, rtol) for elementwise results: STYLE.md's 1e-6 + 1e-5|ref| in float32."""
    return (1e-6, 1e-5) if dtype == np.float32 else (1e-13, 1e-11)


def poisoned(shape, dtype):
    """A device array full of NaN (or -1 for integers): any element a kernel skips stays visible."""
    fill = np.nan if np.dtype(dtype).kind == "f" else -1
    return dev(np.full(shape, fill, dtype=dtype))


def sequential_index_add(shape, dim, index, grad):
    """index_add in grad's dtype, adding terms one at a time in increasing index position: the
    order the kernel promises, so its result must match this bit for bit."""
    out = np.zeros(shape, dtype=grad.dtype)
    flat = index.reshape(-1)
    g = grad.reshape(grad.shape[:dim] + (flat.size,) + grad.shape[dim + index.ndim:])
    out_v = np.moveaxis(out, dim, 0)
    g_v = np.moveaxis(g, dim, 0)
    for j, r in enumerate(flat):
        out_v[r] = out_v[r] + g_v[j]
    return out


# ---- take / index_add -------------------------------------------------------------------------

TAKE_CASES = [  # (x shape, dim, index shape)
    ((7,), 0, (5,)),
    ((5, 7, 3), 0, (4,)),
    ((5, 7, 3), 1, (2, 3)),
    ((5, 7, 3), 2, ()),
    ((5, 7, 3), -1, (6,)),
    ((1, 1), 1, (3,)),
    ((33, 65), 0, (31, 2)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
@pytest.mark.parametrize("shape,dim,index_shape", TAKE_CASES)
def test_take_matches_numpy(rng, dtype, shape, dim, index_shape):
    x = rng.standard_normal(shape) * 10
    x = (x > 0) if dtype == np.bool_ else x.astype(dtype)
    n = shape[dim]
    idx = rng.integers(-n, n, size=index_shape)  # negatives wrap, repeats included
    ref = np.take(x, idx, axis=dim)
    out = kernels().take(dev(x), dev(idx), dim)
    assert out.dtype == x.dtype and out.shape == ref.shape
    np.testing.assert_array_equal(out.get(), ref)
    # a host index array works the same
    np.testing.assert_array_equal(kernels().take(dev(x), idx, dim).get(), ref)


def test_take_of_a_strided_view(rng):
    x = rng.standard_normal((6, 9))
    idx = np.array([8, 0, -1, 3])
    out = kernels().take(dev(x).T, dev(idx), 0)  # (9, 6) view, not contiguous
    np.testing.assert_array_equal(out.get(), x.T[idx])


def test_take_rejects_bad_indices(rng):
    x = dev(rng.standard_normal((4, 5)))
    with pytest.raises(IndexError, match="take: index 5 is out of bounds for dim 1 with size 5"):
        kernels().take(x, dev(np.array([0, 5, 1])), 1)
    with pytest.raises(IndexError, match="index -5 is out of bounds for dim 0 with size 4"):
        kernels().take(x, dev(np.array([-5])), 0)
    with pytest.raises(TypeError, match="take: index must be int64"):
        kernels().take(x, dev(np.array([0.0])), 0)
    with pytest.raises(IndexError, match="dim 2 is out of range"):
        kernels().take(x, dev(np.array([0])), 2)


INDEX_ADD_CASES = [  # (grad_x shape, dim, index shape, rows drawn from)
    ((7,), 0, (20,), 7),
    ((5, 7, 3), 1, (2, 9), 7),
    ((5, 7, 3), 0, (4,), 5),
    ((4, 6, 33), -1, (65,), 33),
    ((50, 3), 0, (500,), 10),  # many repeats per row, rows 10..49 untouched (must be 0)
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,dim,index_shape,rows", INDEX_ADD_CASES)
def test_index_add_against_float64_and_in_order(rng, dtype, shape, dim, index_shape, rows):
    d = dim % len(shape)
    # all rows: negatives too (they wrap); a few rows: [0, rows), the others stay untouched
    idx = rng.integers(-rows if rows == shape[d] else 0, rows, size=index_shape)
    wrapped = np.where(idx < 0, idx + shape[d], idx)
    grad_shape = shape[:d] + idx.shape + shape[d + 1:]
    grad = rng.standard_normal(grad_shape).astype(dtype)
    g64 = grad.astype(np.float64).reshape(shape[:d] + (idx.size,) + shape[d + 1:])
    ref, abs_ref = np.zeros(shape), np.zeros(shape)
    np.add.at(np.moveaxis(ref, d, 0), wrapped.reshape(-1), np.moveaxis(g64, d, 0))
    np.add.at(np.moveaxis(abs_ref, d, 0), wrapped.reshape(-1), np.moveaxis(np.abs(g64), d, 0))
    out = kernels().index_add(shape, dim, dev(idx), dev(grad))
    assert out.dtype == np.dtype(dtype) and out.shape == shape
    got = out.get()
    assert_close_reduction(got, ref, abs_ref, idx.size, dtype, what="index_add")
    np.testing.assert_array_equal(got, sequential_index_add(shape, d, wrapped, grad))


def test_index_add_wraps_negative_indices_and_is_deterministic(rng):
    shape, idx = (6, 40), rng.integers(-6, 6, size=3000)
    grad = dev(rng.standard_normal((3000, 40)).astype(np.float32))
    first = kernels().index_add(shape, 0, dev(idx), grad).get()
    np.testing.assert_array_equal(first, sequential_index_add(shape, 0, idx % 6, grad.get()))
    for _ in range(3):
        np.testing.assert_array_equal(kernels().index_add(shape, 0, dev(idx), grad).get(), first)


def test_index_add_integer_exact(rng):
    """Small integers: every partial sum is exact, so any indexing slip shows as a bit difference."""
    idx = rng.integers(0, 9, size=(7, 11))
    grad = rng.integers(-8, 9, size=(3, 7, 11, 5)).astype(np.float32)
    ref = np.zeros((3, 9, 5))
    np.add.at(ref, (slice(None), idx.reshape(-1)), grad.reshape(3, 77, 5).astype(np.float64))
    np.testing.assert_array_equal(kernels().index_add((3, 9, 5), 1, dev(idx), dev(grad)).get(), ref)


def test_index_add_writes_every_element():
    """Through the raw binding into a NaN-filled output: rows without indices become 0."""
    idx = np.array([2, 2, 0])
    grad = np.arange(6, dtype=np.float64).reshape(3, 2) + 1
    offsets, order = dev(np.array([0, 1, 1, 3, 3])), dev(np.array([2, 0, 1]))
    out = poisoned((4, 2), np.float64)
    g = dev(grad)
    _C.cuda.index_add(DTYPE_CODE[np.dtype(np.float64)], 1, 4, 2, offsets.ptr, order.ptr, 3, g.ptr, -1, out.ptr)
    ref = np.zeros((4, 2))
    np.add.at(ref, idx, grad)
    np.testing.assert_array_equal(out.get(), ref)


def test_index_add_rejects_bad_input(rng):
    grad = dev(rng.standard_normal((3, 2)))
    with pytest.raises(IndexError, match="index_add: index 4 is out of bounds for dim 0 with size 4"):
        kernels().index_add((4, 2), 0, dev(np.array([0, 4, 1])), grad)
    with pytest.raises(ValueError, match=r"index_add: grad must have shape \(2, 2\)"):
        kernels().index_add((4, 2), 0, dev(np.array([0, 1])), grad)
    with pytest.raises(TypeError, match="index_add: grad must be float32, float64 or int64"):
        kernels().index_add((4, 2), 0, dev(np.array([0, 1, 2])), dev(np.ones((3, 2), dtype=bool)))


# ---- embedding --------------------------------------------------------------------------------

EMBEDDING_CASES = [(1, 1, (1,)), (7, 3, (5,)), (50, 33, (4, 9)), (1000, 650, (20, 35))]  # last: PTB LSTM


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("num,D,index_shape", EMBEDDING_CASES)
def test_embedding_forward_is_an_exact_gather(rng, dtype, num, D, index_shape):
    weight = rng.standard_normal((num, D)).astype(dtype)
    idx = rng.integers(0, num, size=index_shape)
    out = kernels().embedding_forward(dev(weight), dev(idx))
    assert out.shape == index_shape + (D,) and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out.get(), weight[idx])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("num,D,index_shape", EMBEDDING_CASES)
@pytest.mark.parametrize("padding_idx", [-1, 0])
def test_embedding_backward(rng, dtype, num, D, index_shape, padding_idx):
    idx = rng.integers(0, max(num // 3, 1), size=index_shape)  # repeated rows
    grad_out = rng.standard_normal(index_shape + (D,)).astype(dtype)
    ref, abs_ref = np.zeros((num, D)), np.zeros((num, D))
    flat_g = grad_out.reshape(-1, D).astype(np.float64)
    np.add.at(ref, idx.reshape(-1), flat_g)
    np.add.at(abs_ref, idx.reshape(-1), np.abs(flat_g))
    if padding_idx >= 0:
        ref[padding_idx] = 0
    runs = [kernels().embedding_backward(dev(idx), dev(grad_out), num, padding_idx).get() for _ in range(2)]
    assert runs[0].shape == (num, D) and runs[0].dtype == np.dtype(dtype)
    assert_close_reduction(runs[0], ref, abs_ref, idx.size, dtype, what="embedding_backward")
    np.testing.assert_array_equal(runs[0], runs[1])  # same bits every run
    # the CPU kernel sums in the same order (increasing position): the same bits
    np.testing.assert_array_equal(runs[0], _C.embedding_backward(idx, grad_out, num, padding_idx))


def test_embedding_rejects_bad_input(rng):
    w = dev(rng.standard_normal((10, 4)))
    with pytest.raises(ValueError, match=r"embedding_forward: index 10 at position \(1, 2\) is out of range \[0, 10\)"):
        kernels().embedding_forward(w, dev(np.array([[0, 1, 2], [3, 4, 10]])))
    with pytest.raises(ValueError, match="embedding_forward: index -1 at position 0"):
        kernels().embedding_forward(w, dev(np.array([-1])))
    with pytest.raises(TypeError, match="embedding_forward: weight must be float32 or float64"):
        kernels().embedding_forward(dev(np.ones((3, 2), dtype=np.int64)), dev(np.array([0])))
    with pytest.raises(TypeError, match="embedding_forward: index must be int64"):
        kernels().embedding_forward(w, dev(np.array([0.0])))
    g = dev(rng.standard_normal((3, 4)))
    with pytest.raises(ValueError, match="embedding_backward: index 7 at position 1 is out of range"):
        kernels().embedding_backward(dev(np.array([0, 7, 1])), g, 5)
    with pytest.raises(ValueError, match="embedding_backward: padding_idx must be < num"):
        kernels().embedding_backward(dev(np.array([0, 1, 1])), g, 5, 5)
    with pytest.raises(ValueError, match="embedding_backward: grad_out must have shape"):
        kernels().embedding_backward(dev(np.array([0, 1])), g, 5)


# ---- dropout ----------------------------------------------------------------------------------

MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32_10(counter, key):
    """NumPy Philox4x32-10: counter is 4 uint arrays (one lane each), key 2 ints; 4 uint64
    arrays of 32-bit words. Products of two 32-bit words fit in uint64 exactly."""
    c = [np.asarray(v, dtype=np.uint64) for v in counter]
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    for _ in range(10):
        p0 = c[0] * np.uint64(0xD2511F53)
        p1 = c[2] * np.uint64(0xCD9E8D57)
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & MASK32, (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & MASK32]
        k0 = (k0 + np.uint64(0x9E3779B9)) & MASK32
        k1 = (k1 + np.uint64(0xBB67AE85)) & MASK32
    return c


def philox_keep(n, p, seed):
    """The mask the kernel documents: element i takes word i % 4 of philox(counter (i // 4, 0),
    key (seed lo, seed hi)) and is kept when the word >= ceil(p 2^32)."""
    g = np.arange((n + 3) // 4, dtype=np.uint64)
    words = philox4x32_10([g & MASK32, g >> np.uint64(32), 0 * g, 0 * g], (seed & 0xFFFFFFFF, seed >> 32))
    bits = np.stack(words, axis=1).reshape(-1)[:n]  # (group, word) -> element 4 g + word
    return bits >= np.uint64(int(np.ceil(p * 2.0**32)))


def test_philox_reference_known_answers():
    """Random123's kat_vectors for philox4x32 with 10 rounds."""
    cases = [((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
             ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
             ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
              (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]
    for counter, key, want in cases:
        assert tuple(int(w) for w in philox4x32_10(counter, key)) == want


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_mask_is_philox_and_keeps_1_minus_p(rng, dtype, p):
    n = 2_000_003  # not a multiple of 4: the last group is partial
    seed = 0x0123456789ABCDEF  # both key words non-zero
    x = rng.standard_normal(n).astype(dtype)
    y, keep = kernels().dropout_forward(dev(x), p, seed)
    assert keep.dtype == np.bool_ and keep.shape == (n,) and y.dtype == np.dtype(dtype)
    k = keep.get()
    np.testing.assert_array_equal(k, philox_keep(n, p, seed))
    np.testing.assert_array_equal(y.get(), np.where(k, x * dtype(1.0 / (1.0 - p)), dtype(0)))
    # The seed fixes the mask, so this cannot flake; 6 sigma still holds for any good stream.
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(k.mean() - (1 - p)) < 6 * sigma, f"keep fraction {k.mean()} vs {1 - p}"


def test_dropout_seed_reproduces_and_changes_the_mask(rng):
    x = dev(rng.standard_normal((37, 129)).astype(np.float32))
    a = kernels().dropout_forward(x, 0.5, 7)[1].get()
    np.testing.assert_array_equal(kernels().dropout_forward(x, 0.5, 7)[1].get(), a)
    assert (kernels().dropout_forward(x, 0.5, 8)[1].get() != a).mean() > 0.4
    assert (kernels().dropout_forward(x, 0.5, 7 + (1 << 32))[1].get() != a).mean() > 0.4  # high key word


def test_dropout_edges(rng):
    x = rng.standard_normal(1001).astype(np.float32)
    y, keep = kernels().dropout_forward(dev(x), 0.0, 3)
    assert keep.get().all()
    np.testing.assert_array_equal(y.get(), x)
    y, keep = kernels().dropout_forward(dev(x), 1.0, 3)
    assert not keep.get().any()
    np.testing.assert_array_equal(y.get(), np.zeros_like(x))
    with pytest.raises(ValueError, match=r"dropout_forward: p must be in \[0, 1\], got 1.5"):
        kernels().dropout_forward(dev(x), 1.5, 3)
    with pytest.raises(TypeError, match="dropout_forward: x must be float32 or float64"):
        kernels().dropout_forward(dev(np.arange(3)), 0.5, 3)


@pytest.mark.parametrize("dtype", FLOATS)
def test_dropout_backward(rng, dtype):
    keep = rng.random((13, 77)) < 0.7
    g = rng.standard_normal((13, 77)).astype(dtype)
    scale = 1.0 / 0.7
    out = kernels().dropout_backward(dev(keep), dev(g), scale)
    np.testing.assert_array_equal(out.get(), np.where(keep, g * dtype(scale), dtype(0)))
    with pytest.raises(ValueError, match="dropout_backward: grad_y must have shape"):
        kernels().dropout_backward(dev(keep), dev(g[:, :3]), scale)
    with pytest.raises(TypeError, match="dropout_backward: keep must be bool"):
        kernels().dropout_backward(dev(g), dev(g), scale)


# ---- lstm_cell --------------------------------------------------------------------------------

def sigmoid(x):
    e = np.exp(-np.abs(x))  # <= 1: no overflow, both tails keep their relative precision
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def lstm_reference(gates_pre, c_prev):
    """float64 cell: (h, c, gates), gate order (i, f, g, o)."""
    H = c_prev.shape[1]
    pre = gates_pre.astype(np.float64)
    i, f, o = sigmoid(pre[:, :H]), sigmoid(pre[:, H:2 * H]), sigmoid(pre[:, 3 * H:])
    g = np.tanh(pre[:, 2 * H:3 * H])
    c = f * c_prev + i * g
    return o * np.tanh(c), c, np.concatenate([i, f, g, o], axis=1)


def lstm_backward_reference(gates, c_prev, c, dh, dc):
    H = c.shape[1]
    i, f, g, o = (gates[:, k * H:(k + 1) * H] for k in range(4))
    tc = np.tanh(c)
    dct = dc + dh * o * (1 - tc * tc)
    grad_pre = np.concatenate([dct * g * i * (1 - i), dct * c_prev * f * (1 - f), dct * i * (1 - g * g),
                               dh * tc * o * (1 - o)], axis=1)
    return grad_pre, dct * f


LSTM_SHAPES = [(1, 1), (3, 7), (20, 650), (64, 33)]  # (20, 650): the PTB medium LSTM's step


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("B,H", LSTM_SHAPES)
def test_lstm_cell_forward(rng, dtype, B, H):
    pre = (rng.standard_normal((B, 4 * H)) * 2).astype(dtype)  # reaches both sigmoid tails
    cp = rng.standard_normal((B, H)).astype(dtype)
    h, c, gates = kernels().lstm_cell_forward(dev(pre), dev(cp))
    rh, rc, rg = lstm_reference(pre, cp.astype(np.float64))
    atol, rtol = tol(dtype)
    for name, out, ref in [("h", h, rh), ("c", c, rc), ("gates", gates, rg)]:
        assert out.dtype == np.dtype(dtype) and out.shape == ref.shape
        assert_close(out.get(), ref, atol=atol, rtol=rtol, what=f"lstm_cell_forward {name}")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("B,H", LSTM_SHAPES)
@pytest.mark.parametrize("has_h,has_c", [(True, True), (True, False), (False, True), (False, False)])
def test_lstm_cell_backward(rng, dtype, B, H, has_h, has_c):
    pre = (rng.standard_normal((B, 4 * H)) * 2).astype(dtype)
    cp = rng.standard_normal((B, H)).astype(dtype)
    _, c, gates = lstm_reference(pre, cp.astype(np.float64))
    gates, c = gates.astype(dtype), c.astype(dtype)
    dh = rng.standard_normal((B, H)).astype(dtype) if has_h else None
    dc = rng.standard_normal((B, H)).astype(dtype) if has_c else None
    grad_pre, grad_cp = kernels().lstm_cell_backward(dev(gates), dev(cp), dev(c), None if dh is None else dev(dh),
                                                     None if dc is None else dev(dc))
    zeros = np.zeros((B, H))
    ref_pre, ref_cp = lstm_backward_reference(*(a.astype(np.float64) for a in (gates, cp, c)),
                                              zeros if dh is None else dh.astype(np.float64),
                                              zeros if dc is None else dc.astype(np.float64))
    atol, rtol = tol(dtype)
    assert_close(grad_pre.get(), ref_pre, atol=atol, rtol=rtol, what="lstm_cell_backward grad_gates_pre")
    assert_close(grad_cp.get(), ref_cp, atol=atol, rtol=rtol, what="lstm_cell_backward grad_c_prev")


def test_lstm_cell_writes_every_element(rng):
    B, H = 5, 9
    pre, cp = dev(rng.standard_normal((B, 4 * H))), dev(rng.standard_normal((B, H)))
    h, c, gates = poisoned((B, H), np.float64), poisoned((B, H), np.float64), poisoned((B, 4 * H), np.float64)
    _C.cuda.lstm_cell_forward(DTYPE_CODE[np.dtype(np.float64)], B, H, pre.ptr, cp.ptr, h.ptr, c.ptr, gates.ptr)
    assert np.isfinite(h.get()).all() and np.isfinite(c.get()).all() and np.isfinite(gates.get()).all()
    gp, gcp = poisoned((B, 4 * H), np.float64), poisoned((B, H), np.float64)
    _C.cuda.lstm_cell_backward(DTYPE_CODE[np.dtype(np.float64)], B, H, gates.ptr, cp.ptr, c.ptr, 0, 0, gp.ptr,
                               gcp.ptr)
    np.testing.assert_array_equal(gp.get(), 0.0)  # no incoming gradient: exact zeros everywhere
    np.testing.assert_array_equal(gcp.get(), 0.0)


def test_lstm_cell_rejects_bad_input(rng):
    pre = dev(rng.standard_normal((3, 8)))
    with pytest.raises(ValueError, match="lstm_cell_forward: gates_pre must be .B, 4H. with a second dim divisible by 4"):
        kernels().lstm_cell_forward(dev(rng.standard_normal((3, 6))), dev(rng.standard_normal((3, 2))))
    with pytest.raises(ValueError, match=r"lstm_cell_forward: c_prev must have shape \(3, 2\)"):
        kernels().lstm_cell_forward(pre, dev(rng.standard_normal((3, 3))))
    with pytest.raises(TypeError, match="lstm_cell_forward: c_prev must have the dtype of gates_pre"):
        kernels().lstm_cell_forward(pre, dev(rng.standard_normal((3, 2)).astype(np.float32)))


def test_empty_inputs():
    w = dev(np.ones((4, 3), dtype=np.float32))
    assert kernels().embedding_forward(w, dev(np.zeros((0,), dtype=np.int64))).shape == (0, 3)
    g = kernels().embedding_backward(dev(np.zeros((0,), dtype=np.int64)), empty((0, 3), np.float32, 0), 4)
    np.testing.assert_array_equal(g.get(), np.zeros((4, 3), dtype=np.float32))
    y, keep = kernels().dropout_forward(empty((0, 5), np.float64, 0), 0.5, 1)
    assert y.shape == (0, 5) and keep.shape == (0, 5)
