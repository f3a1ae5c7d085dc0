"""The CUDA backend: device status, the stream, the caching allocator's statistics and the
GPU random generator. Tensors move with ``t.to("cuda")`` / ``t.cuda()`` / ``t.cpu()``; the
ops then run the hand-written kernels of ``csrc/cuda/`` (through ``dlcore.cuda.kernels``)."""
from dlcore import _C

if _C.cuda.is_built():
    OutOfMemoryError = _C.cuda.OutOfMemoryError
else:
    class OutOfMemoryError(RuntimeError):
        """Raised when the device has no room for an allocation (never raised without CUDA)."""

_MASK64 = (1 << 64) - 1
_seed = 0x2545F4914F6CDD1D  # the default seed before manual_seed
_offset = 0  # random kernel launches since the seed was set


def is_built():
    """Whether this dlcore was compiled with its CUDA kernels."""
    return _C.cuda.is_built()


def device_count():
    """Number of CUDA devices the runtime sees (0 without a driver; never raises)."""
    return _C.cuda.device_count()


def is_available():
    """Whether CUDA kernels are built and a device is present."""
    return is_built() and device_count() > 0


def _require(op):
    if not is_built():
        raise RuntimeError(f"{op}: dlcore was built without CUDA (install with nvcc on the PATH)")
    if device_count() == 0:
        raise RuntimeError(f"{op}: no CUDA device is visible")


def _index(device):
    if device is None:
        return current_device()
    if isinstance(device, int):
        return device
    from dlcore.dtypes import device as _device

    d = _device(device)
    if d.type != "cuda":
        raise ValueError(f"expected a CUDA device, got {d}")
    return d.index or 0


def get_device_name(device=None):
    _require("cuda.get_device_name")
    return _C.cuda.device_name(_index(device))


def current_device():
    _require("cuda.current_device")
    return _C.cuda.current_device()


def set_device(device):
    _require("cuda.set_device")
    _C.cuda.set_device(_index(device))


def synchronize(device=None):
    """Waits for every kernel queued on the device; raises if one of them failed."""
    _require("cuda.synchronize")
    _C.cuda.synchronize(_index(device))


class Event:
    """A CUDA event on the device's stream, as torch.cuda.Event(enable_timing=True):
    ``start.record(); ...; end.record(); start.elapsed_time(end)`` is GPU milliseconds."""

    def __init__(self, device=None):
        _require("cuda.Event")
        self._event = _C.cuda.Event(_index(device))

    def record(self):
        self._event.record()

    def synchronize(self):
        self._event.synchronize()

    def elapsed_time(self, end):
        return self._event.elapsed_ms(end._event)


def memory_allocated(device=None):
    """Bytes held by live CUDA tensors (size-class rounded), as torch.cuda.memory_allocated."""
    _require("cuda.memory_allocated")
    return _C.cuda.memory_stats(_index(device))["allocated_bytes"]


def max_memory_allocated(device=None):
    _require("cuda.max_memory_allocated")
    return _C.cuda.memory_stats(_index(device))["max_allocated_bytes"]


def memory_reserved(device=None):
    """Bytes the caching allocator holds from the driver (live plus cached)."""
    _require("cuda.memory_reserved")
    return _C.cuda.memory_stats(_index(device))["reserved_bytes"]


def reset_peak_memory_stats(device=None):
    _require("cuda.reset_peak_memory_stats")
    _C.cuda.reset_peak_memory_stats(_index(device))


def empty_cache():
    """Returns the allocator's unused cached blocks to the driver."""
    if is_available():
        _C.cuda.empty_cache()


def manual_seed(seed):
    """Seeds the GPU generator (dropout masks): one seed gives the same masks on every run."""
    global _seed, _offset
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"cuda.manual_seed: seed must be a non-negative int, got {seed!r}")
    _seed, _offset = seed & _MASK64, 0


manual_seed_all = manual_seed


def initial_seed():
    return _seed


def next_seed():
    """A 64-bit Philox key for the next random kernel launch: splitmix64 of (seed, launch
    count), so one manual_seed gives the same sequence of masks on every run."""
    global _offset
    _offset += 1
    z = (_seed + _offset * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)
