"""conv2d kernels (_C.conv2d_forward / _backward_input / _backward_weight) against a NumPy
float64 oracle written from the definition, on every ISA, float32 and float64."""
import numpy as np
import pytest

from dlcore import _C
from helpers import assert_close_reduction

DTYPES = [np.float32, np.float64]

# (N, C, H, W, C_out, (KH, KW), stride, padding, dilation, groups)
CASES = {
    "lenet_conv1": (64, 1, 28, 28, 6, (5, 5), (1, 1), (2, 2), (1, 1), 1),
    "lenet_conv2": (64, 6, 14, 14, 16, (5, 5), (1, 1), (0, 0), (1, 1), 1),
    "odd_7x7_pad1": (3, 3, 7, 7, 5, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    "all_ones_1x1": (1, 1, 1, 1, 1, (1, 1), (1, 1), (0, 0), (1, 1), 1),
    "stride2_13x13": (3, 3, 13, 13, 5, (3, 3), (2, 2), (1, 1), (1, 1), 1),
    "stride3_mixed": (3, 3, 13, 7, 1, (3, 2), (3, 2), (2, 1), (1, 1), 1),
    "dilation2_groups2": (3, 4, 13, 13, 6, (3, 3), (1, 1), (2, 2), (2, 2), 2),
    "dilation_rect": (1, 3, 7, 13, 5, (2, 3), (1, 2), (1, 0), (2, 1), 1),
    "depthwise": (3, 5, 7, 7, 5, (3, 3), (1, 1), (1, 1), (1, 1), 5),
    "depthwise_x2_stride2": (3, 3, 7, 13, 6, (3, 3), (2, 2), (1, 1), (1, 1), 3),
    "pointwise_direct": (3, 6, 7, 13, 5, (1, 1), (1, 1), (0, 0), (1, 1), 1),
    "pointwise_groups": (3, 4, 7, 7, 6, (1, 1), (1, 1), (0, 0), (1, 1), 2),
    "pointwise_stride2_pad1": (3, 3, 7, 7, 5, (1, 1), (2, 2), (1, 1), (1, 1), 1),
    "kernel_as_input": (3, 3, 7, 7, 5, (7, 7), (1, 1), (0, 0), (1, 1), 1),
    "kernel_as_input_pad": (1, 1, 13, 13, 1, (13, 13), (3, 3), (2, 2), (1, 1), 1),
    "row_1x13": (3, 3, 1, 13, 5, (1, 3), (1, 1), (0, 1), (1, 1), 1),
    "n1_parallel_im2col": (1, 8, 32, 32, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    # Direct path (stride 1, >= 6 output channels per group): partial row blocks, groups,
    # dilation, uneven padding; the transposed conv of backward_input and the wide-position
    # backward_weight (junk under a quarter of P) each taken by one case.
    "direct_groups_dilation": (3, 4, 11, 9, 14, (3, 2), (1, 1), (2, 1), (2, 3), 2),
    "direct_backward_input": (3, 7, 9, 10, 6, (3, 3), (1, 1), (1, 0), (1, 2), 1),
    "direct_backward_weight": (2, 3, 30, 31, 13, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    # The direct path's variants (csrc/cpu/ref/conv2d.cpp), each shape taking the one named
    # (forced algo='direct' in test_conv2d_direct_variants; 'auto' on 2 threads where noted).
    # Channels in vector (direct_cv.cpp), 16 channels per group: groups, padding, a last row
    # tile of 1 row; forward and backward_weight under 'auto'.
    "cv_groups_pad": (3, 4, 9, 11, 32, (3, 3), (1, 1), (1, 1), (1, 1), 2),
    # 20 channels: a partial channel block (20 of 32 lanes, 12 zero); 'auto' takes it too.
    "cv_partial_block": (2, 3, 7, 7, 20, (3, 3), (1, 1), (0, 0), (1, 1), 1),
    # 23 channels (16 + 7) over P = 36 = 32 + 4 positions: the transposes' 4-position tail
    # (AVX-512 float) for a full and a partial channel block.
    "cv_partial_tail": (2, 3, 8, 8, 23, (3, 3), (1, 1), (0, 0), (1, 1), 1),
    # OW = 30: three column chunks of 10 per output row.
    "cv_wide_rows": (2, 3, 6, 30, 16, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    # 7x9 kernel: backward_weight tap tiles of 5 + 2 rows x 5 + 4 columns.
    "cv_big_kernel": (2, 2, 9, 11, 16, (7, 9), (1, 1), (1, 2), (1, 1), 1),
    # Batch in vector (direct_bv.cpp), backward_input of layers with <= 8 input channels and
    # at least V images a thread (33-35 images: 2 threads of 16 lanes, a last group of 1-3):
    # LeNet-like 5x5 unpadded; a 3x5 kernel padded (1, 2), odd widths; OW = 30 in column
    # tiles, 8 input channels.
    "bv_lenet_like": (33, 6, 9, 11, 5, (5, 5), (1, 1), (0, 0), (1, 1), 1),
    "bv_pad_rect": (34, 3, 7, 13, 4, (3, 5), (1, 1), (1, 2), (1, 1), 1),
    "bv_wide": (35, 8, 5, 30, 3, (3, 3), (1, 1), (0, 1), (1, 1), 1),
    # Pointwise (pointwise.cpp): P = 153 = 64 + 64 + 16 + a copied tail of 9; P = 96 = 64 + 32;
    # backward_weight with 14 and 7 output channels (one partial vector).
    "pointwise_tail": (2, 20, 9, 17, 14, (1, 1), (1, 1), (0, 0), (1, 1), 1),
    "pointwise_no_tail": (2, 10, 8, 12, 7, (1, 1), (1, 1), (0, 0), (1, 1), 1),
    # 70 output channels: backward_weight's channel tiles of 64 + 6 (AVX-512 float), input
    # channels in row blocks of 6 + 1.
    "pointwise_many_out": (2, 7, 5, 9, 70, (1, 1), (1, 1), (0, 0), (1, 1), 1),
    # 300 input channels: forward sums them in two passes of at most 256 on AVX-512 (y and the
    # copied tail of 5 columns carried between passes).
    "pointwise_deep": (2, 300, 3, 7, 8, (1, 1), (1, 1), (0, 0), (1, 1), 1),
    # Five whole vectors and no tail (P = 80 float, 40 double on AVX-512): forward strips of 3 + 2
    # vectors instead of 4 + 1; 10 and 9 output channels end in 4- and 3-row tiles.
    "pointwise_split": (2, 9, 8, 10, 10, (1, 1), (1, 1), (0, 0), (1, 1), 1),
    "pointwise_split_f64": (2, 5, 5, 8, 9, (1, 1), (1, 1), (0, 0), (1, 1), 1),
}


def out_size(size, k, stride, pad, dil):
    return (size + 2 * pad - dil * (k - 1) - 1) // stride + 1


def windows(xp, kh, kw, oh, ow, stride, dilation):
    """xp (N, C, Hp, Wp) -> the (N, C, OH, OW) view read by kernel offset (kh, kw)."""
    h0, w0 = kh * dilation[0], kw * dilation[1]
    return xp[:, :, h0 : h0 + stride[0] * (oh - 1) + 1 : stride[0], w0 : w0 + stride[1] * (ow - 1) + 1 : stride[1]]


def ref_forward(x, w, b, stride, padding, dilation, groups):
    """y (N, C_out, OH, OW) in float64, straight from the definition."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, c, h, wd = x.shape
    c_out, cg, kh_, kw_ = w.shape
    cog = c_out // groups
    oh, ow = out_size(h, kh_, stride[0], padding[0], dilation[0]), out_size(wd, kw_, stride[1], padding[1], dilation[1])
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    y = np.zeros((n, c_out, oh, ow))
    for kh in range(kh_):
        for kw in range(kw_):
            win = windows(xp, kh, kw, oh, ow, stride, dilation)
            for g in range(groups):
                y[:, g * cog : (g + 1) * cog] += np.einsum(
                    "nchw,oc->nohw", win[:, g * cg : (g + 1) * cg], w[g * cog : (g + 1) * cog, :, kh, kw]
                )
    if b is not None:
        y += b.astype(np.float64)[None, :, None, None]
    return y


def ref_backward_input(w, gy, x_shape, stride, padding, dilation, groups):
    """grad_x of sum(y * gy): the adjoint of ref_forward in x."""
    w, gy = w.astype(np.float64), gy.astype(np.float64)
    n, c, h, wd = x_shape
    c_out, cg, kh_, kw_ = w.shape
    cog = c_out // groups
    oh, ow = gy.shape[2:]
    gxp = np.zeros((n, c, h + 2 * padding[0], wd + 2 * padding[1]))
    for kh in range(kh_):
        for kw in range(kw_):
            win = windows(gxp, kh, kw, oh, ow, stride, dilation)
            for g in range(groups):
                win[:, g * cg : (g + 1) * cg] += np.einsum(
                    "nohw,oc->nchw", gy[:, g * cog : (g + 1) * cog], w[g * cog : (g + 1) * cog, :, kh, kw]
                )
    return gxp[:, :, padding[0] : padding[0] + h, padding[1] : padding[1] + wd]


def ref_backward_weight(x, gy, w_shape, stride, padding, dilation, groups):
    """(grad_w, grad_bias) of sum(y * gy): the adjoint of ref_forward in w and bias."""
    x, gy = x.astype(np.float64), gy.astype(np.float64)
    c_out, cg, kh_, kw_ = w_shape
    cog = c_out // groups
    oh, ow = gy.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    gw = np.zeros(w_shape)
    for kh in range(kh_):
        for kw in range(kw_):
            win = windows(xp, kh, kw, oh, ow, stride, dilation)
            for g in range(groups):
                gw[g * cog : (g + 1) * cog, :, kh, kw] = np.einsum(
                    "nohw,nchw->oc", gy[:, g * cog : (g + 1) * cog], win[:, g * cg : (g + 1) * cg]
                )
    return gw, gy.sum(axis=(0, 2, 3))


def make_inputs(rng, case, dtype, integer=False):
    n, c, h, wd, c_out, (kh, kw), stride, padding, dilation, groups = case
    oh, ow = out_size(h, kh, stride[0], padding[0], dilation[0]), out_size(wd, kw, stride[1], padding[1], dilation[1])
    shapes = [(n, c, h, wd), (c_out, c // groups, kh, kw), (c_out,), (n, c_out, oh, ow)]
    if integer:
        return [rng.integers(-3, 4, size=s).astype(dtype) for s in shapes]
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def geometry(case):
    return case[6], case[7], case[8], case[9]


def check_directions(x, w, b, gy, case, dtype, what, algo="auto"):
    """Forward (with bias), backward_input and backward_weight (with grad_bias) under `algo`
    against the float64 oracle, each within its reduction's rounding bound; returns gw_ref,
    gw_abs for further checks of the weight gradient."""
    stride, padding, dilation, groups = geometry(case)
    c_out, cg, kh, kw = w.shape
    n, _, oh, ow = gy.shape
    y = _C.conv2d_forward(x, w, b, stride, padding, dilation, groups, algo=algo)
    assert y.dtype == dtype
    assert_close_reduction(
        y, ref_forward(x, w, b, stride, padding, dilation, groups),
        ref_forward(np.abs(x), np.abs(w), np.abs(b), stride, padding, dilation, groups),
        cg * kh * kw + 1, dtype, what=f"conv2d_forward {what}")
    gx = _C.conv2d_backward_input(w, gy, x.shape, stride, padding, dilation, groups, algo=algo)
    assert gx.dtype == dtype
    assert_close_reduction(
        gx, ref_backward_input(w, gy, x.shape, stride, padding, dilation, groups),
        ref_backward_input(np.abs(w), np.abs(gy), x.shape, stride, padding, dilation, groups),
        (c_out // groups) * kh * kw, dtype, what=f"conv2d_backward_input {what}")
    gw, gb = _C.conv2d_backward_weight(x, gy, w.shape, stride, padding, dilation, groups, True, algo=algo)
    gw_ref, gb_ref = ref_backward_weight(x, gy, w.shape, stride, padding, dilation, groups)
    gw_abs, gb_abs = ref_backward_weight(np.abs(x), np.abs(gy), w.shape, stride, padding, dilation, groups)
    assert gw.dtype == dtype and gb.dtype == dtype
    assert_close_reduction(gw, gw_ref, gw_abs, n * oh * ow, dtype, what=f"conv2d_backward_weight {what}")
    assert_close_reduction(gb, gb_ref, gb_abs, n * oh * ow, dtype, what=f"conv2d grad_bias {what}")
    return gw_ref, gw_abs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_conv2d_vs_reference(isa, rng, name, dtype):
    case = CASES[name]
    stride, padding, dilation, groups = geometry(case)
    x, w, b, gy = make_inputs(rng, case, dtype)
    _, cg, kh, kw = w.shape
    n, _, oh, ow = gy.shape
    what = f"{name} {isa} {np.dtype(dtype).name}"
    gw_ref, gw_abs = check_directions(x, w, b, gy, case, dtype, what)
    y_nobias = _C.conv2d_forward(x, w, None, stride, padding, dilation, groups)
    assert_close_reduction(
        y_nobias,
        ref_forward(x, w, None, stride, padding, dilation, groups),
        ref_forward(np.abs(x), np.abs(w), None, stride, padding, dilation, groups),
        cg * kh * kw,
        dtype,
        what=f"conv2d_forward (no bias) {what}",
    )
    gw2, gb2 = _C.conv2d_backward_weight(x, gy, w.shape, stride, padding, dilation, groups, False)
    assert gb2 is None
    assert_close_reduction(gw2, gw_ref, gw_abs, n * oh * ow, dtype, what=f"conv2d_backward_weight {what}")


# Every shape the direct path takes (stride 1), forced: the wide variant, the channels-in-vector
# one, pointwise, and the transposed conv of backward_input with its skipped padding rows.
# (backward_input's direct path also needs padding <= (kernel - 1) * dilation.)
DIRECT_CASES = [name for name, (*_, k, stride, pad, dil, _g) in CASES.items()
                if stride == (1, 1) and all((k[i] - 1) * dil[i] >= pad[i] for i in (0, 1))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", DIRECT_CASES)
def test_conv2d_direct_variants(isa, rng, name, dtype):
    """algo='direct' (and 'gemm' on the same inputs) against the float64 oracle."""
    case = CASES[name]
    x, w, b, gy = make_inputs(rng, case, dtype)
    for algo in ("direct", "gemm"):
        check_directions(x, w, b, gy, case, dtype, f"{name} {isa} {np.dtype(dtype).name} algo={algo}", algo)


@pytest.mark.parametrize("name", ["lenet_conv2", "direct_backward_input", "cv_groups_pad", "cv_partial_block", "cv_partial_tail",
                                  "cv_wide_rows", "cv_big_kernel", "bv_lenet_like", "bv_pad_rect", "bv_wide",
                                  "pointwise_tail", "pointwise_no_tail",
                                  "pointwise_many_out", "pointwise_deep", "pointwise_groups",
                                  "pointwise_split", "pointwise_split_f64",
                                  "direct_groups_dilation"])
@pytest.mark.parametrize("threads", [1, 4], indirect=True)  # 1 thread, and more threads than images
def test_conv2d_direct_integer_exact(isa, rng, threads, name):
    """Small integers, algo='direct' at 1 and 4 threads: bitwise equal to the oracle (an indexing
    slip in a variant's tiles, edges or transposes shows here even when it hides in rounding)."""
    case = CASES[name]
    stride, padding, dilation, groups = geometry(case)
    x, w, b, gy = make_inputs(rng, case, np.float32, integer=True)
    np.testing.assert_array_equal(
        _C.conv2d_forward(x, w, b, stride, padding, dilation, groups, algo="direct"),
        ref_forward(x, w, b, stride, padding, dilation, groups))
    np.testing.assert_array_equal(
        _C.conv2d_backward_input(w, gy, x.shape, stride, padding, dilation, groups, algo="direct"),
        ref_backward_input(w, gy, x.shape, stride, padding, dilation, groups))
    gw, gb = _C.conv2d_backward_weight(x, gy, w.shape, stride, padding, dilation, groups, True, algo="direct")
    gw_ref, gb_ref = ref_backward_weight(x, gy, w.shape, stride, padding, dilation, groups)
    np.testing.assert_array_equal(gw, gw_ref)
    np.testing.assert_array_equal(gb, gb_ref)


@pytest.mark.parametrize("algo", ["direct", "gemm"])
@pytest.mark.parametrize("name", ["lenet_conv1", "lenet_conv2", "cv_partial_block", "cv_partial_tail", "pointwise_tail",
                                  "pointwise_deep",
                                  "direct_groups_dilation"])
def test_conv2d_relu_epilogue(isa, rng, name, algo):
    """relu=True is exactly relu of the plain forward on each path (NaN kept, no -0), float32."""
    case = CASES[name]
    stride, padding, dilation, groups = geometry(case)
    x, w, b, _ = make_inputs(rng, case, np.float32)
    x[0, 0, x.shape[2] // 2, x.shape[3] // 2] = np.nan
    plain = _C.conv2d_forward(x, w, b, stride, padding, dilation, groups, algo=algo)
    fused = _C.conv2d_forward(x, w, b, stride, padding, dilation, groups, algo=algo, relu=True)
    np.testing.assert_array_equal(fused, np.where(plain <= 0, np.float32(0), plain))
    assert np.isnan(fused).any() and not np.signbit(fused[fused == 0]).any()


INTEGER_CASES = ["lenet_conv2", "stride3_mixed", "dilation2_groups2", "depthwise_x2_stride2", "pointwise_groups",
                 "kernel_as_input_pad", "n1_parallel_im2col", "direct_groups_dilation", "direct_backward_input",
                 "direct_backward_weight"]


@pytest.mark.parametrize("name", INTEGER_CASES)
def test_conv2d_integer_exact(isa, rng, name):
    """Small integers in float32: every sum is exact, so the result must equal the oracle bitwise."""
    case = CASES[name]
    stride, padding, dilation, groups = geometry(case)
    x, w, b, gy = make_inputs(rng, case, np.float32, integer=True)
    y = _C.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    np.testing.assert_array_equal(y, ref_forward(x, w, b, stride, padding, dilation, groups))
    gx = _C.conv2d_backward_input(w, gy, x.shape, stride, padding, dilation, groups)
    np.testing.assert_array_equal(gx, ref_backward_input(w, gy, x.shape, stride, padding, dilation, groups))
    gw, gb = _C.conv2d_backward_weight(x, gy, w.shape, stride, padding, dilation, groups, True)
    gw_ref, gb_ref = ref_backward_weight(x, gy, w.shape, stride, padding, dilation, groups)
    np.testing.assert_array_equal(gw, gw_ref)
    np.testing.assert_array_equal(gb, gb_ref)


@pytest.mark.parametrize("name", ["odd_7x7_pad1", "dilation2_groups2", "pointwise_direct", "direct_groups_dilation",
                                  "direct_backward_input", "direct_backward_weight"])
@pytest.mark.parametrize("threads", [1, 4], indirect=True)  # 1 thread, and more threads than images
def test_conv2d_thread_counts_integer_exact(isa, rng, threads, name):
    """Both parallel strategies (per image, per gemm) give the exact integer result."""
    case = CASES[name]
    stride, padding, dilation, groups = geometry(case)
    x, w, b, gy = make_inputs(rng, case, np.float64, integer=True)
    np.testing.assert_array_equal(
        _C.conv2d_forward(x, w, b, stride, padding, dilation, groups),
        ref_forward(x, w, b, stride, padding, dilation, groups),
    )
    np.testing.assert_array_equal(
        _C.conv2d_backward_input(w, gy, x.shape, stride, padding, dilation, groups),
        ref_backward_input(w, gy, x.shape, stride, padding, dilation, groups),
    )
    gw, gb = _C.conv2d_backward_weight(x, gy, w.shape, stride, padding, dilation, groups, True)
    gw_ref, gb_ref = ref_backward_weight(x, gy, w.shape, stride, padding, dilation, groups)
    np.testing.assert_array_equal(gw, gw_ref)
    np.testing.assert_array_equal(gb, gb_ref)


def test_conv2d_finite_differences(rng):
    """The float64 oracle's adjoints match central differences of sum(y * gy) on a tiny shape."""
    stride, padding, dilation, groups = (2, 1), (1, 2), (1, 2), 2
    x = rng.standard_normal((2, 4, 5, 6))
    w = rng.standard_normal((2, 2, 2, 3))
    b = rng.standard_normal(2)
    gy = rng.standard_normal(_C.conv2d_forward(x, w, b, stride, padding, dilation, groups).shape)

    def loss(x_, w_, b_):
        return float((_C.conv2d_forward(x_, w_, b_, stride, padding, dilation, groups) * gy).sum())

    gx = _C.conv2d_backward_input(w, gy, x.shape, stride, padding, dilation, groups)
    gw, gb = _C.conv2d_backward_weight(x, gy, w.shape, stride, padding, dilation, groups, True)
    h = 1e-6
    for arr, grad in ((x, gx), (w, gw), (b, gb)):
        num = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            orig = arr[i]
            arr[i] = orig + h
            up = loss(x, w, b)
            arr[i] = orig - h
            down = loss(x, w, b)
            arr[i] = orig
            num[i] = (up - down) / (2 * h)
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-7)


# ---- bad inputs ---------------------------------------------------------------------------

GEOM = ((1, 1), (0, 0), (1, 1), 1)


def f32(*shape):
    return np.ones(shape, np.float32) * 0.5


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: _C.conv2d_forward(f32(3, 8, 8), f32(2, 3, 3, 3), None, *GEOM), ValueError,
         r"conv2d_forward: x must be 4-D \(N, C, H, W\), got shape \(3, 8, 8\)"),
        (lambda: _C.conv2d_forward(f32(1, 3, 8, 8), f32(2, 3, 3), None, *GEOM), ValueError,
         r"conv2d_forward: w must be 4-D"),
        (lambda: _C.conv2d_forward(f32(1, 3, 8, 8), f32(2, 3, 3, 3), None, (1, 1), (0, 0), (1, 1), 2), ValueError,
         r"conv2d_forward: input channels C = 3 must be divisible by groups = 2"),
        (lambda: _C.conv2d_forward(f32(1, 4, 8, 8), f32(3, 2, 3, 3), None, (1, 1), (0, 0), (1, 1), 2), ValueError,
         r"conv2d_forward: output channels C_out = 3 must be divisible by groups = 2"),
        (lambda: _C.conv2d_forward(f32(1, 4, 8, 8), f32(2, 4, 3, 3), None, (1, 1), (0, 0), (1, 1), 2), ValueError,
         r"conv2d_forward: weight must have C/groups = 2 input channels"),
        (lambda: _C.conv2d_forward(f32(1, 3, 8, 8), f32(2, 3, 3, 3), None, (0, 1), (0, 0), (1, 1), 1), ValueError,
         r"conv2d_forward: stride must be >= 1, got \(0, 1\)"),
        (lambda: _C.conv2d_forward(f32(1, 3, 8, 8), f32(2, 3, 3, 3), None, (1, 1), (0, -1), (1, 1), 1), ValueError,
         r"conv2d_forward: padding must be >= 0, got \(0, -1\)"),
        (lambda: _C.conv2d_forward(f32(1, 3, 8, 8), f32(2, 3, 3, 3), None, (1, 1), (0, 0), (1, 0), 1), ValueError,
         r"conv2d_forward: dilation must be >= 1, got \(1, 0\)"),
        (lambda: _C.conv2d_forward(f32(1, 3, 8, 8), f32(2, 3, 3, 3), None, (1, 1), (0, 0), (1, 1), 0), ValueError,
         r"conv2d_forward: groups must be >= 1, got 0"),
        (lambda: _C.conv2d_forward(f32(1, 1, 3, 3), f32(1, 1, 5, 5), None, *GEOM), ValueError,
         r"conv2d_forward: kernel \(5, 5\) with dilation \(1, 1\) is larger than the padded input \(3, 3\)"),
        (lambda: _C.conv2d_forward(f32(1, 1, 5, 5), f32(1, 1, 3, 3), None, (1, 1), (0, 0), (3, 1), 1), ValueError,
         r"conv2d_forward: kernel \(3, 3\) with dilation \(3, 1\) is larger than the padded input \(5, 5\)"),
        (lambda: _C.conv2d_forward(f32(1, 1, 5, 5), f32(1, 1, 3, 3), None, (1, 1), (2**62, 0), (1, 1), 1), ValueError,
         r"conv2d_forward: sizes too large"),
        (lambda: _C.conv2d_forward(f32(0, 3, 8, 8), f32(2, 3, 3, 3), None, *GEOM), ValueError,
         r"conv2d_forward: input is empty"),
        (lambda: _C.conv2d_forward(f32(1, 3, 8, 8), f32(0, 3, 3, 3), None, *GEOM), ValueError,
         r"conv2d_forward: weight is empty"),
        (lambda: _C.conv2d_forward(f32(1, 3, 8, 8)[:, :, :, ::2], f32(2, 3, 3, 3), None, *GEOM), ValueError,
         r"conv2d_forward: x must be C-contiguous"),
        (lambda: _C.conv2d_forward(f32(1, 3, 8, 8), f32(2, 3, 3, 3), f32(3), *GEOM), ValueError,
         r"conv2d_forward: bias must have shape \(2,\), got \(3,\)"),
        (lambda: _C.conv2d_forward(f32(1, 3, 8, 8), f32(2, 3, 3, 3), np.ones(2), *GEOM), TypeError,
         r"conv2d_forward: bias must have the dtype of x"),
        (lambda: _C.conv2d_forward(f32(1, 3, 8, 8), np.ones((2, 3, 3, 3)), None, *GEOM), TypeError,
         r"conv2d_forward: w must have the dtype of x \(float32\), got float64"),
        (lambda: _C.conv2d_forward(np.ones((1, 3, 8, 8), np.int64), np.ones((2, 3, 3, 3), np.int64), None, *GEOM),
         TypeError, r"conv2d_forward: x must be float32 or float64, got int64"),
        (lambda: _C.conv2d_backward_input(f32(2, 3, 3, 3), f32(1, 2, 5, 5), (1, 3, 8, 8), *GEOM), ValueError,
         r"conv2d_backward_input: grad_y must have shape \(1, 2, 6, 6\), got \(1, 2, 5, 5\)"),
        (lambda: _C.conv2d_backward_input(f32(2, 3, 3, 3), f32(2, 6, 6), (1, 3, 8, 8), *GEOM), ValueError,
         r"conv2d_backward_input: grad_y must be 4-D"),
        (lambda: _C.conv2d_backward_input(f32(2, 3, 3, 3), f32(1, 2, 6, 6), (1, 0, 8, 8), *GEOM), ValueError,
         r"conv2d_backward_input: input is empty"),
        (lambda: _C.conv2d_backward_input(f32(2, 3, 3, 3), np.ones((1, 2, 6, 6)), (1, 3, 8, 8), *GEOM), TypeError,
         r"conv2d_backward_input: grad_y must have the dtype of w"),
        (lambda: _C.conv2d_backward_input(f32(2, 3, 3, 3), f32(1, 2, 6, 6), (1, 3, 8, 8), (1, 1), (0, 0), (1, 1), 3),
         ValueError, r"conv2d_backward_input: output channels C_out = 2 must be divisible by groups = 3"),
        (lambda: _C.conv2d_backward_weight(f32(1, 3, 8, 8), f32(1, 2, 6, 7), (2, 3, 3, 3), *GEOM, True), ValueError,
         r"conv2d_backward_weight: grad_y must have shape \(1, 2, 6, 6\), got \(1, 2, 6, 7\)"),
        (lambda: _C.conv2d_backward_weight(f32(1, 3, 8, 8), f32(1, 2, 6, 6), (2, 2, 3, 3), *GEOM, True), ValueError,
         r"conv2d_backward_weight: weight must have C/groups = 3 input channels"),
        (lambda: _C.conv2d_backward_weight(f32(1, 3, 8, 8), np.ones((1, 2, 6, 6)), (2, 3, 3, 3), *GEOM, False),
         TypeError, r"conv2d_backward_weight: grad_y must have the dtype of x"),
        (lambda: _C.conv2d_backward_weight(f32(1, 3, 8, 8), f32(1, 2, 6, 6), (2, 3, 9, 3), *GEOM, True), ValueError,
         r"conv2d_backward_weight: kernel \(9, 3\) with dilation \(1, 1\) is larger than the padded input \(8, 8\)"),
    ],
)
def test_conv2d_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
