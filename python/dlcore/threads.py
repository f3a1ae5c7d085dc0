"""CPU threads used by the kernels (OpenMP)."""
from dlcore import _C


def set_num_threads(n):
    """Sets the number of threads the CPU kernels use."""
    if not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    _C.set_num_threads(n)


def get_num_threads():
    return _C.get_num_threads()
