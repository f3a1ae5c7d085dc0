"""Small helpers shared by the op Functions: operand conversion, contiguity, dims, and
reducing a broadcast gradient back to an input's shape."""
import numpy as np

from dlcore import _C, dtypes
from dlcore.cuda.array import CudaArray
from dlcore.tensor import Tensor

SUM = _C.ReduceOp.sum


def lib(a):
    """The kernels for array `a`'s device: ``_C`` for a NumPy array, ``dlcore.cuda.kernels``
    (same names and signatures) for a CudaArray. Function.apply has already checked that all
    tensor inputs of an op share one device."""
    if type(a) is np.ndarray:
        return _C
    return _cuda_kernels(a)


def _cuda_kernels(a):
    from dlcore.cuda import kernels

    if not isinstance(a, CudaArray):
        raise TypeError(f"expected a NumPy or CUDA array, got {type(a).__name__}")
    return kernels


def is_cuda(a):
    """Whether array `a` lives on a GPU (a CudaArray)."""
    return isinstance(a, CudaArray)


def scalar_like(value, dtype, like):
    """A 0-d array holding `value` on the device of array `like`."""
    arr = np.asarray(value, dtype=dtype)
    if type(like) is np.ndarray:
        return arr
    from dlcore.cuda.array import from_numpy

    return from_numpy(arr, like.device)


def broadcast_to(a, shape):
    """NumPy's broadcast_to for host or device arrays (a view)."""
    if type(a) is np.ndarray:
        return np.broadcast_to(a, shape)
    from dlcore.cuda import array

    return array.broadcast_to(a, shape)


def concatenate(arrays, axis):
    if type(arrays[0]) is np.ndarray:
        return np.concatenate(arrays, axis=axis)
    from dlcore.cuda import array

    return array.concatenate(arrays, axis)


def split(a, bounds, axis):
    """Views of `a` cut at `bounds` along `axis` (NumPy's split)."""
    if type(a) is np.ndarray:
        return np.split(a, bounds, axis=axis)
    from dlcore.cuda import array

    return array.split(a, bounds, axis)


def zeros(shape, dtype, like):
    """Zeros on the device of array `like`."""
    if type(like) is np.ndarray:
        return np.zeros(shape, dtype=dtype)
    from dlcore.cuda import array

    return array.zeros(shape, dtype, like.device)


def contig(a):
    """a as a C-contiguous array (no copy when it already is)."""
    return a if a.flags.c_contiguous else a.copy(order="C")


def as_tensor_like(x, like):
    """x as a Tensor; Python numbers take the dtype of `like` (a Tensor), as in PyTorch."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (bool, int, float, np.number)):
        dt = like._data.dtype
        if isinstance(x, float) and dt not in dtypes.FLOATS:
            dt = dtypes.float32
        return Tensor(scalar_like(x, dt, like._data))
    if isinstance(x, np.ndarray):
        return Tensor(x if type(like._data) is np.ndarray else scalar_like(x, x.dtype, like._data))
    raise TypeError(f"expected a Tensor or a number, got {type(x).__name__}")


def check_float(op, x):
    """x itself if it is a float Tensor, else TypeError naming the op."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if x._data.dtype not in dtypes.FLOATS:
        raise TypeError(f"{op}: expected a float tensor, got {x._data.dtype}")
    return x


def normalize_dim(op, dim, ndim):
    """A dim in [-ndim, ndim) as a non-negative int, else IndexError naming the op."""
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dims")
    return int(dim) % n


def normalize_dims(op, dim, ndim):
    """dim None | int | sequence as a sorted tuple of distinct non-negative dims."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (int, np.integer)):
        return (normalize_dim(op, dim, ndim),)
    dims = tuple(sorted(normalize_dim(op, d, ndim) for d in dim))
    if len(set(dims)) != len(dims):
        raise ValueError(f"{op}: dim {tuple(dim)} repeats a dim")
    return dims


def sum_dims(a, dims):
    """Sum of array a over the sorted dims (result drops them), one kernel call per run of
    adjacent dims, last run first so earlier dim numbers stay valid."""
    if not dims:
        return a
    a = contig(a)
    runs, start = [], dims[0]
    for prev, d in zip(dims, dims[1:] + (None,)):
        if d != prev + 1:
            runs.append((start, prev + 1))
            start = d
    for s, e in reversed(runs):
        a, _ = lib(a).reduce_forward(SUM, a, s, e)
    return a


def sum_to(g, shape):
    """Reduces a broadcast gradient g to `shape` (the inverse of NumPy broadcasting)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
    )
    return sum_dims(g, dims).reshape(shape)
