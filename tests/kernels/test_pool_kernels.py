"""max_pool2d / avg_pool2d forward and backward against NumPy float64 references, on every
ISA, float32 and float64. Max forward (values and indices) must match exactly."""
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
    assert_close(grad_x, max_pool_backward_ref(index_ref, grad_y, shape), what=f"{isa} max_pool2d_backward {case}")


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
