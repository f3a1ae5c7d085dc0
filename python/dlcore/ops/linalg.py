"""matmul (1-D, 2-D and batched with broadcasting) and linear, on the gemm kernel. Transposed
views are passed to the kernel as transpose flags, never copied."""
import numpy as np

from dlcore import dtypes
from dlcore.autograd import Function
from dlcore.ops._util import broadcast_to, contig, lib, sum_dims, sum_to
from dlcore.tensor import Tensor


def _row_major(a):
    """Whether the last two dims of `a` are rows of unit-stride elements."""
    it = a.itemsize
    return a.strides[-1] == it and a.strides[-2] >= a.shape[-1] * it and a.strides[0] >= 0


def _layout(a, trans):
    """(array, flag) such that gemm reads op(a) correctly without copying when it can."""
    if _row_major(a):
        return a, trans
    t = a.swapaxes(-1, -2)
    if _row_major(t):
        return t, not trans
    return a.copy(order="C"), trans


def _as_batched(a, batch):
    """a (..., r, c) as a 3-D (B | 1, r, c) array for the batch shape `batch`."""
    if a.ndim == 2:
        return a[None]
    if a.shape[:-2] == batch:
        return a.reshape((-1,) + a.shape[-2:])
    return broadcast_to(a, batch + a.shape[-2:]).reshape((-1,) + a.shape[-2:])


def mm(x, y, trans_x=False, trans_y=False):
    """op(x) @ op(y) for arrays of >= 2 dims, batch dims broadcast as in NumPy."""
    if x.ndim == 2 and y.ndim == 2:
        if x.flags.c_contiguous and y.flags.c_contiguous:
            return lib(x).gemm(x, y, None, trans_x, trans_y)
        xa, tx = _layout(x, trans_x)
        ya, ty = _layout(y, trans_y)
        return lib(xa).gemm(xa, ya, None, tx, ty)
    batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    xa, tx = _layout(_as_batched(x, batch), trans_x)
    ya, ty = _layout(_as_batched(y, batch), trans_y)
    out = lib(xa).gemm(xa, ya, None, tx, ty)
    return out.reshape(batch + out.shape[-2:])


class Matmul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.a, ctx.b = a._data, b._data
        return Tensor(mm(a._data, b._data))

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.a, ctx.b
        na, nb = ctx.needs_input_grad
        grad_a = Tensor(sum_to(mm(g._data, b, False, True), a.shape)) if na else None
        grad_b = Tensor(sum_to(mm(a, g._data, True, False), b.shape)) if nb else None
        return grad_a, grad_b


def matmul(a, b):
    """Matrix product with NumPy/PyTorch semantics for 1-D, 2-D and batched operands."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):  # fast path: float matrices (the common case)
        ad, bd = a._data, b._data
        if ad.ndim == 2 and bd.ndim == 2 and ad.shape[1] == bd.shape[0] and ad.dtype == bd.dtype \
                and ad.dtype in dtypes.FLOATS:
            return Matmul.apply(a, b)
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, Tensor):
            raise TypeError(f"matmul: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim == 0:
            raise ValueError(f"matmul: both operands must have at least 1 dim, got shapes {a.shape} and {b.shape}")
    if a._data.dtype != b._data.dtype or a._data.dtype not in dtypes.FLOATS:
        raise TypeError(f"matmul: operands must be float tensors of one dtype, got {a.dtype} and {b.dtype}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied ({k_a} != {k_b})")
    if a.ndim > 2 or b.ndim > 2:
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: batch dims of {a.shape} and {b.shape} do not broadcast") from None
    a2 = a if a.ndim > 1 else a.reshape((1, k_a))
    b2 = b if b.ndim > 1 else b.reshape((k_b, 1))
    out = Matmul.apply(a2, b2)
    if a.ndim == 1:
        out = out.squeeze(-2)
    if b.ndim == 1:
        out = out.squeeze(-1)
    return out


class Linear(Function):
    """y = x W^T + b in one gemm (the bias added in the GEMM's fused epilogue)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        x2 = contig(x._data).reshape(-1, x.shape[-1])  # (M, in)
        w = contig(weight._data)  # (out, in)
        ctx.x2, ctx.w, ctx.x_shape = x2, w, x.shape
        y = lib(x2).gemm(x2, w, None, False, True, 1.0, 0.0, None if bias is None else contig(bias._data))
        return Tensor(y.reshape(x.shape[:-1] + (w.shape[0],)))

    @staticmethod
    def backward(ctx, g):
        nx, nw, nb = ctx.needs_input_grad
        g2 = contig(g._data).reshape(-1, ctx.w.shape[0])  # (M, out)
        grad_x = Tensor(lib(g2).gemm(g2, ctx.w).reshape(ctx.x_shape)) if nx else None
        grad_w = Tensor(lib(g2).gemm(g2, ctx.x2, None, True, False)) if nw else None
        grad_b = Tensor(sum_dims(g2, (0,))) if nb else None
        return grad_x, grad_w, grad_b


def linear(x, weight, bias=None):
    """x (..., in) @ weight (out, in)^T + bias (out,)."""
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input shape {x.shape} does not end in in_features={weight.shape[1]}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    if x._data.dtype != weight._data.dtype or x._data.dtype not in dtypes.FLOATS:
        raise TypeError(f"linear: input and weight must be float tensors of one dtype, got {x.dtype} and {weight.dtype}")
    return Linear.apply(x, weight, bias)
