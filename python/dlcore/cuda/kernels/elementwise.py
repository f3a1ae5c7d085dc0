"""GPU elementwise ops with the CPU ``_C`` functions' names, signatures and return conventions
(csrc/bindings/ops_elementwise.cpp), over CudaArrays: unary_forward, unary_backward,
binary_forward, compare_forward, where_forward. Kernels: csrc/cuda/elementwise.cu.

Differences from the CPU, all widenings: unary inputs may be non-contiguous (copied first);
binary / compare / where operands may have any strides, negative ones included (the kernel
walks them; nothing is copied); binary add, sub, mul, maximum, minimum and compare also take
int64, compare and where every dtype (bool included); a NumPy array or scalar operand is
uploaded to the device of the CudaArray operands. Outputs are new contiguous CudaArrays.
"""
import numpy as np

from dlcore import _C
from dlcore.cuda.array import DTYPE_CODE, CudaArray, contiguous, element_strides, empty, from_numpy

_MAX_DIMS = 8  # csrc/cuda/elementwise.h: kElementwiseMaxDims, the CPU BroadcastIter's bound
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_INT64 = np.dtype(np.int64)
_BOOL = np.dtype(np.bool_)
_READS_Y = ("exp", "tanh", "sigmoid", "sqrt")  # unary ops whose gradient reads y = f(x)
_INT_BINARY = ("add", "sub", "mul", "maximum", "minimum")  # binary ops that take int64


def _name(op):
    return getattr(op, "name", str(op))


def _shapes(arrays):
    """'(2,), (3,) and ()' as the CPU bindings write shape lists."""
    s = [str(tuple(a.shape)) for a in arrays]
    return s[0] if len(s) == 1 else ", ".join(s[:-1]) + " and " + s[-1]


def _check_cuda(what, arg, a):
    if not isinstance(a, CudaArray):
        raise TypeError(f"{what}: {arg} must be a CudaArray, got {type(a).__name__}")


def _check_float(what, arg, a):
    if a.dtype not in _FLOATS:
        raise TypeError(f"{what}: {arg} must be float32 or float64, got {a.dtype}")


def _check_same_dtype(what, arg_a, a, arg_b, b):
    if a.dtype != b.dtype:
        raise TypeError(f"{what}: {arg_b} must have the dtype of {arg_a} ({a.dtype}), got {b.dtype}")


def _on_device(what, names, values):
    """The operands as CudaArrays on one device: NumPy arrays and scalars are uploaded to the
    device of the first CudaArray among them."""
    devices = [v.device for v in values if isinstance(v, CudaArray)]
    if not devices:
        kinds = ", ".join(type(v).__name__ for v in values)
        raise TypeError(f"{what}: expected CudaArray operands, got {kinds}")
    out = []
    for name, v in zip(names, values):
        if isinstance(v, CudaArray):
            if v.device != devices[0]:
                raise ValueError(f"{what}: {name} is on cuda:{v.device}, the other operands on cuda:{devices[0]}")
        elif isinstance(v, (np.ndarray, np.generic, bool, int, float)):
            host = np.asarray(v)
            if host.dtype not in DTYPE_CODE:
                raise TypeError(f"{what}: {name} has dtype {host.dtype}, not one of float32, float64, int64, bool")
            v = from_numpy(host, devices[0])
        else:
            raise TypeError(f"{what}: {name} must be a CudaArray, got {type(v).__name__}")
        out.append(v)
    return out


def _broadcast(what, names, arrays):
    """NumPy broadcasting: (out shape, one element-stride list per operand over the out dims,
    0 on broadcast and size-1 dims)."""
    for name, a in zip(names, arrays):
        if a.ndim > _MAX_DIMS:
            raise ValueError(f"{what}: {name} has {a.ndim} dims (shape {a.shape}), at most {_MAX_DIMS} are supported")
    ndim = max(a.ndim for a in arrays)
    shape = [1] * ndim
    for a in arrays:
        lead = ndim - a.ndim
        for d, n in enumerate(a.shape):
            o = shape[lead + d]
            if n == o or n == 1:
                continue
            if o != 1:
                raise ValueError(f"{what}: operands could not be broadcast together with shapes {_shapes(arrays)}")
            shape[lead + d] = n
    strides = []
    for a in arrays:
        lead = ndim - a.ndim
        st = [0] * ndim
        for d, (n, s) in enumerate(zip(a.shape, element_strides(a))):
            if n != 1:
                st[lead + d] = s
        strides.append(st)
    return tuple(shape), strides


def unary_forward(op, x, alpha=0.0, beta=0.0):
    """y = f(x) elementwise; x float32/float64 of any shape. alpha, beta: clamp min / max
    (+-inf = no bound), pow_scalar exponent (alpha)."""
    what = "unary_forward"
    _check_cuda(what, "x", x)
    _check_float(what, "x", x)
    x = contiguous(x)
    y = empty(x.shape, x.dtype, x.device)
    if y.size:
        _C.cuda.unary_forward(int(op), DTYPE_CODE[x.dtype], y.size, x.ptr, y.ptr, float(alpha), float(beta))
    return y


def unary_backward(op, x, y, grad_y, alpha=0.0, beta=0.0):
    """grad_x = grad_y * f'(.): exp, tanh, sigmoid, sqrt read y; neg reads neither; the
    others read x. The one not read may be None."""
    what = f"unary_backward({_name(op)})"
    _check_cuda(what, "grad_y", grad_y)
    _check_float(what, "grad_y", grad_y)
    reads_y = _name(op) in _READS_Y
    reads_x = not reads_y and _name(op) != "neg"

    def saved(a, arg, needed):
        if not needed:
            return None
        if a is None:
            raise ValueError(f"{what}: {arg} is required for this op's gradient, got None")
        _check_cuda(what, arg, a)
        _check_same_dtype(what, "grad_y", grad_y, arg, a)
        if a.shape != grad_y.shape:
            raise ValueError(f"{what}: {arg} must have shape {grad_y.shape}, got {a.shape}")
        return contiguous(a)

    xs, ys = saved(x, "x", reads_x), saved(y, "y", reads_y)
    for arg, a in (("x", xs), ("y", ys)):
        if a is not None and a.device != grad_y.device:
            raise ValueError(f"{what}: {arg} is on cuda:{a.device}, grad_y on cuda:{grad_y.device}")
    g = contiguous(grad_y)
    grad_x = empty(g.shape, g.dtype, g.device)
    if grad_x.size:
        _C.cuda.unary_backward(int(op), DTYPE_CODE[g.dtype], grad_x.size, xs.ptr if xs is not None else 0,
                               ys.ptr if ys is not None else 0, g.ptr, grad_x.ptr, float(alpha), float(beta))
    return grad_x


def binary_forward(op, a, b):
    """out = a (op) b with NumPy broadcasting; any strides; out contiguous. float32/float64,
    and int64 for add, sub, mul, maximum, minimum."""
    name = _name(op)
    what = f"binary_forward({name})"
    a, b = _on_device(what, ("a", "b"), (a, b))
    if a.dtype not in _FLOATS and not (a.dtype == _INT64 and name in _INT_BINARY):
        allowed = "float32, float64 or int64" if name in _INT_BINARY else "float32 or float64"
        raise TypeError(f"{what}: a must be {allowed}, got {a.dtype}")
    _check_same_dtype(what, "a", a, "b", b)
    shape, (sa, sb) = _broadcast(what, ("a", "b"), (a, b))
    out = empty(shape, a.dtype, a.device)
    if out.size:
        _C.cuda.binary_forward(int(op), DTYPE_CODE[a.dtype], list(shape), a.ptr, sa, b.ptr, sb, out.ptr)
    return out


def compare_forward(op, a, b):
    """bool out = a (cmp) b with NumPy broadcasting; a and b of one dtype (any)."""
    what = f"compare_forward({_name(op)})"
    a, b = _on_device(what, ("a", "b"), (a, b))
    _check_same_dtype(what, "a", a, "b", b)
    shape, (sa, sb) = _broadcast(what, ("a", "b"), (a, b))
    out = empty(shape, _BOOL, a.device)
    if out.size:
        _C.cuda.compare_forward(int(op), DTYPE_CODE[a.dtype], list(shape), a.ptr, sa, b.ptr, sb, out.ptr)
    return out


def where_forward(cond, a, b):
    """out = cond ? a : b with NumPy broadcasting over all three; cond bool, a and b of one dtype."""
    what = "where_forward"
    cond, a, b = _on_device(what, ("cond", "a", "b"), (cond, a, b))
    if cond.dtype != _BOOL:
        raise TypeError(f"{what}: cond must be bool, got {cond.dtype}")
    _check_same_dtype(what, "a", a, "b", b)
    shape, (sc, sa, sb) = _broadcast(what, ("cond", "a", "b"), (cond, a, b))
    out = empty(shape, a.dtype, a.device)
    if out.size:
        _C.cuda.where_forward(DTYPE_CODE[a.dtype], list(shape), cond.ptr, sc, a.ptr, sa, b.ptr, sb, out.ptr)
    return out
