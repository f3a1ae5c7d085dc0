"""Finite-difference gradient check: compares backward() with central differences in
float64. Used by the test suite on every differentiable op, and by users adding a custom
Function."""
import numpy as np

from dlcore import autograd
from dlcore.cuda.array import CudaArray
from dlcore.tensor import Tensor


def _host(a):
    """Array a on the host (a copy for a CUDA array, a itself on the CPU)."""
    return a.get() if isinstance(a, CudaArray) else a


def _outputs(fn, inputs):
    out = fn(*inputs)
    return out if isinstance(out, (tuple, list)) else (out,)


def _project(outs, weights):
    """A scalar L = sum_i <out_i, w_i> (fixed random w_i), so one backward checks all of J."""
    total = 0.0
    for o, w in zip(outs, weights):
        if w is not None:
            total += float(np.sum(_host(o._data).astype(np.float64) * w))
    return total


def _sync(t, values):
    """Makes tensor t hold `values` (a no-op on the CPU, where values is its own array)."""
    if isinstance(t._data, CudaArray):
        t._data[...] = values


def gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4, seed=0):
    """Raises AssertionError (naming the input, index, analytic and numeric values) unless the
    analytic gradient of fn at `inputs` matches central differences. Inputs that require
    grad must be float64 leaf Tensors; fn returns a Tensor or a tuple of Tensors."""
    rng = np.random.default_rng(seed)
    check = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not check:
        raise ValueError("gradcheck: no input requires grad")
    for t in check:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64 for a meaningful check, got {t.dtype}")
        if not t._data.flags.c_contiguous:
            raise ValueError("gradcheck: inputs that require grad must be contiguous")
        t.grad = None
    outs = _outputs(fn, inputs)
    weights = [rng.standard_normal(o.shape) if (isinstance(o, Tensor) and o.requires_grad) else None for o in outs]
    if all(w is None for w in weights):
        raise ValueError("gradcheck: no output depends on an input that requires grad")
    loss = None
    for o, w in zip(outs, weights):
        if w is not None:
            term = (o * Tensor(w.astype(o.dtype)).to(o.device)).sum()
            loss = term if loss is None else loss + term
    loss.backward()
    with autograd.no_grad():
        for k, t in enumerate(check):
            analytic = np.zeros(t.shape) if t.grad is None else _host(t.grad._data).astype(np.float64)
            values = _host(t._data)  # perturbed in place on the CPU; uploaded after each change on a GPU
            flat = values.reshape(-1)
            numeric = np.zeros(flat.size)
            for i in range(flat.size):
                orig = flat[i]
                flat[i] = orig + eps
                _sync(t, values)
                plus = _project(_outputs(fn, inputs), weights)
                flat[i] = orig - eps
                _sync(t, values)
                minus = _project(_outputs(fn, inputs), weights)
                flat[i] = orig
                _sync(t, values)
                numeric[i] = (plus - minus) / (2 * eps)
            numeric = numeric.reshape(t.shape)
            err = np.abs(analytic - numeric)
            tol = atol + rtol * np.abs(numeric)
            if not np.all(err <= tol):
                worst = np.unravel_index(np.argmax(err - tol), err.shape)
                raise AssertionError(
                    f"gradcheck: input {k} (shape {t.shape}) at index {worst}: analytic {analytic[worst]:.10g}, "
                    f"numeric {numeric[worst]:.10g}, error {err[worst]:.3g} > tolerance {tol[worst]:.3g}"
                )
    return True
