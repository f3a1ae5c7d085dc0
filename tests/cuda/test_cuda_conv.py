"""CUDA conv2d (csrc/cuda/conv.cu via dlcore.cuda.kernels.conv) against float64 references.

Forward against the NumPy oracle (tests/oracles.py), backward_input / backward_weight / the bias
gradient against the CPU kernels run in float64 (themselves tested against the adjoint oracle in
tests/kernels/test_conv_kernels.py), all with the K-scaled tolerance of STYLE.md, float32 and
float64. Shapes: LeNet's two convs at N = 64, odd sizes, stride / dilation 2, groups 2,
depthwise, more groups than images (the other GEMM batching), 1x1 (no im2col), stride past the
kernel (pixels no tap reads), a kernel as large as the input. Plus an integer-exact case
(bitwise equal), outputs poisoned with NaN through the raw binding, several column-buffer
chunks, non-contiguous inputs, run-twice bitwise determinism, and bad inputs.
Run: PYTHONPATH=python python3 -m pytest tests/cuda/test_cuda_conv.py -q -rs
"""
import numpy as np
import pytest

import dlcore
import dlcore.cuda
import oracles
from dlcore import _C
from helpers import assert_close_reduction

pytestmark = pytest.mark.skipif(not dlcore.cuda.is_available(), reason="no CUDA device")

if dlcore.cuda.is_available():
    from dlcore.cuda.array import DTYPE_CODE, from_numpy
    from dlcore.cuda.kernels.conv import conv2d_backward_input, conv2d_backward_weight, conv2d_forward

DTYPES = [np.float32, np.float64]

# (N, C, H, W, C_out, (KH, KW), stride, padding, dilation, groups)
CASES = {
    "lenet_conv1": (64, 1, 28, 28, 6, (5, 5), (1, 1), (2, 2), (1, 1), 1),
    "lenet_conv2": (64, 6, 14, 14, 16, (5, 5), (1, 1), (0, 0), (1, 1), 1),
    "odd_7x7_pad1": (3, 3, 7, 7, 5, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    "one_pixel": (1, 1, 1, 1, 1, (1, 1), (1, 1), (0, 0), (1, 1), 1),
    "stride2_dilation2": (2, 3, 13, 11, 4, (3, 3), (2, 2), (2, 1), (2, 2), 1),
    "stride3_rect": (3, 3, 13, 7, 1, (3, 2), (3, 2), (2, 1), (1, 1), 1),
    "stride_past_kernel": (2, 2, 11, 12, 3, (2, 2), (3, 4), (0, 1), (1, 1), 1),
    "groups2_dilation2": (3, 4, 13, 13, 6, (3, 3), (1, 1), (2, 2), (2, 2), 2),
    "groups_over_images": (2, 8, 9, 9, 8, (3, 3), (1, 1), (1, 1), (1, 1), 4),
    "depthwise": (3, 5, 7, 7, 5, (3, 3), (1, 1), (1, 1), (1, 1), 5),
    "depthwise_x2_stride2": (3, 3, 7, 13, 6, (3, 3), (2, 2), (1, 1), (1, 1), 3),
    "pointwise": (3, 6, 7, 13, 5, (1, 1), (1, 1), (0, 0), (1, 1), 1),
    "pointwise_groups": (3, 4, 7, 7, 6, (1, 1), (1, 1), (0, 0), (1, 1), 2),
    "pointwise_stride2_pad1": (3, 3, 7, 7, 5, (1, 1), (2, 2), (1, 1), (1, 1), 1),
    "kernel_as_input_pad": (1, 1, 13, 13, 1, (13, 13), (3, 3), (2, 2), (1, 1), 1),
    "row_1x13": (3, 3, 1, 13, 5, (1, 3), (1, 1), (0, 1), (1, 1), 1),
}


def dev(a):
    return from_numpy(a, 0)


def out_size(size, k, stride, pad, dil):
    return (size + 2 * pad - dil * (k - 1) - 1) // stride + 1


def geometry(case):
    """(stride, padding, dilation, groups) of a case."""
    return case[6], case[7], case[8], case[9]


def shapes(case):
    n, c, h, w, c_out, (kh, kw), stride, padding, dilation, groups = case
    oh, ow = out_size(h, kh, stride[0], padding[0], dilation[0]), out_size(w, kw, stride[1], padding[1], dilation[1])
    return (n, c, h, w), (c_out, c // groups, kh, kw), (c_out,), (n, c_out, oh, ow)


def make_inputs(rng, case, dtype, integer=False):
    """x, w, bias, grad_y: standard normal, or small integers (every sum exact in float32)."""
    if integer:
        return [rng.integers(-3, 4, size=s).astype(dtype) for s in shapes(case)]
    return [rng.standard_normal(s).astype(dtype) for s in shapes(case)]


def raw_geometry(case):
    """The binding's geometry list: N, C, H, W, C_out, KH, KW, OH, OW, strides, pads, dils, groups."""
    (n, c, h, w), (c_out, _, kh, kw), _, (_, _, oh, ow) = shapes(case)
    stride, padding, dilation, groups = geometry(case)
    return [n, c, h, w, c_out, kh, kw, oh, ow, *stride, *padding, *dilation, groups]


def f64(a):
    return a.astype(np.float64)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(CASES))
def test_conv2d_cuda_vs_reference(rng, name, dtype):
    case = CASES[name]
    stride, padding, dilation, groups = geometry(case)
    x, w, b, gy = make_inputs(rng, case, dtype)
    c_out, cg, kh, kw = w.shape
    n, _, oh, ow = gy.shape
    what = f"{name} cuda {np.dtype(dtype).name}"

    y = conv2d_forward(dev(x), dev(w), dev(b), stride, padding, dilation, groups).get()
    assert y.dtype == dtype and y.shape == gy.shape
    ref = oracles.conv2d(f64(x), f64(w), f64(b), stride, padding, dilation, groups)
    abs_ref = oracles.conv2d(np.abs(f64(x)), np.abs(f64(w)), np.abs(f64(b)), stride, padding, dilation, groups)
    assert_close_reduction(y, ref, abs_ref, cg * kh * kw + 1, dtype, what=f"conv2d_forward {what}")
    y_nobias = conv2d_forward(dev(x), dev(w), None, stride, padding, dilation, groups).get()
    assert_close_reduction(y_nobias, oracles.conv2d(f64(x), f64(w), None, stride, padding, dilation, groups),
                           abs_ref, cg * kh * kw + 1, dtype, what=f"conv2d_forward (no bias) {what}")

    gx = conv2d_backward_input(dev(w), dev(gy), x.shape, stride, padding, dilation, groups).get()
    assert gx.dtype == dtype and gx.shape == x.shape
    gx_ref = _C.conv2d_backward_input(f64(w), f64(gy), x.shape, stride, padding, dilation, groups)
    gx_abs = _C.conv2d_backward_input(np.abs(f64(w)), np.abs(f64(gy)), x.shape, stride, padding, dilation, groups)
    assert_close_reduction(gx, gx_ref, gx_abs, (c_out // groups) * kh * kw, dtype,
                           what=f"conv2d_backward_input {what}")

    gw, gb = conv2d_backward_weight(dev(x), dev(gy), w.shape, stride, padding, dilation, groups, True)
    gw, gb = gw.get(), gb.get()
    assert gw.dtype == dtype and gw.shape == w.shape and gb.dtype == dtype and gb.shape == b.shape
    gw_ref, gb_ref = _C.conv2d_backward_weight(f64(x), f64(gy), w.shape, stride, padding, dilation, groups, True)
    gw_abs, gb_abs = _C.conv2d_backward_weight(np.abs(f64(x)), np.abs(f64(gy)), w.shape, stride, padding, dilation,
                                               groups, True)
    assert_close_reduction(gw, gw_ref, gw_abs, n * oh * ow, dtype, what=f"conv2d_backward_weight {what}")
    assert_close_reduction(gb, gb_ref, gb_abs, n * oh * ow, dtype, what=f"conv2d grad_bias {what}")
    gw2, gb2 = conv2d_backward_weight(dev(x), dev(gy), w.shape, stride, padding, dilation, groups, False)
    assert gb2 is None
    assert_close_reduction(gw2.get(), gw_ref, gw_abs, n * oh * ow, dtype, what=f"conv2d_backward_weight {what}")


@pytest.mark.parametrize("name", list(CASES))
def test_conv2d_cuda_integer_exact(rng, name):
    """Small integers in float32: every sum is exact, so each result must equal the float64
    references bitwise (catches indexing bugs a loose tolerance would hide)."""
    case = CASES[name]
    stride, padding, dilation, groups = geometry(case)
    x, w, b, gy = make_inputs(rng, case, np.float32, integer=True)
    y = conv2d_forward(dev(x), dev(w), dev(b), stride, padding, dilation, groups).get()
    np.testing.assert_array_equal(y, oracles.conv2d(f64(x), f64(w), f64(b), stride, padding, dilation, groups))
    gx = conv2d_backward_input(dev(w), dev(gy), x.shape, stride, padding, dilation, groups).get()
    np.testing.assert_array_equal(gx, _C.conv2d_backward_input(f64(w), f64(gy), x.shape, stride, padding,
                                                               dilation, groups))
    gw, gb = conv2d_backward_weight(dev(x), dev(gy), w.shape, stride, padding, dilation, groups, True)
    gw_ref, gb_ref = _C.conv2d_backward_weight(f64(x), f64(gy), w.shape, stride, padding, dilation, groups, True)
    np.testing.assert_array_equal(gw.get(), gw_ref)
    np.testing.assert_array_equal(gb.get(), gb_ref)


@pytest.mark.parametrize("name", ["odd_7x7_pad1", "stride_past_kernel", "groups_over_images", "pointwise"])
def test_conv2d_cuda_writes_every_output(rng, name):
    """Outputs pre-filled with NaN (through the raw binding): every element must be overwritten."""
    case = CASES[name]
    x, w, b, gy = make_inputs(rng, case, np.float64, integer=True)
    g = raw_geometry(case)
    code = DTYPE_CODE[np.dtype(np.float64)]
    stride, padding, dilation, groups = geometry(case)
    xd, wd, bd, gyd = dev(x), dev(w), dev(b), dev(gy)

    y = dev(np.full(gy.shape, np.nan))
    _C.cuda.conv2d_forward(xd.ptr, wd.ptr, bd.ptr, y.ptr, code, g, 0)
    np.testing.assert_array_equal(y.get(), oracles.conv2d(x, w, b, stride, padding, dilation, groups))
    gx = dev(np.full(x.shape, np.nan))
    _C.cuda.conv2d_backward_input(wd.ptr, gyd.ptr, gx.ptr, code, g, 0)
    np.testing.assert_array_equal(gx.get(), _C.conv2d_backward_input(w, gy, x.shape, stride, padding, dilation,
                                                                     groups))
    gw, gb = dev(np.full(w.shape, np.nan)), dev(np.full(b.shape, np.nan))
    _C.cuda.conv2d_backward_weight(xd.ptr, gyd.ptr, gw.ptr, gb.ptr, code, g, 0)
    gw_ref, gb_ref = _C.conv2d_backward_weight(x, gy, w.shape, stride, padding, dilation, groups, True)
    np.testing.assert_array_equal(gw.get(), gw_ref)
    np.testing.assert_array_equal(gb.get(), gb_ref)


def test_conv2d_cuda_column_chunks(rng):
    """One image's column matrix (64*3*3 rows x 160*160 columns, float32: 59 MB) nearly fills
    the 64 MiB column budget, so the 3 images run as 3 chunks: forward, the col2im of each
    chunk and grad_w accumulated across chunks, all integer-exact against the CPU kernels."""
    case = (3, 64, 160, 160, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1)
    stride, padding, dilation, groups = geometry(case)
    x, w, b, gy = make_inputs(rng, case, np.float32, integer=True)
    y = conv2d_forward(dev(x), dev(w), dev(b), stride, padding, dilation, groups).get()
    np.testing.assert_array_equal(y, _C.conv2d_forward(x, w, b, stride, padding, dilation, groups))
    gx = conv2d_backward_input(dev(w), dev(gy), x.shape, stride, padding, dilation, groups).get()
    np.testing.assert_array_equal(gx, _C.conv2d_backward_input(w, gy, x.shape, stride, padding, dilation, groups))
    gw, gb = conv2d_backward_weight(dev(x), dev(gy), w.shape, stride, padding, dilation, groups, True)
    gw_ref, gb_ref = _C.conv2d_backward_weight(x, gy, w.shape, stride, padding, dilation, groups, True)
    np.testing.assert_array_equal(gw.get(), gw_ref)
    np.testing.assert_array_equal(gb.get(), gb_ref)


def test_conv2d_cuda_non_contiguous_inputs(rng):
    """Transposed views are copied to contiguous arrays first: same bits as contiguous inputs."""
    case = CASES["groups2_dilation2"]
    stride, padding, dilation, groups = geometry(case)
    x, w, b, gy = make_inputs(rng, case, np.float32)
    x_view = dev(np.ascontiguousarray(x.swapaxes(2, 3))).swapaxes(2, 3)
    gy_view = dev(np.ascontiguousarray(gy.swapaxes(2, 3))).swapaxes(2, 3)
    assert not x_view.is_contiguous() and not gy_view.is_contiguous()
    np.testing.assert_array_equal(conv2d_forward(x_view, dev(w), dev(b), stride, padding, dilation, groups).get(),
                                  conv2d_forward(dev(x), dev(w), dev(b), stride, padding, dilation, groups).get())
    np.testing.assert_array_equal(
        conv2d_backward_input(dev(w), gy_view, x.shape, stride, padding, dilation, groups).get(),
        conv2d_backward_input(dev(w), dev(gy), x.shape, stride, padding, dilation, groups).get())
    gw_view, _ = conv2d_backward_weight(x_view, gy_view, w.shape, stride, padding, dilation, groups, False)
    gw, _ = conv2d_backward_weight(dev(x), dev(gy), w.shape, stride, padding, dilation, groups, False)
    np.testing.assert_array_equal(gw_view.get(), gw.get())


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", ["lenet_conv1", "lenet_conv2", "groups_over_images"])
def test_conv2d_cuda_run_twice_same_bits(rng, name, dtype):
    """Forward and every backward kernel give the same bits on a second run (no atomics)."""
    case = CASES[name]
    stride, padding, dilation, groups = geometry(case)
    x, w, b, gy = [dev(a) for a in make_inputs(rng, case, dtype)]

    def run():
        y = conv2d_forward(x, w, b, stride, padding, dilation, groups)
        gx = conv2d_backward_input(w, gy, x.shape, stride, padding, dilation, groups)
        gw, gb = conv2d_backward_weight(x, gy, w.shape, stride, padding, dilation, groups, True)
        return [a.get().tobytes() for a in (y, gx, gw, gb)]

    first, second = run(), run()
    for label, a, b2 in zip(["y", "grad_x", "grad_w", "grad_bias"], first, second):
        assert a == b2, f"{name}: {label} differs between two runs"


# ---- bad inputs ---------------------------------------------------------------------------


def test_conv2d_cuda_bad_inputs_raise_clear_errors(rng):
    x = dev(rng.standard_normal((2, 4, 9, 9)).astype(np.float32))
    w = dev(rng.standard_normal((6, 2, 3, 3)).astype(np.float32))
    gy = dev(rng.standard_normal((2, 6, 7, 7)).astype(np.float32))
    geo = ((1, 1), (0, 0), (1, 1))
    with pytest.raises(TypeError, match="conv2d_forward: x must be float32 or float64, got int64"):
        conv2d_forward(dev(np.ones((2, 4, 9, 9), np.int64)), w, None, *geo, 2)
    with pytest.raises(TypeError, match="conv2d_forward: w must have the dtype of x"):
        conv2d_forward(x, dev(np.ones((6, 2, 3, 3))), None, *geo, 2)
    with pytest.raises(TypeError, match="conv2d_forward: x must be a CudaArray, got ndarray"):
        conv2d_forward(np.ones((2, 4, 9, 9), np.float32), w, None, *geo, 2)
    with pytest.raises(ValueError, match=r"conv2d_forward: x must be 4-D \(N, C, H, W\), got shape \(4, 9, 9\)"):
        conv2d_forward(x[0], w, None, *geo, 2)
    with pytest.raises(ValueError, match="input channels C = 4 must be divisible by groups = 3"):
        conv2d_forward(x, w, None, *geo, 3)
    with pytest.raises(ValueError, match="weight must have C/groups = 4 input channels"):
        conv2d_forward(x, w, None, *geo, 1)
    with pytest.raises(ValueError, match="is larger than the padded input"):
        conv2d_forward(x, dev(np.ones((6, 2, 11, 3), np.float32)), None, *geo, 2)
    with pytest.raises(ValueError, match=r"stride must be >= 1, got \(0, 1\)"):
        conv2d_forward(x, w, None, (0, 1), (0, 0), (1, 1), 2)
    with pytest.raises(ValueError, match=r"padding must be >= 0, got \(-1, 0\)"):
        conv2d_forward(x, w, None, (1, 1), (-1, 0), (1, 1), 2)
    with pytest.raises(TypeError, match="conv2d_forward: stride must be a sequence of 2 ints"):
        conv2d_forward(x, w, None, (1.5, 1), (0, 0), (1, 1), 2)
    with pytest.raises(ValueError, match=r"bias must have shape \(6,\), got \(5,\)"):
        conv2d_forward(x, w, dev(np.ones(5, np.float32)), *geo, 2)
    with pytest.raises(ValueError, match=r"conv2d_backward_input: grad_y must have shape \(2, 6, 7, 7\)"):
        conv2d_backward_input(w, dev(np.ones((2, 6, 8, 7), np.float32)), (2, 4, 9, 9), *geo, 2)
    with pytest.raises(TypeError, match="conv2d_backward_input: grad_y must have the dtype of w"):
        conv2d_backward_input(w, dev(np.ones((2, 6, 7, 7))), (2, 4, 9, 9), *geo, 2)
    with pytest.raises(ValueError, match=r"conv2d_backward_weight: grad_y must have shape \(2, 6, 7, 7\)"):
        conv2d_backward_weight(x, dev(np.ones((2, 5, 7, 7), np.float32)), (6, 2, 3, 3), *geo, 2, True)
    with pytest.raises(ValueError, match="conv2d_backward_weight: output channels C_out = 5 must be divisible"):
        conv2d_backward_weight(x, gy, (5, 2, 3, 3), *geo, 2, True)


def test_conv2d_cuda_binding_checks_geometry(rng):
    """The raw binding refuses an inconsistent geometry or dtype before launching anything."""
    case = CASES["odd_7x7_pad1"]
    x, w, b, gy = [dev(a) for a in make_inputs(rng, case, np.float32)]
    y = dev(np.zeros(gy.shape, np.float32))
    g = raw_geometry(case)
    code = DTYPE_CODE[np.dtype(np.float32)]
    bad_oh = list(g)
    bad_oh[7] += 1
    with pytest.raises(ValueError, match="conv2d_forward: output size does not follow"):
        _C.cuda.conv2d_forward(x.ptr, w.ptr, b.ptr, y.ptr, code, bad_oh, 0)
    with pytest.raises(ValueError, match="conv2d_forward: dtype must be float32 or float64, got int64"):
        _C.cuda.conv2d_forward(x.ptr, w.ptr, b.ptr, y.ptr, DTYPE_CODE[np.dtype(np.int64)], g, 0)
    with pytest.raises(ValueError, match="conv2d_backward_input: geometry must hold 16 ints, got 15"):
        _C.cuda.conv2d_backward_input(w.ptr, gy.ptr, x.ptr, code, g[:15], 0)
    bad_groups = list(g)
    bad_groups[15] = 2
    with pytest.raises(ValueError, match="conv2d_backward_weight: C and C_out must be divisible by groups"):
        _C.cuda.conv2d_backward_weight(x.ptr, gy.ptr, w.ptr, 0, code, bad_groups, 0)
