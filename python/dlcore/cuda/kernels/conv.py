"""conv2d on CudaArrays: the GPU mirrors of _C.conv2d_forward, conv2d_backward_input and
conv2d_backward_weight (csrc/bindings/ops_conv.cpp): same names, arguments, checks and
results. Inputs of any layout are made contiguous; outputs are new contiguous arrays on the
inputs' device. Kernels: csrc/cuda/conv.cu (im2col + the CUDA gemm, deterministic backward).
"""
import numpy as np

from dlcore import _C
from dlcore.cuda.array import DTYPE_CODE, CudaArray, contiguous, empty

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# Tensors and column matrices above this many elements are refused (as on the CPU), so no
# index product inside a kernel can overflow int64.
_MAX_ELEMS = 1 << 50


def check_float_array(op, name, a):
    """TypeError unless `a` is a float32 / float64 CudaArray."""
    if not isinstance(a, CudaArray):
        raise TypeError(f"{op}: {name} must be a CudaArray, got {type(a).__name__}")
    if a.dtype not in _FLOATS:
        raise TypeError(f"{op}: {name} must be float32 or float64, got {a.dtype}")


def check_like(op, ref_name, ref, name, a, dtype=True):
    """TypeError unless `a` is a CudaArray with ref's dtype (when `dtype`); ValueError unless it
    is on ref's device."""
    if not isinstance(a, CudaArray):
        raise TypeError(f"{op}: {name} must be a CudaArray, got {type(a).__name__}")
    if dtype and a.dtype != ref.dtype:
        raise TypeError(f"{op}: {name} must have the dtype of {ref_name} ({ref.dtype}), got {a.dtype}")
    if a.device != ref.device:
        raise ValueError(f"{op}: {name} is on cuda:{a.device} but {ref_name} is on cuda:{ref.device}")


def int_tuple(op, name, v, n):
    """v (a sequence of n ints) as a tuple of Python ints, or TypeError."""
    if (not isinstance(v, (tuple, list)) or len(v) != n
            or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in v)):
        raise TypeError(f"{op}: {name} must be a sequence of {n} ints, got {v!r}")
    return tuple(int(i) for i in v)


def check_shape(op, name, a, want, layout):
    if a.ndim != len(want):
        raise ValueError(f"{op}: {name} must be {len(want)}-D {layout}, got shape {a.shape}")
    if tuple(a.shape) != tuple(want):
        raise ValueError(f"{op}: {name} must have shape {tuple(want)}, got {a.shape}")


def _product(sizes):
    n = 1
    for s in sizes:
        n *= s
    return n


def _geometry(op, x_shape, w_shape, stride, padding, dilation, groups):
    """The geometry list the binding takes (Conv2dShape's fields in order), after the checks of
    ops_conv.cpp's conv_shape with its messages: ValueError naming the op and the values."""
    x_shape, w_shape = int_tuple(op, "x_shape", x_shape, 4), int_tuple(op, "w_shape", w_shape, 4)
    stride, padding = int_tuple(op, "stride", stride, 2), int_tuple(op, "padding", padding, 2)
    dilation = int_tuple(op, "dilation", dilation, 2)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    groups = int(groups)
    if min(x_shape) < 1:
        raise ValueError(f"{op}: input is empty or has a negative size (shape {x_shape})")
    if min(w_shape) < 1:
        raise ValueError(f"{op}: weight is empty or has a negative size (shape {w_shape})")
    if min(stride) < 1:
        raise ValueError(f"{op}: stride must be >= 1, got {stride}")
    if min(dilation) < 1:
        raise ValueError(f"{op}: dilation must be >= 1, got {dilation}")
    if min(padding) < 0:
        raise ValueError(f"{op}: padding must be >= 0, got {padding}")
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups}")
    N, C, H, W = x_shape
    C_out, Cg, KH, KW = w_shape
    if C % groups:
        raise ValueError(f"{op}: input channels C = {C} must be divisible by groups = {groups}")
    if C_out % groups:
        raise ValueError(f"{op}: output channels C_out = {C_out} must be divisible by groups = {groups}")
    if Cg != C // groups:
        raise ValueError(f"{op}: weight must have C/groups = {C // groups} input channels (C = {C}, "
                         f"groups = {groups}), got weight shape {w_shape}")
    padded = (H + 2 * padding[0], W + 2 * padding[1])
    span = (dilation[0] * (KH - 1) + 1, dilation[1] * (KW - 1) + 1)
    if span[0] > padded[0] or span[1] > padded[1]:
        raise ValueError(f"{op}: kernel {(KH, KW)} with dilation {dilation} is larger than the padded input "
                         f"{padded}")
    OH = (padded[0] - span[0]) // stride[0] + 1
    OW = (padded[1] - span[1]) // stride[1] + 1
    sizes = [x_shape, w_shape, (N, C_out, OH, OW), (C, KH, KW, OH, OW), stride, padding, dilation]
    if any(_product(s) > _MAX_ELEMS for s in sizes) or max(max(s) for s in sizes) > _MAX_ELEMS:
        raise ValueError(f"{op}: sizes too large: input {x_shape}, weight {w_shape}, output size ({OH}, {OW})")
    return [N, C, H, W, C_out, KH, KW, OH, OW, *stride, *padding, *dilation, groups]


def _check_algo(op, algo):
    """The CUDA convolution has one algorithm (im2col + gemm): 'auto' and 'gemm' name it."""
    if algo not in ("auto", "gemm"):
        raise ValueError(f"{op}: algo must be 'auto' or 'gemm' on CUDA (im2col + gemm is the only "
                         f"CUDA algorithm), got {algo!r}")


def conv2d_forward(x, w, bias, stride, padding, dilation, groups, algo="auto", relu=False):
    """y (N, C_out, OH, OW) := conv2d(x (N, C, H, W), w (C_out, C/groups, KH, KW)) + bias (C_out,)
    or None, then max(y, 0) when relu (on CUDA a second kernel, not fused). stride, padding,
    dilation are (h, w) pairs."""
    op = "conv2d_forward"
    _check_algo(op, algo)
    check_float_array(op, "x", x)
    check_like(op, "x", x, "w", w)
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be 4-D (N, C, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"{op}: w must be 4-D (C_out, C/groups, KH, KW), got shape {w.shape}")
    g = _geometry(op, x.shape, w.shape, stride, padding, dilation, groups)
    if bias is not None:
        check_like(op, "x", x, "bias", bias)
        check_shape(op, "bias", bias, (g[4],), "(C_out,)")
        bias = contiguous(bias)
    x, w = contiguous(x), contiguous(w)
    y = empty((g[0], g[4], g[7], g[8]), x.dtype, x.device)
    _C.cuda.conv2d_forward(x.ptr, w.ptr, 0 if bias is None else bias.ptr, y.ptr, DTYPE_CODE[x.dtype], g,
                           x.device)
    if relu:
        from dlcore.cuda.kernels.elementwise import unary_forward

        y = unary_forward(_C.UnaryOp.relu, y)
    return y


def conv2d_backward_input(w, grad_y, x_shape, stride, padding, dilation, groups, algo="auto"):
    """grad_x (x_shape) of conv2d from w and grad_y (N, C_out, OH, OW)."""
    op = "conv2d_backward_input"
    _check_algo(op, algo)
    check_float_array(op, "w", w)
    check_like(op, "w", w, "grad_y", grad_y)
    if w.ndim != 4:
        raise ValueError(f"{op}: w must be 4-D (C_out, C/groups, KH, KW), got shape {w.shape}")
    g = _geometry(op, x_shape, w.shape, stride, padding, dilation, groups)
    check_shape(op, "grad_y", grad_y, (g[0], g[4], g[7], g[8]), "(N, C_out, OH, OW)")
    w, grad_y = contiguous(w), contiguous(grad_y)
    grad_x = empty(tuple(g[:4]), w.dtype, w.device)
    _C.cuda.conv2d_backward_input(w.ptr, grad_y.ptr, grad_x.ptr, DTYPE_CODE[w.dtype], g, w.device)
    return grad_x


def conv2d_backward_weight(x, grad_y, w_shape, stride, padding, dilation, groups, bias, algo="auto"):
    """(grad_w (w_shape), grad_bias (C_out,) or None when bias is False) of conv2d from x and
    grad_y. Deterministic: the same bits every run."""
    op = "conv2d_backward_weight"
    _check_algo(op, algo)
    check_float_array(op, "x", x)
    check_like(op, "x", x, "grad_y", grad_y)
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be 4-D (N, C, H, W), got shape {x.shape}")
    g = _geometry(op, x.shape, w_shape, stride, padding, dilation, groups)
    check_shape(op, "grad_y", grad_y, (g[0], g[4], g[7], g[8]), "(N, C_out, OH, OW)")
    x, grad_y = contiguous(x), contiguous(grad_y)
    grad_w = empty(tuple(int(s) for s in w_shape), x.dtype, x.device)
    grad_bias = empty((g[4],), x.dtype, x.device) if bias else None
    _C.cuda.conv2d_backward_weight(x.ptr, grad_y.ptr, grad_w.ptr, 0 if grad_bias is None else grad_bias.ptr,
                                   DTYPE_CODE[x.dtype], g, x.device)
    return grad_w, grad_bias
