"""max_pool2d and avg_pool2d (NCHW) on the _C pooling kernels."""
from dlcore.autograd import Function, is_grad_enabled
from dlcore.ops._util import contig, lib
from dlcore.ops.conv import pair
from dlcore.tensor import Tensor


class MaxPool2d(Function):
    """index: "plane" (int64 h*W + w, returned with y: return_indices), "window" (uint8 position
    in the window, 1 byte per output, kept for backward only) or "none" (no backward follows)."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, ceil_mode, index):
        y, idx = lib(x._data).max_pool2d_forward(contig(x._data), kernel, stride, padding, dilation, ceil_mode,
                                                 index)
        ctx.index, ctx.args = idx, (x.shape, kernel, stride, padding, dilation, ceil_mode)
        return (Tensor(y), Tensor(idx)) if index == "plane" else Tensor(y)

    @staticmethod
    def backward(ctx, g, *_grad_index):
        return (Tensor(lib(g._data).max_pool2d_backward(ctx.index, contig(g._data), *ctx.args)),) + (None,) * 6


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel, stride, padding, ceil_mode, count_include_pad):
        ctx.args = (x.shape, kernel, stride, padding, ceil_mode, count_include_pad)
        return Tensor(lib(x._data).avg_pool2d_forward(contig(x._data), kernel, stride, padding, ceil_mode, count_include_pad))

    @staticmethod
    def backward(ctx, g):
        return (Tensor(lib(g._data).avg_pool2d_backward(contig(g._data), *ctx.args)),) + (None,) * 5


def _batched(op, x):
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: input must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {x.shape}")
    return x.ndim == 3


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices=False):
    """Max over kernel_size windows; stride defaults to kernel_size."""
    unbatched = _batched("max_pool2d", input)
    x = input.unsqueeze(0) if unbatched else input
    kernel = pair("max_pool2d", "kernel_size", kernel_size)
    stride = kernel if stride is None else pair("max_pool2d", "stride", stride)
    # Which index forward writes: PyTorch's int64 plane index when asked for, else the 1-byte
    # window index when a backward may follow, else none (no_grad or an input without grad).
    index = "plane" if return_indices else "window" if is_grad_enabled() and x.requires_grad else "none"
    out = MaxPool2d.apply(x, kernel, stride, pair("max_pool2d", "padding", padding),
                          pair("max_pool2d", "dilation", dilation), bool(ceil_mode), index)
    if not return_indices:
        return out.squeeze(0) if unbatched else out
    y, index = out
    index.requires_grad, index._ctx = False, None
    return (y.squeeze(0), index.squeeze(0)) if unbatched else (y, index)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):  # noqa: A002
    """Mean over kernel_size windows; stride defaults to kernel_size."""
    unbatched = _batched("avg_pool2d", input)
    x = input.unsqueeze(0) if unbatched else input
    kernel = pair("avg_pool2d", "kernel_size", kernel_size)
    stride = kernel if stride is None else pair("avg_pool2d", "stride", stride)
    y = AvgPool2d.apply(x, kernel, stride, pair("avg_pool2d", "padding", padding), bool(ceil_mode),
                        bool(count_include_pad))
    return y.squeeze(0) if unbatched else y
