"""Fused GPU optimizer steps (csrc/cuda/optim.cu): ``sgd_step`` and ``adam_step`` update a
list of CudaArray parameters (one dtype, one device) and their state in place, in one kernel
launch, with exactly the arithmetic of python/dlcore/optim/{sgd,adam}.py. The optimizers
call them for their CUDA parameters; ``by_device_and_dtype``, ``grad_of`` and ``state_array``
are the helpers they use to batch parameters, check gradients and keep state on the
parameter's device.
"""
import math

import numpy as np

from dlcore import _C
from dlcore.cuda.array import DTYPE_CODE, CudaArray, contiguous, from_numpy

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def by_device_and_dtype(params):
    """The parameter Tensors in lists of one (device, dtype), first-seen order kept."""
    lists = {}
    for p in params:
        lists.setdefault((p._data.device, p._data.dtype), []).append(p)
    return list(lists.values())


def grad_of(op, p):
    """p's gradient array (a CudaArray like p's; maximize is applied by the kernel)."""
    g = p.grad._data
    if not isinstance(p._data, CudaArray) or not isinstance(g, CudaArray):
        raise TypeError(f"{op}: parameter on {type(p._data).__name__} but gradient on {type(g).__name__}; "
                        f"both must be on one device")
    if tuple(g.shape) != tuple(p._data.shape):
        raise RuntimeError(f"{op}: gradient shape {tuple(g.shape)} does not match parameter shape "
                           f"{tuple(p._data.shape)}")
    if g.device != p._data.device:
        raise RuntimeError(f"{op}: gradient on cuda:{g.device}, parameter on cuda:{p._data.device}")
    return g


def state_array(value, param):
    """A state buffer as a contiguous CudaArray with the parameter's shape, dtype and device
    (state loaded from a CPU run arrives as a NumPy array)."""
    x = param._data
    if isinstance(value, CudaArray):
        if value.device != x.device:
            value = value.get()
        elif value.dtype != x.dtype:
            value = value.astype(x.dtype)
    if not isinstance(value, CudaArray):
        value = from_numpy(np.asarray(value, dtype=x.dtype), x.device)
    if tuple(value.shape) != tuple(x.shape):
        raise ValueError(f"optimizer state of shape {tuple(value.shape)} does not match the parameter's "
                         f"shape {tuple(x.shape)}")
    return contiguous(value)


def _check_params(op, params, grads, **states):
    """(dtype, device) shared by every parameter; TypeError / ValueError naming the op otherwise."""
    if len(grads) != len(params):
        raise ValueError(f"{op}: {len(params)} params but {len(grads)} grads")
    for name, arrays in states.items():
        if len(arrays) != len(params):
            raise ValueError(f"{op}: {len(params)} params but {len(arrays)} {name}")
    if not params:
        return None, None
    dtype, device = params[0].dtype, params[0].device
    if dtype not in _FLOATS:
        raise TypeError(f"{op}: parameters must be float32 or float64, got {dtype}")
    for k, p in enumerate(params):
        named = [("param", p), ("grad", grads[k])] + [(name[:-1], arrays[k]) for name, arrays in states.items()]
        for name, a in named:
            if a is None:
                continue
            if not isinstance(a, CudaArray):
                raise TypeError(f"{op}: {name} {k} must be a CudaArray, got {type(a).__name__}")
            if a.dtype != dtype or a.device != device:
                raise TypeError(f"{op}: {name} {k} is {a.dtype} on cuda:{a.device}, expected {dtype} on "
                                f"cuda:{device} like param 0")
            if tuple(a.shape) != tuple(p.shape):
                raise ValueError(f"{op}: {name} {k} has shape {tuple(a.shape)}, the parameter {tuple(p.shape)}")
            if name != "grad" and not a.is_contiguous():
                raise ValueError(f"{op}: {name} {k} must be contiguous (it is updated in place)")
    return dtype, device


def _ptr(a):
    return 0 if a is None else a.ptr


def _on_device(device, launch):
    """Runs launch() with `device` current (kernels queue on the current device's stream)."""
    previous = _C.cuda.current_device()
    if previous != device:
        _C.cuda.set_device(device)
    try:
        launch()
    finally:
        if previous != device:
            _C.cuda.set_device(previous)


def sgd_step(params, grads, bufs, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
             maximize=False, init_buffers=None):
    """One SGD step over CudaArrays: params (updated in place), grads, bufs (momentum buffers,
    None entries when momentum == 0). init_buffers[k]: buffer k is set to d (its first step)."""
    op = "sgd_step"
    init_buffers = [False] * len(params) if init_buffers is None else list(init_buffers)
    if momentum != 0 and any(b is None for b in bufs):
        raise ValueError(f"{op}: momentum {momentum} needs a momentum buffer for every parameter")
    dtype, device = _check_params(op, params, grads, bufs=bufs, init_buffers=[None] * len(init_buffers))
    if dtype is None:
        return
    grads = [contiguous(g) for g in grads]  # held until the launch below returns
    bufs = [b if momentum != 0 else None for b in bufs]
    _on_device(device, lambda: _C.cuda.sgd_step(
        DTYPE_CODE[dtype], device, [p.ptr for p in params], [g.ptr for g in grads], [_ptr(b) for b in bufs],
        [p.size for p in params], [bool(i) for i in init_buffers], float(lr), float(momentum),
        float(1 - dampening), float(weight_decay), bool(nesterov), bool(maximize)))


def adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1, beta2, eps,
              weight_decay=0.0, amsgrad=False, maximize=False, decoupled=False):
    """One Adam (decoupled=False) / AdamW (True) step over CudaArrays, in place. steps[k] is
    parameter k's step count t including this step; max_exp_avg_sqs entries are None without
    amsgrad. Bias corrections as python/dlcore/optim/adam.py computes them."""
    op = "adam_step"
    if amsgrad and any(m is None for m in max_exp_avg_sqs):
        raise ValueError(f"{op}: amsgrad needs a max_exp_avg_sq for every parameter")
    dtype, device = _check_params(op, params, grads, exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs,
                                  max_exp_avg_sqs=max_exp_avg_sqs, steps=[None] * len(steps))
    if dtype is None:
        return
    grads = [contiguous(g) for g in grads]  # held until the launch below returns
    step_sizes = [lr / (1 - beta1**t) for t in steps]
    bias_correction2_sqrts = [math.sqrt(1 - beta2**t) for t in steps]
    max_ptrs = [_ptr(m) if amsgrad else 0 for m in max_exp_avg_sqs]
    _on_device(device, lambda: _C.cuda.adam_step(
        DTYPE_CODE[dtype], device, [p.ptr for p in params], [g.ptr for g in grads], [m.ptr for m in exp_avgs],
        [v.ptr for v in exp_avg_sqs], max_ptrs, [p.size for p in params], [float(s) for s in step_sizes],
        [float(b) for b in bias_correction2_sqrts], float(1 - beta1), float(beta2), float(1 - beta2), float(eps),
        float(weight_decay), float(1 - lr * weight_decay), bool(amsgrad), bool(maximize), bool(decoupled)))
