"""Data types and devices.

dtypes are NumPy dtype objects, so ``t.dtype == dlcore.float32`` and ``t.numpy().dtype`` agree.
float32 is first-class; float64 runs on the CPU (finite-difference gradient checks use it);
int64 holds indices and labels; bool holds masks and comparison results.
"""
import numpy as np

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)
float = float32  # noqa: A001 - torch-style alias
double = float64
long = int64

SUPPORTED = (float32, float64, int64, bool_)
FLOATS = (float32, float64)


def as_dtype(dtype):
    """Normalises a dtype spec (dlcore/NumPy dtype, type or name) and checks it is supported."""
    if dtype is None:
        return None
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: cannot interpret {dtype!r} as a dtype") from None
    if dt not in SUPPORTED:
        raise TypeError(f"dtype: {dt} is not supported; use float32, float64, int64 or bool")
    return dt


class device:
    """Where a tensor lives: ``device('cpu')`` or ``device('cuda', 0)``."""

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index=None):
        if isinstance(spec, device):
            spec, index = spec.type, spec.index
        spec = str(spec)
        if ":" in spec:
            spec, idx = spec.split(":", 1)
            index = int(idx)
        if spec not in ("cpu", "cuda"):
            raise ValueError(f"device: unknown device type {spec!r}, expected 'cpu' or 'cuda'")
        self.type = spec
        self.index = index

    def __eq__(self, other):
        try:
            other = device(other)
        except (ValueError, TypeError):
            return NotImplemented
        return self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self):
        return hash((self.type, self.index or 0))

    def __repr__(self):
        return f"device(type='{self.type}'" + (f", index={self.index})" if self.index is not None else ")")

    def __str__(self):
        return self.type + (f":{self.index}" if self.index is not None else "")


CPU = device("cpu")
