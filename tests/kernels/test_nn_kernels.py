"""Kernel tests for the nn family (csrc/cpu/ref/{dropout,embedding,lstm_cell}.cpp via
csrc/bindings/ops_nn.cpp): _C.dropout_*, _C.embedding_*, _C.lstm_cell_* against NumPy float64
oracles, on every ISA the host runs, in float32 and float64."""
import contextlib

import numpy as np
import pytest

from dlcore import _C
from helpers import assert_close, assert_close_reduction

DTYPES = [np.float32, np.float64]


def tol(dtype):
    """(atol, rtol) for elementwise results: STYLE.md's 1e-6 + 1e-5|ref| in float32."""
    return (1e-6, 1e-5) if dtype == np.float32 else (1e-13, 1e-11)


@contextlib.contextmanager
def num_threads(n):
    previous = _C.get_num_threads()
    _C.set_num_threads(n)
    try:
        yield
    finally:
        _C.set_num_threads(previous)


def each_isa(fn):
    """{isa: fn()} for every ISA this CPU runs, restoring the active one."""
    previous = _C.cpu_isa()
    out = {}
    try:
        for name in ["generic", "avx2", "avx512"]:
            if _C.isa_supported(name):
                _C.set_cpu_isa(name)
                out[name] = fn()
    finally:
        _C.set_cpu_isa(previous)
    return out


# ---- dropout -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_statistics(isa, rng, dtype, p):
    """Keep fraction within 5 sigma of 1 - p on 1e6 draws, neighbours uncorrelated, y exact."""
    n = 1_000_000
    x = rng.standard_normal(n).astype(dtype)
    y, keep = _C.dropout_forward(x, p, 1234567)
    assert keep.dtype == np.bool_ and keep.shape == x.shape and y.dtype == dtype
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(keep.mean() - (1 - p)) < 5 * sigma, f"keep fraction {keep.mean()} vs {1 - p}"
    # Lag-1 correlation of the keep bits: ~N(0, 1/n) for an independent stream.
    k = keep.astype(np.float64) - keep.mean()
    corr = (k[:-1] @ k[1:]) / (k @ k)
    assert abs(corr) < 5 / np.sqrt(n), f"lag-1 correlation {corr}"
    # Each of 100 blocks keeps a fraction consistent with 1 - p (chi-square over blocks).
    blocks = keep.reshape(100, -1).mean(axis=1)
    chi2 = (((blocks - (1 - p)) / np.sqrt(p * (1 - p) / blocks.size * 100)) ** 2).sum()
    assert chi2 < 100 + 5 * np.sqrt(200), f"block chi-square {chi2} over 100 blocks"
    atol, rtol = tol(dtype)
    ref = np.where(keep, x.astype(np.float64) / (1 - p), 0.0)
    assert_close(y, ref, atol=atol, rtol=rtol, what=f"dropout_forward[{isa}] p={p}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_reproducible_and_seeded(isa, rng, dtype):
    x = rng.standard_normal((13, 7, 11)).astype(dtype)
    y1, k1 = _C.dropout_forward(x, 0.5, 42)
    y2, k2 = _C.dropout_forward(x, 0.5, 42)
    np.testing.assert_array_equal(k1, k2)
    np.testing.assert_array_equal(y1, y2)
    assert k1.shape == x.shape and y1.shape == x.shape
    # Different (also adjacent and huge) seeds give different masks agreeing ~half the time.
    n = 200_000
    big = rng.standard_normal(n).astype(dtype)
    masks = [_C.dropout_forward(big, 0.5, s)[1] for s in (0, 1, 2, 2**63, 2**64 - 1)]
    for a in range(len(masks)):
        for b in range(a + 1, len(masks)):
            agree = (masks[a] == masks[b]).mean()
            assert abs(agree - 0.5) < 5 * 0.5 / np.sqrt(n), f"seeds {a}, {b} agree on {agree}"


def test_dropout_threads_and_isas_agree(rng):
    """The mask depends on (seed, i) only: 1 vs 2 threads and every ISA give the same bits."""
    x = rng.standard_normal(1_000_003).astype(np.float32)
    with num_threads(1):
        y1, k1 = _C.dropout_forward(x, 0.3, 99)
    with num_threads(2):
        y2, k2 = _C.dropout_forward(x, 0.3, 99)
    np.testing.assert_array_equal(k1, k2)
    np.testing.assert_array_equal(y1, y2)
    for name, (y, k) in each_isa(lambda: _C.dropout_forward(x, 0.3, 99)).items():
        np.testing.assert_array_equal(k, k1, err_msg=f"{name} mask differs")
        np.testing.assert_array_equal(y, y1, err_msg=f"{name} output differs")
    # A prefix of a longer tensor draws the same mask: element i's draw depends on i alone.
    np.testing.assert_array_equal(_C.dropout_forward(x[:1000], 0.3, 99)[1], k1[:1000])


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_edge_p(isa, rng, dtype):
    x = rng.standard_normal((5, 37)).astype(dtype)
    y, keep = _C.dropout_forward(x, 0.0, 7)
    assert keep.all()
    np.testing.assert_array_equal(y, x)
    y, keep = _C.dropout_forward(x, 1.0, 7)
    assert not keep.any()
    assert np.all(y == 0) and not np.any(np.signbit(y) & np.isnan(y))
    y, keep = _C.dropout_forward(np.zeros((0, 4), dtype), 0.5, 7)
    assert y.shape == (0, 4) and keep.shape == (0, 4)
    y, keep = _C.dropout_forward(np.array(3.0, dtype), 0.5, 7)
    assert y.shape == () and keep.shape == ()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (7, 13), (20, 35, 650)])
def test_dropout_backward(isa, rng, dtype, shape):
    p = 0.35
    grad_y = rng.standard_normal(shape).astype(dtype)
    _, keep = _C.dropout_forward(grad_y, p, 5)
    grad_x = _C.dropout_backward(keep, grad_y, 1 / (1 - p))
    assert grad_x.dtype == dtype and grad_x.shape == shape
    atol, rtol = tol(dtype)
    assert_close(grad_x, np.where(keep, grad_y.astype(np.float64) / (1 - p), 0.0), atol=atol, rtol=rtol,
                 what=f"dropout_backward[{isa}] {shape}")


def test_dropout_bad_inputs():
    x = np.ones(4, np.float32)
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"dropout_forward: p must be in \[0, 1\]"):
            _C.dropout_forward(x, p, 1)
    with pytest.raises(TypeError, match=r"dropout_forward: x must be float32 or float64, got int64"):
        _C.dropout_forward(np.ones(4, np.int64), 0.5, 1)
    with pytest.raises(TypeError):
        _C.dropout_forward(x, 0.5, -1)  # seed is a uint64
    with pytest.raises(ValueError, match=r"dropout_forward: x must be C-contiguous"):
        _C.dropout_forward(np.ones((4, 4), np.float32).T, 0.5, 1)
    with pytest.raises(TypeError, match=r"dropout_backward: keep must be bool, got float32"):
        _C.dropout_backward(x, x, 2.0)
    with pytest.raises(ValueError, match=r"dropout_backward: grad_y must have shape \(4,\), got \(3,\)"):
        _C.dropout_backward(np.ones(4, bool), x[:3], 2.0)


# ---- embedding ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num,D,index_shape", [
    (1, 1, (1,)), (10, 7, ()), (10, 7, (0,)), (13, 5, (3, 4)), (5, 0, (6,)),
    (10000, 200, (35, 20)),  # PTB: vocabulary 10000, (T, B) = (35, 20)
])
def test_embedding_forward_backward(isa, rng, dtype, num, D, index_shape):
    weight = rng.standard_normal((num, D)).astype(dtype)
    index = rng.integers(0, num, size=index_shape).astype(np.int64)
    out = _C.embedding_forward(weight, index)
    assert out.dtype == dtype and out.shape == index_shape + (D,)
    np.testing.assert_array_equal(out, weight[index])

    grad_out = rng.standard_normal(index_shape + (D,)).astype(dtype)
    grad_w = _C.embedding_backward(index, grad_out, num)
    assert grad_w.dtype == dtype and grad_w.shape == (num, D)
    ref = np.zeros((num, D))
    np.add.at(ref, index.reshape(-1), grad_out.reshape(index.size, D).astype(np.float64))
    abs_ref = np.zeros((num, D))
    np.add.at(abs_ref, index.reshape(-1), np.abs(grad_out.reshape(index.size, D)).astype(np.float64))
    k = int(np.bincount(index.reshape(-1), minlength=1).max()) if index.size else 1
    assert_close_reduction(grad_w, ref, abs_ref, k, dtype, what=f"embedding_backward[{isa}]")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding_idx", [-1, 0, 3])
def test_embedding_backward_repeats_and_padding(isa, rng, dtype, padding_idx):
    num, D = 7, 19
    index = np.array([[3, 1, 3, 0], [3, 6, 1, 3], [0, 0, 5, 3]], np.int64)
    grad_out = rng.standard_normal(index.shape + (D,)).astype(dtype)
    grad_w = _C.embedding_backward(index, grad_out, num, padding_idx)
    g = grad_out.astype(np.float64)
    ref = np.zeros((num, D))
    for pos in np.ndindex(*index.shape):
        if index[pos] != padding_idx:
            ref[index[pos]] += g[pos]
    abs_ref = np.zeros((num, D))
    np.add.at(abs_ref, index.reshape(-1), np.abs(g).reshape(-1, D))
    assert_close_reduction(grad_w, ref, abs_ref, 5, dtype, what=f"embedding_backward padding_idx={padding_idx}")
    if padding_idx >= 0:
        assert np.all(grad_w[padding_idx] == 0)
    assert np.all(grad_w[[2, 4]] == 0)  # rows nobody looked up
    # row 3 gets five contributions accumulated in index order
    assert_close(grad_w[3], sum(g[pos] for pos in np.ndindex(*index.shape) if index[pos] == 3)
                 if padding_idx != 3 else np.zeros(D), atol=1e-6, rtol=1e-5, what="row 3")


def test_embedding_backward_deterministic(rng):
    """Skewed repeated indices over a large grad: 1 vs 2 threads, repeated runs, all ISAs bitwise."""
    num, D, n = 50, 300, 4000
    index = np.minimum(rng.geometric(0.2, size=n) - 1, num - 1).astype(np.int64)
    grad_out = rng.standard_normal((n, D)).astype(np.float32)
    with num_threads(1):
        one = _C.embedding_backward(index, grad_out, num, 2)
    with num_threads(2):
        two = _C.embedding_backward(index, grad_out, num, 2)
        again = _C.embedding_backward(index, grad_out, num, 2)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(two, again)
    # Serial float32 accumulation in index order: the order the kernel promises.
    ref = np.zeros((num, D), np.float32)
    for i in range(n):
        if index[i] != 2:
            ref[index[i]] += grad_out[i]
    for name, out in each_isa(lambda: _C.embedding_backward(index, grad_out, num, 2)).items():
        np.testing.assert_array_equal(out, ref, err_msg=f"{name}: not the serial index-order sum")


def test_embedding_bad_inputs():
    w = np.zeros((10, 4), np.float32)
    with pytest.raises(ValueError, match=r"^embedding_forward: index 12 at position \(1, 1\) is out of range \[0, 10\)$"):
        _C.embedding_forward(w, np.array([[0, 1], [2, 12]], np.int64))
    with pytest.raises(ValueError, match=r"embedding_forward: index -1 at position 2 is out of range \[0, 10\)"):
        _C.embedding_forward(w, np.array([0, 1, -1], np.int64))
    with pytest.raises(ValueError, match=r"embedding_forward: index 10 at position \(\) is out of range"):
        _C.embedding_forward(w, np.array(10, np.int64))
    with pytest.raises(TypeError, match=r"embedding_forward: index must be int64, got float64"):
        _C.embedding_forward(w, np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match=r"embedding_forward: weight must be float32 or float64, got int64"):
        _C.embedding_forward(w.astype(np.int64), np.array([0], np.int64))
    with pytest.raises(ValueError, match=r"embedding_forward: weight must be 2-D \(num, D\), got shape \(10,\)"):
        _C.embedding_forward(w[:, 0].copy(), np.array([0], np.int64))
    idx = np.array([[1, 2, 3]], np.int64)
    with pytest.raises(ValueError, match=r"embedding_backward: grad_out must have shape \(1, 3, 4\), got \(1, 2, 4\)"):
        _C.embedding_backward(idx, np.zeros((1, 2, 4), np.float32), 10)
    with pytest.raises(ValueError, match=r"embedding_backward: grad_out must have shape index.shape \+ \(D,\)"):
        _C.embedding_backward(idx, np.zeros((3, 4), np.float32), 10)
    with pytest.raises(ValueError, match=r"embedding_backward: index 3 at position \(0, 2\) is out of range \[0, 3\)"):
        _C.embedding_backward(idx, np.zeros((1, 3, 4), np.float32), 3)
    with pytest.raises(ValueError, match=r"embedding_backward: padding_idx must be < num \(10\)"):
        _C.embedding_backward(idx, np.zeros((1, 3, 4), np.float32), 10, 10)
    with pytest.raises(TypeError, match=r"embedding_backward: grad_out must be float32 or float64"):
        _C.embedding_backward(idx, np.zeros((1, 3, 4), np.int32), 10)


# ---- lstm_cell ---------------------------------------------------------------------------------

def sigmoid64(x):
    e = np.exp(-np.abs(x))  # <= 1: no overflow, and both tails keep their relative precision
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def ref_lstm_forward(gates_pre, c_prev):
    g = gates_pre.astype(np.float64)
    i, f, gg, o = np.split(g, 4, axis=1)
    i, f, gg, o = sigmoid64(i), sigmoid64(f), np.tanh(gg), sigmoid64(o)
    c = f * c_prev + i * gg
    return o * np.tanh(c), c, np.concatenate([i, f, gg, o], axis=1)


def ref_lstm_backward(gates_pre, c_prev, grad_h, grad_c):
    """Chain rule through the float64 forward, written from the forward (not the kernel)."""
    h, c, gates = ref_lstm_forward(gates_pre, c_prev)
    i, f, g, o = np.split(gates, 4, axis=1)
    tc = np.tanh(c)
    dh = np.zeros_like(c) if grad_h is None else grad_h.astype(np.float64)
    dc = (np.zeros_like(c) if grad_c is None else grad_c.astype(np.float64)) + dh * o * (1 - tc**2)
    d_i, d_f, d_g, d_o = dc * g, dc * c_prev, dc * i, dh * tc
    pre = np.concatenate([d_i * i * (1 - i), d_f * f * (1 - f), d_g * (1 - g**2), d_o * o * (1 - o)], axis=1)
    return pre, dc * f


LSTM_SHAPES = [(1, 1), (3, 7), (13, 5), (20, 650), (32, 650)]  # PTB medium: B 20, H 650; (32, 650) threads


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,H", LSTM_SHAPES)
def test_lstm_cell_forward_backward(isa, rng, dtype, B, H):
    gates_pre = (2 * rng.standard_normal((B, 4 * H))).astype(dtype)
    c_prev = rng.standard_normal((B, H)).astype(dtype)
    h, c, gates = _C.lstm_cell_forward(gates_pre, c_prev)
    assert h.dtype == c.dtype == gates.dtype == dtype
    assert h.shape == c.shape == (B, H) and gates.shape == (B, 4 * H)
    ref_h, ref_c, ref_gates = ref_lstm_forward(gates_pre, c_prev.astype(np.float64))
    atol, rtol = tol(dtype)
    what = f"lstm_cell_forward[{isa}, {np.dtype(dtype).name}, B={B}, H={H}]"
    assert_close(gates, ref_gates, atol=atol, rtol=rtol, what=what + " gates")
    assert_close(c, ref_c, atol=atol, rtol=rtol, what=what + " c")
    assert_close(h, ref_h, atol=atol, rtol=rtol, what=what + " h")

    grad_h = rng.standard_normal((B, H)).astype(dtype)
    grad_c = rng.standard_normal((B, H)).astype(dtype)
    for gh, gc in [(grad_h, grad_c), (grad_h, None), (None, grad_c), (None, None)]:
        d_pre, d_c_prev = _C.lstm_cell_backward(gates, c_prev, c, gh, gc)
        assert d_pre.shape == (B, 4 * H) and d_c_prev.shape == (B, H) and d_pre.dtype == dtype
        ref_pre, ref_cp = ref_lstm_backward(gates_pre, c_prev.astype(np.float64), gh, gc)
        label = f"lstm_cell_backward[{isa}, B={B}, H={H}, grad_h={gh is not None}, grad_c={gc is not None}]"
        # float32: a handful of roundings on products of O(1) terms; 4x the elementwise bound.
        assert_close(d_pre, ref_pre, atol=4 * atol, rtol=4 * rtol, what=label + " grad_gates_pre")
        assert_close(d_c_prev, ref_cp, atol=4 * atol, rtol=4 * rtol, what=label + " grad_c_prev")
    assert np.all(_C.lstm_cell_backward(gates, c_prev, c, None, None)[0] == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_cell_saturated_gates(isa, rng, dtype):
    """Stable sigmoid: |x| up to 80 keeps full relative precision; 1e4 saturates without NaN."""
    B, H = 4, 9
    gates_pre = rng.uniform(-80, 80, size=(B, 4 * H)).astype(dtype)
    gates_pre[0, :4] = [-1e4, 1e4, -1e30, 1e30]
    c_prev = rng.standard_normal((B, H)).astype(dtype)
    h, c, gates = _C.lstm_cell_forward(gates_pre, c_prev)
    assert np.all(np.isfinite(h)) and np.all(np.isfinite(c)) and np.all(np.isfinite(gates))
    _, _, ref_gates = ref_lstm_forward(gates_pre, c_prev.astype(np.float64))
    atol, rtol = tol(dtype)
    # Relative only (atol ~ smallest normal): tiny sigmoid tails must be accurate, not just small.
    tiny = np.finfo(dtype).tiny
    assert_close(gates, ref_gates, atol=tiny * 2**24, rtol=rtol, what=f"lstm gates, saturated [{isa}]")
    d_pre, d_cp = _C.lstm_cell_backward(gates, c_prev, c, np.ones((B, H), dtype), np.ones((B, H), dtype))
    assert np.all(np.isfinite(d_pre)) and np.all(np.isfinite(d_cp))


def test_lstm_cell_backward_finite_difference(isa, rng):
    """L = sum(w_h * h) + sum(w_c * c); dL/d gates_pre and dL/d c_prev by central differences."""
    B, H = 2, 3
    gates_pre = rng.standard_normal((B, 4 * H))
    c_prev = rng.standard_normal((B, H))
    w_h = rng.standard_normal((B, H))
    w_c = rng.standard_normal((B, H))

    def loss(gp, cp):
        h, c, _ = _C.lstm_cell_forward(gp, cp)
        return (w_h * h).sum() + (w_c * c).sum()

    _, c, gates = _C.lstm_cell_forward(gates_pre, c_prev)
    d_pre, d_cp = _C.lstm_cell_backward(gates, c_prev, c, w_h, w_c)
    eps = 1e-6
    for arr, grad, name in [(gates_pre, d_pre, "gates_pre"), (c_prev, d_cp, "c_prev")]:
        num = np.zeros_like(arr)
        for idx in np.ndindex(*arr.shape):
            saved = arr[idx]
            arr[idx] = saved + eps
            up = loss(gates_pre, c_prev)
            arr[idx] = saved - eps
            dn = loss(gates_pre, c_prev)
            arr[idx] = saved
            num[idx] = (up - dn) / (2 * eps)
        assert_close(grad, num, atol=1e-8, rtol=1e-6, what=f"lstm_cell_backward d{name} vs finite differences")


def test_lstm_cell_threads_and_isas_agree(rng):
    B, H = 32, 650  # above the threading threshold
    gates_pre = (2 * rng.standard_normal((B, 4 * H))).astype(np.float32)
    c_prev = rng.standard_normal((B, H)).astype(np.float32)
    with num_threads(1):
        one = _C.lstm_cell_forward(gates_pre, c_prev)
    with num_threads(2):
        two = _C.lstm_cell_forward(gates_pre, c_prev)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    for name, out in each_isa(lambda: _C.lstm_cell_forward(gates_pre, c_prev)).items():
        for a, b, what in zip(out, one, ("h", "c", "gates")):
            assert_close(a, b, atol=1e-6, rtol=1e-5, what=f"{name} vs default {what}")


def test_lstm_cell_bad_inputs():
    gp = np.zeros((2, 12), np.float32)
    cp = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"lstm_cell_forward: gates_pre must be \(B, 4H\) .*got shape \(2, 13\)"):
        _C.lstm_cell_forward(np.zeros((2, 13), np.float32), cp)
    with pytest.raises(ValueError, match=r"lstm_cell_forward: gates_pre must be 2-D \(B, 4H\), got shape \(12,\)"):
        _C.lstm_cell_forward(gp[0].copy(), cp)
    with pytest.raises(ValueError, match=r"lstm_cell_forward: c_prev must have shape \(2, 3\), got \(2, 4\)"):
        _C.lstm_cell_forward(gp, np.zeros((2, 4), np.float32))
    with pytest.raises(TypeError, match=r"lstm_cell_forward: c_prev must have the dtype of gates_pre \(float32\), got float64"):
        _C.lstm_cell_forward(gp, cp.astype(np.float64))
    with pytest.raises(TypeError, match=r"lstm_cell_forward: gates_pre must be float32 or float64, got int64"):
        _C.lstm_cell_forward(gp.astype(np.int64), cp)
    with pytest.raises(ValueError, match=r"lstm_cell_forward: gates_pre must be C-contiguous"):
        _C.lstm_cell_forward(np.zeros((12, 2), np.float32).T, cp)
    with pytest.raises(ValueError, match=r"lstm_cell_backward: grad_h must have shape \(2, 3\), got \(3, 2\)"):
        _C.lstm_cell_backward(gp, cp, cp, np.zeros((3, 2), np.float32), None)
    with pytest.raises(TypeError, match=r"lstm_cell_backward: grad_c must have the dtype of gates"):
        _C.lstm_cell_backward(gp, cp, cp, None, np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"lstm_cell_backward: c must have shape \(2, 3\)"):
        _C.lstm_cell_backward(gp, cp, np.zeros((1, 3), np.float32), None, None)
