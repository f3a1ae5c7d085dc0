"""Shape and data-movement Functions: reshape/view, transpose/permute, contiguous, expand,
(un)squeeze, indexing, cat/stack/split, clone. They move data with NumPy views and copies
(no math); backward moves the gradient back the same way."""
import math

import numpy as np

from dlcore.autograd import Function
from dlcore.ops._util import broadcast_to, concatenate, is_cuda, lib, normalize_dim, split as split_array, sum_to, zeros
from dlcore.tensor import Tensor


def _infer_shape(op, shape, numel):
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise ValueError(f"{op}: only one dim can be -1, got {shape}")
    if any(s < -1 for s in shape):
        raise ValueError(f"{op}: invalid shape {shape}")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or numel % known:
            raise ValueError(f"{op}: shape {shape} is invalid for a tensor of {numel} elements")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    if math.prod(shape) != numel:  # math.prod: np.prod costs ~2 us on a tuple
        raise ValueError(f"{op}: shape {shape} is invalid for a tensor of {numel} elements")
    return shape


def _view_as(a, shape):
    """A view of array a with `shape`; raises (AttributeError / ValueError) where only a copy
    could have that shape."""
    if is_cuda(a) or _NUMPY_RESHAPE_COPY is False:
        out = a.view()
        out.shape = shape  # deprecated on NumPy arrays since NumPy 2.5: used only before 2.1
        return out
    return a.reshape(shape, copy=False)


def _numpy_reshape_takes_copy():
    try:
        np.zeros(1).reshape(1, copy=False)
        return True
    except TypeError:  # NumPy < 2.1
        return False


_NUMPY_RESHAPE_COPY = _numpy_reshape_takes_copy()


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape, view_only):
        ctx.x_shape = x.shape
        if view_only:
            try:
                return Tensor(_view_as(x._data, shape))
            except (AttributeError, ValueError):
                raise RuntimeError(
                    f"view: shape {shape} is not compatible with the strides of the input "
                    f"(shape {x.shape}); use reshape() or contiguous() first"
                ) from None
        return Tensor(x._data.reshape(shape))

    @staticmethod
    def backward(ctx, g):
        return Tensor(g._data.reshape(ctx.x_shape)), None, None


def reshape(x, shape):
    shape = _infer_shape("reshape", shape, x._data.size)
    if shape == x.shape:
        return x
    return Reshape.apply(x, shape, False)


def view(x, shape):
    shape = _infer_shape("view", shape, x._data.size)
    return Reshape.apply(x, shape, True)


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, (1,))
    s = normalize_dim("flatten", start_dim, x.ndim)
    e = normalize_dim("flatten", end_dim, x.ndim)
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:]
    return reshape(x, shape)


def unsqueeze(x, dim):
    d = normalize_dim("unsqueeze", dim, x.ndim + 1)
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


def squeeze(x, dim=None):
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    d = normalize_dim("squeeze", dim, x.ndim)
    if x.shape[d] != 1:
        return x
    return reshape(x, x.shape[:d] + x.shape[d + 1:])


class Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        ctx.inverse = tuple(np.argsort(dims))
        return Tensor(x._data.transpose(dims))

    @staticmethod
    def backward(ctx, g):
        return Tensor(g._data.transpose(ctx.inverse)), None


def permute(x, dims):
    dims = tuple(normalize_dim("permute", d, x.ndim) for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of {x.ndim} dims")
    return Permute.apply(x, dims)


def transpose(x, dim0, dim1):
    d0 = normalize_dim("transpose", dim0, x.ndim)
    d1 = normalize_dim("transpose", dim1, x.ndim)
    dims = list(range(x.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(x, tuple(dims))


class Contiguous(Function):
    @staticmethod
    def forward(ctx, x):
        return Tensor(x._data.copy(order="C"))

    @staticmethod
    def backward(ctx, g):
        return g


def cuda_index(device):
    """The device index of a CUDA `device`, or RuntimeError saying why it cannot be used."""
    from dlcore import cuda

    if not cuda.is_available():
        raise RuntimeError(f"cannot use {device}: dlcore.cuda.is_available() is False "
                           f"(built with CUDA: {cuda.is_built()}, devices: {cuda.device_count()})")
    index = device.index or 0
    if not 0 <= index < cuda.device_count():
        raise RuntimeError(f"cannot use {device}: no CUDA device {index} ({cuda.device_count()} visible)")
    return index


def _move(a, device):
    """Array a on `device` (a dlcore.device): host <-> GPU through the pinned staging buffers."""
    if device.type == "cpu":
        return a.get() if is_cuda(a) else a
    from dlcore.cuda import array

    index = cuda_index(device)
    if is_cuda(a):
        return a if a.device == index else array.from_numpy(a.get(), index)
    return array.from_numpy(a, index)


class ToDevice(Function):
    @staticmethod
    def forward(ctx, x, device):
        ctx.source = x.device
        return Tensor(_move(x._data, device))

    @staticmethod
    def backward(ctx, g):
        return Tensor(_move(g._data, ctx.source)), None


def to_device(x, device):
    """x on `device` (x itself when it is there already); gradients flow back across."""
    if x.device == device:
        return x
    return ToDevice.apply(x, device)


def contiguous(x):
    return x if x._data.flags.c_contiguous else Contiguous.apply(x)


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return Tensor(x._data.copy())

    @staticmethod
    def backward(ctx, g):
        return g


def clone(x):
    return Clone.apply(x)


class Expand(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.x_shape = x.shape
        return Tensor(broadcast_to(x._data, shape))

    @staticmethod
    def backward(ctx, g):
        return Tensor(sum_to(g._data, ctx.x_shape)), None


def expand(x, shape):
    lead = len(shape) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: cannot expand shape {x.shape} to fewer dims {tuple(shape)}")
    target = tuple(x.shape[i - lead] if (s == -1 and i >= lead) else s for i, s in enumerate(shape))
    try:
        np.broadcast_shapes(x.shape, target)
    except ValueError:
        raise ValueError(f"expand: cannot expand shape {x.shape} to {tuple(shape)}") from None
    return Expand.apply(x, target)


# ---- indexing ------------------------------------------------------------------------------
def normalize_index(index):
    """A Python/NumPy index with Tensors replaced by their arrays."""
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, tuple):
        return tuple(i._data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _is_basic(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index, basic):
        ctx.x_shape, ctx.x_dtype, ctx.index, ctx.basic = x.shape, x._data.dtype, index, basic
        try:
            if is_cuda(x._data) and not basic:  # one index array: the take kernel, index_add back
                from dlcore.cuda.array import advanced_index

                ctx.dim, ctx.index = advanced_index(x._data, index)
                return Tensor(lib(x._data).take(x._data, ctx.index, ctx.dim))
            out = x._data[index]
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor shape {x.shape})") from None
        return Tensor(out if isinstance(out, np.ndarray) or is_cuda(out) else np.asarray(out))

    @staticmethod
    def backward(ctx, g):
        if is_cuda(g._data) and not ctx.basic:
            return Tensor(lib(g._data).index_add(ctx.x_shape, ctx.dim, ctx.index, g._data)), None, None
        grad = zeros(ctx.x_shape, ctx.x_dtype, g._data)
        if ctx.basic:
            grad[ctx.index] = g._data
        else:
            np.add.at(grad, ctx.index, g._data)  # repeated indices accumulate
        return Tensor(grad), None, None


def getitem(x, index):
    index = normalize_index(index)
    return GetItem.apply(x, index, _is_basic(index))


# ---- cat / stack / split -----------------------------------------------------------------
class Cat(Function):
    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.dim, ctx.sizes = dim, [x.shape[dim] for x in xs]
        return Tensor(concatenate([x._data for x in xs], dim))

    @staticmethod
    def backward(ctx, g):
        bounds = np.cumsum(ctx.sizes)[:-1]
        parts = split_array(g._data, bounds, ctx.dim)
        return (None,) + tuple(Tensor(p) if n else None for p, n in zip(parts, ctx.needs_input_grad[1:]))


def _check_same(op, xs):
    if not xs:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    for x in xs:
        if not isinstance(x, Tensor):
            raise TypeError(f"{op}: expected Tensors, got {type(x).__name__}")
    dt = xs[0]._data.dtype
    for x in xs[1:]:
        if x._data.dtype != dt:
            raise TypeError(f"{op}: all tensors must have one dtype, got {dt} and {x._data.dtype}")


def cat(tensors, dim=0):
    xs = list(tensors)
    _check_same("cat", xs)
    d = normalize_dim("cat", dim, xs[0].ndim)
    for x in xs[1:]:
        if x.ndim != xs[0].ndim or x.shape[:d] + x.shape[d + 1:] != xs[0].shape[:d] + xs[0].shape[d + 1:]:
            raise ValueError(f"cat: shapes {xs[0].shape} and {x.shape} differ outside dim {d}")
    return Cat.apply(d, *xs)


def stack(tensors, dim=0):
    xs = list(tensors)
    _check_same("stack", xs)
    for x in xs[1:]:
        if x.shape != xs[0].shape:
            raise ValueError(f"stack: all tensors must have one shape, got {xs[0].shape} and {x.shape}")
    d = normalize_dim("stack", dim, xs[0].ndim + 1)
    return cat([unsqueeze(x, d) for x in xs], d)


class Split(Function):
    @staticmethod
    def forward(ctx, x, sizes, dim):
        ctx.x_shape, ctx.dtype, ctx.sizes, ctx.dim = x.shape, x._data.dtype, sizes, dim
        bounds = np.cumsum(sizes)[:-1]
        return tuple(Tensor(p) for p in split_array(x._data, bounds, dim))

    @staticmethod
    def backward(ctx, *grads):
        parts = []
        for g, n in zip(grads, ctx.sizes):
            if g is None:
                shape = list(ctx.x_shape)
                shape[ctx.dim] = n
                parts.append(None)
            else:
                parts.append(g._data)
        like = next(p for p in parts if p is not None)
        for k, n in enumerate(ctx.sizes):
            if parts[k] is None:
                shape = list(ctx.x_shape)
                shape[ctx.dim] = n
                parts[k] = zeros(tuple(shape), ctx.dtype, like)
        return Tensor(concatenate(parts, ctx.dim)), None, None


def split(x, split_size_or_sections, dim=0):
    d = normalize_dim("split", dim, x.ndim)
    n = x.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise ValueError(f"split: sections {sizes} do not add up to dim {d} of size {n}")
    if len(sizes) == 1:
        return (x,)
    return Split.apply(x, tuple(sizes), d)


def chunk(x, chunks, dim=0):
    d = normalize_dim("chunk", dim, x.ndim)
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    size = -(-x.shape[d] // chunks)
    return split(x, max(size, 1), d)


__all__ = ["to_device", "reshape", "view", "flatten", "unsqueeze", "squeeze", "permute", "transpose", "contiguous",
           "clone", "expand", "getitem", "cat", "stack", "split", "chunk", "normalize_index"]
