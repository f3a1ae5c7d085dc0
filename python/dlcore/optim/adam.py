"""Adam and AdamW, exactly torch.optim.Adam / AdamW (t counts steps from 1):

    g = g + weight_decay * p            (Adam: L2 penalty in the gradient)
    p = p * (1 - lr * weight_decay)     (AdamW: decoupled weight decay)
    m = m + (1 - beta1) * (g - m)       (torch's lerp)
    v = beta2 * v + (1 - beta2) * g^2
    v_max = max(v_max, v)               (amsgrad: use v_max below instead of v)
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

NumPy parameters take one fused pass each (_C.adam_step, csrc/cpu/ref/optim.cpp; the NumPy
update below remains for arrays it does not take, see fused_ok), CUDA parameters one fused
kernel per (device, dtype) (dlcore.cuda.kernels.optim.adam_step).
"""
import math

import numpy as np

from dlcore import _C
from dlcore.optim.optimizer import Optimizer, fused_ok, grad_array


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 maximize=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group):
        super()._validate(group)
        name = type(self).__name__
        if not group["eps"] >= 0.0:
            raise ValueError(f"{name}: invalid epsilon value: {group['eps']!r} (must be >= 0)")
        betas = group["betas"]
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair, got {betas!r}")
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name}: invalid beta parameter at index {i}: {b!r} (must be in [0, 1))")
        if not group["weight_decay"] >= 0.0:
            raise ValueError(f"{name}: invalid weight_decay value: {group['weight_decay']!r} (must be >= 0)")

    def _update(self, group):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        wd, amsgrad = group["weight_decay"], group["amsgrad"]
        on_gpu = []
        for p in group["params"]:
            if p.grad is None:
                continue
            if not isinstance(p._data, np.ndarray):  # a CudaArray: updated by the fused kernel below
                on_gpu.append(p)
                continue
            g = grad_array(type(self).__name__, p)
            x = p._data
            state = self.state.setdefault(p, {})
            if not state:
                state["step"] = 0
                state["exp_avg"] = np.zeros_like(x)
                state["exp_avg_sq"] = np.zeros_like(x)
            state["step"] += 1
            t = state["step"]
            m, v = state["exp_avg"], state["exp_avg_sq"]
            step_size = lr / (1 - beta1**t)
            bias_correction2_sqrt = math.sqrt(1 - beta2**t)
            vmax = None
            if amsgrad:
                if state.get("max_exp_avg_sq") is None:
                    state["max_exp_avg_sq"] = np.zeros_like(x)
                vmax = state["max_exp_avg_sq"]
            if fused_ok(x, g):
                _C.adam_step(x, g, m, v, vmax, lr, step_size, bias_correction2_sqrt, beta1, beta2, eps, wd,
                             group["maximize"], self._decoupled)
                continue
            if group["maximize"]:
                g = -g
            if wd != 0:
                if self._decoupled:
                    x *= 1 - lr * wd
                else:
                    g = g + wd * x
            m += (1 - beta1) * (g - m)
            v *= beta2
            v += (1 - beta2) * (g * g)
            if amsgrad:
                np.maximum(vmax, v, out=vmax)
                v = vmax
            denom = np.sqrt(v)
            denom /= bias_correction2_sqrt
            denom += eps
            x -= step_size * (m / denom)
        if on_gpu:
            self._update_cuda(group, on_gpu)

    def _update_cuda(self, group, params):
        """The same update for CUDA parameters: one fused kernel per (device, dtype). State is
        created (zeros) and its step counted as in _update, after every gradient is checked."""
        from dlcore.cuda.array import zeros
        from dlcore.cuda.kernels.optim import adam_step, by_device_and_dtype, grad_of, state_array

        (beta1, beta2), amsgrad = group["betas"], group["amsgrad"]
        for batch in by_device_and_dtype(params):
            grads = [grad_of(type(self).__name__, p) for p in batch]
            names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if amsgrad else [])
            arrays = {name: [] for name in names}
            for p in batch:
                state = self.state.setdefault(p, {})
                if not state:
                    state["step"] = 0
                for name in names:
                    value = state.get(name)
                    value = zeros(p.shape, p._data.dtype, p._data.device) if value is None else state_array(value, p)
                    state[name] = value
                    arrays[name].append(value)
                state["step"] += 1
            adam_step([p._data for p in batch], grads, arrays["exp_avg"], arrays["exp_avg_sq"],
                      arrays.get("max_exp_avg_sq", [None] * len(batch)), [self.state[p]["step"] for p in batch],
                      group["lr"], beta1, beta2, group["eps"], group["weight_decay"], amsgrad, group["maximize"],
                      self._decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01)."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
