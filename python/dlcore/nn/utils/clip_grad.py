"""Gradient clipping, as torch.nn.utils: ``clip_grad_norm_`` (= ``get_total_norm`` then
``clip_grads_with_norm_``) and ``clip_grad_value_``. They edit ``p.grad`` in place (NumPy on
the CPU, the elementwise and reduction kernels on a GPU); nothing here is recorded by autograd."""
import math

import numpy as np

from dlcore import _C
from dlcore.ops._util import SUM, is_cuda, lib, scalar_like
from dlcore.tensor import Tensor

U, B, CMP = _C.UnaryOp, _C.BinaryOp, _C.CompareOp


def _tensors(op, parameters, what="parameters"):
    """A list of Tensors from one Tensor or an iterable of them."""
    if isinstance(parameters, Tensor):
        return [parameters]
    try:
        items = list(parameters)
    except TypeError:
        raise TypeError(f"{op}: {what} must be a Tensor or an iterable of Tensors, "
                        f"got {type(parameters).__name__}") from None
    for i, p in enumerate(items):
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: {what}[{i}] must be a Tensor, got {type(p).__name__}")
    return items


def _grads(op, parameters):
    """The .grad Tensors of `parameters` that have one."""
    return [p.grad for p in _tensors(op, parameters) if p.grad is not None]


def _number(op, name, value):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be a number, got {value!r}") from None


def _vector_norm_cuda(x, p):
    """_vector_norm of a CUDA array: the reductions run on the device (float64 sums), one
    number comes back."""
    k = lib(x)
    a = k.unary_forward(U.abs, x.astype(np.float64).reshape(-1))  # (n,)
    if a.size == 0:
        return 0.0
    if p in (math.inf, -math.inf):
        signed = a if p == math.inf else k.unary_forward(U.neg, a)
        top = k.reduce_forward(_C.ReduceOp.max, signed, 0, 1)[0].item()
        return top if p == math.inf else -top
    if p == 0:
        nonzero = k.compare_forward(CMP.ne, a, scalar_like(0.0, np.float64, a))
        return float(k.reduce_forward(SUM, nonzero, 0, 1)[0].item())
    if p == 1:
        return k.reduce_forward(SUM, a, 0, 1)[0].item()
    powered = k.binary_forward(B.mul, a, a) if p == 2 else k.unary_forward(U.pow_scalar, a, p)
    return k.reduce_forward(SUM, powered, 0, 1)[0].item() ** (1.0 / p)


def _vector_norm(x, p):
    """torch.linalg.vector_norm(x, p) of a NumPy or CUDA array, in float64."""
    if is_cuda(x):
        return _vector_norm_cuda(x, p)
    a = np.abs(x.astype(np.float64, copy=False)).ravel()
    if a.size == 0:
        return 0.0
    if p == math.inf:
        return float(a.max())
    if p == -math.inf:
        return float(a.min())
    if p == 0:
        return float(np.count_nonzero(a))
    if p == 1:
        return float(a.sum())
    if p == 2:
        return float(np.sqrt(np.dot(a, a)))
    return float(np.sum(a ** p) ** (1.0 / p))


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The norm of the per-tensor norms of `tensors` (as if all were one vector): a 0-d
    Tensor of their dtype. `foreach` is accepted for torch compatibility and ignored."""
    op = "get_total_norm"
    tensors = _tensors(op, tensors, "tensors")
    norm_type = _number(op, "norm_type", norm_type)
    if not tensors:
        return Tensor(np.array(0.0, dtype=np.float32))
    dtype = np.result_type(*[t._data.dtype for t in tensors])
    total = _vector_norm(np.array([_vector_norm(t._data, norm_type) for t in tensors]), norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"{op}: the total norm of order {norm_type} for gradients from `parameters` is non-finite "
            f"({total}), so it cannot be clipped. To disable this error and scale the gradients by the "
            "non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return Tensor(np.array(total, dtype=dtype))


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scales every p.grad by max_norm / (total_norm + 1e-6) when that is below 1 (or NaN)."""
    op = "clip_grads_with_norm_"
    max_norm = _number(op, "max_norm", max_norm)
    total = float(total_norm.item() if isinstance(total_norm, Tensor) else total_norm)
    grads = _grads(op, parameters)
    coef = max_norm / (total + 1e-6)
    if coef >= 1.0:  # also False for NaN, which (as in torch) makes every gradient NaN
        return
    with np.errstate(invalid="ignore"):  # inf * 0 -> nan, as torch does, without a warning
        for g in grads:
            if is_cuda(g._data):
                g._data[...] = lib(g._data).binary_forward(B.mul, g._data, scalar_like(coef, g._data.dtype, g._data))
            else:
                g._data *= g._data.dtype.type(coef)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Clips the gradients of `parameters` in place so that their total `norm_type`-norm is at
    most `max_norm`; returns the total norm before clipping (a 0-d Tensor). Parameters whose
    .grad is None are skipped."""
    params = _tensors("clip_grad_norm_", parameters)  # a generator can be walked only once
    max_norm = _number("clip_grad_norm_", "max_norm", max_norm)
    total = get_total_norm(_grads("clip_grad_norm_", params), norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(params, max_norm, total, foreach)
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamps every p.grad in place to [-clip_value, clip_value]."""
    clip_value = _number("clip_grad_value_", "clip_value", clip_value)
    for g in _grads("clip_grad_value_", parameters):
        if is_cuda(g._data):
            g._data[...] = lib(g._data).unary_forward(U.clamp, g._data, -clip_value, clip_value)
        else:
            np.clip(g._data, -clip_value, clip_value, out=g._data)


__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]
