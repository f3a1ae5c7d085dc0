"""The Optimizer base class: parameter groups with per-group hyper-parameters, per-parameter
state, zero_grad and state_dict / load_state_dict, as torch.optim.Optimizer.

Subclasses implement ``_update(group)``; updates run in NumPy on ``p._data`` in place (or in
one fused kernel per group for CUDA parameters), so
the parameter Tensors an optimizer holds stay the ones the model holds. State arrays are
always the optimizer's own (never an alias of ``p.grad``)."""
import copy

import numpy as np

from dlcore import autograd
from dlcore.cuda.array import CudaArray, from_numpy
from dlcore.tensor import Tensor


class _RequiredParameter:
    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}  # param Tensor -> dict (Tensors hash by identity)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors or of dicts, got a single Tensor")
        if isinstance(params, (set, frozenset)):
            raise TypeError("params must be an ordered iterable (list, generator), not a set: the order "
                            "must be the same between runs for state_dict to match")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group):
        if not isinstance(param_group, dict):
            raise TypeError(f"add_param_group: expected a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("add_param_group: params must be an ordered iterable, not a set")
        params = list(params) if params is not None else []
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: can't optimize a non-leaf Tensor")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{type(self).__name__}: a parameter group contains a parameter twice")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"{type(self).__name__}: parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        self._validate(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def _validate(self, group):
        """Raises ValueError for out-of-range hyper-parameters; subclasses extend it."""
        lr = group.get("lr")
        if lr is not None and not (isinstance(lr, (int, float)) and lr >= 0.0):
            raise ValueError(f"{type(self).__name__}: invalid learning rate: {lr!r} (must be >= 0)")

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad._data[...] = 0

    def step(self, closure=None):
        """One update of every parameter that has a gradient. closure (optional) recomputes
        the loss with grad enabled and returns it; step returns that loss."""
        loss = None
        if closure is not None:
            with autograd.enable_grad():
                loss = closure()
        with autograd.no_grad():
            for group in self.param_groups:
                self._update(group)
        return loss

    def _update(self, group):
        raise NotImplementedError

    # ---- state dict ------------------------------------------------------------------------
    def state_dict(self):
        """{'state': {index: {name: Tensor | number}}, 'param_groups': [{..., 'params': [index]}]},
        parameters numbered in group order as in torch. Arrays are copies."""
        index, groups, n = {}, [], 0
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = list(range(n, n + len(group["params"])))
            for p in group["params"]:
                index[id(p)] = n
                n += 1
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                s = self.state.get(p)
                if s:
                    state[index[id(p)]] = {k: Tensor(v.copy()) if isinstance(v, (np.ndarray, CudaArray)) else v
                                           for k, v in s.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"load_state_dict: the state dict has {len(groups)} parameter groups, "
                             f"this optimizer has {len(self.param_groups)}")
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"load_state_dict: parameter group {i} has {len(saved['params'])} parameters "
                                 f"in the state dict and {len(own['params'])} in this optimizer")
        by_index = {}
        for saved, own in zip(groups, self.param_groups):
            for idx, p in zip(saved["params"], own["params"]):
                by_index[int(idx)] = p
        new_state = {}
        for idx, s in state_dict["state"].items():
            p = by_index.get(int(idx))
            if p is None:
                raise ValueError(f"load_state_dict: state for unknown parameter index {idx}")
            entry = {}
            for k, v in s.items():
                if isinstance(v, (Tensor, np.ndarray, CudaArray)):
                    arr = v._data if isinstance(v, Tensor) else v
                    if isinstance(arr, CudaArray):
                        arr = arr.get()
                    if arr.shape != p._data.shape and arr.ndim > 0:
                        raise ValueError(f"load_state_dict: state {k!r} of parameter {idx} has shape {arr.shape}, "
                                         f"the parameter has shape {p._data.shape}")
                    if arr.ndim == 0 and p._data.ndim != 0:  # a scalar such as 'step' saved as a 0-d tensor
                        v = arr.item()
                    else:
                        v = np.array(arr, dtype=p._data.dtype if arr.dtype.kind == "f" else arr.dtype)
                        if isinstance(p._data, CudaArray):  # state lives where its parameter does
                            v = from_numpy(v, p._data.device)
                entry[k] = v
            new_state[p] = entry
        for saved, own in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    own[k] = tuple(v) if isinstance(own.get(k), tuple) and isinstance(v, list) else v
        self.state = new_state

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(group):
                if k != "params":
                    lines.append(f"    {k}: {group[k]}")
        lines.append(")")
        return "\n".join(lines)


def grad_array(op, p, maximize=False):
    """p's gradient as an array (negated when maximizing); checks its shape."""
    g = p.grad._data
    if g.shape != p._data.shape:
        raise RuntimeError(f"{op}: gradient shape {g.shape} does not match parameter shape {p._data.shape}")
    return -g if maximize else g


def fused_ok(x, g):
    """Whether a NumPy parameter x and its gradient g take the fused CPU step kernels
    (csrc/cpu/ref/optim.cpp): float32 / float64 alike, C-contiguous, x writeable, not sharing
    memory. Otherwise the NumPy update runs. (The state arrays the optimiser made itself, or
    load_state_dict converted to x's dtype; the kernel binding checks them all again.)"""
    return (x.dtype == g.dtype and x.dtype in (np.float32, np.float64) and x.flags.c_contiguous
            and x.flags.writeable and g.flags.c_contiguous and not np.may_share_memory(x, g))
