"""Kernel tests for the optimiser steps (csrc/cpu/ref/optim.cpp via csrc/bindings/ops_optim.cpp):
_C.sgd_step and _C.adam_step against NumPy float64 versions of torch.optim's math, on every ISA
the host runs, float32 and float64, every option, sizes around the vector width and above the
threading threshold; bad arguments raise."""
import math

import numpy as np
import pytest

from dlcore import _C
from helpers import assert_close

DTYPES = [np.float32, np.float64]
SIZES = [1, 7, 16, 33, 40_000]  # 40,000 is above the kernels' 2^15-element threading threshold


def tol(dtype):
    return dict(atol=1e-6, rtol=1e-5) if dtype == np.float32 else dict(atol=1e-13, rtol=1e-11)


def sgd_reference(p, g, buf, lr, momentum, dampening, wd, nesterov, maximize, first):
    """torch.optim.SGD's step in float64; returns (p, buf)."""
    d = -g if maximize else g.copy()
    if wd:
        d = d + wd * p
    if momentum:
        buf = d.copy() if first else momentum * buf + (1 - dampening) * d
        d = d + momentum * buf if nesterov else buf
    return p - lr * d, buf


def adam_reference(p, g, m, v, vmax, lr, t, beta1, beta2, eps, wd, maximize, decoupled):
    """torch.optim.Adam / AdamW's step in float64; returns (p, m, v, vmax)."""
    g = -g if maximize else g.copy()
    if wd and decoupled:
        p = p * (1 - lr * wd)
    elif wd:
        g = g + wd * p
    m = m + (1 - beta1) * (g - m)
    v = beta2 * v + (1 - beta2) * g * g
    vu = v
    if vmax is not None:
        vmax = np.maximum(vmax, v)
        vu = vmax
    step_size = lr / (1 - beta1**t)
    p = p - step_size * m / (np.sqrt(vu) / math.sqrt(1 - beta2**t) + eps)
    return p, m, v, vmax


SGD_CASES = [
    dict(momentum=0.0, dampening=0.0, wd=0.0, nesterov=False, maximize=False),
    dict(momentum=0.0, dampening=0.0, wd=0.01, nesterov=False, maximize=True),
    dict(momentum=0.9, dampening=0.0, wd=0.0, nesterov=False, maximize=False),
    dict(momentum=0.9, dampening=0.1, wd=1e-3, nesterov=False, maximize=False),
    dict(momentum=0.9, dampening=0.0, wd=1e-3, nesterov=True, maximize=True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", SGD_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_sgd_step(isa, rng, dtype, n, case):
    p0 = rng.standard_normal(n)
    grads = [rng.standard_normal(n) for _ in range(3)]
    p, buf = p0.astype(dtype), np.zeros(n, dtype) if case["momentum"] else None
    ref_p, ref_buf = p0.copy(), None
    for step, g in enumerate(grads):  # three steps: the first sets the buffer
        first = step == 0
        _C.sgd_step(p, g.astype(dtype), buf, 0.05, case["momentum"], case["dampening"], case["wd"],
                    case["nesterov"], case["maximize"], first)
        ref_p, ref_buf = sgd_reference(ref_p, g.astype(dtype).astype(np.float64), ref_buf, 0.05, case["momentum"],
                                       case["dampening"], case["wd"], case["nesterov"], case["maximize"], first)
    what = f"sgd_step {isa} {dtype.__name__} n={n} {case}"
    assert_close(p, ref_p, **tol(dtype), what=what)
    if buf is not None:
        assert_close(buf, ref_buf, **tol(dtype), what=what + " buffer")


ADAM_CASES = [
    dict(wd=0.0, amsgrad=False, maximize=False, decoupled=False),
    dict(wd=0.01, amsgrad=False, maximize=False, decoupled=False),
    dict(wd=0.01, amsgrad=True, maximize=True, decoupled=False),
    dict(wd=0.01, amsgrad=False, maximize=False, decoupled=True),
    dict(wd=0.0, amsgrad=True, maximize=False, decoupled=True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", ADAM_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_adam_step(isa, rng, dtype, n, case):
    lr, beta1, beta2, eps = 1e-2, 0.9, 0.999, 1e-8
    p0 = rng.standard_normal(n)
    p, m, v = p0.astype(dtype), np.zeros(n, dtype), np.zeros(n, dtype)
    vmax = np.zeros(n, dtype) if case["amsgrad"] else None
    ref = (p0.copy(), np.zeros(n), np.zeros(n), np.zeros(n) if case["amsgrad"] else None)
    for t in range(1, 5):
        g = rng.standard_normal(n).astype(dtype)
        _C.adam_step(p, g, m, v, vmax, lr, lr / (1 - beta1**t), math.sqrt(1 - beta2**t), beta1, beta2, eps,
                     case["wd"], case["maximize"], case["decoupled"])
        ref = adam_reference(ref[0], g.astype(np.float64), ref[1], ref[2], ref[3], lr, t, beta1, beta2, eps,
                             case["wd"], case["maximize"], case["decoupled"])
    what = f"adam_step {isa} {dtype.__name__} n={n} {case}"
    for name, got, want in zip(("param", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"), (p, m, v, vmax), ref):
        if got is not None:
            assert_close(got, want, **tol(dtype), what=f"{what} {name}")


def sgd_per_operation(p, g, buf, lr, momentum, dampening, wd, nesterov, maximize, first):
    """The kernel's SGD in its own dtype, one rounding per operation in its order (that of
    csrc/cuda/optim.cu too); Python floats are rounded to the dtype first, as the kernel does."""
    t = p.dtype.type
    d = -g if maximize else g.copy()
    if wd:
        d = d + t(wd) * p
    if momentum:
        buf = d.copy() if first else t(momentum) * buf + t(1 - dampening) * d
        d = d + t(momentum) * buf if nesterov else buf
    return p - t(lr) * d, buf


def adam_per_operation(p, g, m, v, vmax, lr, step_size, bc2, beta1, beta2, eps, wd, maximize, decoupled):
    """The kernel's Adam / AdamW in its own dtype, one rounding per operation in its order."""
    t = p.dtype.type
    g = -g if maximize else g.copy()
    if wd and decoupled:
        p = p * t(1 - lr * wd)
    elif wd:
        g = g + t(wd) * p
    m = m + t(1 - beta1) * (g - m)
    v = t(beta2) * v + t(1 - beta2) * (g * g)
    vu = v
    if vmax is not None:
        vmax = np.maximum(vmax, v)
        vu = vmax
    return p - t(step_size) * (m / (np.sqrt(vu) / t(bc2) + t(eps))), m, v, vmax


@pytest.mark.parametrize("dtype", DTYPES)
def test_steps_round_each_operation_once(isa, rng, dtype):
    # Bitwise equal to the per-operation NumPy mirror: no multiply-add contracted into an FMA
    # (cmake/isa.cmake), which is what keeps the CPU and GPU steps on the same bits.
    n = 40_000
    for case in SGD_CASES:
        p, buf = rng.standard_normal(n).astype(dtype), np.zeros(n, dtype) if case["momentum"] else None
        ref_p, ref_buf = p.copy(), None
        for step in range(3):
            g = rng.standard_normal(n).astype(dtype)
            args = (0.05, case["momentum"], case["dampening"], case["wd"], case["nesterov"], case["maximize"],
                    step == 0)
            _C.sgd_step(p, g, buf, *args)
            ref_p, ref_buf = sgd_per_operation(ref_p, g, ref_buf, *args)
        np.testing.assert_array_equal(p, ref_p, err_msg=f"sgd_step {isa} {case}")
        if buf is not None:
            np.testing.assert_array_equal(buf, ref_buf, err_msg=f"sgd_step {isa} {case} buffer")
    lr, beta1, beta2, eps = 1e-2, 0.9, 0.999, 1e-8
    for case in ADAM_CASES:
        state = [rng.standard_normal(n).astype(dtype), np.zeros(n, dtype), np.zeros(n, dtype),
                 np.zeros(n, dtype) if case["amsgrad"] else None]
        ref = [a if a is None else a.copy() for a in state]
        for t in range(1, 4):
            g = rng.standard_normal(n).astype(dtype)
            hyper = (lr, lr / (1 - beta1**t), math.sqrt(1 - beta2**t), beta1, beta2, eps, case["wd"],
                     case["maximize"], case["decoupled"])
            _C.adam_step(state[0], g, state[1], state[2], state[3], *hyper)
            ref = adam_per_operation(ref[0], g, ref[1], ref[2], ref[3], *hyper)
        for name, got, want in zip(("param", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"), state, ref):
            if got is not None:
                np.testing.assert_array_equal(got, want, err_msg=f"adam_step {isa} {case} {name}")


@pytest.mark.parametrize("threads", [2, 3])
def test_steps_same_bits_on_any_thread_count(isa, rng, threads):
    n = 100_003  # split over the threads in uneven chunks
    args = [rng.standard_normal(n).astype(np.float32) for _ in range(5)]
    args[3] = np.abs(args[3])  # v >= 0

    def run(k):
        previous = _C.get_num_threads()
        _C.set_num_threads(k)
        try:
            p, g, m, v, buf = (a.copy() for a in args)
            _C.adam_step(p, g, m, v, None, 1e-3, 1e-2, 0.3, 0.9, 0.999, 1e-8, 0.01, False, False)
            _C.sgd_step(p, g, buf, 0.1, 0.9, 0.0, 1e-3, True, False, False)
            return p, m, v, buf
        finally:
            _C.set_num_threads(previous)

    for a, b in zip(run(1), run(threads)):
        np.testing.assert_array_equal(a, b)


def test_non_finite_values_pass_through(isa):
    p = np.array([np.inf, 1.0, np.nan, 2.0], np.float32)
    g = np.array([1.0, np.nan, 1.0, 1.0], np.float32)
    m, v, vmax = np.zeros(4, np.float32), np.zeros(4, np.float32), np.array([0, 0, 0, np.nan], np.float32)
    _C.adam_step(p, g, m, v, vmax, 1e-3, 1e-2, 0.5, 0.9, 0.999, 1e-8, 0.0, False, True)
    assert np.isinf(p[0]) and np.isnan(p[1]) and np.isnan(p[2])  # no 0 * inf without weight decay
    assert np.isnan(vmax[3]) and np.isnan(p[3])  # np.maximum's rule: a NaN in max_exp_avg_sq wins


def test_bad_arguments_raise():
    p, g = np.zeros(4, np.float32), np.ones(4, np.float32)
    m, v = np.zeros(4, np.float32), np.zeros(4, np.float32)
    with pytest.raises(TypeError, match="adam_step: .*float"):
        _C.adam_step(np.zeros(4, np.int32), g, m, v, None, 1e-3, 1e-3, 1.0, 0.9, 0.999, 1e-8, 0.0, False, False)
    with pytest.raises(TypeError, match="adam_step: .*dtype"):
        _C.adam_step(p, g.astype(np.float64), m, v, None, 1e-3, 1e-3, 1.0, 0.9, 0.999, 1e-8, 0.0, False, False)
    with pytest.raises(ValueError, match="adam_step: exp_avg must have shape"):
        _C.adam_step(p, g, np.zeros(5, np.float32), v, None, 1e-3, 1e-3, 1.0, 0.9, 0.999, 1e-8, 0.0, False, False)
    with pytest.raises(ValueError, match="adam_step: exp_avg and exp_avg_sq must not share memory"):
        _C.adam_step(p, g, m, m, None, 1e-3, 1e-3, 1.0, 0.9, 0.999, 1e-8, 0.0, False, False)
    with pytest.raises(ValueError, match="adam_step: param must be C-contiguous"):
        _C.adam_step(np.zeros(8, np.float32)[::2], g, m, v, None, 1e-3, 1e-3, 1.0, 0.9, 0.999, 1e-8, 0.0, False,
                     False)
    read_only = np.zeros(4, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="adam_step: param must be writeable"):
        _C.adam_step(read_only, g, m, v, None, 1e-3, 1e-3, 1.0, 0.9, 0.999, 1e-8, 0.0, False, False)
    with pytest.raises(ValueError, match="adam_step: bias_correction2_sqrt must be > 0"):
        _C.adam_step(p, g, m, v, None, 1e-3, 1e-3, 0.0, 0.9, 0.999, 1e-8, 0.0, False, False)
    with pytest.raises(ValueError, match="sgd_step: momentum = 0.9 needs a momentum_buffer"):
        _C.sgd_step(p, g, None, 0.1, 0.9, 0.0, 0.0, False, False, True)
    with pytest.raises(ValueError, match="sgd_step: param and grad must not share memory"):
        _C.sgd_step(p, p, None, 0.1, 0.0, 0.0, 0.0, False, False, False)
    with pytest.raises(TypeError, match="sgd_step: momentum_buffer must be a numpy array or None"):
        _C.sgd_step(p, g, [0.0] * 4, 0.1, 0.9, 0.0, 0.0, False, False, True)
