"""conv2d (NCHW) on the _C.conv2d_* kernels: forward, backward_input, backward_weight."""
from dlcore import _C
from dlcore.autograd import Function
from dlcore.ops._util import contig, lib
from dlcore.tensor import Tensor


def pair(op, name, v):
    """An int or a pair of ints as a (h, w) tuple."""
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(i, int) for i in v):
        return tuple(v)
    raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")


class Conv2d(Function):
    """y = conv2d(x, weight) + bias, and with relu=True max(y, 0) in the same kernel pass (the
    fused epilogue nn.Sequential uses for a Conv2d followed by a ReLU)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups, relu=False):
        xa, wa = contig(x._data), contig(weight._data)
        ba = contig(bias._data) if bias is not None else None
        # algo and relu positionally: a keyword argument costs pybind11 ~0.6 us per call
        y = lib(xa).conv2d_forward(xa, wa, ba, stride, padding, dilation, groups, "auto", bool(relu))
        ctx.x, ctx.w, ctx.geometry = xa, wa, (stride, padding, dilation, groups)
        ctx.y = y if relu else None  # relu'(pre-activation) = (y > 0), NaN included
        return Tensor(y)

    @staticmethod
    def backward(ctx, g):
        nx, nw, nb = ctx.needs_input_grad[:3]
        ga = contig(g._data)
        if ctx.y is not None:
            ga = lib(ga).unary_backward(_C.UnaryOp.relu, ctx.y, None, ga, 0.0, 0.0)
        grad_x = grad_w = grad_b = None
        if nx:
            grad_x = Tensor(lib(ga).conv2d_backward_input(ctx.w, ga, ctx.x.shape, *ctx.geometry))
        if nw or nb:
            gw, gb = lib(ga).conv2d_backward_weight(ctx.x, ga, ctx.w.shape, *ctx.geometry, bool(nb))
            grad_w = Tensor(gw) if nw else None
            grad_b = Tensor(gb) if nb else None
        return grad_x, grad_w, grad_b, None, None, None, None, None


def _conv2d(input, weight, bias, stride, padding, dilation, groups, relu):  # noqa: A002
    if input.ndim == 3:  # (C, H, W): one unbatched image
        return _conv2d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups, relu).squeeze(0)
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    return Conv2d.apply(input, weight, bias, pair("conv2d", "stride", stride), pair("conv2d", "padding", padding),
                        pair("conv2d", "dilation", dilation), groups, relu)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """2-D convolution (cross-correlation as in PyTorch): input (N, C, H, W), weight
    (C_out, C/groups, KH, KW), bias (C_out,) -> (N, C_out, OH, OW)."""
    return _conv2d(input, weight, bias, stride, padding, dilation, groups, False)


def conv2d_relu(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """relu(conv2d(input, weight, bias, ...)) with the ReLU fused into the convolution's output
    pass (one write of y instead of a second read and write); same values and gradients."""
    return _conv2d(input, weight, bias, stride, padding, dilation, groups, True)
