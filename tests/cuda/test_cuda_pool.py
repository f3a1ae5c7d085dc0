"""CUDA max_pool2d / avg_pool2d (csrc/cuda/pool.cu via dlcore.cuda.kernels.pool).

The GPU kernels follow the CPU kernels' order of operations, so every result must equal the
CPU kernels' (csrc/cpu/ref/pool.cpp) bit for bit, float32 and float64: max forward values and
indices (ties, NaN, windows with no in-bounds element), max backward (the gather adds the
windows in the CPU scatter's order), avg forward (double sums) and avg backward. Forward is
also checked against the NumPy float64 oracles of tests/oracles.py. Shapes: LeNet's pools at
N = 64, odd sizes, overlapping windows, ceil_mode, padding with count_include_pad on and off,
dilation, stride past the kernel (pixels in no window), N = 0. Plus outputs poisoned with NaN
through the raw binding, run-twice bitwise determinism, and bad inputs.
Run: PYTHONPATH=python python3 -m pytest tests/cuda/test_cuda_pool.py -q -rs
"""
import numpy as np
import pytest

import dlcore
import dlcore.cuda
import oracles
from dlcore import _C
from helpers import assert_close

pytestmark = pytest.mark.skipif(not dlcore.cuda.is_available(), reason="no CUDA device")

if dlcore.cuda.is_available():
    from dlcore.cuda.array import DTYPE_CODE, from_numpy
    from dlcore.cuda.kernels.pool import (avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward,
                                          max_pool2d_forward)

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["f32", "f64"]

# (x_shape, kernel_size, stride, padding, dilation, ceil_mode)
MAX_CASES = {
    "lenet_pool1": ((64, 6, 28, 28), (2, 2), (2, 2), (0, 0), (1, 1), False),
    "lenet_pool2": ((64, 16, 10, 10), (2, 2), (2, 2), (0, 0), (1, 1), False),
    "odd_3x3_s2_p1": ((3, 5, 13, 11), (3, 3), (2, 2), (1, 1), (1, 1), False),
    "overlap_s1": ((2, 3, 9, 8), (3, 3), (1, 1), (1, 1), (1, 1), False),
    "ceil": ((2, 3, 7, 9), (2, 2), (2, 2), (0, 0), (1, 1), True),
    "ceil_pad": ((2, 3, 8, 6), (3, 3), (2, 2), (1, 1), (1, 1), True),
    "dilation2": ((2, 3, 13, 11), (3, 3), (2, 1), (1, 1), (2, 2), False),
    "dilation_ceil_rect": ((2, 2, 10, 9), (3, 2), (3, 2), (1, 1), (2, 3), True),
    "empty_windows": ((1, 2, 2, 5), (2, 1), (1, 1), (1, 0), (3, 1), False),
    "stride_past_kernel": ((2, 2, 11, 13), (2, 3), (3, 4), (1, 1), (1, 1), False),
    "one_pixel": ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0), (1, 1), False),
}

# (x_shape, kernel_size, stride, padding, ceil_mode, count_include_pad)
AVG_CASES = {
    "lenet_like": ((64, 6, 28, 28), (2, 2), (2, 2), (0, 0), False, True),
    "odd_pad": ((3, 5, 13, 11), (3, 3), (2, 2), (1, 1), False, True),
    "odd_pad_exclude": ((3, 5, 13, 11), (3, 3), (2, 2), (1, 1), False, False),
    "ceil_pad": ((2, 3, 8, 6), (3, 3), (2, 2), (1, 1), True, True),
    "ceil_pad_exclude": ((2, 3, 7, 9), (2, 3), (2, 2), (1, 1), True, False),
    "overlap_s1_exclude": ((2, 3, 9, 8), (3, 2), (1, 1), (1, 1), False, False),
    "stride_past_kernel": ((2, 2, 11, 13), (2, 3), (3, 4), (1, 1), False, True),
    "one_pixel": ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0), False, True),
}


def dev(a):
    return from_numpy(a, 0)


def max_forward_checked(x, case, what):
    """Runs max forward on the GPU; asserts y and index equal the CPU kernel's; returns
    the GPU (y, index) arrays."""
    _, kernel, stride, padding, dilation, ceil_mode = case
    y, index = max_pool2d_forward(dev(x), kernel, stride, padding, dilation, ceil_mode)
    y_cpu, index_cpu = _C.max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode)
    assert y.dtype == x.dtype and index.dtype == np.int64
    np.testing.assert_array_equal(y.get(), y_cpu, err_msg=f"max_pool2d_forward y {what}")
    np.testing.assert_array_equal(index.get(), index_cpu, err_msg=f"max_pool2d_forward index {what}")
    return y, index


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", list(MAX_CASES))
def test_max_pool2d_cuda_matches_cpu_bitwise(rng, name, dtype):
    case = MAX_CASES[name]
    x_shape, kernel, stride, padding, dilation, ceil_mode = case
    what = f"{name} {np.dtype(dtype).name}"
    x = rng.standard_normal(x_shape).astype(dtype)
    y, index = max_forward_checked(x, case, what)
    ref = oracles.max_pool2d(x.astype(np.float64), kernel, stride, padding, dilation, ceil_mode)
    np.testing.assert_array_equal(y.get(), ref, err_msg=f"max_pool2d_forward vs oracle {what}")

    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = max_pool2d_backward(index, dev(gy), x_shape, kernel, stride, padding, dilation, ceil_mode).get()
    gx_cpu = _C.max_pool2d_backward(index.get(), gy, x_shape, kernel, stride, padding, dilation, ceil_mode)
    assert gx.dtype == dtype
    np.testing.assert_array_equal(gx, gx_cpu, err_msg=f"max_pool2d_backward {what}")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", ["overlap_s1", "ceil_pad", "dilation_ceil_rect"])
def test_max_pool2d_cuda_ties_nan_and_infinities(rng, name, dtype):
    """Few distinct values (ties everywhere: the first in window order wins), -inf, and NaN
    (always wins, a later NaN takes over): values and indices as the CPU kernel's."""
    case = MAX_CASES[name]
    x = rng.integers(-2, 3, size=case[0]).astype(dtype)
    max_forward_checked(x, case, f"{name} ties")
    x[rng.random(x.shape) < 0.3] = -np.inf
    max_forward_checked(x, case, f"{name} -inf")
    x[rng.random(x.shape) < 0.1] = np.nan
    max_forward_checked(x, case, f"{name} NaN")
    max_forward_checked(np.full(case[0], -np.inf, dtype), case, f"{name} all -inf")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", list(AVG_CASES))
def test_avg_pool2d_cuda_matches_cpu(rng, name, dtype):
    """Forward: float64 bitwise equal to the CPU kernel (both sum in double, row-major); float32
    within the oracle's bound, as the CPU's is: the GPU sums in double, while the CPU sums
    windows of <= 16 taps in float (its 2x2 SIMD kernels pairwise), a few ulps apart. Backward
    (each window's share rounded to T, added in output order) bitwise equal in both."""
    x_shape, kernel, stride, padding, ceil_mode, count_include_pad = AVG_CASES[name]
    what = f"{name} {np.dtype(dtype).name}"
    x = rng.standard_normal(x_shape).astype(dtype)
    y = avg_pool2d_forward(dev(x), kernel, stride, padding, ceil_mode, count_include_pad).get()
    assert y.dtype == dtype
    y_cpu = _C.avg_pool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad)
    ref = oracles.avg_pool2d(x.astype(np.float64), kernel, stride, padding, ceil_mode, count_include_pad)
    tol = dict(atol=1e-6, rtol=1e-5) if dtype == np.float32 else dict(atol=1e-14, rtol=1e-14)
    assert_close(y, ref, **tol, what=f"avg_pool2d_forward vs oracle {what}")
    if dtype == np.float64:
        np.testing.assert_array_equal(y, y_cpu, err_msg=f"avg_pool2d_forward {what}")
    else:
        assert_close(y_cpu, ref, **tol, what=f"CPU avg_pool2d_forward vs oracle {what}")

    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = avg_pool2d_backward(dev(gy), x_shape, kernel, stride, padding, ceil_mode, count_include_pad).get()
    assert gx.dtype == dtype
    np.testing.assert_array_equal(
        gx, _C.avg_pool2d_backward(gy, x_shape, kernel, stride, padding, ceil_mode, count_include_pad),
        err_msg=f"avg_pool2d_backward {what}")


def test_pool2d_cuda_writes_every_output(rng):
    """Outputs pre-filled with NaN / garbage indices through the raw binding: every element must be
    overwritten (including pixels no window holds, which get 0)."""
    code = DTYPE_CODE[np.dtype(np.float64)]
    x_shape, kernel, stride, padding, dilation, ceil_mode = MAX_CASES["stride_past_kernel"]
    x = rng.standard_normal(x_shape)
    y_cpu, index_cpu = _C.max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode)
    g = [*x_shape, *y_cpu.shape[2:], *kernel, *stride, *padding, *dilation]
    xd = dev(x)
    y, index = dev(np.full(y_cpu.shape, np.nan)), dev(np.full(y_cpu.shape, 12345, np.int64))
    _C.cuda.max_pool2d_forward(xd.ptr, y.ptr, index.ptr, code, g, ceil_mode, 0)
    np.testing.assert_array_equal(y.get(), y_cpu)
    np.testing.assert_array_equal(index.get(), index_cpu)
    gy = dev(rng.standard_normal(y_cpu.shape))
    gx = dev(np.full(x_shape, np.nan))
    _C.cuda.max_pool2d_backward(index.ptr, gy.ptr, gx.ptr, code, g, ceil_mode, 0)
    np.testing.assert_array_equal(gx.get(), _C.max_pool2d_backward(index_cpu, gy.get(), x_shape, kernel, stride,
                                                                   padding, dilation, ceil_mode))

    x_shape, kernel, stride, padding, ceil_mode, cip = AVG_CASES["stride_past_kernel"]
    x = rng.standard_normal(x_shape)
    y_cpu = _C.avg_pool2d_forward(x, kernel, stride, padding, ceil_mode, cip)
    g = [*x_shape, *y_cpu.shape[2:], *kernel, *stride, *padding, 1, 1]
    xd, y = dev(x), dev(np.full(y_cpu.shape, np.nan))
    _C.cuda.avg_pool2d_forward(xd.ptr, y.ptr, code, g, ceil_mode, cip, 0)
    np.testing.assert_array_equal(y.get(), y_cpu)
    gy, gx = dev(rng.standard_normal(y_cpu.shape)), dev(np.full(x_shape, np.nan))
    _C.cuda.avg_pool2d_backward(gy.ptr, gx.ptr, code, g, ceil_mode, cip, 0)
    np.testing.assert_array_equal(gx.get(), _C.avg_pool2d_backward(gy.get(), x_shape, kernel, stride, padding,
                                                                   ceil_mode, cip))


def test_pool2d_cuda_empty_batch():
    """N = 0: empty outputs of the right shapes, nothing launched."""
    x = dev(np.zeros((0, 3, 8, 8), np.float32))
    y, index = max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    assert y.shape == (0, 3, 4, 4) and index.shape == (0, 3, 4, 4) and index.dtype == np.int64
    assert max_pool2d_backward(index, y, (0, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False).shape == (0, 3, 8, 8)
    y = avg_pool2d_forward(x, (3, 3), (2, 2), (1, 1), True, False)
    assert y.shape == (0, 3, 5, 5)  # ceil_mode: the last window starts at 8, inside the padded input
    assert avg_pool2d_backward(y, (0, 3, 8, 8), (3, 3), (2, 2), (1, 1), True, False).shape == (0, 3, 8, 8)


def test_pool2d_cuda_non_contiguous_input(rng):
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    view = dev(np.ascontiguousarray(x.swapaxes(2, 3))).swapaxes(2, 3)
    assert not view.is_contiguous()
    y, index = max_pool2d_forward(view, (3, 3), (2, 2), (1, 1), (1, 1), True)
    y_cpu, index_cpu = _C.max_pool2d_forward(x, (3, 3), (2, 2), (1, 1), (1, 1), True)
    np.testing.assert_array_equal(y.get(), y_cpu)
    np.testing.assert_array_equal(index.get(), index_cpu)
    y = avg_pool2d_forward(view, (2, 3), (1, 2), (1, 1), False, False).get()
    np.testing.assert_allclose(y, oracles.avg_pool2d(x.astype(np.float64), (2, 3), (1, 2), (1, 1), False, False),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_pool2d_cuda_backward_run_twice_same_bits(rng, dtype):
    x_shape, kernel, stride, padding, dilation, ceil_mode = MAX_CASES["overlap_s1"]
    x = dev(rng.standard_normal(x_shape).astype(dtype))
    y, index = max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode)
    gy = dev(rng.standard_normal(y.shape).astype(dtype))
    runs = [max_pool2d_backward(index, gy, x_shape, kernel, stride, padding, dilation, ceil_mode).get().tobytes()
            for _ in range(2)]
    assert runs[0] == runs[1], "max_pool2d_backward differs between two runs"
    runs = [avg_pool2d_backward(gy, x_shape, kernel, stride, padding, ceil_mode, False).get().tobytes()
            for _ in range(2)]
    assert runs[0] == runs[1], "avg_pool2d_backward differs between two runs"


# ---- bad inputs ---------------------------------------------------------------------------


def test_pool2d_cuda_bad_inputs_raise_clear_errors(rng):
    x = dev(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
    with pytest.raises(TypeError, match="max_pool2d_forward: input must be float32 or float64, got int64"):
        max_pool2d_forward(dev(np.ones((2, 3, 8, 8), np.int64)), (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(TypeError, match="max_pool2d_forward: input must be a CudaArray, got ndarray"):
        max_pool2d_forward(np.ones((2, 3, 8, 8), np.float32), (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match=r"max_pool2d_forward: input must be 4-D \(N, C, H, W\), got shape \(3, 8, 8\)"):
        max_pool2d_forward(x[0], (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match="padding must be at most half of kernel_size"):
        max_pool2d_forward(x, (2, 2), (2, 2), (2, 0), (1, 1), False)
    with pytest.raises(ValueError, match=r"kernel_size must be >= 1, got \(0, 2\)"):
        avg_pool2d_forward(x, (0, 2), (2, 2), (0, 0), False, True)
    with pytest.raises(ValueError, match=r"output size \(0, 6\) is too small"):
        max_pool2d_forward(x, (3, 3), (1, 1), (0, 0), (4, 1), False)
    y, index = max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(TypeError, match="max_pool2d_backward: index must be an int64 CudaArray, got float32"):
        max_pool2d_backward(y, y, (2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match=r"max_pool2d_backward: grad_y must have shape \(2, 3, 4, 4\)"):
        max_pool2d_backward(index, x, (2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match=r"avg_pool2d_backward: grad_y must have shape \(2, 3, 4, 4\)"):
        avg_pool2d_backward(x, (2, 3, 8, 8), (2, 2), (2, 2), (0, 0), False, True)


def test_pool2d_cuda_binding_checks_geometry(rng):
    """The raw binding refuses an inconsistent geometry before launching anything."""
    x = dev(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
    y = dev(np.zeros((2, 3, 4, 4), np.float32))
    index = dev(np.zeros((2, 3, 4, 4), np.int64))
    code = DTYPE_CODE[np.dtype(np.float32)]
    g = [2, 3, 8, 8, 4, 4, 2, 2, 2, 2, 0, 0, 1, 1]
    _C.cuda.max_pool2d_forward(x.ptr, y.ptr, index.ptr, code, g, False, 0)  # consistent: runs
    with pytest.raises(ValueError, match="max_pool2d_forward: output size does not follow"):
        _C.cuda.max_pool2d_forward(x.ptr, y.ptr, index.ptr, code, g[:4] + [5, 4] + g[6:], False, 0)
    with pytest.raises(ValueError, match="avg_pool2d_forward: avg_pool2d has no dilation"):
        _C.cuda.avg_pool2d_forward(x.ptr, y.ptr, code, g[:12] + [2, 1], False, True, 0)
    with pytest.raises(ValueError, match="avg_pool2d_backward: geometry must hold 14 ints, got 13"):
        _C.cuda.avg_pool2d_backward(y.ptr, x.ptr, code, g[:13], False, True, 0)
    with pytest.raises(ValueError, match="max_pool2d_backward: dtype must be float32 or float64, got int64"):
        _C.cuda.max_pool2d_backward(index.ptr, y.ptr, x.ptr, DTYPE_CODE[np.dtype(np.int64)], g, False, 0)
