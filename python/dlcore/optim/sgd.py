"""SGD with momentum, dampening, Nesterov and weight decay, exactly torch.optim.SGD:

    d = g + weight_decay * p
    buf = d  (first step)   |   buf = momentum * buf + (1 - dampening) * d
    d = d + momentum * buf  (nesterov)   |   d = buf
    p = p - lr * d

NumPy parameters take one fused pass each (_C.sgd_step, csrc/cpu/ref/optim.cpp; the NumPy
update below remains for arrays it does not take, see fused_ok), CUDA parameters one fused
kernel per (device, dtype) (dlcore.cuda.kernels.optim.sgd_step).
"""
import numpy as np

from dlcore import _C
from dlcore.optim.optimizer import Optimizer, fused_ok, grad_array, required


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group):
        super()._validate(group)
        if group["lr"] is required:
            raise ValueError("SGD: lr is required")
        for name in ("momentum", "weight_decay"):
            if group[name] < 0.0:
                raise ValueError(f"SGD: invalid {name} value: {group[name]!r} (must be >= 0)")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")

    def _update(self, group):
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        wd, nesterov = group["weight_decay"], group["nesterov"]
        on_gpu = []
        for p in group["params"]:
            if p.grad is None:
                continue
            if not isinstance(p._data, np.ndarray):  # a CudaArray: updated by the fused kernel below
                on_gpu.append(p)
                continue
            g = grad_array("SGD", p)
            if fused_ok(p._data, g):
                buf, first = None, False
                if momentum != 0:
                    state = self.state.setdefault(p, {})
                    buf = state.get("momentum_buffer")
                    first = buf is None
                    if first:  # written by the kernel's first step
                        buf = state["momentum_buffer"] = np.empty_like(p._data)
                _C.sgd_step(p._data, g, buf, lr, momentum, dampening, wd, nesterov, group["maximize"], first)
                continue
            d = -g if group["maximize"] else g  # may alias p.grad: never stored as is
            if wd != 0:
                d = d + wd * p._data
            if momentum != 0:
                state = self.state.setdefault(p, {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = np.array(d, dtype=p._data.dtype, copy=True)
                else:
                    buf *= momentum
                    buf += (1 - dampening) * d
                d = d + momentum * buf if nesterov else buf
            p._data -= lr * d
        if on_gpu:
            self._update_cuda(group, on_gpu)

    def _update_cuda(self, group, params):
        """The same update for CUDA parameters: one fused kernel per (device, dtype)."""
        from dlcore.cuda.array import zeros
        from dlcore.cuda.kernels.optim import by_device_and_dtype, grad_of, sgd_step, state_array

        momentum = group["momentum"]
        for batch in by_device_and_dtype(params):
            grads = [grad_of("SGD", p) for p in batch]
            bufs, fresh = [None] * len(batch), [False] * len(batch)
            if momentum != 0:
                for k, p in enumerate(batch):
                    buf = self.state.get(p, {}).get("momentum_buffer")
                    fresh[k] = buf is None
                    bufs[k] = zeros(p.shape, p._data.dtype, p._data.device) if fresh[k] else state_array(buf, p)
            sgd_step([p._data for p in batch], grads, bufs, group["lr"], momentum, group["dampening"],
                     group["weight_decay"], group["nesterov"], group["maximize"], init_buffers=fresh)
            if momentum != 0:
                for p, buf in zip(batch, bufs):
                    self.state.setdefault(p, {})["momentum_buffer"] = buf
