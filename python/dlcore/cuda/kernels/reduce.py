"""CUDA mirrors of the reduce and loss ``_C`` functions (csrc/bindings/ops_reduce.cpp,
ops_loss.cpp): the same names, arguments, defaults and return tuples, on CudaArrays.
Kernels: csrc/cuda/reduce.cu (deterministic: fixed-order trees, no atomics).

Differences from the CPU functions, all additions:
- reduce_forward also takes int64 and bool x: sum gives exact int64 (counting correct
  predictions), max gives x's dtype and the int64 index of the first max.
- Inputs need not be C-contiguous (they are copied when they are not).
Range checks: loss targets are checked on the host in the forwards (one copy of the (N,)
target; the error names the op, the value and its position). The backwards and
reduce_max_backward do not copy to the host: their targets / indices come from a checked
forward, and the kernels write NaN rather than read out of bounds for a bad one.
"""
import numpy as np

from dlcore import _C
from dlcore.cuda.array import DTYPE_CODE, CudaArray, contiguous, empty

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_INT64 = np.dtype(np.int64)
_REDUCIBLE = _FLOATS + (_INT64, np.dtype(np.bool_))


# ---- argument checks ---------------------------------------------------------------------------
def _prod(dims):
    n = 1
    for d in dims:
        n *= int(d)
    return n


def _check_arrays(op, **arrays):
    """TypeError unless every argument is a CudaArray; ValueError unless they share a device."""
    for arg, a in arrays.items():
        if not isinstance(a, CudaArray):
            raise TypeError(f"{op}: {arg} must be a CudaArray, got {type(a).__name__}")
    devices = {arg: a.device for arg, a in arrays.items()}
    if len(set(devices.values())) > 1:
        raise ValueError(f"{op}: arguments are on different devices: {devices}")


def _check_dtype(op, arg, a, allowed):
    if a.dtype not in allowed:
        names = " or ".join(str(d) for d in allowed)
        raise TypeError(f"{op}: {arg} must be {names}, got {a.dtype}")


def _check_float(op, arg, a):
    _check_dtype(op, arg, a, _FLOATS)


def _check_same_dtype(op, ref_arg, ref, arg, a):
    if a.dtype != ref.dtype:
        raise TypeError(f"{op}: {arg} must have the dtype of {ref_arg} ({ref.dtype}), got {a.dtype}")


def _check_shape(op, arg, a, shape):
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{op}: {arg} must have shape {tuple(shape)}, got {tuple(a.shape)}")


def _check_dim_range(op, shape, start, end):
    if not 0 <= start < end <= len(shape):
        raise ValueError(f"{op}: dims [start, end) = [{start}, {end}) must satisfy 0 <= start < end <= "
                         f"ndim = {len(shape)} (shape {tuple(shape)})")


def _check_dim(op, shape, dim):
    if not 0 <= dim < len(shape):
        raise ValueError(f"{op}: dim must satisfy 0 <= dim < ndim = {len(shape)}, got {dim} (shape {tuple(shape)})")


def _split(shape, start, end):
    """(outer, R, inner) = prod(shape[:start]), prod(shape[start:end]), prod(shape[end:])."""
    return _prod(shape[:start]), _prod(shape[start:end]), _prod(shape[end:])


def _check_rows(op, arg, a):
    """a must be a float (N, C) array with C >= 1 when N >= 1; returns (N, C)."""
    _check_float(op, arg, a)
    if a.ndim != 2:
        raise ValueError(f"{op}: {arg} must be 2-D (N, C), got shape {tuple(a.shape)}")
    n, c = a.shape
    if n > 0 and c == 0:
        raise ValueError(f"{op}: {arg} has no classes (shape {tuple(a.shape)})")
    return n, c


def _check_target(op, target, n):
    _check_dtype(op, "target", target, (_INT64,))
    if target.ndim != 1:
        raise ValueError(f"{op}: target must be 1-D (N,), got shape {tuple(target.shape)}")
    _check_shape(op, "target", target, (n,))


def _check_target_range(loss, target, c, ignore_index):
    """ValueError unless every target is in [0, C) or equals ignore_index (one host copy)."""
    t = target.get()
    bad = (t != ignore_index) & ((t < 0) | (t >= c))
    if bad.any():
        pos = int(np.argmax(bad))
        raise ValueError(f"{loss}: target {int(t[pos])} at position {pos} is out of range [0, {c})")


def _check_rows_vector(op, ref_arg, ref, arg, a, n):
    _check_same_dtype(op, ref_arg, ref, arg, a)
    if a.ndim != 1:
        raise ValueError(f"{op}: {arg} must be 1-D (N,), got shape {tuple(a.shape)}")
    _check_shape(op, arg, a, (n,))


# ---- reductions ------------------------------------------------------------------------------
def reduce_forward(op, x, start, end):
    """(out, index): reduce dims [start, end) of x; out has shape x.shape[:start] + x.shape[end:].
    index (int64) is the first max's position in the flattened reduced block for ReduceOp.max,
    None for sum. Float sums keep x's dtype; int64 / bool sums give int64."""
    code = int(op)
    if code not in (int(_C.ReduceOp.sum), int(_C.ReduceOp.max)):
        raise ValueError(f"reduce_forward: op must be a ReduceOp, got {op!r}")
    is_max = code == int(_C.ReduceOp.max)
    name = "reduce_forward(max)" if is_max else "reduce_forward(sum)"
    _check_arrays(name, x=x)
    _check_dtype(name, "x", x, _REDUCIBLE)
    shape = tuple(x.shape)
    start, end = int(start), int(end)
    _check_dim_range(name, shape, start, end)
    outer, R, inner = _split(shape, start, end)
    if is_max and R == 0:
        raise ValueError(f"{name}: cannot reduce over an empty dimension (x shape {shape}, dims [{start}, {end}))")
    out_shape = shape[:start] + shape[end:]
    out_dtype = x.dtype if (is_max or x.dtype in _FLOATS) else _INT64
    x = contiguous(x)
    out = empty(out_shape, out_dtype, x.device)
    index = empty(out_shape, _INT64, x.device) if is_max else None
    if outer * inner > 0:
        _C.cuda.reduce_forward(code, DTYPE_CODE[x.dtype], outer, R, inner, x.ptr, out.ptr,
                               index.ptr if is_max else 0)
    return out, index


def reduce_max_backward(index, grad_out, x_shape, start, end):
    """grad_x of shape x_shape: zeros except grad_out at the argmax positions."""
    name = "reduce_max_backward"
    _check_arrays(name, index=index, grad_out=grad_out)
    _check_dtype(name, "index", index, (_INT64,))
    _check_float(name, "grad_out", grad_out)
    x_shape = tuple(int(s) for s in x_shape)
    if any(s < 0 for s in x_shape):
        raise ValueError(f"{name}: x_shape must be non-negative, got {x_shape}")
    start, end = int(start), int(end)
    _check_dim_range(name, x_shape, start, end)
    out_shape = x_shape[:start] + x_shape[end:]
    _check_shape(name, "index", index, out_shape)
    _check_shape(name, "grad_out", grad_out, out_shape)
    outer, R, inner = _split(x_shape, start, end)
    index, grad_out = contiguous(index), contiguous(grad_out)
    grad_x = empty(x_shape, grad_out.dtype, grad_out.device)
    if outer * R * inner > 0:
        _C.cuda.reduce_max_backward(DTYPE_CODE[grad_out.dtype], outer, R, inner, index.ptr, grad_out.ptr, grad_x.ptr)
    return grad_x


# ---- softmax ---------------------------------------------------------------------------------
def softmax_forward(x, dim, log):
    """softmax (log=False) or log_softmax (log=True) of x over dim (0 <= dim < ndim)."""
    name = "softmax_forward(log)" if log else "softmax_forward"
    _check_arrays(name, x=x)
    _check_float(name, "x", x)
    dim = int(dim)
    _check_dim(name, x.shape, dim)
    outer, R, inner = _split(x.shape, dim, dim + 1)
    x = contiguous(x)
    y = empty(x.shape, x.dtype, x.device)
    if outer * R * inner > 0:
        _C.cuda.softmax_forward(DTYPE_CODE[x.dtype], bool(log), outer, R, inner, x.ptr, y.ptr)
    return y


def softmax_backward(y, grad_y, dim, log):
    """grad_x of softmax / log_softmax from the forward output y and grad_y."""
    name = "softmax_backward(log)" if log else "softmax_backward"
    _check_arrays(name, y=y, grad_y=grad_y)
    _check_float(name, "y", y)
    _check_same_dtype(name, "y", y, "grad_y", grad_y)
    dim = int(dim)
    _check_dim(name, y.shape, dim)
    _check_shape(name, "grad_y", grad_y, y.shape)
    outer, R, inner = _split(y.shape, dim, dim + 1)
    y, grad_y = contiguous(y), contiguous(grad_y)
    grad_x = empty(y.shape, y.dtype, y.device)
    if outer * R * inner > 0:
        _C.cuda.softmax_backward(DTYPE_CODE[y.dtype], bool(log), outer, R, inner, y.ptr, grad_y.ptr, grad_x.ptr)
    return grad_x


# ---- losses ----------------------------------------------------------------------------------
def cross_entropy_forward(logits, target, ignore_index=-100):
    """(loss (N,), lse (N,)) of logits (N, C) and int64 target (N,); ignored rows get loss 0."""
    name = "cross_entropy_forward"
    _check_arrays(name, logits=logits, target=target)
    n, c = _check_rows(name, "logits", logits)
    _check_target(name, target, n)
    ignore_index = int(ignore_index)
    _check_target_range("cross_entropy", target, c, ignore_index)
    logits, target = contiguous(logits), contiguous(target)
    loss = empty((n,), logits.dtype, logits.device)
    lse = empty((n,), logits.dtype, logits.device)
    if n > 0:
        _C.cuda.cross_entropy_forward(DTYPE_CODE[logits.dtype], n, c, logits.ptr, target.ptr, ignore_index,
                                      loss.ptr, lse.ptr)
    return loss, lse


def cross_entropy_backward(logits, target, lse, grad_loss, ignore_index=-100):
    """grad_logits (N, C) = grad_loss[n] * (softmax(logits)[n] - onehot(target[n])); 0 for ignored rows."""
    name = "cross_entropy_backward"
    _check_arrays(name, logits=logits, target=target, lse=lse, grad_loss=grad_loss)
    n, c = _check_rows(name, "logits", logits)
    _check_target(name, target, n)
    _check_rows_vector(name, "logits", logits, "lse", lse, n)
    _check_rows_vector(name, "logits", logits, "grad_loss", grad_loss, n)
    logits, target, lse, grad_loss = (contiguous(a) for a in (logits, target, lse, grad_loss))
    grad = empty((n, c), logits.dtype, logits.device)
    if n * c > 0:
        _C.cuda.cross_entropy_backward(DTYPE_CODE[logits.dtype], n, c, logits.ptr, target.ptr, int(ignore_index),
                                       lse.ptr, grad_loss.ptr, grad.ptr)
    return grad


def nll_loss_forward(logp, target, ignore_index=-100):
    """Per-row loss (N,) = -logp[n, target[n]]; 0 for ignored rows."""
    name = "nll_loss_forward"
    _check_arrays(name, logp=logp, target=target)
    n, c = _check_rows(name, "logp", logp)
    _check_target(name, target, n)
    ignore_index = int(ignore_index)
    _check_target_range("nll_loss", target, c, ignore_index)
    logp, target = contiguous(logp), contiguous(target)
    loss = empty((n,), logp.dtype, logp.device)
    if n > 0:
        _C.cuda.nll_loss_forward(DTYPE_CODE[logp.dtype], n, c, logp.ptr, target.ptr, ignore_index, loss.ptr)
    return loss


def nll_loss_backward(target, grad_loss, C, ignore_index=-100):
    """grad_logp (N, C): zero except -grad_loss[n] at (n, target[n]) for non-ignored rows."""
    name = "nll_loss_backward"
    _check_arrays(name, target=target, grad_loss=grad_loss)
    _check_float(name, "grad_loss", grad_loss)
    if grad_loss.ndim != 1:
        raise ValueError(f"{name}: grad_loss must be 1-D (N,), got shape {tuple(grad_loss.shape)}")
    n, c = grad_loss.shape[0], int(C)
    if c < 0 or (n > 0 and c == 0):
        raise ValueError(f"{name}: C must be >= 1, got {c}")
    _check_target(name, target, n)
    target, grad_loss = contiguous(target), contiguous(grad_loss)
    grad = empty((n, c), grad_loss.dtype, grad_loss.device)
    if n * c > 0:
        _C.cuda.nll_loss_backward(DTYPE_CODE[grad_loss.dtype], n, c, target.ptr, int(ignore_index), grad_loss.ptr,
                                  grad.ptr)
    return grad
