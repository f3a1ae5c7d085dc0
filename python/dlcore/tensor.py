"""The Tensor: its storage (a NumPy array on the CPU, shared zero-copy with ``numpy()``, or a
CudaArray on a GPU) plus the autograd fields. Math goes through the Functions in
``dlcore.ops``, which call the kernels of ``dlcore._C`` or ``dlcore.cuda.kernels``."""
import numpy as np

from dlcore import autograd, dtypes
from dlcore.cuda.array import CudaArray


class Tensor:
    __slots__ = ("_data", "requires_grad", "grad", "_ctx", "_out_index", "_retains_grad", "__weakref__")

    def __init__(self, data, requires_grad=False):
        # data: a NumPy array or CudaArray of a supported dtype (internal constructor: no
        # copy, no checks; users call dlcore.tensor / from_numpy / .to()).
        self._data = data
        self.requires_grad = requires_grad
        self.grad = None
        self._ctx = None
        self._out_index = 0
        self._retains_grad = False

    # ---- metadata -------------------------------------------------------------------------
    @property
    def shape(self):
        return self._data.shape

    def size(self, dim=None):
        return self._data.shape if dim is None else self._data.shape[dim]

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    def numel(self):
        return self._data.size

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def device(self):
        if type(self._data) is np.ndarray:
            return dtypes.CPU
        return dtypes.device("cuda", self._data.device)

    @property
    def is_cuda(self):
        return isinstance(self._data, CudaArray)

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    @property
    def data(self):
        """A tensor sharing this one's storage, outside the graph (as torch's ``.data``)."""
        return Tensor(self._data)

    @property
    def T(self):
        return _ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    def is_contiguous(self):
        return self._data.flags.c_contiguous

    def __repr__(self):
        host = self._data.get() if self.is_cuda else self._data
        body = np.array2string(host, separator=", ", precision=4, prefix="tensor(")
        extra = f", device='{self.device}'" if self.is_cuda else ""
        if self._data.dtype != dtypes.float32 and self._data.dtype != dtypes.int64:
            extra += f", dtype={self._data.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn=<{type(self._ctx).__name__}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ---- conversion -----------------------------------------------------------------------
    def numpy(self):
        """The underlying array (zero-copy on the CPU)."""
        if self.requires_grad:
            raise RuntimeError("numpy: can't call numpy() on a tensor that requires grad; use .detach().numpy()")
        if self.is_cuda:
            raise TypeError(f"numpy: can't convert a {self.device} tensor to NumPy; use .cpu() to copy it to the host first")
        return self._data

    def item(self):
        if self._data.size != 1:
            raise ValueError(f"item: only one-element tensors can be converted, got shape {self.shape}")
        return self._data.reshape(()).item()

    def tolist(self):
        return self._data.tolist()

    def detach(self):
        return Tensor(self._data)

    def clone(self):
        return _ops.clone(self)

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self._data.dtype not in dtypes.FLOATS:
            raise TypeError(f"requires_grad_: only float tensors can require grad, got {self._data.dtype}")
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("requires_grad_: cannot turn off requires_grad on a non-leaf tensor; use detach()")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self):
        """Keeps .grad on a non-leaf tensor after backward."""
        self._retains_grad = True
        return self

    def to(self, *args, dtype=None, device=None):
        """A copy on another device and/or dtype (self when nothing changes); differentiable."""
        for a in args:
            if isinstance(a, (str, dtypes.device)) and str(a).split(":")[0] in ("cpu", "cuda"):
                device = a
            else:
                dtype = a
        out = self
        if device is not None:
            out = _ops.to_device(out, dtypes.device(device))
        if dtype is not None and dtypes.as_dtype(dtype) != out._data.dtype:
            out = _ops.cast(out, dtypes.as_dtype(dtype))
        return out

    def cuda(self, device=None):
        """A copy on the GPU (device 0, or the one named); self when it is there already."""
        if device is None:
            index = 0
        elif isinstance(device, int):
            index = device
        else:
            index = dtypes.device(device).index or 0
        return self.to(dtypes.device("cuda", index))

    def cpu(self):
        return self.to("cpu")

    def float(self):
        return self.to(dtypes.float32)

    def double(self):
        return self.to(dtypes.float64)

    def long(self):
        return self.to(dtypes.int64)

    def bool(self):
        return self.to(dtypes.bool_)

    # ---- autograd -------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=False):
        autograd.backward(self, gradient, retain_graph)

    def zero_(self):
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError("zero_: in-place op on a tensor that requires grad; use no_grad()")
        self._data[...] = 0
        return self

    def fill_(self, value):
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError("fill_: in-place op on a tensor that requires grad; use no_grad()")
        self._data[...] = value
        return self

    def copy_(self, src):
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError("copy_: in-place op on a tensor that requires grad; use no_grad()")
        src = src._data if isinstance(src, Tensor) else np.asarray(src)
        if self.is_cuda:
            self._data[...] = src  # host arrays are uploaded; dtypes cast on the device
            return self
        if isinstance(src, CudaArray):
            src = src.get()
        try:
            np.copyto(self._data, np.broadcast_to(src, self._data.shape), casting="same_kind")
        except ValueError:
            raise ValueError(f"copy_: cannot copy shape {src.shape} into shape {self.shape}") from None
        return self

    # ---- operators ------------------------------------------------------------------------
    def __add__(self, other):
        return _ops.add(self, other)

    def __radd__(self, other):
        return _ops.add(other, self)

    def __sub__(self, other):
        return _ops.sub(self, other)

    def __rsub__(self, other):
        return _ops.sub(other, self)

    def __mul__(self, other):
        return _ops.mul(self, other)

    def __rmul__(self, other):
        return _ops.mul(other, self)

    def __truediv__(self, other):
        return _ops.div(self, other)

    def __rtruediv__(self, other):
        return _ops.div(other, self)

    def __pow__(self, other):
        return _ops.pow(self, other)

    def __rpow__(self, other):
        return _ops.pow(other, self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __abs__(self):
        return _ops.abs(self)

    def __eq__(self, other):
        return _ops.eq(self, other)

    def __ne__(self, other):
        return _ops.ne(self, other)

    def __lt__(self, other):
        return _ops.lt(self, other)

    def __le__(self, other):
        return _ops.le(self, other)

    def __gt__(self, other):
        return _ops.gt(self, other)

    def __ge__(self, other):
        return _ops.ge(self, other)

    __hash__ = object.__hash__

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"bool: a tensor with {self._data.size} elements is ambiguous")
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype != dtypes.int64 or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    def __setitem__(self, index, value):
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError("setitem: in-place assignment to a tensor that requires grad; use no_grad()")
        index = _ops.shape.normalize_index(index)
        value = value._data if isinstance(value, Tensor) else value
        if isinstance(value, CudaArray) and not self.is_cuda:
            raise RuntimeError(f"setitem: cannot assign a {value.device} tensor into a cpu tensor; use .cpu()")
        self._data[index] = value

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # ---- methods mirroring the functional ops ---------------------------------------------
    def add(self, other):
        return _ops.add(self, other)

    def sub(self, other):
        return _ops.sub(self, other)

    def mul(self, other):
        return _ops.mul(self, other)

    def div(self, other):
        return _ops.div(self, other)

    def pow(self, other):
        return _ops.pow(self, other)

    def matmul(self, other):
        return _ops.matmul(self, other)

    def neg(self):
        return _ops.neg(self)

    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def sqrt(self):
        return _ops.sqrt(self)

    def abs(self):
        return _ops.abs(self)

    def relu(self):
        return _ops.relu(self)

    def tanh(self):
        return _ops.tanh(self)

    def sigmoid(self):
        return _ops.sigmoid(self)

    def clamp(self, min=None, max=None):  # noqa: A002
        return _ops.clamp(self, min, max)

    def sum(self, dim=None, keepdim=False):
        return _ops.sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim=False):
        return _ops.mean(self, dim, keepdim)

    def max(self, dim=None, keepdim=False):
        return _ops.max(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        return _ops.argmax(self, dim, keepdim)

    def softmax(self, dim):
        return _ops.softmax(self, dim)

    def log_softmax(self, dim):
        return _ops.log_softmax(self, dim)

    def reshape(self, *shape):
        return _ops.reshape(self, _shape_args(shape))

    def view(self, *shape):
        return _ops.view(self, _shape_args(shape))

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops.flatten(self, start_dim, end_dim)

    def transpose(self, dim0, dim1):
        return _ops.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _ops.permute(self, _shape_args(dims))

    def contiguous(self):
        return _ops.contiguous(self)

    def expand(self, *shape):
        return _ops.expand(self, _shape_args(shape))

    def unsqueeze(self, dim):
        return _ops.unsqueeze(self, dim)

    def squeeze(self, dim=None):
        return _ops.squeeze(self, dim)

    def split(self, split_size_or_sections, dim=0):
        return _ops.split(self, split_size_or_sections, dim)

    def chunk(self, chunks, dim=0):
        return _ops.chunk(self, chunks, dim)


def _shape_args(args):
    """Accepts f(2, 3) and f((2, 3)) alike."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


from dlcore import ops as _ops  # noqa: E402  (ops import Tensor from this module)
