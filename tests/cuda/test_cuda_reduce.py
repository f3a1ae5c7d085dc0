"""CUDA reduce family (csrc/cuda/reduce.cu via python/dlcore/cuda/kernels/reduce.py) against
float64 NumPy oracles: sum / max + argmax and its backward, softmax / log_softmax forward and
backward, cross_entropy and nll_loss, in float32 and float64, plus exact int64 / bool sums.

Shapes cover red / inner / outer of 1, odd and prime sizes, the split paths (3 rows of
1000003, a few long columns), 129-wide rows and 10-class logits with batch 257. Outputs come
from the caching allocator: poison_cache() leaves a NaN-filled block of the output's size
there first, so an element a kernel never writes shows up. Reductions and backwards are run
twice and must give the same bits.

Run: DLCORE_DEV_BUILD=<build> PYTHONPATH=python python3 -m pytest tests/cuda/test_cuda_reduce.py -q -rs
"""
import numpy as np
import pytest

import dlcore
from dlcore import _C
from helpers import as_3d, EPS, assert_close
from oracles import (cross_entropy_case as make_case, cross_entropy_rows as ref_cross_entropy,
                     cross_entropy_rows_backward as ref_cross_entropy_backward, logsumexp_rows as ref_lse)

pytestmark = pytest.mark.skipif(not dlcore.cuda.is_available(), reason="no CUDA device")

if dlcore.cuda.is_available():
    from dlcore.cuda.array import from_numpy
    from dlcore.cuda.kernels import reduce as K

SUM, MAX = _C.ReduceOp.sum, _C.ReduceOp.max
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(atol=1e-6, rtol=1e-5), np.float64: dict(atol=1e-12, rtol=1e-10)}


def dev(a):
    """A device copy of host array a (reshaped: from_numpy may turn a 0-d array into (1,))."""
    a = np.asarray(a)
    return from_numpy(a, 0).reshape(a.shape)


def host(a):
    return a.get()


def poison_cache(*outputs):
    """Frees device blocks of the given (shape, dtype)s filled with NaN (floats) or -7 (int64),
    all held at once, so the next empty()s of those sizes most likely reuse them: an output
    element a kernel skips stays poison."""
    blocks = [dev(np.full(shape, np.nan if np.dtype(dtype).kind == "f" else -7, dtype=dtype))
              for shape, dtype in outputs if np.dtype(dtype).kind in "fi" and int(np.prod(shape)) > 0]
    del blocks


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# ---- sum / max --------------------------------------------------------------------------------

# (shape, start, end): first / middle / last / all dims, runs of dims, red / inner / outer of 1,
# odd and prime sizes, 129-wide rows, and the split paths: 3 rows of 1000003 (R cut over
# blocks), one long row, a few long columns (R cut over threads).
REDUCE_CASES = [
    ((5,), 0, 1),
    ((1,), 0, 1),
    ((1, 1, 1), 0, 3),
    ((2, 1, 3), 1, 2),
    ((3, 4, 5), 0, 1),
    ((3, 4, 5), 1, 2),
    ((3, 4, 5), 2, 3),
    ((3, 4, 5), 0, 2),
    ((3, 4, 5), 1, 3),
    ((3, 4, 5), 0, 3),
    ((2, 3, 1, 7, 5), 1, 4),
    ((257, 129), 1, 2),
    ((257, 129), 0, 1),
    ((64, 128), 1, 2),
    ((3, 1000003), 1, 2),
    ((70001,), 0, 1),
    ((100003, 3), 0, 1),
    ((3, 20011, 7), 1, 2),
    ((5, 2, 40009), 1, 2),
]
CASE_IDS = [f"{s}[{a}:{b}]" for s, a, b in REDUCE_CASES]


def sum_tol(ref, abs_ref, R, dtype):
    """Sums accumulate in double: float64 error <= R eps64 sum|x| (doubled for the oracle's own),
    float32 adds one final rounding. A float32 accumulator (R eps32 sum|x|) would fail this."""
    tol = 2.0 * max(R, 1) * EPS[np.dtype(np.float64)] * abs_ref + 1e-300
    if dtype == np.float32:
        tol = tol + EPS[np.dtype(np.float32)] * np.abs(ref)
    return tol


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", REDUCE_CASES, ids=CASE_IDS)
def test_reduce_sum(rng, case, dtype):
    shape, start, end = case
    x = rng.standard_normal(size=shape).astype(dtype)
    x3, out_shape = as_3d(x.astype(np.float64), start, end)
    xd = dev(x)
    poison_cache((out_shape, dtype))
    out, index = K.reduce_forward(SUM, xd, start, end)
    assert index is None
    out = host(out)
    assert out.shape == out_shape and out.dtype == dtype
    ref = x3.sum(axis=1).reshape(out_shape)
    tol = sum_tol(ref, np.abs(x3).sum(axis=1).reshape(out_shape), x3.shape[1], dtype)
    err = np.abs(out.astype(np.float64) - ref)
    assert np.all(err <= tol), (f"reduce_forward(sum) {dtype.__name__} {shape}[{start}:{end}]: worst error "
                                f"{np.nanmax(err / tol):.3g} x tolerance")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", REDUCE_CASES, ids=CASE_IDS)
def test_reduce_max_and_backward(rng, case, dtype):
    shape, start, end = case
    x = rng.standard_normal(size=shape).astype(dtype)
    x3, out_shape = as_3d(x, start, end)
    xd = dev(x)
    poison_cache((out_shape, dtype), (out_shape, np.int64))
    out, index = K.reduce_forward(MAX, xd, start, end)
    out_h, index_h = host(out), host(index)
    assert out_h.shape == out_shape and out_h.dtype == dtype
    assert index_h.shape == out_shape and index_h.dtype == np.int64
    np.testing.assert_array_equal(out_h, x3.max(axis=1).reshape(out_shape))
    np.testing.assert_array_equal(index_h, x3.argmax(axis=1).reshape(out_shape))

    grad_out = dev(rng.standard_normal(size=out_shape).astype(dtype))
    poison_cache((shape, dtype))
    grad_x = host(K.reduce_max_backward(index, grad_out, list(shape), start, end))
    grad_out = host(grad_out)
    ref = np.zeros(x3.shape, dtype=dtype)
    np.put_along_axis(ref, index_h.reshape(x3.shape[0], 1, x3.shape[2]),
                      grad_out.reshape(x3.shape[0], 1, x3.shape[2]), axis=1)
    assert grad_x.shape == shape and grad_x.dtype == dtype
    np.testing.assert_array_equal(grad_x, ref.reshape(shape))


@pytest.mark.parametrize("dtype", DTYPES)
def test_reduce_max_ties_pick_first_and_nan_wins(rng, dtype):
    # Small random integers: many ties in every row and column, also across split chunks.
    for shape, start, end in [((50, 7), 1, 2), ((7, 50), 0, 1), ((4, 9, 600), 1, 2), ((3, 4, 5), 0, 3),
                              ((3, 100003), 1, 2), ((100003, 3), 0, 1), ((2, 30011, 5), 1, 2)]:
        x = rng.integers(-2, 3, size=shape).astype(dtype)
        out, index = K.reduce_forward(MAX, dev(x), start, end)
        x3, out_shape = as_3d(x, start, end)
        np.testing.assert_array_equal(host(index), x3.argmax(axis=1).reshape(out_shape))
        np.testing.assert_array_equal(host(out), x3.max(axis=1).reshape(out_shape))
    # A tie only between the first element and the last: the first wins.
    x = np.zeros((2, 300007), dtype=dtype) - 1
    x[:, 0] = x[:, -1] = 5
    out, index = K.reduce_forward(MAX, dev(x), 1, 2)
    np.testing.assert_array_equal(host(index), [0, 0])
    # NaN is the max, the first NaN wins; a row of -inf has max -inf at 0.
    x = rng.standard_normal(size=(4, 6)).astype(dtype)
    x[1, 2] = x[1, 4] = np.nan
    x[2, 0] = np.nan
    x[3, :] = -np.inf
    for xv, axis in [(x, 1), (x.T.copy(), 0)]:
        out, index = K.reduce_forward(MAX, dev(xv), axis, axis + 1)
        np.testing.assert_array_equal(host(out), xv.max(axis=axis))
        np.testing.assert_array_equal(host(index), np.argmax(xv, axis=axis))
        assert list(host(index)[1:]) == [2, 0, 0]


@pytest.mark.parametrize("case", REDUCE_CASES, ids=CASE_IDS)
def test_reduce_int64_and_bool_exact(rng, case):
    """int64 / bool sums give exact int64 (values near 2**40 lose bits in float64 sums)."""
    shape, start, end = case
    x = rng.integers(-2**40, 2**40, size=shape, dtype=np.int64)
    x3, out_shape = as_3d(x, start, end)
    xd = dev(x)
    poison_cache((out_shape, np.int64))
    out, index = K.reduce_forward(SUM, xd, start, end)
    assert index is None
    out = host(out)
    assert out.dtype == np.int64 and out.shape == out_shape
    np.testing.assert_array_equal(out, x3.sum(axis=1, dtype=np.int64).reshape(out_shape))

    b = rng.random(size=shape) < 0.3
    b3, _ = as_3d(b, start, end)
    out, _ = K.reduce_forward(SUM, dev(b), start, end)
    out = host(out)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, b3.sum(axis=1, dtype=np.int64).reshape(out_shape))

    # max keeps the dtype; the index is the first max (many ties in the bools).
    for a, a3 in [(x, x3), (b, b3)]:
        out, index = K.reduce_forward(MAX, dev(a), start, end)
        assert host(out).dtype == a.dtype
        np.testing.assert_array_equal(host(out), a3.max(axis=1).reshape(out_shape))
        np.testing.assert_array_equal(host(index), a3.argmax(axis=1).reshape(out_shape))


def test_reduce_counts_correct_predictions(rng):
    """The op layer's accuracy count: (pred == y).sum() on the device, as bool then int64."""
    pred = rng.integers(0, 10, size=257)
    y = rng.integers(0, 10, size=257)
    out, _ = K.reduce_forward(SUM, dev(pred == y), 0, 1)
    assert host(out).shape == () and int(host(out)) == int(np.sum(pred == y))


@pytest.mark.parametrize("dtype", DTYPES)
def test_reduce_noncontiguous_input(rng, dtype):
    x = rng.standard_normal(size=(6, 37, 41)).astype(dtype)
    xt = dev(x).transpose(2, 0, 1)  # a strided view
    for op in (SUM, MAX):
        for start, end in [(0, 1), (1, 3)]:
            got = K.reduce_forward(op, xt, start, end)
            want = K.reduce_forward(op, dev(np.ascontiguousarray(x.transpose(2, 0, 1))), start, end)
            for g, w in zip(got, want):
                if w is not None:
                    assert same_bits(host(g), host(w))


@pytest.mark.parametrize("dtype", DTYPES)
def test_reduce_empty(dtype):
    x = np.ones((3, 0, 2), dtype=dtype)
    poison_cache(((3, 2), dtype))
    out, index = K.reduce_forward(SUM, dev(x), 1, 2)
    assert index is None
    np.testing.assert_array_equal(host(out), np.zeros((3, 2), dtype=dtype))  # every zero written
    with pytest.raises(ValueError, match=r"reduce_forward\(max\): cannot reduce over an empty dimension"):
        K.reduce_forward(MAX, dev(x), 0, 2)
    y = dev(np.ones((0, 4), dtype=dtype))
    out, index = K.reduce_forward(MAX, y, 1, 2)
    assert out.shape == (0,) and index.shape == (0,)
    assert K.reduce_forward(SUM, y, 1, 2)[0].shape == (0,)
    assert K.reduce_max_backward(index, out, [0, 4], 1, 2).shape == (0, 4)


def test_reduce_errors():
    x = dev(np.ones((2, 3, 4)))
    for start, end in [(1, 1), (2, 1), (-1, 2), (0, 4)]:
        with pytest.raises(ValueError, match=r"reduce_forward\(sum\): dims \[start, end\)"):
            K.reduce_forward(SUM, x, start, end)
    with pytest.raises(ValueError, match=r"reduce_forward: op must be a ReduceOp, got 7"):
        K.reduce_forward(7, x, 0, 1)
    with pytest.raises(TypeError, match=r"reduce_forward\(sum\): x must be a CudaArray, got ndarray"):
        K.reduce_forward(SUM, np.ones(3), 0, 1)
    index = dev(np.zeros((2, 4), dtype=np.int64))
    grad = dev(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"reduce_max_backward: grad_out must have shape \(2, 4\), got \(2, 3\)"):
        K.reduce_max_backward(index, dev(np.ones((2, 3))), [2, 3, 4], 1, 2)
    with pytest.raises(TypeError, match=r"reduce_max_backward: index must be int64, got float64"):
        K.reduce_max_backward(grad, grad, [2, 3, 4], 1, 2)
    with pytest.raises(TypeError, match=r"reduce_max_backward: grad_out must be float32 or float64, got int64"):
        K.reduce_max_backward(index, index, [2, 3, 4], 1, 2)
    with pytest.raises(ValueError, match=r"reduce_max_backward: dims \[start, end\)"):
        K.reduce_max_backward(index, grad, [2, 3, 4], 1, 5)
    with pytest.raises(ValueError, match=r"x_shape must be non-negative"):
        K.reduce_max_backward(index, grad, [2, -3, 4], 1, 2)


def test_reduce_max_backward_bad_index_gives_nan():
    """No host check of indices (it would cost a sync): a bad one poisons its column, never
    writes or reads out of bounds."""
    index = np.array([[0, 3], [-1, 2]], dtype=np.int64)  # (2, 2), R = 3
    grad = host(K.reduce_max_backward(dev(index), dev(np.ones((2, 2))), [2, 3, 2], 1, 2))
    assert np.isnan(grad[0, :, 1]).all() and np.isnan(grad[1, :, 0]).all()
    np.testing.assert_array_equal(grad[0, :, 0], [1, 0, 0])
    np.testing.assert_array_equal(grad[1, :, 1], [0, 0, 1])


def test_reduce_deterministic(rng):
    """The same inputs give the same bits on every run (no atomics, shape-fixed trees)."""
    for shape, start, end in [((3, 1000003), 1, 2), ((100003, 3), 0, 1), ((257, 129), 1, 2),
                              ((3, 20011, 7), 1, 2), ((1000003,), 0, 1)]:
        x = dev((1000.0 + rng.standard_normal(size=shape)).astype(np.float32))
        for op in (SUM, MAX):
            first, second = K.reduce_forward(op, x, start, end), K.reduce_forward(op, x, start, end)
            for a, b in zip(first, second):
                if a is not None:
                    assert same_bits(host(a), host(b)), f"{op} {shape}[{start}:{end}] differs between runs"


# ---- softmax / log_softmax ----------------------------------------------------------------------

SOFTMAX_SHAPES = [(1,), (7,), (3, 5), (2, 3, 4), (4, 1, 6), (3, 5, 601), (257, 10), (5, 129), (64, 1031),
                  (3, 100003)]


def softmax_ref(x, dim, log):
    m = x.max(axis=dim, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(axis=dim, keepdims=True)
    return (x - m) - np.log(s) if log else e / s


def softmax_backward_ref(y, g, dim, log):
    if log:
        return g - np.exp(y) * g.sum(axis=dim, keepdims=True)
    return y * (g - (g * y).sum(axis=dim, keepdims=True))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_forward_backward(rng, log, dtype):
    for shape in SOFTMAX_SHAPES:
        for dim in range(len(shape)):
            x = (2.0 * rng.standard_normal(size=shape)).astype(dtype)
            what = f"softmax_forward(log={log}) {dtype.__name__} {shape} dim {dim}"
            xd = dev(x)
            poison_cache((shape, dtype))
            y = host(K.softmax_forward(xd, dim, log))
            assert y.shape == shape and y.dtype == dtype
            y_ref = softmax_ref(x.astype(np.float64), dim, log)
            assert_close(y, y_ref, **TOL[dtype], what=what)

            g = rng.standard_normal(size=shape).astype(dtype)
            y_in = y_ref.astype(dtype)  # the backward on its own, from a correctly rounded y
            gx_ref = softmax_backward_ref(y_in.astype(np.float64), g.astype(np.float64), dim, log)
            y_d, g_d = dev(y_in), dev(g)
            poison_cache((shape, dtype))
            gx = host(K.softmax_backward(y_d, g_d, dim, log))
            assert gx.shape == shape and gx.dtype == dtype
            assert_close(gx, gx_ref, **TOL[dtype], what=what.replace("forward", "backward"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_large_magnitude(rng, log, dtype):
    """1000 + x overflows a softmax that does not subtract the max."""
    for shape, dim in [((6, 11), 1), ((6, 11), 0), ((4, 700, 3), 1), ((257, 10), 1)]:
        x = (1000.0 + 3.0 * rng.standard_normal(size=shape)).astype(dtype)
        for sign in (1, -1):
            y = host(K.softmax_forward(dev(sign * x), dim, log))
            assert np.all(np.isfinite(y))
            assert_close(y, softmax_ref(sign * x.astype(np.float64), dim, log), **TOL[dtype],
                         what=f"softmax(log={log}) of {sign} * (1000 + x), {shape} dim {dim}")


def test_softmax_nan_and_inf_rows():
    """As on the CPU: a row holding NaN, or all -inf, gives NaN; other rows are untouched."""
    x = np.array([[1.0, np.nan, 2.0], [-np.inf, -np.inf, -np.inf], [0.0, 1.0, 2.0]])
    for log in (False, True):
        y = host(K.softmax_forward(dev(x), 1, log))
        assert np.isnan(y[:2]).all()
        assert_close(y[2], softmax_ref(x[2:], 1, log)[0], atol=1e-12, rtol=1e-10, what="finite row")


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_empty(dtype):
    for shape, dim in [((0, 5), 1), ((3, 0), 1), ((3, 0, 2), 0)]:
        x = dev(np.ones(shape, dtype=dtype))
        y = K.softmax_forward(x, dim, False)
        assert y.shape == shape
        assert K.softmax_backward(y, x, dim, True).shape == shape


def test_softmax_errors():
    x = dev(np.ones((3, 4)))
    for dim in [2, -1]:
        with pytest.raises(ValueError, match=r"softmax_forward: dim must satisfy 0 <= dim < ndim = 2, got " + str(dim)):
            K.softmax_forward(x, dim, False)
    with pytest.raises(TypeError, match=r"softmax_forward: x must be float32 or float64, got int64"):
        K.softmax_forward(dev(np.ones((3,), dtype=np.int64)), 0, False)
    with pytest.raises(ValueError, match=r"softmax_backward: grad_y must have shape \(3, 4\), got \(4, 3\)"):
        K.softmax_backward(x, dev(np.ones((4, 3))), 1, False)
    with pytest.raises(TypeError, match=r"softmax_backward\(log\): grad_y must have the dtype of y"):
        K.softmax_backward(x, dev(np.ones((3, 4), dtype=np.float32)), 1, True)


def test_softmax_deterministic(rng):
    for shape, dim in [((3, 100003), 1), ((100003, 3), 0), ((257, 10), 1), ((4, 700, 3), 1)]:
        x = dev((1000.0 + rng.standard_normal(size=shape)).astype(np.float32))
        g = dev(rng.standard_normal(size=shape).astype(np.float32))
        for log in (False, True):
            y1, y2 = K.softmax_forward(x, dim, log), K.softmax_forward(x, dim, log)
            assert same_bits(host(y1), host(y2))
            assert same_bits(host(K.softmax_backward(y1, g, dim, log)), host(K.softmax_backward(y1, g, dim, log)))


# ---- cross_entropy / nll_loss -------------------------------------------------------------------

# (N, C): ones, a prime, odd sizes, 129 classes, LeNet/MNIST (64, 10), batch 257 of 10 classes,
# and a word-level softmax (70, 10000).
LOSS_SHAPES = [(1, 1), (1, 7), (13, 1), (13, 7), (5, 129), (64, 10), (257, 10), (70, 10000)]


def loss_tol(dtype):
    """(atol, rtol) for elementwise results: STYLE.md's 1e-6 + 1e-5|ref| in float32."""
    return (1e-6, 1e-5) if dtype == np.float32 else (1e-13, 1e-11)


def run_cross_entropy(logits, target, grad_loss, ignore_index=-100):
    """(loss, lse, grad) on the host, from device outputs that started as poison."""
    N, C = logits.shape
    x, t, g = dev(logits), dev(target), dev(grad_loss)
    poison_cache(((N,), logits.dtype), ((N,), logits.dtype))
    loss, lse = K.cross_entropy_forward(x, t, ignore_index)
    poison_cache(((N, C), logits.dtype))
    grad = K.cross_entropy_backward(x, t, lse, g, ignore_index)
    return host(loss), host(lse), host(grad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("offset", [0.0, 1000.0, -1000.0])
@pytest.mark.parametrize("N,C", LOSS_SHAPES)
def test_cross_entropy_forward_backward(rng, dtype, N, C, offset):
    """offset 1000 would overflow a naive exp (float32 exp overflows above ~88)."""
    logits, target, grad_loss = make_case(rng, N, C, dtype, offset=offset)
    loss, lse, grad = run_cross_entropy(logits, target, grad_loss)
    assert loss.dtype == dtype and lse.dtype == dtype and loss.shape == (N,) and lse.shape == (N,)
    ref_loss, ref_lse_ = ref_cross_entropy(logits, target, -100)
    atol, rtol = loss_tol(dtype)
    what = f"cross_entropy_forward[{np.dtype(dtype).name}, ({N}, {C}), offset {offset}]"
    assert_close(loss, ref_loss, atol=atol, rtol=rtol, what=what + " loss")
    assert_close(lse, ref_lse_, atol=atol, rtol=rtol, what=what + " lse")
    assert np.all(loss[target == -100] == 0)

    assert grad.dtype == dtype and grad.shape == (N, C)
    ref = ref_cross_entropy_backward(logits, target, grad_loss, -100)
    # The softmax is rebuilt from the stored lse, whose rounding is |lse| * eps relative.
    rtol_b = rtol + 2 * np.abs(ref_lse_).max() * EPS[np.dtype(dtype)]
    assert_close(grad, ref, atol=atol + rtol_b, rtol=rtol_b, what=what.replace("forward", "backward"))
    assert np.all(grad[target == -100] == 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ignore_index", [-1, 0, 5])
def test_cross_entropy_ignore_index(rng, dtype, ignore_index):
    """ignore_index may be negative or a real class; ignored rows get loss 0 and zero grad."""
    N, C = 23, 9
    logits, target, grad_loss = make_case(rng, N, C, dtype, ignore_index=ignore_index)
    loss, lse, grad = run_cross_entropy(logits, target, grad_loss, ignore_index)
    ref_loss, ref_lse_ = ref_cross_entropy(logits, target, ignore_index)
    atol, rtol = loss_tol(dtype)
    assert_close(loss, ref_loss, atol=atol, rtol=rtol, what=f"cross_entropy ignore_index={ignore_index}")
    assert_close(lse, ref_lse_, atol=atol, rtol=rtol, what="lse of every row, ignored too")
    assert_close(grad, ref_cross_entropy_backward(logits, target, grad_loss, ignore_index),
                 atol=atol, rtol=rtol, what=f"cross_entropy_backward ignore_index={ignore_index}")
    ignored = target == ignore_index
    assert ignored.any() and np.all(loss[ignored] == 0) and np.all(grad[ignored] == 0)


def test_cross_entropy_all_ignored_and_empty():
    logits = np.arange(12, dtype=np.float32).reshape(3, 4)
    loss, lse, grad = run_cross_entropy(logits, np.full(3, -100, dtype=np.int64), np.ones(3, np.float32))
    assert np.all(loss == 0) and np.all(grad == 0) and np.all(np.isfinite(lse))
    empty_x, empty_t = dev(np.zeros((0, 5))), dev(np.zeros(0, np.int64))
    loss, lse = K.cross_entropy_forward(empty_x, empty_t)
    assert loss.shape == (0,) and lse.shape == (0,)
    assert K.cross_entropy_backward(empty_x, empty_t, lse, loss).shape == (0, 5)


def test_cross_entropy_mean_parts_deterministic(rng):
    """The pieces of reduction='mean' on the GPU: per-row losses, their float64 sum and the
    int64 count of kept targets; all bitwise stable run to run."""
    logits, target, grad_loss = make_case(rng, 257, 10, np.float32, offset=1000.0)
    x, t = dev(logits), dev(target)
    runs = []
    for _ in range(2):
        loss, lse = K.cross_entropy_forward(x, t)
        total, _ = K.reduce_forward(SUM, loss.astype(np.float64), 0, 1)
        count, _ = K.reduce_forward(SUM, dev(target != -100), 0, 1)
        grad = K.cross_entropy_backward(x, t, lse, dev(grad_loss))
        runs.append([host(a) for a in (loss, lse, total, count, grad)])
    for a, b in zip(*runs):
        assert same_bits(a, b)
    ref_loss, _ = ref_cross_entropy(logits, target, -100)
    assert int(runs[0][3]) == int(np.count_nonzero(target != -100))
    assert abs(float(runs[0][2]) - ref_loss.sum()) <= 1e-5 * np.abs(ref_loss).sum()


def test_loss_target_errors():
    x = dev(np.zeros((4, 10), dtype=np.float32))
    bad = dev(np.array([1, 2, 3, 12], dtype=np.int64))
    with pytest.raises(ValueError, match=r"cross_entropy: target 12 at position 3 is out of range \[0, 10\)"):
        K.cross_entropy_forward(x, bad)
    with pytest.raises(ValueError, match=r"nll_loss: target -5 at position 0 is out of range \[0, 10\)"):
        K.nll_loss_forward(x, dev(np.array([-5, 0, 0, 0], dtype=np.int64)))
    ok = dev(np.array([1, -100, 3, 9], dtype=np.int64))
    K.cross_entropy_forward(x, ok)  # -100 is ignored, not out of range
    with pytest.raises(TypeError, match=r"cross_entropy_forward: target must be int64, got float32"):
        K.cross_entropy_forward(x, dev(np.zeros(4, np.float32)))
    with pytest.raises(ValueError, match=r"cross_entropy_forward: target must have shape \(4,\), got \(3,\)"):
        K.cross_entropy_forward(x, dev(np.zeros(3, np.int64)))
    with pytest.raises(ValueError, match=r"cross_entropy_forward: logits must be 2-D \(N, C\)"):
        K.cross_entropy_forward(dev(np.zeros(4, np.float32)), ok)
    with pytest.raises(ValueError, match=r"cross_entropy_forward: logits has no classes"):
        K.cross_entropy_forward(dev(np.zeros((4, 0), np.float32)), ok)
    with pytest.raises(TypeError, match=r"cross_entropy_backward: lse must have the dtype of logits"):
        K.cross_entropy_backward(x, ok, dev(np.zeros(4)), dev(np.zeros(4, np.float32)))
    with pytest.raises(ValueError, match=r"cross_entropy_backward: grad_loss must have shape \(4,\), got \(5,\)"):
        K.cross_entropy_backward(x, ok, dev(np.zeros(4, np.float32)), dev(np.zeros(5, np.float32)))
    with pytest.raises(ValueError, match=r"nll_loss_backward: C must be >= 1, got 0"):
        K.nll_loss_backward(ok, dev(np.ones(4, np.float32)), 0)
    with pytest.raises(TypeError, match=r"nll_loss_forward: logp must be a CudaArray, got ndarray"):
        K.nll_loss_forward(np.zeros((4, 10)), ok)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,C,ignore_index", [(1, 1, -100), (13, 7, 2), (64, 10, -100), (257, 10, -100),
                                              (35, 10000, -100)])
def test_nll_loss(rng, dtype, N, C, ignore_index):
    logits, target, grad_loss = make_case(rng, N, C, dtype, ignore_index=ignore_index)
    logp = (logits - ref_lse(logits)[:, None]).astype(dtype)
    logp_d, t_d, g_d = dev(logp), dev(target), dev(grad_loss)
    poison_cache(((N,), dtype))
    loss = host(K.nll_loss_forward(logp_d, t_d, ignore_index))
    keep = target != ignore_index
    ref = np.zeros(N)
    ref[keep] = -logp.astype(np.float64)[np.arange(N)[keep], target[keep]]
    assert loss.dtype == dtype and loss.shape == (N,)
    np.testing.assert_array_equal(loss, ref.astype(dtype))

    poison_cache(((N, C), dtype))
    grad = host(K.nll_loss_backward(t_d, g_d, C, ignore_index))
    ref = np.zeros((N, C), dtype=dtype)
    ref[np.arange(N)[keep], target[keep]] = -grad_loss[keep]
    assert grad.dtype == dtype and grad.shape == (N, C)
    np.testing.assert_array_equal(grad, ref)
