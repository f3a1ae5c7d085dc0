"""Reductions: sum, mean, max (values and indices), argmax over dims with keepdim.
Float reductions run in _C.reduce_forward; integer/bool sums (e.g. counting correct
predictions) use NumPy and give int64."""
import collections

import numpy as np

from dlcore import _C, dtypes
from dlcore.autograd import Function
from dlcore.ops._util import broadcast_to, contig, is_cuda, lib, normalize_dim, normalize_dims, sum_dims, zeros
from dlcore.tensor import Tensor

MAX = _C.ReduceOp.max

MaxResult = collections.namedtuple("MaxResult", ["values", "indices"])


def _kept_shape(shape, dims):
    return tuple(1 if i in dims else n for i, n in enumerate(shape))


class Sum(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.x_shape, ctx.kept = x.shape, _kept_shape(x.shape, dims)
        out = sum_dims(x._data, dims)
        return Tensor(out.reshape(ctx.kept) if keepdim else out)

    @staticmethod
    def backward(ctx, g):
        return Tensor(contig(broadcast_to(g._data.reshape(ctx.kept), ctx.x_shape))), None, None


def sum(x, dim=None, keepdim=False):  # noqa: A001
    dims = normalize_dims("sum", dim, x.ndim)
    if x._data.dtype not in dtypes.FLOATS:
        if is_cuda(x._data):  # int64/bool sums (counts) in the exact int64 kernel
            out = sum_dims(x._data, dims)
            return Tensor(out.reshape(_kept_shape(x.shape, dims)) if keepdim else out)
        return Tensor(np.asarray(np.sum(x._data, axis=dims, keepdims=keepdim, dtype=np.int64)))
    return Sum.apply(x, dims, keepdim)


def mean(x, dim=None, keepdim=False):
    if x._data.dtype not in dtypes.FLOATS:
        raise TypeError(f"mean: expected a float tensor, got {x._data.dtype}")
    dims = normalize_dims("mean", dim, x.ndim)
    count = 1
    for d in dims:
        count *= x.shape[d]
    if count == 0:
        raise ValueError(f"mean: cannot take the mean over an empty dim of shape {x.shape}")
    return Sum.apply(x, dims, keepdim) * (1.0 / count)


class MaxDim(Function):
    @staticmethod
    def forward(ctx, x, dim, keepdim):
        values, index = lib(x._data).reduce_forward(MAX, contig(x._data), dim, dim + 1)
        ctx.x_shape, ctx.dim, ctx.keepdim, ctx.index = x.shape, dim, keepdim, index
        if keepdim:
            kept = _kept_shape(x.shape, (dim,))
            values, index = values.reshape(kept), index.reshape(kept)
        return Tensor(values), Tensor(index)

    @staticmethod
    def backward(ctx, grad_values, grad_index):
        g = grad_values._data
        if ctx.keepdim:
            g = g.reshape(ctx.index.shape)
        return Tensor(lib(g).reduce_max_backward(ctx.index, contig(g), ctx.x_shape, ctx.dim, ctx.dim + 1)), None, None


class MaxAll(Function):
    @staticmethod
    def forward(ctx, x):
        flat = contig(x._data).reshape(-1)
        values, index = lib(flat).reduce_forward(MAX, flat, 0, 1)
        ctx.x_shape, ctx.index = x.shape, index
        return Tensor(values)

    @staticmethod
    def backward(ctx, g):
        n = int(np.prod(ctx.x_shape))
        grad = lib(g._data).reduce_max_backward(ctx.index, contig(g._data), (n,), 0, 1)
        return Tensor(grad.reshape(ctx.x_shape))


def max(x, dim=None, keepdim=False):  # noqa: A001
    """max over all elements (a 0-d tensor), or (values, indices) over one dim."""
    if x._data.dtype not in dtypes.FLOATS and is_cuda(x._data):  # int64/bool: the max kernel, no graph
        flat = dim is None
        d = 0 if flat else normalize_dim("max", dim, x.ndim)
        data = contig(x._data).reshape(-1) if flat else contig(x._data)
        values, index = lib(data).reduce_forward(MAX, data, d, d + 1)
        if flat:
            return Tensor(values)
        kept = _kept_shape(x.shape, (d,))
        return MaxResult(Tensor(values.reshape(kept) if keepdim else values),
                         Tensor(index.reshape(kept) if keepdim else index))
    if x._data.dtype not in dtypes.FLOATS:
        if dim is None:
            return Tensor(np.asarray(np.max(x._data)))
        d = normalize_dim("max", dim, x.ndim)
        return MaxResult(Tensor(np.max(x._data, axis=d, keepdims=keepdim)),
                         Tensor(np.argmax(x._data, axis=d, keepdims=keepdim).astype(np.int64)))
    if dim is None:
        return MaxAll.apply(x)
    d = normalize_dim("max", dim, x.ndim)
    if x.ndim == 0:
        return MaxResult(x, Tensor(zeros((), np.int64, x._data)))
    values, index = MaxDim.apply(x, d, keepdim)
    index.requires_grad = False
    index._ctx = None
    return MaxResult(values, index)


def argmax(x, dim=None, keepdim=False):
    """Index of the (first) maximum over a dim, or over the flattened tensor when dim is None."""
    data = x._data
    if data.dtype not in dtypes.FLOATS and not is_cuda(data):
        if dim is None:
            return Tensor(np.asarray(np.argmax(data), dtype=np.int64))
        d = normalize_dim("argmax", dim, x.ndim)
        return Tensor(np.argmax(data, axis=d, keepdims=keepdim).astype(np.int64))
    if dim is None:
        _, index = lib(data).reduce_forward(MAX, contig(data).reshape(-1), 0, 1)
        return Tensor(index)
    d = normalize_dim("argmax", dim, x.ndim)
    if x.ndim == 0:
        return Tensor(zeros((), np.int64, data))
    _, index = lib(data).reduce_forward(MAX, contig(data), d, d + 1)
    return Tensor(index.reshape(_kept_shape(x.shape, (d,))) if keepdim else index)
