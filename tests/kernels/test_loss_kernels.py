"""Kernel tests for the loss family (csrc/cpu/ref/loss.cpp via csrc/bindings/ops_loss.cpp):
_C.cross_entropy_forward / _backward and _C.nll_loss_forward / _backward against NumPy
float64 oracles, on every ISA the host runs, in float32 and float64."""
import numpy as np
import pytest

from dlcore import _C
from helpers import EPS, assert_close
from oracles import (cross_entropy_case as make_case, cross_entropy_rows as ref_cross_entropy,
                     cross_entropy_rows_backward as ref_cross_entropy_backward, logsumexp_rows as ref_lse)

DTYPES = [np.float32, np.float64]
# (N, C): ones, a prime, odd sizes, LeNet/MNIST (64, 10) and a PTB softmax (20 * 35, 10000).
SHAPES = [(1, 1), (1, 7), (13, 1), (13, 7), (5, 129), (64, 10), (20 * 35, 10000)]


def tol(dtype):
    """(atol, rtol) for elementwise results: STYLE.md's 1e-6 + 1e-5|ref| in float32."""
    return (1e-6, 1e-5) if dtype == np.float32 else (1e-13, 1e-11)


# ---- cross_entropy -----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,C", SHAPES)
def test_cross_entropy_forward_backward(isa, rng, dtype, N, C):
    logits, target, grad_loss = make_case(rng, N, C, dtype)
    loss, lse = _C.cross_entropy_forward(logits, target)
    assert loss.dtype == dtype and lse.dtype == dtype and loss.shape == (N,) and lse.shape == (N,)
    ref_loss, ref_lse_ = ref_cross_entropy(logits, target, -100)
    atol, rtol = tol(dtype)
    what = f"cross_entropy_forward[{isa}, {np.dtype(dtype).name}, ({N}, {C})]"
    assert_close(loss, ref_loss, atol=atol, rtol=rtol, what=what + " loss")
    assert_close(lse, ref_lse_, atol=atol, rtol=rtol, what=what + " lse")
    assert np.all(loss[target == -100] == 0)

    grad = _C.cross_entropy_backward(logits, target, lse, grad_loss)
    assert grad.dtype == dtype and grad.shape == (N, C)
    ref = ref_cross_entropy_backward(logits, target, grad_loss, -100, ref_lse_)
    # The softmax is rebuilt from the stored lse, whose rounding is |lse| * eps relative.
    rtol_b = rtol + 2 * np.abs(ref_lse_).max() * EPS[np.dtype(dtype)]
    assert_close(grad, ref, atol=atol, rtol=rtol_b, what=what.replace("forward", "backward"))
    assert np.all(grad[target == -100] == 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("offset", [1000.0, -1000.0, 30000.0])
def test_cross_entropy_large_logits(isa, rng, dtype, offset):
    """1000 + x would overflow a naive exp (float32 exp overflows above ~88)."""
    N, C = 17, 31
    logits, target, grad_loss = make_case(rng, N, C, dtype, offset=offset)
    loss, lse = _C.cross_entropy_forward(logits, target)
    ref_loss, ref_lse_ = ref_cross_entropy(logits, target, -100)
    atol, rtol = tol(dtype)
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(lse))
    assert_close(loss, ref_loss, atol=atol, rtol=rtol, what=f"cross_entropy_forward loss, offset {offset}")
    assert_close(lse, ref_lse_, atol=atol, rtol=rtol, what=f"cross_entropy_forward lse, offset {offset}")
    grad = _C.cross_entropy_backward(logits, target, lse, grad_loss)
    ref = ref_cross_entropy_backward(logits, target, grad_loss, -100)
    rtol_b = rtol + 2 * np.abs(ref_lse_).max() * EPS[np.dtype(dtype)]
    assert_close(grad, ref, atol=atol + rtol_b, rtol=rtol_b, what=f"cross_entropy_backward, offset {offset}")
    # Each non-ignored gradient row sums to 0 (softmax sums to 1).
    assert_close(grad.astype(np.float64).sum(axis=1), np.zeros(N), atol=10 * C * (atol + rtol_b),
                 what="row sums")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ignore_index", [-1, 0, 5])
def test_cross_entropy_ignore_index(isa, rng, dtype, ignore_index):
    """ignore_index may be negative or a real class; ignored rows get loss 0 and zero grad."""
    N, C = 23, 9
    logits, target, grad_loss = make_case(rng, N, C, dtype, ignore_index=ignore_index)
    loss, lse = _C.cross_entropy_forward(logits, target, ignore_index=ignore_index)
    ref_loss, ref_lse_ = ref_cross_entropy(logits, target, ignore_index)
    atol, rtol = tol(dtype)
    assert_close(loss, ref_loss, atol=atol, rtol=rtol, what=f"cross_entropy ignore_index={ignore_index}")
    assert_close(lse, ref_lse_, atol=atol, rtol=rtol, what="lse of every row, ignored too")
    grad = _C.cross_entropy_backward(logits, target, lse, grad_loss, ignore_index)
    assert_close(grad, ref_cross_entropy_backward(logits, target, grad_loss, ignore_index),
                 atol=atol, rtol=rtol, what=f"cross_entropy_backward ignore_index={ignore_index}")
    ignored = target == ignore_index
    assert ignored.any() and np.all(loss[ignored] == 0) and np.all(grad[ignored] == 0)


def test_cross_entropy_all_ignored_and_empty(isa):
    logits = np.arange(12, dtype=np.float32).reshape(3, 4)
    target = np.full(3, -100, dtype=np.int64)
    loss, lse = _C.cross_entropy_forward(logits, target)
    assert np.all(loss == 0)
    grad = _C.cross_entropy_backward(logits, target, lse, np.ones(3, np.float32))
    assert np.all(grad == 0)
    loss, lse = _C.cross_entropy_forward(np.zeros((0, 5)), np.zeros(0, np.int64))
    assert loss.shape == (0,) and lse.shape == (0,)
    grad = _C.cross_entropy_backward(np.zeros((0, 5)), np.zeros(0, np.int64), lse, loss)
    assert grad.shape == (0, 5)


def test_cross_entropy_backward_finite_difference(isa, rng):
    """d(sum_n w_n loss_n)/d logits by central differences, in float64."""
    N, C = 4, 5
    logits, target, w = make_case(rng, N, C, np.float64)
    target[1] = -100
    _, lse = _C.cross_entropy_forward(logits, target)
    grad = _C.cross_entropy_backward(logits, target, lse, w)
    h = 1e-6
    num = np.zeros_like(logits)
    for idx in np.ndindex(*logits.shape):
        up, dn = logits.copy(), logits.copy()
        up[idx] += h
        dn[idx] -= h
        num[idx] = (w @ _C.cross_entropy_forward(up, target)[0] - w @ _C.cross_entropy_forward(dn, target)[0]) / (2 * h)
    assert_close(grad, num, atol=1e-8, rtol=1e-6, what="cross_entropy_backward vs finite differences")


def test_cross_entropy_isas_agree(rng):
    """Every runnable ISA gives (nearly) the same result as generic."""
    logits, target, grad_loss = make_case(rng, 37, 1001, np.float32)
    previous = _C.cpu_isa()
    results = {}
    try:
        for name in ["generic", "avx2", "avx512"]:
            if _C.isa_supported(name):
                _C.set_cpu_isa(name)
                loss, lse = _C.cross_entropy_forward(logits, target)
                results[name] = (loss, lse, _C.cross_entropy_backward(logits, target, lse, grad_loss))
    finally:
        _C.set_cpu_isa(previous)
    for name, (loss, lse, grad) in results.items():
        g_loss, g_lse, g_grad = results["generic"]
        assert_close(loss, g_loss, atol=1e-6, rtol=1e-6, what=f"{name} vs generic loss")
        assert_close(lse, g_lse, atol=1e-6, rtol=1e-6, what=f"{name} vs generic lse")
        assert_close(grad, g_grad, atol=1e-7, rtol=1e-5, what=f"{name} vs generic grad")


def test_cross_entropy_threads_agree(rng):
    """Rows are independent: 1 and 2 threads give identical bits."""
    logits, target, grad_loss = make_case(rng, 200, 1000, np.float32)
    previous = _C.get_num_threads()
    try:
        out = []
        for threads in (1, 2):
            _C.set_num_threads(threads)
            loss, lse = _C.cross_entropy_forward(logits, target)
            out.append((loss, lse, _C.cross_entropy_backward(logits, target, lse, grad_loss)))
    finally:
        _C.set_num_threads(previous)
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


# ---- nll_loss ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,C,ignore_index", [(1, 1, -100), (13, 7, 2), (64, 10, -100), (35, 10000, -100)])
def test_nll_loss(isa, rng, dtype, N, C, ignore_index):
    logits, target, grad_loss = make_case(rng, N, C, dtype, ignore_index=ignore_index)
    logp = (logits - ref_lse(logits)[:, None]).astype(dtype)
    loss = _C.nll_loss_forward(logp, target, ignore_index)
    keep = target != ignore_index
    ref = np.zeros(N)
    ref[keep] = -logp.astype(np.float64)[np.arange(N)[keep], target[keep]]
    assert loss.dtype == dtype
    np.testing.assert_array_equal(loss, ref.astype(dtype))

    grad = _C.nll_loss_backward(target, grad_loss, C, ignore_index)
    ref_grad = np.zeros((N, C), dtype=dtype)
    ref_grad[np.arange(N)[keep], target[keep]] = -grad_loss[keep]
    assert grad.dtype == dtype and grad.shape == (N, C)
    np.testing.assert_array_equal(grad, ref_grad)


def test_nll_loss_empty():
    assert _C.nll_loss_forward(np.zeros((0, 3), np.float32), np.zeros(0, np.int64)).shape == (0,)
    assert _C.nll_loss_backward(np.zeros(0, np.int64), np.zeros(0), 3).shape == (0, 3)


# ---- bad inputs --------------------------------------------------------------------------------

def test_cross_entropy_bad_inputs():
    x = np.zeros((4, 10), np.float32)
    t = np.array([0, 1, 2, 3], np.int64)
    with pytest.raises(ValueError, match=r"^cross_entropy: target 12 at position 3 is out of range \[0, 10\)$"):
        _C.cross_entropy_forward(x, np.array([0, 1, 2, 12], np.int64))
    with pytest.raises(ValueError, match=r"cross_entropy: target -3 at position 0 is out of range \[0, 10\)"):
        _C.cross_entropy_forward(x, np.array([-3, 1, 2, 1], np.int64))
    with pytest.raises(ValueError, match=r"target 10 at position 1"):
        _C.cross_entropy_backward(x, np.array([0, 10, 2, 1], np.int64), np.zeros(4, np.float32),
                                  np.ones(4, np.float32))
    with pytest.raises(TypeError, match=r"cross_entropy_forward: target must be int64, got int32"):
        _C.cross_entropy_forward(x, t.astype(np.int32))
    with pytest.raises(TypeError, match=r"cross_entropy_forward: logits must be float32 or float64, got int64"):
        _C.cross_entropy_forward(x.astype(np.int64), t)
    with pytest.raises(ValueError, match=r"cross_entropy_forward: logits must be 2-D \(N, C\), got shape \(10,\)"):
        _C.cross_entropy_forward(x[0], t)
    with pytest.raises(ValueError, match=r"cross_entropy_forward: target must have shape \(4,\), got \(3,\)"):
        _C.cross_entropy_forward(x, t[:3])
    with pytest.raises(ValueError, match=r"target must be 1-D"):
        _C.cross_entropy_forward(x, t.reshape(4, 1))
    with pytest.raises(ValueError, match=r"logits has no classes"):
        _C.cross_entropy_forward(np.zeros((4, 0), np.float32), np.full(4, -100, np.int64))
    with pytest.raises(ValueError, match=r"logits must be C-contiguous"):
        _C.cross_entropy_forward(np.zeros((10, 4), np.float32).T, t)
    with pytest.raises(TypeError, match=r"cross_entropy_backward: lse must have the dtype of logits"):
        _C.cross_entropy_backward(x, t, np.zeros(4), np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"cross_entropy_backward: grad_loss must have shape \(4,\), got \(5,\)"):
        _C.cross_entropy_backward(x, t, np.zeros(4, np.float32), np.ones(5, np.float32))


def test_nll_loss_bad_inputs():
    logp = np.zeros((4, 10))
    with pytest.raises(ValueError, match=r"^nll_loss: target 12 at position 3 is out of range \[0, 10\)$"):
        _C.nll_loss_forward(logp, np.array([0, 1, 2, 12], np.int64))
    with pytest.raises(ValueError, match=r"nll_loss: target 7 at position 0 is out of range \[0, 5\)"):
        _C.nll_loss_backward(np.array([7, 1], np.int64), np.ones(2), 5)
    with pytest.raises(ValueError, match=r"nll_loss_backward: C must be >= 1, got 0"):
        _C.nll_loss_backward(np.array([0], np.int64), np.ones(1), 0)
    with pytest.raises(TypeError, match=r"nll_loss_backward: grad_loss must be float32 or float64"):
        _C.nll_loss_backward(np.array([0], np.int64), np.ones(1, np.int64), 3)
    with pytest.raises(ValueError, match=r"nll_loss_backward: target must have shape \(2,\), got \(1,\)"):
        _C.nll_loss_backward(np.array([0], np.int64), np.ones(2), 3)
    with pytest.raises(TypeError, match=r"nll_loss_forward: target must be int64"):
        _C.nll_loss_forward(logp, np.zeros(4))
