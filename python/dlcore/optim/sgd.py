"""SGD with momentum, dampening, Nesterov and weight decay, exactly torch.optim.SGD:

    d = g + weight_decay * p
    buf = d  (first step)   |   buf = momentum * buf + (1 - dampening) * d
    d = d + momentum * buf  (nesterov)   |   d = buf
    p = p - lr * d
"""
import numpy as np

from dlcore.optim.optimizer import Optimizer, grad_array, required


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
        for p in group["params"]:
            if p.grad is None:
                continue
            d = grad_array("SGD", p, group["maximize"])  # may alias p.grad: never stored as is
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
