"""Small helpers shared by the op Functions: operand conversion, contiguity, dims, and
reducing a broadcast gradient back to an input's shape."""
import numpy as np

from dlcore import _C, dtypes
from dlcore.tensor import Tensor

SUM = _C.ReduceOp.sum


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
        return Tensor(np.asarray(x, dtype=dt))
    if isinstance(x, np.ndarray):
        return Tensor(x)
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
        a, _ = _C.reduce_forward(SUM, a, s, e)
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
