"""max_pool2d / avg_pool2d forward and backward against NumPy float64 references, on every
ISA, float32 and float64. Max forward (values and both index kinds) must match exactly.

Paths (csrc/cpu/ref/pool.cpp's header) are chosen by geometry, so the cases reach each one:
2x2 stride 2 float (the SIMD kernels: every width 1..40 and 67 for the tails, floor / ceil,
padding), other dense windows (the portable interior loop), padding / ceil borders (the
general loop), disjoint windows (one-pass backward) and overlapping ones (zero-fill + add)."""
import numpy as np
import pytest

from dlcore import _C
from helpers import assert_close

DTYPES = [np.float32, np.float64]


def out_size(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling_output_shape, written out independently of the binding."""
    num = size + 2 * p - d * (k - 1) - 1
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def taps(out, k, s, p, d, size):
    """For each tap k: positions (out,), clipped positions, in-bounds mask."""
    for kk in range(k):
        pos = np.arange(out) * s - p + kk * d
        yield pos, np.clip(pos, 0, size - 1), (pos >= 0) & (pos < size)


def max_pool_ref(x, k, s, p, d, ceil_mode):
    """(y, index) in float64 with PyTorch's update rule: first max wins ties, a NaN always wins."""
    N, C, H, W = x.shape
    OH, OW = out_size(H, k[0], s[0], p[0], d[0], ceil_mode), out_size(W, k[1], s[1], p[1], d[1], ceil_mode)
    x = x.astype(np.float64)
    best = np.full((N, C, OH, OW), -np.inf)
    arg = np.full((N, C, OH, OW), -1, np.int64)
    for hp, hc, hv in taps(OH, k[0], s[0], p[0], d[0], H):
        for wp, wc, wv in taps(OW, k[1], s[1], p[1], d[1], W):
            v = x[:, :, hc[:, None], wc[None, :]]
            valid = hv[:, None] & wv[None, :]
            first = valid & (arg < 0)
            take = valid & ((v > best) | np.isnan(v) | first)
            best = np.where(take, v, best)
            arg = np.where(take, hc[:, None] * W + wc[None, :], arg)
    return best, arg


def window_index_ref(index, x_shape, k, s, p, d):
    """The uint8 window index (kh*KW + kw, 255 for an empty window) of a plane index."""
    W = x_shape[3]
    OH, OW = index.shape[2:]
    kh = (index // W - (np.arange(OH)[:, None] * s[0] - p[0])) // d[0]
    kw = (index % W - (np.arange(OW)[None, :] * s[1] - p[1])) // d[1]
    return np.where(index < 0, 255, kh * k[1] + kw).astype(np.uint8)


def max_pool_backward_ref(index, grad_y, x_shape):
    N, C, H, W = x_shape
    gx = np.zeros((N * C, H * W))
    planes = np.repeat(np.arange(N * C), index[0, 0].size).reshape(index.shape)
    keep = index >= 0
    np.add.at(gx, (planes[keep], index[keep]), grad_y.astype(np.float64)[keep])
    return gx.reshape(x_shape)


def avg_windows(H, W, k, s, p, ceil_mode, count_include_pad):
    """Per-tap (positions, mask) and the (OH, OW) divisor, by PyTorch's avg_pool2d rule."""
    OH, OW = out_size(H, k[0], s[0], p[0], 1, ceil_mode), out_size(W, k[1], s[1], p[1], 1, ceil_mode)

    def axis(out, k, s, p, size):
        start = np.arange(out) * s - p
        end = np.minimum(start + k, size + p)
        return end - start, np.minimum(end, size) - np.maximum(start, 0)

    pad_h, in_h = axis(OH, k[0], s[0], p[0], H)
    pad_w, in_w = axis(OW, k[1], s[1], p[1], W)
    divisor = np.outer(pad_h, pad_w) if count_include_pad else np.outer(in_h, in_w)
    return OH, OW, divisor.astype(np.float64)


def avg_pool_ref(x, k, s, p, ceil_mode, count_include_pad):
    N, C, H, W = x.shape
    OH, OW, divisor = avg_windows(H, W, k, s, p, ceil_mode, count_include_pad)
    x = x.astype(np.float64)
    total = np.zeros((N, C, OH, OW))
    for hp, hc, hv in taps(OH, k[0], s[0], p[0], 1, H):
        for wp, wc, wv in taps(OW, k[1], s[1], p[1], 1, W):
            total += np.where(hv[:, None] & wv[None, :], x[:, :, hc[:, None], wc[None, :]], 0.0)
    return total / divisor


def avg_pool_backward_ref(grad_y, x_shape, k, s, p, ceil_mode, count_include_pad):
    N, C, H, W = x_shape
    OH, OW, divisor = avg_windows(H, W, k, s, p, ceil_mode, count_include_pad)
    share = grad_y.astype(np.float64) / divisor
    gx = np.zeros(x_shape)
    for hp, hc, hv in taps(OH, k[0], s[0], p[0], 1, H):
        for wp, wc, wv in taps(OW, k[1], s[1], p[1], 1, W):
            hh = np.broadcast_to(hc[:, None], (OH, OW))
            ww = np.broadcast_to(wc[None, :], (OH, OW))
            np.add.at(gx, (slice(None), slice(None), hh, ww), np.where(hv[:, None] & wv[None, :], share, 0.0))
    return gx


# (x shape, kernel, stride, padding, dilation, ceil_mode)
CASES = [
    ((2, 3, 7, 7), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((2, 3, 7, 7), (2, 2), (2, 2), (0, 0), (1, 1), True),
    ((1, 2, 9, 11), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((2, 2, 10, 13), (3, 2), (1, 2), (1, 1), (1, 1), False),
    ((1, 2, 5, 5), (2, 2), (2, 2), (1, 1), (1, 1), True),   # ceil window starting in right pad dropped
    ((3, 2, 5, 6), (5, 5), (1, 1), (2, 2), (1, 1), False),
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0), (1, 1), False),
    ((1, 3, 13, 17), (3, 4), (3, 2), (1, 2), (1, 1), True),
    ((2, 1, 1, 9), (1, 3), (1, 3), (0, 1), (1, 1), True),
    ((64, 6, 28, 28), (2, 2), (2, 2), (0, 0), (1, 1), False),  # LeNet pool 1
    ((64, 16, 10, 10), (2, 2), (2, 2), (0, 0), (1, 1), False),  # LeNet pool 2
]
DILATED = [
    ((1, 3, 11, 9), (3, 3), (2, 1), (1, 0), (2, 2), True),
    ((2, 2, 12, 10), (2, 3), (1, 2), (1, 1), (3, 2), False),
]


def case_id(case):
    shape, k, s, p, d, ceil_mode = case
    return f"{'x'.join(map(str, shape))}-k{k[0]}{k[1]}-s{s[0]}{s[1]}-p{p[0]}{p[1]}-d{d[0]}{d[1]}-{'ceil' if ceil_mode else 'floor'}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES + DILATED, ids=case_id)
def test_max_pool2d(isa, rng, dtype, case):
    shape, k, s, p, d, ceil_mode = case
    x = rng.standard_normal(shape).astype(dtype)
    y, index = _C.max_pool2d_forward(x, k, s, p, d, ceil_mode)
    y_ref, index_ref = max_pool_ref(x, k, s, p, d, ceil_mode)
    assert y.dtype == dtype and index.dtype == np.int64
    np.testing.assert_array_equal(y, y_ref.astype(dtype), err_msg=f"{isa} max_pool2d_forward {case}")
    np.testing.assert_array_equal(index, index_ref, err_msg=f"{isa} max_pool2d_forward index {case}")
    grad_y = rng.standard_normal(y.shape).astype(dtype)
    grad_x = _C.max_pool2d_backward(index, grad_y, shape, k, s, p, d, ceil_mode)
    assert grad_x.dtype == dtype
    grad_x_ref = max_pool_backward_ref(index_ref, grad_y, shape)
    assert_close(grad_x, grad_x_ref, what=f"{isa} max_pool2d_backward {case}")
    check_index_kinds(x, case, y_ref, index_ref, grad_y, grad_x_ref, f"{isa} {case}")


def check_index_kinds(x, case, y_ref, index_ref, grad_y, grad_x_ref, what):
    """The forward without an index and with the uint8 window index, and backward from the latter."""
    shape, k, s, p, d, ceil_mode = case
    y, none = _C.max_pool2d_forward(x, k, s, p, d, ceil_mode, "none")
    assert none is None
    np.testing.assert_array_equal(y, y_ref.astype(x.dtype), err_msg=f"{what} max_pool2d_forward index=none")
    y, window = _C.max_pool2d_forward(x, k, s, p, d, ceil_mode, "window")
    assert window.dtype == np.uint8
    np.testing.assert_array_equal(y, y_ref.astype(x.dtype), err_msg=f"{what} max_pool2d_forward index=window")
    np.testing.assert_array_equal(window, window_index_ref(index_ref, shape, k, s, p, d),
                                  err_msg=f"{what} max_pool2d_forward window index")
    grad_x = _C.max_pool2d_backward(window, grad_y, shape, k, s, p, d, ceil_mode)
    assert_close(grad_x, grad_x_ref, what=f"{what} max_pool2d_backward (window index)")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_avg_pool2d(isa, rng, dtype, case, count_include_pad):
    shape, k, s, p, _, ceil_mode = case
    x = rng.standard_normal(shape).astype(dtype)
    y = _C.avg_pool2d_forward(x, k, s, p, ceil_mode, count_include_pad)
    assert y.dtype == dtype
    assert_close(y, avg_pool_ref(x, k, s, p, ceil_mode, count_include_pad), what=f"{isa} avg_pool2d_forward {case}")
    grad_y = rng.standard_normal(y.shape).astype(dtype)
    grad_x = _C.avg_pool2d_backward(grad_y, shape, k, s, p, ceil_mode, count_include_pad)
    assert_close(grad_x, avg_pool_backward_ref(grad_y, shape, k, s, p, ceil_mode, count_include_pad),
                 what=f"{isa} avg_pool2d_backward {case}")


def test_known_pytorch_values():
    """Output sizes and divisors written down from PyTorch."""
    x = np.ones((1, 1, 7, 7), np.float32)
    assert _C.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), True)[0].shape == (1, 1, 4, 4)
    assert _C.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)[0].shape == (1, 1, 3, 3)
    assert _C.avg_pool2d_forward(x, (3, 3), (2, 2), (1, 1), False, True).shape == (1, 1, 4, 4)
    assert _C.max_pool2d_forward(np.ones((1, 1, 5, 5)), (2, 2), (2, 2), (1, 1), (1, 1), True)[0].shape == (1, 1, 3, 3)
    ones = np.ones((1, 1, 3, 3))
    np.testing.assert_allclose(_C.avg_pool2d_forward(ones, (3, 3), (1, 1), (1, 1), False, True)[0, 0],
                               [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 6 / 9], [4 / 9, 6 / 9, 4 / 9]])
    np.testing.assert_array_equal(_C.avg_pool2d_forward(ones, (3, 3), (1, 1), (1, 1), False, False), np.ones((1, 1, 3, 3)))
    # ceil_mode window hanging over the right edge: count_include_pad counts only up to H + pad.
    y = _C.avg_pool2d_forward(np.ones((1, 1, 4, 4)), (3, 3), (2, 2), (1, 1), True, True)
    np.testing.assert_allclose(y[0, 0], [[4 / 9, 6 / 9, 2 / 6], [6 / 9, 1.0, 3 / 6], [2 / 6, 3 / 6, 1 / 4]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_nan_and_ties(isa, dtype):
    x = np.array([[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, np.nan, 5.0], [7.0, 7.0, 1.0, np.nan], [7.0, 0.0, np.nan, 2.0]],
                 dtype)[None, None]
    y, index = _C.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    y_ref, index_ref = max_pool_ref(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    np.testing.assert_array_equal(y, y_ref.astype(dtype))
    np.testing.assert_array_equal(index, index_ref)
    np.testing.assert_array_equal(index[0, 0], [[1, 6], [8, 14]])  # first max on ties; last NaN wins (PyTorch)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_empty_dilated_window(isa, rng, dtype):
    """Dilation can step over the whole input: such windows give -inf and index -1."""
    x = rng.standard_normal((1, 2, 2, 2)).astype(dtype)
    y, index = _C.max_pool2d_forward(x, (2, 2), (1, 1), (1, 1), (3, 3), False)
    assert y.shape == (1, 2, 1, 1)
    assert np.all(index == -1) and np.all(y == -np.inf)
    grad_x = _C.max_pool2d_backward(index, np.ones_like(y), x.shape, (2, 2), (1, 1), (1, 1), (3, 3), False)
    np.testing.assert_array_equal(grad_x, np.zeros_like(x))


def test_empty_batch():
    x = np.zeros((0, 3, 8, 8), np.float32)
    y, index = _C.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    assert y.shape == index.shape == (0, 3, 4, 4)
    assert _C.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False, True).shape == (0, 3, 4, 4)
    assert _C.max_pool2d_backward(index, y, x.shape, (2, 2), (2, 2), (0, 0), (1, 1), False).shape == x.shape
    assert _C.avg_pool2d_backward(y, x.shape, (2, 2), (2, 2), (0, 0), False, True).shape == x.shape


def test_bad_inputs(rng):
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    mp = _C.max_pool2d_forward
    ap = _C.avg_pool2d_forward
    with pytest.raises(TypeError, match="max_pool2d_forward: input must be float32 or float64"):
        mp(x.astype(np.int32), (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match=r"max_pool2d_forward: input must be 4-D .* got shape \(3, 8, 8\)"):
        mp(x[0], (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match="C-contiguous"):
        mp(x[:, :, :, ::2], (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match=r"kernel_size must be >= 1, got \(0, 2\)"):
        mp(x, (0, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match=r"stride must be >= 1, got \(2, 0\)"):
        ap(x, (2, 2), (2, 0), (0, 0), False, True)
    with pytest.raises(ValueError, match=r"dilation must be >= 1, got \(0, 1\)"):
        mp(x, (2, 2), (2, 2), (0, 0), (0, 1), False)
    with pytest.raises(ValueError, match=r"padding must be >= 0"):
        ap(x, (2, 2), (2, 2), (-1, 0), False, True)
    with pytest.raises(ValueError, match=r"padding must be at most half of kernel_size, got padding \(2, 0\)"):
        mp(x, (3, 3), (1, 1), (2, 0), (1, 1), False)
    with pytest.raises(ValueError, match=r"avg_pool2d_forward: output size \(0, 0\) is too small"):
        ap(x, (9, 9), (1, 1), (0, 0), False, True)
    with pytest.raises(ValueError, match="C, H, W >= 1"):
        mp(np.zeros((1, 0, 4, 4), np.float32), (2, 2), (2, 2), (0, 0), (1, 1), False)
    y, index = mp(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match=r"max_pool2d_backward: grad_y must have shape \(2, 3, 4, 4\)"):
        _C.max_pool2d_backward(index, y[:, :2].copy(), x.shape, (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(TypeError, match="index must be int64"):
        _C.max_pool2d_backward(index.astype(np.int32), y, x.shape, (2, 2), (2, 2), (0, 0), (1, 1), False)
    bad = index.copy()
    bad[1, 2, 3, 3] = 64
    with pytest.raises(ValueError, match=r"index values must lie in \[0, H\*W\)"):
        _C.max_pool2d_backward(bad, y, x.shape, (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match="max_pool2d_backward: input must be 4-D"):
        _C.max_pool2d_backward(index, y, (2, 3, 8), (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match=r"avg_pool2d_backward: grad_y must have shape \(2, 3, 4, 4\)"):
        _C.avg_pool2d_backward(np.zeros((2, 3, 4, 5), np.float32), x.shape, (2, 2), (2, 2), (0, 0), False, True)
    with pytest.raises(TypeError, match="avg_pool2d_backward: grad_y must be float32 or float64"):
        _C.avg_pool2d_backward(np.zeros((2, 3, 4, 4), np.int64), x.shape, (2, 2), (2, 2), (0, 0), False, True)


def check_max_and_avg(x, rng, case, what, avg=True):
    """Max (both index kinds and none) and avg (both divisor rules), forward and backward."""
    shape, k, s, p, d, ceil_mode = case
    y_ref, index_ref = max_pool_ref(x, k, s, p, d, ceil_mode)
    y, index = _C.max_pool2d_forward(x, k, s, p, d, ceil_mode)
    np.testing.assert_array_equal(y, y_ref.astype(x.dtype), err_msg=f"{what} max_pool2d_forward")
    np.testing.assert_array_equal(index, index_ref, err_msg=f"{what} max_pool2d_forward index")
    grad_y = rng.standard_normal(y.shape).astype(x.dtype)
    grad_x_ref = max_pool_backward_ref(index_ref, grad_y, shape)
    assert_close(_C.max_pool2d_backward(index, grad_y, shape, k, s, p, d, ceil_mode), grad_x_ref,
                 what=f"{what} max_pool2d_backward")
    check_index_kinds(x, case, y_ref, index_ref, grad_y, grad_x_ref, what)
    if d != (1, 1) or not avg:
        return
    for include_pad in (True, False):
        y = _C.avg_pool2d_forward(x, k, s, p, ceil_mode, include_pad)
        assert_close(y, avg_pool_ref(x, k, s, p, ceil_mode, include_pad),
                     what=f"{what} avg_pool2d_forward {include_pad}")
        assert_close(_C.avg_pool2d_backward(grad_y, shape, k, s, p, ceil_mode, include_pad),
                     avg_pool_backward_ref(grad_y, shape, k, s, p, ceil_mode, include_pad),
                     what=f"{what} avg_pool2d_backward {include_pad}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding,ceil_mode", [(0, False), (0, True), (1, False), (1, True)])
def test_pool_2x2_stride2_every_width(isa, rng, dtype, padding, ceil_mode):
    """The SIMD kernels' blocks and tails (AVX-512: 16 windows, AVX2: 8, rows under 8 scalar):
    widths 1..40 and 67, odd and even heights, with the border loops around them."""
    for W in list(range(1, 41)) + [67]:
        for H in (1, 2, 3, 6) if W < 40 else (5,):
            if min(out_size(H, 2, 2, padding, 1, ceil_mode), out_size(W, 2, 2, padding, 1, ceil_mode)) < 1:
                continue  # no window fits (the binding rejects it; test_bad_inputs covers that)
            case = ((2, 3, H, W), (2, 2), (2, 2), (padding, padding), (1, 1), ceil_mode)
            x = rng.standard_normal(case[0]).astype(dtype)
            check_max_and_avg(x, rng, case, f"{isa} {case_id(case)}")


# Geometries for the other paths: (x shape, kernel, stride, padding, dilation, ceil_mode).
PATH_CASES = [
    ((2, 3, 11, 19), (3, 3), (3, 3), (0, 0), (1, 1), False),   # disjoint, stride == kernel (portable)
    ((2, 3, 11, 19), (3, 3), (3, 3), (1, 1), (1, 1), True),    # disjoint, padding and ceil borders
    ((2, 2, 13, 23), (2, 3), (3, 4), (1, 1), (1, 1), False),   # disjoint with gaps (stride > kernel)
    ((2, 3, 17, 35), (3, 3), (2, 2), (1, 1), (1, 1), False),   # overlapping, ResNet's stem pool
    ((2, 3, 12, 33), (3, 3), (1, 1), (0, 0), (1, 1), True),    # overlapping, stride 1
    ((1, 2, 21, 40), (5, 5), (2, 2), (2, 2), (1, 1), True),    # 25 taps: interior avg sums in double
    ((1, 2, 30, 31), (2, 2), (2, 2), (0, 0), (2, 2), False),   # dilated interior (max only)
    ((2, 2, 8, 41), (1, 1), (1, 1), (0, 0), (1, 1), False),    # 1x1 windows
    ((3, 2, 1, 1), (1, 1), (2, 2), (0, 0), (1, 1), True),      # 1x1 planes
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", PATH_CASES, ids=case_id)
def test_pool_paths(isa, rng, dtype, case):
    x = rng.standard_normal(case[0]).astype(dtype)
    check_max_and_avg(x, rng, case, f"{isa} {case_id(case)}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [
    ((2, 3, 9, 37), (2, 2), (2, 2), (0, 0), (1, 1), True),
    ((2, 3, 9, 37), (3, 3), (2, 2), (1, 1), (1, 1), False),
    ((2, 3, 9, 37), (2, 2), (2, 2), (1, 1), (1, 1), True),
], ids=case_id)
def test_max_pool2d_ties_and_nans_every_path(isa, rng, dtype, case):
    """Many ties (small integers) and NaNs through the SIMD and portable paths: first max wins,
    the last NaN wins, in both index kinds."""
    shape = case[0]
    x = rng.integers(-2, 3, shape).astype(dtype)
    x[rng.random(shape) < 0.1] = np.nan
    check_max_and_avg(x, rng, case, f"{isa} {case_id(case)}", avg=False)


@pytest.mark.parametrize("case", [
    ((1, 2, 6, 35), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((1, 2, 6, 35), (3, 2), (1, 2), (1, 0), (1, 1), True),
], ids=case_id)
def test_max_pool2d_signed_zero_ties(isa, rng, case):
    """-0.0 and +0.0 tie: the first in row-major window order wins, bit for bit."""
    shape, k, s, p, d, ceil_mode = case
    x = rng.choice(np.array([-0.0, 0.0, -1.0], np.float32), shape)
    y_ref, _ = max_pool_ref(x, k, s, p, d, ceil_mode)
    for kind in ("plane", "window", "none"):
        y, _ = _C.max_pool2d_forward(x, k, s, p, d, ceil_mode, kind)
        np.testing.assert_array_equal(y.view(np.uint32), y_ref.astype(np.float32).view(np.uint32),
                                      err_msg=f"{isa} {case_id(case)} index={kind}")


def test_window_index_kinds_and_errors(rng):
    x = rng.standard_normal((2, 3, 20, 20)).astype(np.float32)
    geo = ((2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match='max_pool2d_forward: index must be "plane", "window" or "none", got "all"'):
        _C.max_pool2d_forward(x, *geo, "all")
    y, window = _C.max_pool2d_forward(x, *geo, "window")
    bad = window.copy()
    bad[1, 2, 3, 4] = 4
    with pytest.raises(ValueError, match=r"window index values must lie in \[0, KH\*KW\) = \[0, 4\) \(or be 255\), "
                                         r"got 4 at flat position 534"):
        _C.max_pool2d_backward(bad, y, x.shape, *geo)
    with pytest.raises(TypeError, match="max_pool2d_backward: index must be int64 .* or uint8 .*, got int32"):
        _C.max_pool2d_backward(window.astype(np.int32), y, x.shape, *geo)
    # 16 x 16 = 256 taps do not fit a byte: "window" falls back to the int64 plane index.
    big = ((16, 16), (4, 4), (0, 0), (1, 1), False)
    y, index = _C.max_pool2d_forward(x, *big, "window")
    assert index.dtype == np.int64
    np.testing.assert_array_equal(index, max_pool_ref(x, *big)[1])
    with pytest.raises(ValueError, match=r"a uint8 window index needs KH\*KW <= 255"):
        _C.max_pool2d_backward(np.zeros(y.shape, np.uint8), y, x.shape, *big)


def test_max_pool2d_op_index_choice(rng):
    """dlcore.max_pool2d writes no index under no_grad, the window index for its own backward,
    and PyTorch's int64 plane index for return_indices; all give the same y and gradient."""
    import dlcore

    x_np = rng.standard_normal((2, 3, 9, 14)).astype(np.float32)
    y_ref, index_ref = max_pool_ref(x_np, (2, 2), (2, 2), (0, 0), (1, 1), False)
    g = rng.standard_normal(y_ref.shape).astype(np.float32)
    grad_ref = max_pool_backward_ref(index_ref, g, x_np.shape)
    with dlcore.no_grad():
        y = dlcore.max_pool2d(dlcore.Tensor(x_np, requires_grad=True), 2)
    np.testing.assert_array_equal(y.numpy(), y_ref.astype(np.float32))
    assert not y.requires_grad
    for return_indices in (False, True):
        x = dlcore.Tensor(x_np, requires_grad=True)
        out = dlcore.max_pool2d(x, 2, return_indices=return_indices)
        y = out[0] if return_indices else out
        assert y._ctx.index.dtype == (np.int64 if return_indices else np.uint8)  # what backward reads
        if return_indices:
            assert out[1].numpy().dtype == np.int64 and not out[1].requires_grad
            np.testing.assert_array_equal(out[1].numpy(), index_ref)
        np.testing.assert_array_equal(y.detach().numpy(), y_ref.astype(np.float32))
        y.backward(dlcore.Tensor(g))
        assert_close(x.grad.numpy(), grad_ref, what=f"max_pool2d op backward, return_indices={return_indices}")
