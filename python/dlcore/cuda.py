"""CUDA status. The CUDA backend (kernels, device tensors) is a later issue; this build
reports whether CUDA kernels were compiled in and whether a device is present."""
from dlcore import _C


def is_built():
    """Whether this dlcore was compiled with its CUDA kernels."""
    return _C.cuda.is_built()


def device_count():
    """Number of CUDA devices the runtime sees (0 without a driver; never raises)."""
    return _C.cuda.device_count()


def is_available():
    """Whether CUDA kernels are built and a device is present."""
    return is_built() and device_count() > 0


def get_device_name(device=0):
    return _C.cuda.device_name(device)
