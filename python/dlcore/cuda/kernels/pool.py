"""max_pool2d and avg_pool2d on CudaArrays: the GPU mirrors of the _C pooling functions
(csrc/bindings/ops_pool.cpp): same names, arguments, checks and results, NCHW, float32 /
float64. Inputs of any layout are made contiguous; outputs are new contiguous arrays on the
inputs' device. Kernels: csrc/cuda/pool.cu (bitwise equal to the CPU kernels; backward is a
deterministic gather).
"""
import numpy as np

from dlcore import _C
from dlcore.cuda.array import DTYPE_CODE, CudaArray, contiguous, empty
from dlcore.cuda.kernels.conv import check_float_array, check_like, check_shape, int_tuple

_INT64 = np.dtype(np.int64)


def _out_size(size, k, stride, pad, dil, ceil_mode):
    """PyTorch's pooling_output_shape: floor or ceil division, then a ceil-mode window that
    would start in the right padding is dropped."""
    num = size + 2 * pad - dil * (k - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = num // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _geometry(op, x_shape, kernel, stride, padding, dilation, ceil_mode):
    """The geometry list the binding takes (Pool2dShape's fields in order), after the checks of
    ops_pool.cpp's pool_shape with its messages: ValueError naming the op and the values."""
    if not isinstance(x_shape, (tuple, list)) or len(x_shape) != 4:
        raise ValueError(f"{op}: input must be 4-D (N, C, H, W), got shape {tuple(x_shape)}")
    x_shape = int_tuple(op, "x_shape", x_shape, 4)
    kernel, stride = int_tuple(op, "kernel_size", kernel, 2), int_tuple(op, "stride", stride, 2)
    padding, dilation = int_tuple(op, "padding", padding, 2), int_tuple(op, "dilation", dilation, 2)
    N, C, H, W = x_shape
    if N < 0 or min(C, H, W) < 1:
        raise ValueError(f"{op}: input must have C, H, W >= 1 (N >= 0), got shape {x_shape}")
    for d in range(2):
        if kernel[d] < 1:
            raise ValueError(f"{op}: kernel_size must be >= 1, got {kernel}")
        if stride[d] < 1:
            raise ValueError(f"{op}: stride must be >= 1, got {stride}")
        if dilation[d] < 1:
            raise ValueError(f"{op}: dilation must be >= 1, got {dilation}")
        if padding[d] < 0:
            raise ValueError(f"{op}: padding must be >= 0, got {padding}")
        if padding[d] > kernel[d] // 2:
            raise ValueError(f"{op}: padding must be at most half of kernel_size, got padding {padding} "
                             f"and kernel_size {kernel}")
    OH = _out_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    OW = _out_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    if OH < 1 or OW < 1:
        raise ValueError(f"{op}: output size ({OH}, {OW}) is too small for input {x_shape} with kernel_size "
                         f"{kernel}, stride {stride}, padding {padding}, dilation {dilation}")
    limit = 1 << 50  # as the kernels require: no index product may overflow int64
    if (max(*x_shape, *kernel, *stride, *dilation) > limit or N * C * H * W > limit or N * C * OH * OW > limit):
        raise ValueError(f"{op}: sizes too large: input {x_shape}, output size ({OH}, {OW})")
    return [N, C, H, W, OH, OW, *kernel, *stride, *padding, *dilation]


def _check_input(op, x):
    check_float_array(op, "input", x)
    if x.ndim != 4:
        raise ValueError(f"{op}: input must be 4-D (N, C, H, W), got shape {x.shape}")


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode, index="plane"):
    """(y, index): max over each window; index int64 = h*W + w of the max in its plane (first
    on ties, a NaN wins; -1 for a window with no in-bounds element). index as _C's: "plane" and
    "window" both give the int64 plane index here (_C's uint8 window index has no CUDA kernel;
    backward tells the kinds apart by dtype), "none" gives None."""
    op = "max_pool2d_forward"
    _check_input(op, x)
    if index not in ("plane", "window", "none"):
        raise ValueError(f'{op}: index must be "plane", "window" or "none", got "{index}"')
    g = _geometry(op, x.shape, kernel_size, stride, padding, dilation, bool(ceil_mode))
    x = contiguous(x)
    y = empty((g[0], g[1], g[4], g[5]), x.dtype, x.device)
    plane_index = empty((g[0], g[1], g[4], g[5]), _INT64, x.device)
    if g[0]:
        _C.cuda.max_pool2d_forward(x.ptr, y.ptr, plane_index.ptr, DTYPE_CODE[x.dtype], g, bool(ceil_mode), x.device)
    return y, (None if index == "none" else plane_index)


def max_pool2d_backward(index, grad_y, x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    """grad_x: each grad_y added at its index position. A gather over the windows holding each
    pixel, so index values that forward could not have made (outside their window) are
    ignored rather than checked (checking would copy index to the host)."""
    op = "max_pool2d_backward"
    check_float_array(op, "grad_y", grad_y)
    if not isinstance(index, CudaArray) or index.dtype != _INT64:
        got = index.dtype if isinstance(index, CudaArray) else type(index).__name__
        raise TypeError(f"{op}: index must be an int64 CudaArray, got {got}")
    check_like(op, "grad_y", grad_y, "index", index, dtype=False)
    g = _geometry(op, x_shape, kernel_size, stride, padding, dilation, bool(ceil_mode))
    y_shape = (g[0], g[1], g[4], g[5])
    check_shape(op, "grad_y", grad_y, y_shape, "(N, C, OH, OW)")
    check_shape(op, "index", index, y_shape, "(N, C, OH, OW)")
    index, grad_y = contiguous(index), contiguous(grad_y)
    grad_x = empty(tuple(g[:4]), grad_y.dtype, grad_y.device)
    if g[0]:
        _C.cuda.max_pool2d_backward(index.ptr, grad_y.ptr, grad_x.ptr, DTYPE_CODE[grad_y.dtype], g,
                                    bool(ceil_mode), grad_y.device)
    return grad_x


def avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    """y: mean over each window, divisor as PyTorch's avg_pool2d."""
    op = "avg_pool2d_forward"
    _check_input(op, x)
    g = _geometry(op, x.shape, kernel_size, stride, padding, (1, 1), bool(ceil_mode))
    x = contiguous(x)
    y = empty((g[0], g[1], g[4], g[5]), x.dtype, x.device)
    if g[0]:
        _C.cuda.avg_pool2d_forward(x.ptr, y.ptr, DTYPE_CODE[x.dtype], g, bool(ceil_mode), bool(count_include_pad),
                                   x.device)
    return y


def avg_pool2d_backward(grad_y, x_shape, kernel_size, stride, padding, ceil_mode, count_include_pad):
    """grad_x: each grad_y spread evenly over its window."""
    op = "avg_pool2d_backward"
    check_float_array(op, "grad_y", grad_y)
    g = _geometry(op, x_shape, kernel_size, stride, padding, (1, 1), bool(ceil_mode))
    check_shape(op, "grad_y", grad_y, (g[0], g[1], g[4], g[5]), "(N, C, OH, OW)")
    grad_y = contiguous(grad_y)
    grad_x = empty(tuple(g[:4]), grad_y.dtype, grad_y.device)
    if g[0]:
        _C.cuda.avg_pool2d_backward(grad_y.ptr, grad_x.ptr, DTYPE_CODE[grad_y.dtype], g, bool(ceil_mode),
                                    bool(count_include_pad), grad_y.device)
    return grad_x
