"""CUDA recurrences (csrc/cuda/rnn.cu via dlcore.cuda.kernels.rnn): each mirror of
_C.{lstm,gru,rnn}_sequence_{forward,backward} against the CPU kernel run in float64 on the same
inputs (padded and variable-length packed batches, both directions, float32 and float64), the
step kernels' raw bindings on poisoned outputs (every element written, nothing else touched),
bitwise reruns, bad arguments; then nn.LSTM / GRU / RNN / GRUCell / RNNCell on CUDA against the
same modules on the CPU: outputs, final states and every gradient (float64, 1e-10).
Run: PYTHONPATH=python python3 -m pytest tests/cuda/test_cuda_rnn.py -q -rs
"""
import copy

import numpy as np
import pytest

import dlcore
import dlcore.cuda
from dlcore import _C, nn
from dlcore.cuda.array import DTYPE_CODE, from_numpy
from dlcore.nn.utils.rnn import PackedSequence, pack_padded_sequence
from helpers import assert_close

pytestmark = pytest.mark.skipif(not dlcore.cuda.is_available(), reason="no CUDA device")

F64 = dlcore.float64
GATES = {"lstm": 4, "gru": 3, "tanh": 1, "relu": 1}

# (lengths of the batch rows, sorted descending, H): batch 1, length 1, H 1, ragged, a model shape
CASES = [
    ([1], 3),
    ([5], 1),
    ([3, 3, 3], 7),
    ([6, 4, 4, 1], 5),
    ([9, 7, 2, 2, 1], 17),
    ([35] * 4, 65),
]


def kernels():
    from dlcore.cuda.kernels import rnn

    return rnn


def dev(x):
    return None if x is None else from_numpy(np.asarray(x), 0)


def host(a):
    return None if a is None else a.get()


def tol(dtype, steps):
    """(atol, rtol) against the float64 CPU run: float32 errors compound through time."""
    return (2e-5 * steps**0.5, 2e-4 * steps**0.5) if dtype == np.float32 else (1e-11, 1e-10)


def batch_sizes_of(lengths):
    T = max(lengths)
    return np.array([sum(1 for n in lengths if n > t) for t in range(T)], dtype=np.int64)


def inputs(rng, kind, lengths, H, dtype):
    """Random (never zero) inputs of one layer-direction call, in `dtype`."""
    bs = batch_sizes_of(lengths)
    B, total, GH = len(lengths), int(bs.sum()), GATES[kind] * H

    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    scale = 2.0 / np.sqrt(H)  # twice PyTorch's init range: a recurrence that neither dies nor explodes
    w_hh = rng.uniform(-scale, scale, (GH, H)).astype(dtype)
    return {"bs": bs, "pre": r(total, GH), "w_hh": w_hh, "b_hh": (0.3 * r(GH)).astype(dtype), "h0": r(B, H),
            "c0": r(B, H), "gy": r(total, H), "ghn": r(B, H), "gcn": r(B, H)}


def f64(a):
    return None if a is None else np.asarray(a, np.float64)


def run_cpu(kind, d, reverse, grads):
    """The CPU kernels in float64 on d's values: forward outputs (in-place buffer included) and
    backward results."""
    gy, ghn, gcn = (f64(d[k]) if k in grads else None for k in ("gy", "ghn", "gcn"))
    pre, w, h0, c0, b = f64(d["pre"]).copy(), f64(d["w_hh"]), f64(d["h0"]), f64(d["c0"]), f64(d["b_hh"])
    bs = d["bs"]
    if kind == "lstm":
        fwd = _C.lstm_sequence_forward(pre, w, h0, c0, bs, reverse)
        back = _C.lstm_sequence_backward(w, pre, fwd[1], c0, bs, reverse, gy, ghn, gcn)
    elif kind == "gru":
        fwd = _C.gru_sequence_forward(pre, w, b, h0, bs, reverse)
        back = _C.gru_sequence_backward(w, h0, pre, fwd[0], fwd[1], bs, reverse, gy, ghn)
    else:
        fwd = _C.rnn_sequence_forward(pre, w, h0, bs, reverse, kind)
        back = _C.rnn_sequence_backward(w, h0, fwd[0], bs, reverse, kind, gy, ghn)
    return (pre,) + tuple(fwd), tuple(back)


def run_cuda(kind, d, reverse, grads):
    k = kernels()
    gy, ghn, gcn = (dev(d[n]) if n in grads else None for n in ("gy", "ghn", "gcn"))
    pre, w, h0, c0, b = dev(d["pre"]), dev(d["w_hh"]), dev(d["h0"]), dev(d["c0"]), dev(d["b_hh"])
    bs = d["bs"]
    if kind == "lstm":
        fwd = k.lstm_sequence_forward(pre, w, h0, c0, bs, reverse)
        back = k.lstm_sequence_backward(w, pre, fwd[1], c0, bs, reverse, gy, ghn, gcn)
    elif kind == "gru":
        fwd = k.gru_sequence_forward(pre, w, b, h0, bs, reverse)
        back = k.gru_sequence_backward(w, h0, pre, fwd[0], fwd[1], bs, reverse, gy, ghn)
    else:
        fwd = k.rnn_sequence_forward(pre, w, h0, bs, reverse, kind)
        assert fwd[0] is pre  # the Elman forward returns its in-place buffer
        back = k.rnn_sequence_backward(w, h0, fwd[0], bs, reverse, kind, gy, ghn)
    return (pre,) + tuple(fwd), tuple(back)


# ---- the sequence mirrors against the CPU kernels ----------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths,H", CASES)
@pytest.mark.parametrize("kind", list(GATES))
def test_sequence_matches_cpu(rng, kind, lengths, H, reverse, dtype):
    d = inputs(rng, kind, lengths, H, dtype)
    grads = ("gy", "ghn", "gcn")
    ref_f, ref_b = run_cpu(kind, d, reverse, grads)
    out_f, out_b = run_cuda(kind, d, reverse, grads)
    atol, rtol = tol(dtype, max(lengths))
    for i, (o, r) in enumerate(zip(out_f, ref_f)):
        assert o.dtype == dtype
        assert_close(host(o), r, atol=atol, rtol=rtol, what=f"{kind} forward output {i}")
    for i, (o, r) in enumerate(zip(out_b, ref_b)):
        assert o.dtype == dtype
        assert_close(host(o), r, atol=10 * atol, rtol=10 * rtol, what=f"{kind} backward output {i}")


@pytest.mark.parametrize("grads", [(), ("gy",), ("ghn",), ("gcn",)])
@pytest.mark.parametrize("kind", list(GATES))
def test_backward_with_missing_gradients(rng, kind, grads):
    """grad_y / grad_h_n / grad_c_n may be None (zeros), in any combination."""
    d = inputs(rng, kind, [5, 3, 3, 1], 6, np.float64)
    _, ref_b = run_cpu(kind, d, True, grads)
    _, out_b = run_cuda(kind, d, True, grads)
    for i, (o, r) in enumerate(zip(out_b, ref_b)):
        assert_close(host(o), r, atol=1e-11, rtol=1e-10, what=f"{kind} backward output {i}, grads {grads}")


def test_incoming_gradients_are_not_modified(rng):
    d = inputs(rng, "gru", [4, 2], 5, np.float64)
    k = kernels()
    pre, w, h0 = dev(d["pre"]), dev(d["w_hh"]), dev(d["h0"])
    hidden, y, _ = k.gru_sequence_forward(pre, w, None, h0, d["bs"], False)
    ghn = dev(d["ghn"])
    k.gru_sequence_backward(w, h0, pre, hidden, y, d["bs"], False, dev(d["gy"]), ghn)
    np.testing.assert_array_equal(ghn.get(), d["ghn"])


@pytest.mark.parametrize("kind", list(GATES))
def test_backward_is_deterministic(rng, kind):
    d = inputs(rng, kind, [9, 7, 2, 2, 1], 33, np.float32)
    first = [host(o) for o in run_cuda(kind, d, False, ("gy", "ghn", "gcn"))[1]]
    again = [host(o) for o in run_cuda(kind, d, False, ("gy", "ghn", "gcn"))[1]]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


# ---- the step kernels' raw bindings on poisoned outputs ---------------------------------------

# rows 5 of B 6; rows [0, 3) carried from the previous step, [3, 5) from the initial state;
# rows [2, 5) end here. Pointers to (B, H) arrays; rows >= 5 must stay untouched.
ROWS, B, H, CARRIED, FINISHING = 5, 6, 7, 3, 2


def poisoned(shape):
    return dev(np.full(shape, np.nan))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def state_rows(prev, init):
    """(ROWS, H): the previous state each row starts from."""
    return np.concatenate([prev[:CARRIED], init[CARRIED:ROWS]])


def test_lstm_step_raw_binding_writes_exactly_its_outputs(rng):
    pre, c_prev, c0 = rng.standard_normal((ROWS, 4 * H)), rng.standard_normal((CARRIED, H)), rng.standard_normal((B, H))
    gates, cp, c0d = dev(pre), dev(c_prev), dev(c0)
    h, c, h_n, c_n = poisoned((ROWS, H)), poisoned((ROWS, H)), poisoned((B, H)), poisoned((B, H))
    _C.cuda.lstm_step_forward(DTYPE_CODE[np.dtype(np.float64)], 0, ROWS, H, CARRIED, FINISHING, gates.ptr, cp.ptr,
                              c0d.ptr, h.ptr, c.ptr, h_n.ptr, c_n.ptr)
    i, f, g, o = sigmoid(pre[:, :H]), sigmoid(pre[:, H:2 * H]), np.tanh(pre[:, 2 * H:3 * H]), sigmoid(pre[:, 3 * H:])
    c_ref = f * state_rows(c_prev, c0) + i * g
    h_ref = o * np.tanh(c_ref)
    assert_close(gates.get(), np.concatenate([i, f, g, o], 1), atol=1e-14, rtol=1e-13, what="gates")
    assert_close(c.get(), c_ref, atol=1e-14, rtol=1e-13, what="c")
    assert_close(h.get(), h_ref, atol=1e-14, rtol=1e-13, what="h")
    for name, got, ref in (("h_n", h_n.get(), h_ref), ("c_n", c_n.get(), c_ref)):
        assert np.isnan(got[:FINISHING]).all() and np.isnan(got[ROWS:]).all(), f"{name}: rows outside written"
        assert_close(got[FINISHING:ROWS], ref[FINISHING:], atol=1e-14, rtol=1e-13, what=name)

    grad_gates, carry_c = poisoned((ROWS, 4 * H)), dev(rng.standard_normal((B, H)))
    carry_h = dev(rng.standard_normal((B, H)))
    _C.cuda.lstm_step_backward(1, 0, ROWS, H, CARRIED, gates.ptr, c.ptr, cp.ptr, c0d.ptr, 0, carry_h.ptr,
                               carry_c.ptr, grad_gates.ptr)
    assert not np.isnan(grad_gates.get()).any()


def test_gru_and_rnn_step_raw_bindings_write_every_element(rng):
    x_side, hidden = dev(rng.standard_normal((ROWS, 3 * H))), dev(rng.standard_normal((ROWS, 3 * H)))
    h_prev, h0 = dev(rng.standard_normal((CARRIED, H))), dev(rng.standard_normal((B, H)))
    h, h_n = poisoned((ROWS, H)), poisoned((B, H))
    _C.cuda.gru_step_forward(1, 0, ROWS, H, CARRIED, FINISHING, x_side.ptr, hidden.ptr, h_prev.ptr, h0.ptr, h.ptr,
                             h_n.ptr)
    assert not np.isnan(h.get()).any()
    assert not np.isnan(h_n.get()[FINISHING:ROWS]).any() and np.isnan(h_n.get()[ROWS:]).all()
    carry, gx, gh = dev(rng.standard_normal((B, H))), poisoned((ROWS, 3 * H)), poisoned((ROWS, 3 * H))
    _C.cuda.gru_step_backward(1, 0, ROWS, H, CARRIED, x_side.ptr, hidden.ptr, h_prev.ptr, h0.ptr, 0, carry.ptr,
                              gx.ptr, gh.ptr)
    assert not np.isnan(gx.get()).any() and not np.isnan(gh.get()).any()

    y, h_n = dev(rng.standard_normal((ROWS, H))), poisoned((B, H))
    _C.cuda.rnn_step_forward(1, 0, ROWS, H, FINISHING, False, y.ptr, h_n.ptr)
    assert np.isnan(h_n.get()[:FINISHING]).all() and not np.isnan(h_n.get()[FINISHING:ROWS]).any()
    grad_pre, carry = poisoned((ROWS, H)), dev(rng.standard_normal((B, H)))
    _C.cuda.rnn_step_backward(1, 0, ROWS, H, True, y.ptr, 0, carry.ptr, grad_pre.ptr)
    assert not np.isnan(grad_pre.get()).any()


def test_step_bindings_reject_bad_arguments():
    y, h_n = poisoned((ROWS, H)), poisoned((B, H))
    with pytest.raises(ValueError, match="rnn_step_forward: bad step geometry"):
        _C.cuda.rnn_step_forward(1, 0, ROWS, H, ROWS + 1, False, y.ptr, h_n.ptr)
    with pytest.raises(ValueError, match="h_n is a null pointer"):
        _C.cuda.rnn_step_forward(1, 0, ROWS, H, 0, False, y.ptr, 0)
    with pytest.raises(ValueError, match="c0 is a null pointer"):
        _C.cuda.lstm_step_forward(1, 0, ROWS, H, CARRIED, ROWS, y.ptr, y.ptr, 0, y.ptr, y.ptr, 0, 0)
    with pytest.raises(ValueError, match="float32 or float64"):
        _C.cuda.rnn_step_backward(2, 0, ROWS, H, False, y.ptr, 0, y.ptr, y.ptr)


# ---- bad arguments to the mirrors ------------------------------------------------------------

def test_mirrors_reject_bad_arguments(rng):
    k = kernels()
    w, h0, c0 = dev(rng.standard_normal((8, 2))), dev(rng.standard_normal((3, 2))), dev(rng.standard_normal((3, 2)))
    gates, bs = dev(rng.standard_normal((5, 8))), np.array([3, 2], np.int64)
    with pytest.raises(ValueError, match=r"lstm_sequence_forward: w_hh must be \(4 \* H, H\)"):
        k.lstm_sequence_forward(gates, dev(rng.standard_normal((7, 2))), h0, c0, bs)
    with pytest.raises(ValueError, match="batch_sizes\\[0\\] must equal the batch size B = 3"):
        k.lstm_sequence_forward(gates, w, h0, c0, np.array([2, 2, 1], np.int64))
    with pytest.raises(ValueError, match="non-increasing"):
        k.lstm_sequence_forward(dev(rng.standard_normal((6, 8))), w, h0, c0, np.array([3, 1, 2], np.int64))
    with pytest.raises(TypeError, match="batch_sizes must be a host NumPy int64 array"):
        k.lstm_sequence_forward(gates, w, h0, c0, dev(bs))
    with pytest.raises(TypeError, match="batch_sizes must be int64"):
        k.lstm_sequence_forward(gates, w, h0, c0, bs.astype(np.int32))
    with pytest.raises(ValueError, match=r"gates must have shape \(5, 8\)"):
        k.lstm_sequence_forward(dev(rng.standard_normal((6, 8))), w, h0, c0, bs)
    with pytest.raises(TypeError, match="gates must have the dtype of w_hh"):
        k.lstm_sequence_forward(dev(rng.standard_normal((5, 8)).astype(np.float32)), w, h0, c0, bs)
    with pytest.raises(ValueError, match="C-contiguous"):
        k.lstm_sequence_forward(dev(rng.standard_normal((8, 5))).T, w, h0, c0, bs)
    with pytest.raises(TypeError, match="gru_sequence_forward: gates must be a CudaArray"):
        k.gru_sequence_forward(np.zeros((5, 6)), dev(rng.standard_normal((6, 2))), None, h0, bs)
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'"):
        k.rnn_sequence_forward(dev(rng.standard_normal((5, 2))), dev(rng.standard_normal((2, 2))), h0, bs, False,
                               "gelu")
    with pytest.raises(ValueError, match=r"grad_y must have shape \(5, 2\)"):
        k.rnn_sequence_backward(dev(rng.standard_normal((2, 2))), h0, dev(rng.standard_normal((5, 2))), bs, False,
                                "tanh", dev(rng.standard_normal((4, 2))), None)


# ---- nn modules on CUDA against the same modules on the CPU --------------------------------------

def leaf(array, device):
    return dlcore.tensor(array, dtype=F64, requires_grad=True, device=device)


def to_host(t):
    return None if t is None else t.detach().cpu().numpy()


def flat_outputs(out):
    """output (data of a PackedSequence) and the final states, as a list of Tensors."""
    y, state = out
    y = y.data if isinstance(y, PackedSequence) else y
    return [y] + (list(state) if isinstance(state, tuple) else [state])


def run_module(m, make_input, leaves, weights):
    """Forward, loss sum(out_k * weights_k), backward: host copies of the outputs, the leaves'
    gradients and the parameters' gradients."""
    outs = flat_outputs(m(*make_input(leaves)))
    loss = None
    for o, wt in zip(outs, weights):
        wt_t = dlcore.tensor(wt, dtype=F64)
        if o.is_cuda:
            wt_t = wt_t.cuda()
        term = (o * wt_t).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    return ([to_host(o) for o in outs], [to_host(x.grad) for x in leaves],
            {n: to_host(p.grad) for n, p in m.named_parameters()})


def compare_devices(m_cpu, make_input, arrays, rng):
    """Runs m_cpu on the CPU and a copy of it on CUDA with the same inputs (float64 leaves built
    from `arrays`); every output and gradient must agree to 1e-10."""
    m_gpu = copy.deepcopy(m_cpu).cuda()
    cpu_leaves = [leaf(a, "cpu") for a in arrays]
    gpu_leaves = [leaf(a, "cuda") for a in arrays]
    outs = flat_outputs(m_cpu(*make_input(cpu_leaves)))
    weights = [rng.standard_normal(o.shape) for o in outs]
    ref = run_module(m_cpu, make_input, cpu_leaves, weights)
    got = run_module(m_gpu, make_input, gpu_leaves, weights)
    for name, r_list, g_list in (("output", ref[0], got[0]), ("input grad", ref[1], got[1])):
        for i, (r, g) in enumerate(zip(r_list, g_list)):
            assert (r is None) == (g is None), f"{name} {i}: present on one device only"
            if r is not None:
                assert_close(g, r, atol=1e-10, rtol=1e-10, what=f"{type(m_cpu).__name__} {name} {i}")
    assert ref[2].keys() == got[2].keys()
    for n in ref[2]:
        assert ref[2][n] is not None and got[2][n] is not None, f"{n}: no gradient"
        assert_close(got[2][n], ref[2][n], atol=1e-10, rtol=1e-10, what=f"{type(m_cpu).__name__} grad {n}")
    for n, p in m_gpu.named_parameters():
        assert p.is_cuda, f"{n} is not on the GPU"


def test_lstm_bidirectional_two_layers_packed(rng):
    """PackedSequence with unsorted lengths (sorted_indices / unsorted_indices), given h0, c0."""
    m = nn.LSTM(3, 5, num_layers=2, bidirectional=True, dtype=F64)
    lengths = [3, 6, 1, 6, 4]
    packed = pack_padded_sequence(dlcore.tensor(rng.standard_normal((6, 5, 3)), dtype=F64), lengths,
                                  enforce_sorted=False)
    data = packed.data.numpy()

    def make_input(leaves):
        x, h0, c0 = leaves
        return PackedSequence(x, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices), (h0, c0)

    compare_devices(m, make_input, [data, rng.standard_normal((4, 5, 5)), rng.standard_normal((4, 5, 5))], rng)


@pytest.mark.parametrize("mode,kw", [("LSTM", {}), ("GRU", {}), ("RNN", {"nonlinearity": "tanh"}),
                                     ("RNN", {"nonlinearity": "relu"})])
def test_layers_padded_batch_first(rng, mode, kw):
    """batch_first, two bidirectional layers, no initial state (zeros made on the GPU)."""
    m = getattr(nn, mode)(4, 6, num_layers=2, bidirectional=True, batch_first=True, dtype=F64, **kw)
    compare_devices(m, lambda leaves: (leaves[0],), [rng.standard_normal((3, 7, 4))], rng)


@pytest.mark.parametrize("mode", ["GRU", "RNN"])
def test_layers_packed_with_initial_state(rng, mode):
    m = getattr(nn, mode)(3, 4, num_layers=2, bidirectional=True, bias=False, dtype=F64)
    lengths = [5, 5, 2, 1]
    packed = pack_padded_sequence(dlcore.tensor(rng.standard_normal((5, 4, 3)), dtype=F64), lengths)

    def make_input(leaves):
        x, h0 = leaves
        return PackedSequence(x, packed.batch_sizes), h0

    compare_devices(m, make_input, [packed.data.numpy(), rng.standard_normal((4, 4, 4))], rng)


def test_unbatched_input(rng):
    m = nn.GRU(3, 4, dtype=F64)
    compare_devices(m, lambda leaves: (leaves[0], leaves[1]), [rng.standard_normal((6, 3)),
                                                               rng.standard_normal((1, 4))], rng)


@pytest.mark.parametrize("cell,kw", [("GRUCell", {}), ("RNNCell", {"nonlinearity": "tanh"}),
                                     ("RNNCell", {"nonlinearity": "relu"})])
@pytest.mark.parametrize("given_h", [True, False])
def test_cells(rng, cell, kw, given_h):
    m = getattr(nn, cell)(5, 7, dtype=F64, **kw)

    def run(m, leaves):
        return (m(leaves[0], leaves[1] if given_h else None), None)

    m_gpu = copy.deepcopy(m).cuda()
    arrays = [rng.standard_normal((4, 5)), rng.standard_normal((4, 7))]
    weights = rng.standard_normal((4, 7))
    results = []
    for module, device in ((m, "cpu"), (m_gpu, "cuda")):
        leaves = [leaf(a, device) for a in arrays]
        h = module(leaves[0], leaves[1] if given_h else None)
        wt = dlcore.tensor(weights, dtype=F64)
        (h * (wt.cuda() if device == "cuda" else wt)).sum().backward()
        assert h.is_cuda == (device == "cuda")
        results.append([to_host(h)] + [to_host(x.grad) for x in leaves[:1 + given_h]] +
                       [to_host(p.grad) for p in module.parameters()])
    for i, (r, g) in enumerate(zip(*results)):
        assert_close(g, r, atol=1e-10, rtol=1e-10, what=f"{cell} result {i}")


def test_dropout_between_layers_runs_on_the_gpu(rng):
    """Training-mode dropout draws the GPU's own masks (not the CPU's): the same seed gives the
    same bits; eval mode equals the CPU module."""
    m_cpu = nn.LSTM(3, 4, num_layers=3, dropout=0.4, dtype=F64)
    m = copy.deepcopy(m_cpu).cuda()
    x = dlcore.tensor(rng.standard_normal((5, 2, 3)), dtype=F64, device="cuda")
    outs = []
    for _ in range(2):
        dlcore.cuda.manual_seed(11)
        y, _ = m(x)
        outs.append(y.detach().cpu().numpy())
    np.testing.assert_array_equal(outs[0], outs[1])
    m.eval()
    m_cpu.eval()
    assert_close(m(x)[0].detach().cpu().numpy(), m_cpu(x.cpu())[0].detach().numpy(), atol=1e-10, rtol=1e-10, what="eval LSTM")


def test_module_rejects_inputs_on_another_device(rng):
    m = nn.LSTM(3, 4, dtype=F64)
    x = dlcore.tensor(rng.standard_normal((5, 2, 3)), dtype=F64).cuda()
    with pytest.raises(RuntimeError, match="LSTM: input is on cuda:0 but the parameters are on cpu"):
        m(x)
    m.cuda()
    with pytest.raises(RuntimeError, match="LSTM: h0 is on cpu but the input is on cuda"):
        m(x, (dlcore.zeros(1, 2, 4, dtype=F64), dlcore.zeros(1, 2, 4, dtype=F64).cuda()))
