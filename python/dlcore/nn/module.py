"""Module, Parameter and the containers (Sequential, ModuleList), as in torch.nn."""
from collections import OrderedDict, namedtuple

import numpy as np

from dlcore import dtypes
from dlcore.cuda.array import CudaArray
from dlcore.tensor import Tensor


def _converted(arr, device, dtype):
    """Array `arr` on `device` (None: where it is) with float dtype `dtype` (None: as is)."""
    from dlcore.ops.shape import _move

    if dtype is not None and arr.dtype in dtypes.FLOATS and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr if device is None else _move(arr, device)


class Parameter(Tensor):
    """``Parameter(data, requires_grad=True)``: a leaf Tensor that a Module registers when it
    is assigned as an attribute. It shares storage with ``data`` (as torch.nn.Parameter)."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            arr = np.empty((0,), dtype=dtypes.float32)
        elif isinstance(data, Tensor):
            arr = data._data
        elif isinstance(data, (np.ndarray, CudaArray)):
            arr = data
        else:
            raise TypeError(f"Parameter: data must be a Tensor or a numpy.ndarray, got {type(data).__name__}")
        if requires_grad and arr.dtype not in dtypes.FLOATS:
            raise TypeError(f"Parameter: only float tensors can require grad, got {arr.dtype}")
        super().__init__(arr, bool(requires_grad))

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _addindent(s, n):
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * n + line for line in lines[1:])


class Module:
    """Base class of all layers: holds Parameters, buffers and sub-Modules, registered by
    attribute assignment; ``module(x)`` calls ``forward(x)``."""

    training = True

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- registration --------------------------------------------------------------------
    def _check_init(self, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call")

    def register_parameter(self, name, param):
        self._check_init("parameters")
        _check_name("register_parameter", name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"register_parameter: cannot assign {type(param).__name__} as parameter {name!r} "
                "(a dlcore.nn.Parameter or None expected)"
            )
        if hasattr(type(self), name) or (name in self.__dict__ and name not in self._parameters):
            raise KeyError(f"register_parameter: attribute {name!r} already exists")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        self._check_init("buffers")
        _check_name("register_buffer", name)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: buffer {name!r} must be a Tensor or None, got {type(tensor).__name__}")
        if name in self.__dict__ or name in self._parameters or name in self._modules:
            raise KeyError(f"register_buffer: attribute {name!r} already exists")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        self._check_init("child modules")
        _check_name("add_module", name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {type(module).__name__} is not a Module subclass")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            self._check_init("parameters")
            _remove_from(name, d, d["_buffers"], d["_modules"])
            params[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter {name!r} "
                    "(a dlcore.nn.Parameter or None expected)"
                )
            params[name] = None
        elif isinstance(value, Module):
            self._check_init("child modules")
            _remove_from(name, d, params, d["_buffers"])
            d["_modules"][name] = value
        elif d.get("_modules") is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as child module {name!r} (Module or None expected)"
                )
            d["_modules"][name] = None
        elif d.get("_buffers") is not None and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} (Tensor or None expected)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Only called when normal lookup fails: look in the registries.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            reg = d.get(registry)
            if reg is not None and name in reg:
                return reg[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    # ---- traversal -----------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            yield from module.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry, prefix, recurse, remove_duplicate=True):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mod_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield mod_prefix + ("." if mod_prefix else "") + name, value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, Parameter) pairs; a Parameter shared by two layers appears once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Calls fn on every sub-module (children first) and on self; returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients ---------------------------------------------------------------
    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError(f"train: mode must be a bool, got {mode!r}")
        for module in self.modules():
            module.training = mode
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad._data[...] = 0

    # ---- device and dtype ------------------------------------------------------------------
    def to(self, *args, device=None, dtype=None):
        """to(device) / to(dtype) / to(device, dtype): moves and/or converts the parameters and
        buffers in place (the Tensor objects stay the same, so an optimizer built earlier still
        holds them; their gradients move along). A dtype must be a float dtype and converts the
        floating-point tensors only."""
        for a in args:
            if isinstance(a, dtypes.device) or (isinstance(a, str) and a.split(":")[0] in ("cpu", "cuda")):
                device = a
            else:
                dtype = a
        dt = None
        if dtype is not None:
            dt = dtypes.as_dtype(dtype)
            if dt not in dtypes.FLOATS:
                raise TypeError(f"Module.to: dtype must be a float dtype, got {dt}")
        dev = dtypes.device(device) if device is not None else None
        if dev is not None and dev.type == "cuda":
            from dlcore.ops.shape import cuda_index

            cuda_index(dev)  # RuntimeError naming the reason before anything moves
        for t in list(self.parameters()) + list(self.buffers()):
            t._data = _converted(t._data, dev, dt)
            if t.grad is not None:
                t.grad = Tensor(_converted(t.grad._data, dev, dt))
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else f"cuda:{device}")

    def float(self):
        return self.to(dtypes.float32)

    def double(self):
        return self.to(dtypes.float64)

    # ---- state dict ------------------------------------------------------------------------
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """OrderedDict of dotted name -> Tensor (parameters, then persistent buffers, per
        module). The tensors share storage with the module (detached unless keep_vars)."""
        if destination is None:
            destination = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else Tensor(p._data)
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = b if keep_vars else Tensor(b._data)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict=True):
        """Copies values into the existing parameters and buffers (in place). Shape mismatches
        always raise; with strict=True so do missing and unexpected keys. Returns
        (missing_keys, unexpected_keys)."""
        if not hasattr(state_dict, "items"):
            raise TypeError(f"load_state_dict: expected a dict of name -> Tensor, got {type(state_dict).__name__}")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict:
            if unexpected:
                errors.append("Unexpected key(s) in state_dict: " + ", ".join(repr(k) for k in unexpected) + ".")
            if missing:
                errors.append("Missing key(s) in state_dict: " + ", ".join(repr(k) for k in missing) + ".")
        pending = []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            src = value._data if isinstance(value, Tensor) else np.asarray(value)
            if isinstance(src, CudaArray) and not isinstance(target._data, CudaArray):
                src = src.get()
            if src.shape != target._data.shape:
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(src.shape)} from checkpoint, "
                    f"the shape in current model is {tuple(target._data.shape)}."
                )
                continue
            if not np.can_cast(src.dtype, target._data.dtype, "same_kind"):
                errors.append(f"dtype mismatch for {key}: cannot copy {src.dtype} into {target._data.dtype}.")
                continue
            pending.append((target, src))
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors)
            )
        for target, src in pending:  # copy only once everything checked out
            if isinstance(target._data, CudaArray):
                target._data[...] = src  # uploads host values; casts on the device
            else:
                np.copyto(target._data, src, casting="same_kind")
        return _IncompatibleKeys(missing, unexpected)

    # ---- printing --------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _addindent(repr(m), 2) for name, m in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                body = extra_lines[0]
            else:
                body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"


def _check_name(op, name):
    if not isinstance(name, str):
        raise TypeError(f"{op}: name must be a str, got {type(name).__name__}")
    if not name or "." in name:
        raise KeyError(f"{op}: name must be non-empty and contain no '.', got {name!r}")


def _remove_from(name, *dicts):
    for d in dicts:
        if name in d:
            del d[name]


class Sequential(Module):
    """Applies its modules in order. ``Sequential(a, b, c)`` names them '0', '1', '2';
    ``Sequential(OrderedDict(name=module, ...))`` keeps the given names."""

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def forward(self, x):
        # A Conv2d followed by a ReLU (both exactly those classes, so no overridden forward is
        # skipped) runs as one convolution with the ReLU fused into its output pass.
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            if i + 1 < len(modules) and _conv_then_relu(modules[i], modules[i + 1]):
                x = modules[i].forward_relu(x)
                i += 2
            else:
                x = modules[i](x)
                i += 1
        return x

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[_index(idx, len(self))]

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of sub-Modules, registered under '0', '1', ... (no forward)."""

    def __init__(self, modules=None):
        super().__init__()
        for m in modules or ():
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return list(self._modules.values())[_index(idx, len(self))]

    def __setitem__(self, idx, module):
        self.add_module(str(_index(idx, len(self))), module)


def _index(idx, n):
    idx = int(idx)
    if not -n <= idx < n:
        raise IndexError(f"index {idx} is out of range for a container of {n} modules")
    return idx % n


def _conv_then_relu(first, second):
    from dlcore.nn.layers import Conv2d, ReLU  # layers imports this module

    return type(first) is Conv2d and type(second) is ReLU
