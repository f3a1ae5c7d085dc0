"""_C reduce kernels (sum, max + argmax, max backward, softmax, log_softmax) vs NumPy float64.

Every test runs on each ISA the host supports (`isa` fixture), for float32 and float64.
Sums use the K-scaled bound of helpers.assert_close_reduction; max is exact.
"""
import numpy as np
import pytest

from dlcore import _C
from helpers import as_3d, assert_close, assert_close_reduction

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(atol=1e-6, rtol=1e-5), np.float64: dict(atol=1e-12, rtol=1e-10)}

# (shape, start, end): first / middle / last / all dims, 1-sized, odd, prime, a model shape,
# an inner run wider than the kernels' 512-column block, and sizes above the OpenMP threshold.
REDUCE_CASES = [
    ((5,), 0, 1),
    ((1,), 0, 1),
    ((3, 4, 5), 0, 1),
    ((3, 4, 5), 1, 2),
    ((3, 4, 5), 2, 3),
    ((3, 4, 5), 0, 2),
    ((3, 4, 5), 1, 3),
    ((3, 4, 5), 0, 3),
    ((2, 3, 1, 7, 5), 1, 4),
    ((64, 128), 0, 1),
    ((64, 128), 1, 2),
    ((3, 13, 1031), 1, 2),
    ((300, 257), 0, 1),
    ((300, 257), 1, 2),
    ((70001,), 0, 1),
    ((2, 40009), 1, 2),
    ((9, 4500), 0, 1),  # wider than a sum's 4096-column block
    ((40, 1030), 0, 1),  # one row of output split by columns over the threads
]
CASE_IDS = [f"{s}[{a}:{b}]" for s, a, b in REDUCE_CASES]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", REDUCE_CASES, ids=CASE_IDS)
def test_reduce_sum(isa, rng, case, dtype):
    shape, start, end = case
    x = rng.standard_normal(size=shape).astype(dtype)
    out, index = _C.reduce_forward(_C.ReduceOp.sum, x, start, end)
    assert index is None
    x3, out_shape = as_3d(x.astype(np.float64), start, end)
    assert out.shape == out_shape and out.dtype == dtype
    ref = x3.sum(axis=1).reshape(out_shape)
    abs_ref = np.abs(x3).sum(axis=1).reshape(out_shape)
    assert_close_reduction(out, ref, abs_ref, x3.shape[1], dtype,
                           what=f"reduce_forward(sum) {isa} {dtype.__name__} {shape}[{start}:{end}]")


@pytest.mark.parametrize("shape", [(40, 1030), (9, 4500), (3, 7, 2000)])
def test_reduce_sum_same_bits_on_any_thread_count(isa, rng, shape):
    # each output sums its column in row order whatever block of columns a thread owns
    x = rng.standard_normal(size=shape).astype(np.float32)
    previous = _C.get_num_threads()
    try:
        outs = []
        for threads in (1, 2, 3, 4):
            _C.set_num_threads(threads)
            outs.append(_C.reduce_forward(_C.ReduceOp.sum, x, len(shape) - 2, len(shape) - 1)[0])
    finally:
        _C.set_num_threads(previous)
    for threads, out in zip((2, 3, 4), outs[1:]):
        np.testing.assert_array_equal(out, outs[0], err_msg=f"{isa} {shape}: {threads} threads vs 1")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", REDUCE_CASES, ids=CASE_IDS)
def test_reduce_max_and_backward(isa, rng, case, dtype):
    shape, start, end = case
    x = rng.standard_normal(size=shape).astype(dtype)
    out, index = _C.reduce_forward(_C.ReduceOp.max, x, start, end)
    x3, out_shape = as_3d(x, start, end)
    assert out.shape == out_shape and out.dtype == dtype
    assert index.shape == out_shape and index.dtype == np.int64
    np.testing.assert_array_equal(out, x3.max(axis=1).reshape(out_shape))
    np.testing.assert_array_equal(index, x3.argmax(axis=1).reshape(out_shape))

    grad_out = rng.standard_normal(size=out_shape).astype(dtype)
    grad_x = _C.reduce_max_backward(index, grad_out, list(shape), start, end)
    ref = np.zeros(x3.shape, dtype=dtype)
    np.put_along_axis(ref, index.reshape(x3.shape[0], 1, x3.shape[2]),
                      grad_out.reshape(x3.shape[0], 1, x3.shape[2]), axis=1)
    assert grad_x.shape == shape and grad_x.dtype == dtype
    np.testing.assert_array_equal(grad_x, ref.reshape(shape))


@pytest.mark.parametrize("dtype", DTYPES)
def test_reduce_max_ties_pick_first_and_nan_wins(isa, rng, dtype):
    # Small random integers: many ties in every row and column.
    for shape, start, end in [((50, 7), 1, 2), ((7, 50), 0, 1), ((4, 9, 600), 1, 2), ((3, 4, 5), 0, 3)]:
        x = rng.integers(-2, 3, size=shape).astype(dtype)
        out, index = _C.reduce_forward(_C.ReduceOp.max, x, start, end)
        x3, out_shape = as_3d(x, start, end)
        np.testing.assert_array_equal(index, x3.argmax(axis=1).reshape(out_shape))
        np.testing.assert_array_equal(out, x3.max(axis=1).reshape(out_shape))
    x = rng.standard_normal(size=(3, 6)).astype(dtype)
    x[1, 2] = x[1, 4] = np.nan
    x[2, 0] = np.nan
    for xv, axis in [(x, 1), (x.T.copy(), 0)]:
        out, index = _C.reduce_forward(_C.ReduceOp.max, xv, axis, axis + 1)
        np.testing.assert_array_equal(out, xv.max(axis=axis))  # NaN where the row has one
        np.testing.assert_array_equal(index, np.argmax(xv, axis=axis))
        assert index[1] == 2 and index[2] == 0  # the first NaN


@pytest.mark.parametrize("dtype", DTYPES)
def test_reduce_empty(isa, dtype):
    x = np.zeros((3, 0, 2), dtype=dtype)
    out, index = _C.reduce_forward(_C.ReduceOp.sum, x, 1, 2)
    assert index is None
    np.testing.assert_array_equal(out, np.zeros((3, 2), dtype=dtype))
    with pytest.raises(ValueError, match=r"reduce_forward\(max\): cannot reduce over an empty dimension"):
        _C.reduce_forward(_C.ReduceOp.max, x, 0, 2)
    # Empty kept dims: empty results.
    y = np.ones((0, 4), dtype=dtype)
    out, index = _C.reduce_forward(_C.ReduceOp.max, y, 1, 2)
    assert out.shape == (0,) and index.shape == (0,)
    out, _ = _C.reduce_forward(_C.ReduceOp.sum, y, 1, 2)
    assert out.shape == (0,)
    grad = _C.reduce_max_backward(index, out, [0, 4], 1, 2)
    assert grad.shape == (0, 4)


def test_reduce_errors():
    x = np.ones((2, 3, 4))
    for start, end in [(1, 1), (2, 1), (-1, 2), (0, 4)]:
        with pytest.raises(ValueError, match=r"reduce_forward\(sum\): dims \[start, end\)"):
            _C.reduce_forward(_C.ReduceOp.sum, x, start, end)
    with pytest.raises(ValueError, match=r"0 <= start < end <= ndim = 0"):
        _C.reduce_forward(_C.ReduceOp.sum, np.ones(()), 0, 0)
    with pytest.raises(ValueError, match=r"reduce_forward\(max\): x must be C-contiguous"):
        _C.reduce_forward(_C.ReduceOp.max, x.transpose(2, 0, 1), 0, 1)
    with pytest.raises(TypeError, match=r"reduce_forward\(sum\): x must be float32 or float64, got int64"):
        _C.reduce_forward(_C.ReduceOp.sum, np.ones((3,), dtype=np.int64), 0, 1)

    index = np.zeros((2, 4), dtype=np.int64)
    grad = np.ones((2, 4))
    with pytest.raises(ValueError, match=r"reduce_max_backward: index values must lie in \[0, 3\), got 3"):
        _C.reduce_max_backward(np.full((2, 4), 3, dtype=np.int64), grad, [2, 3, 4], 1, 2)
    with pytest.raises(ValueError, match=r"index values must lie in \[0, 3\), got -1"):
        _C.reduce_max_backward(np.full((2, 4), -1, dtype=np.int64), grad, [2, 3, 4], 1, 2)
    with pytest.raises(ValueError, match=r"reduce_max_backward: grad_out must have shape \(2, 4\), got \(2, 3\)"):
        _C.reduce_max_backward(index, np.ones((2, 3)), [2, 3, 4], 1, 2)
    with pytest.raises(TypeError, match=r"reduce_max_backward: index must be int64, got int32"):
        _C.reduce_max_backward(index.astype(np.int32), grad, [2, 3, 4], 1, 2)
    with pytest.raises(ValueError, match=r"reduce_max_backward: dims \[start, end\)"):
        _C.reduce_max_backward(index, grad, [2, 3, 4], 1, 5)
    with pytest.raises(ValueError, match=r"x_shape must be non-negative"):
        _C.reduce_max_backward(index, grad, [2, -3, 4], 1, 2)


SOFTMAX_SHAPES = [(1,), (7,), (3, 5), (2, 3, 4), (4, 1, 6), (3, 5, 601), (32, 1000), (64, 1031)]


def softmax_ref(x, dim, log):
    m = x.max(axis=dim, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(axis=dim, keepdims=True)
    return (x - m) - np.log(s) if log else e / s


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_forward_backward(isa, rng, log, dtype):
    for shape in SOFTMAX_SHAPES:
        for dim in range(len(shape)):
            x = (2.0 * rng.standard_normal(size=shape)).astype(dtype)
            what = f"softmax_forward(log={log}) {isa} {dtype.__name__} {shape} dim {dim}"
            y = _C.softmax_forward(x, dim, log)
            assert y.shape == shape and y.dtype == dtype
            y_ref = softmax_ref(x.astype(np.float64), dim, log)
            assert_close(y, y_ref, **TOL[dtype], what=what)

            g = rng.standard_normal(size=shape).astype(dtype)
            g64 = g.astype(np.float64)
            if log:
                gx_ref = g64 - np.exp(y_ref) * g64.sum(axis=dim, keepdims=True)
            else:
                gx_ref = y_ref * (g64 - (g64 * y_ref).sum(axis=dim, keepdims=True))
            gx = _C.softmax_backward(y_ref.astype(dtype), g, dim, log)
            assert gx.shape == shape and gx.dtype == dtype
            assert_close(gx, gx_ref, **TOL[dtype], what=what.replace("forward", "backward"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_large_magnitude(isa, rng, log, dtype):
    """1000 + x overflows a softmax that does not subtract the max."""
    for shape, dim in [((6, 11), 1), ((6, 11), 0), ((4, 700, 3), 1)]:
        x = (1000.0 + 3.0 * rng.standard_normal(size=shape)).astype(dtype)
        y = _C.softmax_forward(x, dim, log)
        assert np.all(np.isfinite(y))
        assert_close(y, softmax_ref(x.astype(np.float64), dim, log), **TOL[dtype],
                     what=f"softmax(log={log}) of 1000 + x, {shape} dim {dim}")
        y = _C.softmax_forward(-x, dim, log)
        assert_close(y, softmax_ref(-x.astype(np.float64), dim, log), **TOL[dtype],
                     what=f"softmax(log={log}) of -1000 - x, {shape} dim {dim}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_empty(isa, dtype):
    for shape, dim in [((0, 5), 1), ((3, 0), 1), ((3, 0, 2), 0)]:
        x = np.ones(shape, dtype=dtype)
        y = _C.softmax_forward(x, dim, False)
        assert y.shape == shape
        assert _C.softmax_backward(y, x, dim, True).shape == shape


def test_softmax_errors():
    x = np.ones((3, 4))
    for dim in [2, -1]:
        with pytest.raises(ValueError, match=r"softmax_forward: dim must satisfy 0 <= dim < ndim = 2, got " + str(dim)):
            _C.softmax_forward(x, dim, False)
    with pytest.raises(ValueError, match=r"softmax_forward\(log\): dim must satisfy 0 <= dim < ndim = 0"):
        _C.softmax_forward(np.ones(()), 0, True)
    with pytest.raises(ValueError, match=r"softmax_forward: x must be C-contiguous"):
        _C.softmax_forward(x.T, 0, False)
    with pytest.raises(TypeError, match=r"softmax_forward: x must be float32 or float64, got int64"):
        _C.softmax_forward(np.ones((3,), dtype=np.int64), 0, False)
    with pytest.raises(ValueError, match=r"softmax_backward: grad_y must have shape \(3, 4\), got \(4, 3\)"):
        _C.softmax_backward(x, np.ones((4, 3)), 1, False)
    with pytest.raises(TypeError, match=r"softmax_backward\(log\): grad_y must have the dtype of y"):
        _C.softmax_backward(x, x.astype(np.float32), 1, True)


def test_isas_agree(rng):
    """Each supported ISA gives the generic kernel's results (within tolerance)."""
    isas = [name for name in ["generic", "avx2", "avx512"] if _C.isa_supported(name)]
    x = rng.standard_normal(size=(6, 37, 41)).astype(np.float32)
    g = rng.standard_normal(size=x.shape).astype(np.float32)
    previous = _C.cpu_isa()
    results = {}
    try:
        for name in isas:
            _C.set_cpu_isa(name)
            outs = []
            for start, end in [(0, 1), (1, 2), (2, 3), (0, 3)]:
                outs += list(_C.reduce_forward(_C.ReduceOp.max, x, start, end))
                outs.append(_C.reduce_forward(_C.ReduceOp.sum, x, start, end)[0])
            for dim in range(3):
                for log in [False, True]:
                    y = _C.softmax_forward(x, dim, log)
                    outs += [y, _C.softmax_backward(y, g, dim, log)]
            results[name] = outs
    finally:
        _C.set_cpu_isa(previous)
    for name in isas[1:]:
        for k, (u, v) in enumerate(zip(results["generic"], results[name])):
            assert_close(v, u, atol=1e-6, rtol=1e-5, what=f"{name} vs generic, output {k}")
