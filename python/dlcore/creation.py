"""Creating tensors: from data (tensor, from_numpy, as_tensor) and by shape (zeros, ones,
empty, full, arange, rand, randn, randint, *_like), on the CPU or, with ``device="cuda"``, on a
GPU. Random values come from the generator seeded by dlcore.manual_seed (drawn on the host
and copied, so one seed gives the same values on either device)."""
import numpy as np

from dlcore import dtypes, random
from dlcore.tensor import Tensor


def _default_dtype(arr):
    """PyTorch's inference: Python floats -> float32, ints -> int64, bools -> bool."""
    kind = arr.dtype.kind
    if kind == "f":
        return dtypes.float32
    if kind in "iu":
        return dtypes.int64
    if kind == "b":
        return dtypes.bool_
    raise TypeError(f"tensor: cannot make a tensor from data of dtype {arr.dtype}")


def _make(arr, requires_grad, device=None):
    """A Tensor of host array `arr` placed on `device` (copied to a GPU when it names one)."""
    dev = _device(device)
    if dev.type == "cuda":
        from dlcore.ops.shape import _move

        arr = _move(arr, dev)
    t = Tensor(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, requires_grad=False, device=None):
    """A new tensor holding a copy of `data` (nested lists, numbers, arrays or a Tensor)."""
    if isinstance(data, Tensor):
        if device is None:
            device = data.device
        data = data._data.get() if data.is_cuda else data._data
    try:
        arr = np.array(data)
    except (ValueError, TypeError) as e:
        raise ValueError(f"tensor: cannot convert data to a tensor: {e}") from None
    dt = dtypes.as_dtype(dtype) if dtype is not None else (
        arr.dtype if isinstance(data, np.ndarray) and arr.dtype in dtypes.SUPPORTED else _default_dtype(arr))
    return _make(np.array(arr, dtype=dt, order="C"), requires_grad, device)


def from_numpy(array):
    """A tensor sharing memory with `array` (no copy). Its dtype must be supported."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype not in dtypes.SUPPORTED:
        raise TypeError(f"from_numpy: dtype {array.dtype} is not supported; use float32, float64, int64 or bool")
    return Tensor(array)


def as_tensor(data, dtype=None):
    """Shares memory with a NumPy array or Tensor when the dtype allows, else copies."""
    if isinstance(data, Tensor) and (dtype is None or dtypes.as_dtype(dtype) == data.dtype):
        return data
    if isinstance(data, np.ndarray) and (dtype is None or dtypes.as_dtype(dtype) == data.dtype) \
            and data.dtype in dtypes.SUPPORTED:
        return Tensor(data)
    return tensor(data, dtype=dtype)


def _device(device):
    return dtypes.CPU if device is None else dtypes.device(device)


def _filled(op, size, value, dtype, requires_grad, device):
    """A tensor of `size` filled with `value`: on a GPU by the fill kernel (no host copy)."""
    dev, shape = _device(device), _shape(op, size)
    if dev.type == "cuda":
        from dlcore.cuda import array
        from dlcore.ops.shape import cuda_index

        arr = array.empty(shape, dtype, cuda_index(dev))
        if value is not None:
            arr.fill(value)
        return _make(arr, requires_grad)
    arr = np.empty(shape, dtype=dtype) if value is None else np.full(shape, value, dtype=dtype)
    return _make(arr, requires_grad)


def _shape(op, size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    size = tuple(size)
    for s in size:
        if not isinstance(s, (int, np.integer)):
            raise TypeError(f"{op}: sizes must be ints, got {size}")
        if s < 0:
            raise ValueError(f"{op}: negative dimension in size {size}")
    return size


def _float_dtype(op, dtype):
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.float32
    return dt


def zeros(*size, dtype=None, requires_grad=False, device=None):
    return _filled("zeros", size, 0, _float_dtype("zeros", dtype), requires_grad, device)


def ones(*size, dtype=None, requires_grad=False, device=None):
    return _filled("ones", size, 1, _float_dtype("ones", dtype), requires_grad, device)


def empty(*size, dtype=None, requires_grad=False, device=None):
    return _filled("empty", size, None, _float_dtype("empty", dtype), requires_grad, device)


def full(size, fill_value, dtype=None, requires_grad=False, device=None):
    if dtype is None:
        dtype = dtypes.bool_ if isinstance(fill_value, bool) else (
            dtypes.int64 if isinstance(fill_value, int) else dtypes.float32)
    return _filled("full", (size,), fill_value, dtypes.as_dtype(dtype), requires_grad, device)


def arange(start, end=None, step=1, dtype=None, requires_grad=False, device=None):
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = dtypes.int64 if ints else dtypes.float32
    return _make(np.arange(start, end, step, dtype=dtypes.as_dtype(dtype)), requires_grad, device)


def rand(*size, dtype=None, requires_grad=False, device=None):
    """Uniform in [0, 1)."""
    arr = random.generator().random(_shape("rand", size), dtype=np.float64)
    return _make(arr.astype(_float_dtype("rand", dtype)), requires_grad, device)


def randn(*size, dtype=None, requires_grad=False, device=None):
    """Standard normal."""
    arr = random.generator().standard_normal(_shape("randn", size))
    return _make(arr.astype(_float_dtype("randn", dtype)), requires_grad, device)


def randint(low, high=None, size=(), dtype=None, device=None):
    """Uniform integers in [low, high)."""
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    arr = random.generator().integers(low, high, size=_shape("randint", (size,)))
    return _make(np.asarray(arr, dtype=dtypes.as_dtype(dtype) if dtype else dtypes.int64), False, device)


def randperm(n, device=None):
    return _make(random.generator().permutation(int(n)).astype(np.int64), False, device)


def zeros_like(t, dtype=None, requires_grad=False, device=None):
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=device or t.device)


def ones_like(t, dtype=None, requires_grad=False, device=None):
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=device or t.device)


def full_like(t, fill_value, dtype=None, device=None):
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=device or t.device)


def rand_like(t):
    return rand(t.shape, dtype=t.dtype, device=t.device)


def randn_like(t):
    return randn(t.shape, dtype=t.dtype, device=t.device)
