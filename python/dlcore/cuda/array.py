"""CudaArray: a NumPy-like strided view of device memory, the GPU counterpart of the NumPy
array a CPU Tensor holds.

Memory comes from the caching allocator (``_C.cuda.Buffer``); views (reshape of a contiguous
array, transpose, basic slicing, broadcast_to) share the buffer and differ in shape, strides
(bytes, as NumPy) and offset. Copies, casts and fills run the strided-copy and fill kernels,
so an array never makes a round trip through the host unless ``get()`` asks for it.
"""
import numpy as np

from dlcore import _C, autograd

# dtype -> the DType code of csrc/cuda/dtype.h
DTYPE_CODE = {np.dtype(np.float32): 0, np.dtype(np.float64): 1, np.dtype(np.int64): 2, np.dtype(np.bool_): 3}


def _contiguous_strides(shape, itemsize):
    strides, step = [], itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _size(shape):
    n = 1
    for s in shape:
        n *= s
    return n


class _Flags:
    __slots__ = ("c_contiguous",)

    def __init__(self, c_contiguous):
        self.c_contiguous = c_contiguous


class CudaArray:
    """shape/strides/dtype over a device Buffer at a byte offset. Build with empty(),
    zeros(), from_numpy(); never holds host memory."""

    __slots__ = ("_buf", "_offset", "_shape", "strides", "dtype", "device")

    def __init__(self, buf, offset, shape, strides, dtype, device):
        autograd.cuda_arrays_exist = True  # from now on Function.apply checks devices
        self._buf = buf  # _C.cuda.Buffer, or None when the array has no elements
        self._offset = offset  # bytes from the buffer's start to element [0, ..., 0]
        self._shape = tuple(shape)
        self.strides = tuple(strides)
        self.dtype = dtype
        self.device = device

    # ---- metadata ----------------------------------------------------------------------
    @property
    def shape(self):
        return self._shape

    @shape.setter
    def shape(self, shape):
        """In-place reshape without copying (NumPy's ``a.shape = ...``); AttributeError when
        no view exists, as NumPy raises."""
        shape = tuple(shape)
        if _size(shape) != self.size:
            raise ValueError(f"cannot reshape array of size {self.size} into shape {shape}")
        if not self.flags.c_contiguous:
            raise AttributeError("incompatible shape for in-place modification: the array is not contiguous")
        self._shape, self.strides = shape, _contiguous_strides(shape, self.itemsize)

    @property
    def ptr(self):
        """Device address of element [0, ..., 0]."""
        return 0 if self._buf is None else self._buf.ptr + self._offset

    @property
    def ndim(self):
        return len(self._shape)

    @property
    def size(self):
        return _size(self._shape)

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def nbytes(self):
        return self.size * self.itemsize

    @property
    def flags(self):
        return _Flags(self.is_contiguous())

    def is_contiguous(self):
        want = _contiguous_strides(self._shape, self.itemsize)
        return all(n == 1 or s == w for n, s, w in zip(self._shape, self.strides, want))

    def __len__(self):
        if not self._shape:
            raise TypeError("len() of a 0-d array")
        return self._shape[0]

    def __repr__(self):
        return f"CudaArray(shape={self._shape}, dtype={self.dtype}, device=cuda:{self.device})"

    def __array__(self, *args, **kwargs):
        raise TypeError("a CUDA array cannot be converted to NumPy implicitly; copy it to the host with .cpu()")

    # ---- views ---------------------------------------------------------------------------
    def _view(self, shape, strides, offset=None):
        return CudaArray(self._buf, self._offset if offset is None else offset, shape, strides, self.dtype,
                         self.device)

    def view(self):
        return self._view(self._shape, self.strides)

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        shape = tuple(int(s) for s in shape)
        if -1 in shape:
            known = _size([s for s in shape if s != -1])
            shape = tuple(self.size // known if s == -1 and known else s for s in shape)
        if _size(shape) != self.size:
            raise ValueError(f"cannot reshape array of size {self.size} into shape {shape}")
        src = self if self.is_contiguous() else self.copy()
        return src._view(shape, _contiguous_strides(shape, self.itemsize))

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        if not axes:
            axes = tuple(range(self.ndim - 1, -1, -1))
        axes = tuple(int(a) % max(self.ndim, 1) for a in axes)
        return self._view(tuple(self._shape[a] for a in axes), tuple(self.strides[a] for a in axes))

    def swapaxes(self, i, j):
        axes = list(range(self.ndim))
        axes[i], axes[j] = axes[j], axes[i]
        return self.transpose(axes)

    @property
    def T(self):
        return self.transpose()

    def __getitem__(self, index):
        basic = _basic_index(index)
        if basic is not None:
            return self._basic_view(basic)
        from dlcore.cuda import kernels

        dim, idx = advanced_index(self, index)
        return kernels.take(self, idx, dim)

    def _basic_view(self, items):
        """items: ints, slices, None and at most one Ellipsis."""
        n_real = sum(1 for i in items if i is not None and i is not Ellipsis)
        if n_real > self.ndim:
            raise IndexError(f"too many indices for array: array is {self.ndim}-dimensional, but {n_real} were indexed")
        if Ellipsis in items:
            k = items.index(Ellipsis)
            items = items[:k] + (slice(None),) * (self.ndim - n_real) + items[k + 1:]
        else:
            items = items + (slice(None),) * (self.ndim - n_real)
        shape, strides, offset, d = [], [], self._offset, 0
        for it in items:
            if it is None:
                shape.append(1)
                strides.append(0)
                continue
            n, st = self._shape[d], self.strides[d]
            if isinstance(it, slice):
                start, stop, step = it.indices(n)
                length = len(range(start, stop, step))
                if length:
                    offset += start * st
                shape.append(length)
                strides.append(st * step)
            else:
                i = int(it)
                if not -n <= i < n:
                    raise IndexError(f"index {i} is out of bounds for axis {d} with size {n}")
                offset += (i % n) * st
            d += 1
        return self._view(tuple(shape), tuple(strides), offset)

    # ---- copies ----------------------------------------------------------------------------
    def copy(self, order="C"):
        out = empty(self._shape, self.dtype, self.device)
        _copy_into(out, self)
        return out

    def astype(self, dtype, copy=True):
        dtype = np.dtype(dtype)
        if dtype == self.dtype and not copy:
            return self
        out = empty(self._shape, dtype, self.device)
        _copy_into(out, self)
        return out

    def fill(self, value):
        if self.size:
            _C.cuda.fill(self.ptr, DTYPE_CODE[self.dtype], element_strides(self), list(self._shape), float(value))

    def __setitem__(self, index, value):
        basic = _basic_index(index)
        if basic is None:
            raise IndexError("CUDA setitem takes basic indices (ints, slices, None, ...); got an index array")
        target = self._basic_view(basic)
        if isinstance(value, CudaArray):
            _copy_into(target, broadcast_to(value, target.shape))
        elif isinstance(value, np.ndarray) and value.ndim > 0:
            _copy_into(target, broadcast_to(from_numpy(value, self.device), target.shape))
        else:
            target.fill(np.asarray(value).item())

    def get(self):
        """A NumPy copy on the host (waits for the queued kernels)."""
        src = self if self.is_contiguous() else self.copy()
        out = np.empty(self._shape, dtype=self.dtype)
        if out.size:
            _C.cuda.copy_to_host(out, src.ptr, self.device)
        return out

    def tolist(self):
        return self.get().tolist()

    def item(self):
        return self.get().item()


# ---- construction ------------------------------------------------------------------------
def empty(shape, dtype, device):
    """A new contiguous (uninitialised) array."""
    shape = tuple(int(s) for s in shape)
    dtype = np.dtype(dtype)
    if any(s < 0 for s in shape):
        raise ValueError(f"empty: negative dimension in shape {shape}")
    nbytes = _size(shape) * dtype.itemsize
    buf = _C.cuda.Buffer(nbytes, device) if nbytes else None
    return CudaArray(buf, 0, shape, _contiguous_strides(shape, dtype.itemsize), dtype, device)


def zeros(shape, dtype, device):
    out = empty(shape, dtype, device)
    out.fill(0)
    return out


def full(shape, value, dtype, device):
    out = empty(shape, dtype, device)
    out.fill(value)
    return out


def from_numpy(array, device):
    """A device copy of a host array (any layout; made contiguous on the host first)."""
    array = np.asarray(array, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    out = empty(array.shape, array.dtype, device)
    if array.size:
        _C.cuda.copy_from_host(out.ptr, array, device)
    return out


def contiguous(a):
    return a if a.is_contiguous() else a.copy()


def element_strides(a):
    return [s // a.itemsize for s in a.strides]


def broadcast_to(a, shape):
    """A read-only-by-convention view of `a` broadcast to `shape` (stride 0 on new dims)."""
    shape = tuple(shape)
    lead = len(shape) - a.ndim
    if lead < 0:
        raise ValueError(f"broadcast_to: cannot broadcast shape {a.shape} to {shape}")
    strides = [0] * lead
    for n_in, st, n_out in zip(a.shape, a.strides, shape[lead:]):
        if n_in == n_out:
            strides.append(st)
        elif n_in == 1:
            strides.append(0)
        else:
            raise ValueError(f"broadcast_to: cannot broadcast shape {a.shape} to {shape}")
    return a._view(shape, tuple(strides))


def concatenate(arrays, axis):
    """Arrays of one dtype and device joined along `axis` (shapes checked by the caller)."""
    first = arrays[0]
    shape = list(first.shape)
    shape[axis] = sum(a.shape[axis] for a in arrays)
    out = empty(shape, first.dtype, first.device)
    start = 0
    for a in arrays:
        n = a.shape[axis]
        index = (slice(None),) * axis + (slice(start, start + n),)
        _copy_into(out[index], a)
        start += n
    return out


def split(a, bounds, axis):
    """Views of `a` cut at the positions `bounds` along `axis` (NumPy's split)."""
    edges = [0] + [int(b) for b in bounds] + [a.shape[axis]]
    return [a[(slice(None),) * axis + (slice(lo, hi),)] for lo, hi in zip(edges[:-1], edges[1:])]


def _copy_into(dst, src):
    """dst[...] = src (same shape; casts between dtypes)."""
    if dst.shape != src.shape:
        raise ValueError(f"copy: shape {src.shape} does not match {dst.shape}")
    if dst.size:
        _C.cuda.strided_copy(dst.ptr, DTYPE_CODE[dst.dtype], element_strides(dst), src.ptr,
                             DTYPE_CODE[src.dtype], element_strides(src), list(dst.shape))


# ---- indexing helpers -----------------------------------------------------------------------
def _basic_index(index):
    """index as a tuple of basic items, or None when it holds an index array."""
    items = index if isinstance(index, tuple) else (index,)
    for i in items:
        if not (isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis) or isinstance(i, bool):
            return None
    return tuple(items)


def advanced_index(a, index):
    """(dim, int64 CudaArray) for an index holding one index array (int or bool, on the device
    or the host) among full slices: a[index] is then take(a, idx, dim). Other combinations
    raise IndexError."""
    items = index if isinstance(index, tuple) else (index,)
    arrays = [k for k, i in enumerate(items) if not (isinstance(i, (int, np.integer, slice)) or i is None)]
    if len(arrays) != 1 or any(i is Ellipsis or i is None for i in items) or any(
            isinstance(i, (int, np.integer)) for i in items):
        raise IndexError("CUDA indexing takes one index array among full slices (x[idx], x[:, idx])")
    k = arrays[0]
    if any(i != slice(None) for j, i in enumerate(items) if j != k):
        raise IndexError("CUDA indexing takes one index array among full slices (x[idx], x[:, idx])")
    idx = items[k]
    if isinstance(idx, (list, tuple)):
        idx = np.asarray(idx)
    if isinstance(idx, CudaArray) and idx.dtype == np.bool_:
        idx = idx.get()
    if isinstance(idx, np.ndarray):
        if idx.dtype == np.bool_:
            if idx.shape != a.shape[k:k + idx.ndim] or idx.ndim != 1:
                raise IndexError(f"boolean index of shape {idx.shape} does not match dim {k} of shape {a.shape}")
            idx = np.nonzero(idx)[0]
        if idx.dtype.kind not in "iu":
            raise IndexError(f"index arrays must be integer or bool, got {idx.dtype}")
        idx = from_numpy(idx.astype(np.int64), a.device)
    if idx.dtype != np.int64:
        raise IndexError(f"index arrays must be int64 or bool, got {idx.dtype}")
    return k, idx
