"""CudaArray's view logic (shape, strides, offsets of reshape/transpose/slicing/broadcast,
copies, casts, setitem, concatenate/split) checked against NumPy on every machine: the
device is replaced by a host-memory stand-in for the runtime's five memory calls (Buffer,
strided_copy, fill, copy_from_host, copy_to_host), so only the Python layer is under test
here; tests/cuda/ checks the real kernels on a GPU."""
import ctypes
import types

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from dlcore.cuda import array as cuda_array

CODES = {code: dtype for dtype, code in cuda_array.DTYPE_CODE.items()}


class HostBuffer:
    """A 'device' block in host memory, addressed by its raw pointer like a real one."""

    def __init__(self, nbytes, device):
        self.mem = np.full(nbytes, 0xCD, dtype=np.uint8)  # poisoned: unwritten bytes show
        self.ptr, self.nbytes, self.device = self.mem.ctypes.data, nbytes, device


def _at(ptr, dtype, strides, shape):
    """A NumPy view of the elements at address ptr with element strides (may be 0 / negative)."""
    dtype = np.dtype(dtype)
    lo = sum(min(0, (n - 1) * s) for n, s in zip(shape, strides))
    hi = sum(max(0, (n - 1) * s) for n, s in zip(shape, strides))
    raw = (ctypes.c_char * ((hi - lo + 1) * dtype.itemsize)).from_address(ptr + lo * dtype.itemsize)
    base = np.frombuffer(raw, dtype=dtype)
    return as_strided(base[-lo:], shape=shape, strides=[s * dtype.itemsize for s in strides])


def _strided_copy(dst, dst_dtype, dst_strides, src, src_dtype, src_strides, shape):
    out = _at(dst, CODES[dst_dtype], dst_strides, shape)
    out[...] = _at(src, CODES[src_dtype], src_strides, shape).astype(CODES[dst_dtype])


def _fill(dst, dtype, strides, shape, value):
    _at(dst, CODES[dtype], strides, shape)[...] = value


def _from_host(dst, src, device):
    ctypes.memmove(dst, src.ctypes.data, src.nbytes)


def _to_host(dst, src, device):
    ctypes.memmove(dst.ctypes.data, src, dst.nbytes)


@pytest.fixture(autouse=True)
def host_device(monkeypatch):
    fake_cuda = types.SimpleNamespace(Buffer=HostBuffer, strided_copy=_strided_copy, fill=_fill,
                                      copy_from_host=_from_host, copy_to_host=_to_host)
    monkeypatch.setattr(cuda_array, "_C", types.SimpleNamespace(cuda=fake_cuda))


def pair(rng, shape, dtype=np.float32):
    host = rng.standard_normal(shape).astype(dtype)
    return host, cuda_array.from_numpy(host, 0)


def same(dev, host):
    got = dev.get()
    assert got.shape == host.shape and got.dtype == host.dtype
    np.testing.assert_array_equal(got, host)


@pytest.mark.parametrize("index", [
    (slice(1, 3), slice(None, None, 2)),
    2,
    (Ellipsis, None, 1),
    (slice(None, None, -1), slice(4, 0, -2)),
    (-1, slice(None), 3),
    (slice(5, 2),),
    (None, Ellipsis),
])
def test_basic_index_views_match_numpy(rng, index):
    host, dev = pair(rng, (4, 5, 6))
    same(dev[index], host[index])


def test_views_share_memory_and_copies_do_not(rng):
    host, dev = pair(rng, (3, 4))
    view, copy = dev[1], dev.copy()
    dev[1] = 7.0
    host[1] = 7.0
    same(view, host[1])
    assert not np.array_equal(copy.get(), host)


@pytest.mark.parametrize("axes", [(1, 0, 2), (2, 1, 0), (0, 2, 1)])
def test_transpose_then_reshape_copies_like_numpy(rng, axes):
    host, dev = pair(rng, (2, 3, 5))
    t = dev.transpose(axes)
    assert not t.is_contiguous()
    same(t, host.transpose(axes))
    same(t.reshape(-1, 5 if axes[2] == 2 else 3), host.transpose(axes).reshape(-1, 5 if axes[2] == 2 else 3))
    same(dev.swapaxes(0, 2), host.swapaxes(0, 2))
    same(dev.T, host.T)


def test_reshape_of_contiguous_is_a_view_and_shape_setter_refuses_strided(rng):
    host, dev = pair(rng, (6, 4))
    r = dev.reshape(3, 8)
    assert r.ptr == dev.ptr
    same(r, host.reshape(3, 8))
    v = dev.view()
    v.shape = (24,)
    same(v, host.reshape(24))
    with pytest.raises(AttributeError):
        dev.T.view().shape = (24,)


@pytest.mark.parametrize("src,dst", [(np.float32, np.float64), (np.float64, np.int64), (np.float32, np.bool_),
                                     (np.bool_, np.float32), (np.int64, np.float64)])
def test_astype_matches_numpy(rng, src, dst):
    host = (rng.standard_normal((5, 7)) * 3).astype(src)
    dev = cuda_array.from_numpy(host, 0)
    same(dev.astype(dst), host.astype(dst))
    same(dev[:, ::-2].astype(dst), host[:, ::-2].astype(dst))


def test_broadcast_to_and_setitem_broadcast(rng):
    host, dev = pair(rng, (4, 1))
    same(cuda_array.broadcast_to(dev, (3, 4, 5)).copy(), np.broadcast_to(host, (3, 4, 5)))
    with pytest.raises(ValueError, match="cannot broadcast"):
        cuda_array.broadcast_to(dev, (3, 5))
    target_host, target = pair(rng, (2, 4, 5))
    target[:, 1:3] = dev[1:3]
    target_host[:, 1:3] = host[1:3]
    same(target, target_host)
    target[...] = 2.5
    same(target, np.full((2, 4, 5), 2.5, np.float32))


def test_concatenate_and_split(rng):
    (ha, a), (hb, b) = pair(rng, (2, 3, 4)), pair(rng, (2, 5, 4))
    joined = cuda_array.concatenate([a, b], 1)
    same(joined, np.concatenate([ha, hb], 1))
    for got, want in zip(cuda_array.split(joined, [1, 6], 1), np.split(np.concatenate([ha, hb], 1), [1, 6], 1)):
        same(got, want)


def test_empty_zero_size_and_bad_index(rng):
    z = cuda_array.zeros((0, 3), np.float32, 0)
    assert z.ptr == 0 and z.get().shape == (0, 3)
    _, dev = pair(rng, (3, 4))
    with pytest.raises(IndexError, match="out of bounds"):
        dev[3]
    with pytest.raises(IndexError, match="too many indices"):
        dev[0, 1, 2]
    with pytest.raises(TypeError, match="cannot be converted to NumPy"):
        np.asarray(dev)


def test_mixed_devices_raise_once_a_cuda_array_exists(host_device, rng):
    """Function.apply skips the one-device check until the first CudaArray is made
    (autograd.cuda_arrays_exist); from then on an op on a CPU and a CUDA tensor raises, naming
    the op and both devices, before any kernel runs."""
    from dlcore import autograd
    from dlcore.tensor import Tensor

    _, dev = pair(rng, (3,))
    assert autograd.cuda_arrays_exist
    cpu = Tensor(np.ones(3, np.float32))
    with pytest.raises(RuntimeError, match="Add: expected all tensors on one device, got cpu and cuda:0"):
        Tensor(dev) + cpu
