"""Reverse-mode autograd over a tape of Function nodes.

A Function's ``forward(ctx, *args)`` computes outputs from input Tensors; its
``backward(ctx, *grad_outputs)`` returns one gradient per input (None where not needed,
see ``ctx.needs_input_grad``). Subclassing Function is also the public way to add a
custom op::

    class Square(dlcore.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x
        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    y = Square.apply(x)
"""
import contextlib

_grad_enabled = True


def is_grad_enabled():
    return _grad_enabled


class _GradMode(contextlib.ContextDecorator):
    def __init__(self, enabled):
        self.enabled = enabled

    def __enter__(self):
        global _grad_enabled
        self.previous = _grad_enabled
        _grad_enabled = self.enabled

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.previous
        return False


def no_grad():
    """Context manager / decorator: ops inside record no graph."""
    return _GradMode(False)


def enable_grad():
    return _GradMode(True)


def set_grad_enabled(enabled):
    return _GradMode(bool(enabled))


class Function:
    """A differentiable op: ``forward`` and ``backward`` side by side. Call ``Cls.apply(...)``."""

    # Filled by apply() when the graph is recorded: the inputs as passed, which of them need
    # a gradient, and the number of outputs.
    _inputs = ()
    needs_input_grad = ()
    _n_outputs = 1
    _released = False

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors

    @classmethod
    def apply(cls, *args, **kwargs):
        global _grad_enabled
        if cuda_arrays_exist:  # else every tensor holds a NumPy array: one device
            _check_one_device(cls, args)
        ctx = cls()
        if not _grad_enabled:
            return cls.forward(ctx, *args, **kwargs)
        needs = tuple([isinstance(a, Tensor) and a.requires_grad for a in args])
        _grad_enabled = False  # the forward computes; it records nothing itself
        try:
            out = cls.forward(ctx, *args, **kwargs)
        finally:
            _grad_enabled = True
        if True not in needs:
            return out
        ctx.needs_input_grad = needs
        ctx._inputs = args  # backward skips those with needs_input_grad False
        if type(out) is tuple:
            ctx._n_outputs = len(out)
            for i, o in enumerate(out):
                o.requires_grad = True
                o._ctx = ctx
                o._out_index = i
        else:
            out.requires_grad = True
            out._ctx = ctx
        return out


# Set by the first CudaArray made (dlcore.cuda.array): until then Function.apply skips the
# one-device check, which costs ~0.35 us of every op's ~2 us in Python.
cuda_arrays_exist = False


def _check_one_device(cls, args):
    """RuntimeError naming the op unless all Tensor arguments live on one device."""
    storage = None
    for a in args:
        if isinstance(a, Tensor):
            if storage is None:
                storage = type(a._data)
            elif type(a._data) is not storage:
                devices = sorted({str(t.device) for t in args if isinstance(t, Tensor)})
                raise RuntimeError(f"{cls.__name__}: expected all tensors on one device, got {' and '.join(devices)}")


def _topological_order(root_ctx):
    """Function nodes reachable from root_ctx, each after all nodes that consume its outputs."""
    order, visited = [], {root_ctx}
    stack = [(root_ctx, iter(root_ctx._inputs))]
    while stack:
        node, parents = stack[-1]
        for t in parents:
            if isinstance(t, Tensor) and t._ctx is not None and t._ctx not in visited:
                visited.add(t._ctx)
                stack.append((t._ctx, iter(t._ctx._inputs)))
                break
        else:
            stack.pop()
            order.append(node)
    order.reverse()
    return order


def _sum(a, b):
    """a + b for two gradient arrays of one device."""
    if type(a) is np.ndarray:
        return a + b
    from dlcore.ops._util import lib

    return lib(a).binary_forward(_C.BinaryOp.add, a, b)


def _owns_memory(arr):
    """Whether arr is the only array on its memory: NumPy-allocated, or a kernel output on a
    host-cache block (its base is the block's capsule, never shared by two arrays)."""
    return arr.flags.owndata or type(arr.base).__name__ == "PyCapsule"


def _accumulate_leaf(t, g, fresh):
    """t.grad += g, never aliasing an array another tensor may still hold (a GPU gradient is
    always copied: a CudaArray does not know whether other views share its memory)."""
    arr = g._data
    if t.grad is None:
        if id(arr) in fresh or type(arr) is not np.ndarray or not _owns_memory(arr) or not arr.flags.c_contiguous:
            arr = arr.copy()
        fresh.add(id(arr))
        t.grad = Tensor(arr)
    else:
        t.grad = Tensor(_sum(t.grad._data, arr))


def backward(root, grad=None, retain_graph=False):
    """Accumulates d(root)/d(leaf) into every leaf's ``.grad`` that requires grad."""
    global _grad_enabled
    if not root.requires_grad:
        raise RuntimeError("backward: tensor does not require grad and has no grad_fn")
    if grad is None:
        if root._data.size != 1:
            raise RuntimeError(
                f"backward: grad can be implicitly created only for scalar outputs, got shape {root.shape}"
            )
        grad = Tensor(np.ones(root.shape, dtype=root._data.dtype)).to(root.device)
    elif not isinstance(grad, Tensor):
        grad = Tensor(np.asarray(grad, dtype=root._data.dtype)).to(root.device)
    if grad.shape != root.shape:
        raise ValueError(f"backward: grad shape {grad.shape} does not match tensor shape {root.shape}")
    fresh = set()
    if root._ctx is None:
        _accumulate_leaf(root, grad, fresh)
        return
    previous, _grad_enabled = _grad_enabled, False
    try:
        grads = {root._ctx: [None] * root._ctx._n_outputs}  # node -> gradient of each output
        grads[root._ctx][root._out_index] = grad
        for node in _topological_order(root._ctx):
            outs = grads.pop(node, None)
            if outs is None or not any([g is not None for g in outs]):  # (== would compare Tensors)
                continue
            if node._released:
                raise RuntimeError(
                    "backward: trying to backward through the graph a second time; "
                    "pass retain_graph=True to the first backward()"
                )
            in_grads = type(node).backward(node, *outs)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            for t, g, needed in zip(node._inputs, in_grads, node.needs_input_grad):
                if g is None or not needed:
                    continue
                if g._data.shape != t._data.shape:
                    raise RuntimeError(
                        f"backward: {type(node).__name__}.backward returned a gradient of shape "
                        f"{g.shape} for an input of shape {t.shape}"
                    )
                if t._ctx is None:
                    _accumulate_leaf(t, g, fresh)
                    continue
                slot = grads.get(t._ctx)
                if slot is None:
                    slot = grads[t._ctx] = [None] * t._ctx._n_outputs
                i = t._out_index
                slot[i] = g if slot[i] is None else Tensor(_sum(slot[i]._data, g._data))
                if t._retains_grad:
                    _accumulate_leaf(t, g, fresh)
            if not retain_graph:
                node.__dict__.clear()
                node._released = True
    finally:
        _grad_enabled = previous


import numpy as np  # noqa: E402

from dlcore import _C  # noqa: E402

from dlcore.tensor import Tensor  # noqa: E402  (tensor.py imports this module first)
