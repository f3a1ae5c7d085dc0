"""GPU nn kernels with the CPU ``_C`` functions' names, signatures and return conventions
(csrc/bindings/ops_nn.cpp), over CudaArrays: dropout_forward / dropout_backward,
embedding_forward / embedding_backward, lstm_cell_forward / lstm_cell_backward; plus the
index ops of advanced indexing, take and index_add. Kernels: csrc/cuda/nn.cu.

Index checks read the indices on the host (one small copy, which waits for queued kernels),
so bad indices raise here with the value and its position. Embedding backward and index_add
build a CSR table on the host (a stable argsort of the indices and per-row starts) and the
kernel sums each output element's terms in index order: deterministic, no atomics.

The dropout mask comes from Philox4x32-10 (not the CPU's SplitMix64 stream): element i takes
word i % 4 of philox(counter (i // 4, 0, 0), key (seed low 32 bits, seed high 32 bits)) and is
kept when that word >= ceil(p * 2^32). A seed gives the same mask on every run.
"""
import numpy as np

from dlcore import _C
from dlcore.cuda.array import DTYPE_CODE, CudaArray, contiguous, empty, from_numpy

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_INT64 = np.dtype(np.int64)
_BOOL = np.dtype(np.bool_)


def _check_cuda(op, arg, a):
    if not isinstance(a, CudaArray):
        raise TypeError(f"{op}: {arg} must be a CudaArray, got {type(a).__name__}")


def _check_float(op, arg, a):
    _check_cuda(op, arg, a)
    if a.dtype not in _FLOATS:
        raise TypeError(f"{op}: {arg} must be float32 or float64, got {a.dtype}")


def _check_dtype(op, arg, a, dtype):
    _check_cuda(op, arg, a)
    if a.dtype != dtype:
        raise TypeError(f"{op}: {arg} must be {dtype}, got {a.dtype}")


def _check_device(op, ref_arg, ref, arg, a):
    if a.device != ref.device:
        raise ValueError(f"{op}: {arg} is on cuda:{a.device}, {ref_arg} on cuda:{ref.device}")


def _check_shape(op, arg, a, shape):
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{op}: {arg} must have shape {tuple(shape)}, got {tuple(a.shape)}")


def _prod(shape):
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _position(shape, flat):
    """'3' for a 1-D index, '(1, 3)' for more dims, '()' for 0-D (as the CPU binding writes it)."""
    if len(shape) == 1:
        return str(flat)
    return str(tuple(int(i) for i in np.unravel_index(flat, shape))) if shape else "()"


def _host_index(op, index, device):
    """(device int64 array, host copy) of an index given as a CudaArray or host array."""
    if isinstance(index, CudaArray):
        if index.dtype != _INT64:
            raise TypeError(f"{op}: index must be int64, got {index.dtype}")
        if index.device != device:
            raise ValueError(f"{op}: index is on cuda:{index.device}, the data on cuda:{device}")
        index = contiguous(index)
        return index, index.get()
    host = np.asarray(index)
    if host.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer array, got {host.dtype}")
    host = np.asarray(host, dtype=np.int64, order="C")
    return from_numpy(host, device).reshape(host.shape), host  # reshape keeps a 0-d index 0-d


def _csr(host, rows, device):
    """(offsets (rows + 1), order (n)) on the device: order sorts the indices `host` (in
    [0, rows)) stably, offsets[r] is where row r's run starts. Row r's terms are then
    order[offsets[r]:offsets[r+1]], in increasing position."""
    flat = host.reshape(-1)
    order = np.argsort(flat, kind="stable").astype(np.int64)
    offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(flat, minlength=rows), out=offsets[1:])
    return from_numpy(offsets, device), from_numpy(order, device)


# ---- take / index_add ---------------------------------------------------------------------------

def take(x, index, dim):
    """x gathered along `dim` by an int64 index array of any shape: out shape is
    x.shape[:dim] + index.shape + x.shape[dim+1:]; negative indices count from the end."""
    op = "take"
    _check_cuda(op, "x", x)
    if x.dtype not in DTYPE_CODE:
        raise TypeError(f"{op}: unsupported dtype {x.dtype}")
    if x.ndim == 0:
        raise IndexError(f"{op}: cannot index a 0-d array")
    if not -x.ndim <= dim < x.ndim:
        raise IndexError(f"{op}: dim {dim} is out of range for an array with {x.ndim} dims")
    dim = int(dim) % x.ndim
    idx, host = _host_index(op, index, x.device)
    N = x.shape[dim]
    bad = (host < -N) | (host >= N)
    if bad.any():
        value = int(host.reshape(-1)[np.flatnonzero(bad)[0]])
        raise IndexError(f"{op}: index {value} is out of bounds for dim {dim} with size {N}")
    return _gather(x, idx, dim)


def _gather(x, idx, dim):
    """take without the checks: idx a contiguous int64 CudaArray of valid indices."""
    x = contiguous(x)
    out = empty(x.shape[:dim] + idx.shape + x.shape[dim + 1:], x.dtype, x.device)
    _C.cuda.take(DTYPE_CODE[x.dtype], _prod(x.shape[:dim]), x.shape[dim], _prod(x.shape[dim + 1:]), x.ptr,
                 idx.size, idx.ptr, out.ptr)
    return out


def index_add(grad_x_shape, dim, index, grad):
    """The adjoint of take: zeros of grad_x_shape with grad's slices added at the index
    positions along `dim` (repeated indices accumulate in index order, deterministically)."""
    op = "index_add"
    _check_cuda(op, "grad", grad)
    if grad.dtype not in _FLOATS + (_INT64,):
        raise TypeError(f"{op}: grad must be float32, float64 or int64, got {grad.dtype}")
    shape = tuple(int(s) for s in grad_x_shape)
    if not shape:
        raise IndexError(f"{op}: cannot index a 0-d array")
    if not -len(shape) <= dim < len(shape):
        raise IndexError(f"{op}: dim {dim} is out of range for shape {shape}")
    dim = int(dim) % len(shape)
    idx, host = _host_index(op, index, grad.device)
    R = shape[dim]
    _check_shape(op, "grad", grad, shape[:dim] + idx.shape + shape[dim + 1:])
    bad = (host < -R) | (host >= R)
    if bad.any():
        value = int(host.reshape(-1)[np.flatnonzero(bad)[0]])
        raise IndexError(f"{op}: index {value} is out of bounds for dim {dim} with size {R}")
    offsets, order = _csr(np.where(host < 0, host + R, host), R, grad.device)
    grad = contiguous(grad)
    out = empty(shape, grad.dtype, grad.device)
    _C.cuda.index_add(DTYPE_CODE[grad.dtype], _prod(shape[:dim]), R, _prod(shape[dim + 1:]), offsets.ptr,
                      order.ptr, idx.size, grad.ptr, -1, out.ptr)
    return out


# ---- embedding ---------------------------------------------------------------------------------

def _check_embedding_indices(op, host, num):
    """ValueError unless every index is in [0, num), naming the first bad value and position."""
    bad = (host < 0) | (host >= num)
    if bad.any():
        flat = int(np.flatnonzero(bad.reshape(-1))[0])
        value = int(host.reshape(-1)[flat])
        raise ValueError(f"{op}: index {value} at position {_position(host.shape, flat)} "
                         f"is out of range [0, {num})")


def embedding_forward(weight, index):
    """out[..., :] = weight[index[...], :]; out has shape index.shape + (D,)."""
    op = "embedding_forward"
    _check_float(op, "weight", weight)
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D (num, D), got shape {tuple(weight.shape)}")
    _check_dtype(op, "index", index, _INT64)
    _check_device(op, "weight", weight, "index", index)
    index = contiguous(index)
    _check_embedding_indices(op, index.get(), weight.shape[0])
    return _gather(weight, index, 0)


def embedding_backward(index, grad_out, num, padding_idx=-1):
    """grad_weight (num, D): rows accumulate grad_out over repeated indices in index order
    (deterministic); row padding_idx (if >= 0) stays zero."""
    op = "embedding_backward"
    _check_float(op, "grad_out", grad_out)
    _check_dtype(op, "index", index, _INT64)
    _check_device(op, "grad_out", grad_out, "index", index)
    num, padding_idx = int(num), int(padding_idx)
    if num < 0:
        raise ValueError(f"{op}: num must be >= 0, got {num}")
    if padding_idx >= num:
        raise ValueError(f"{op}: padding_idx must be < num ({num}) or negative for none, got {padding_idx}")
    if grad_out.ndim != index.ndim + 1:
        raise ValueError(f"{op}: grad_out must have shape index.shape + (D,) = {tuple(index.shape)} + (D,), "
                         f"got {tuple(grad_out.shape)}")
    D = grad_out.shape[-1]
    _check_shape(op, "grad_out", grad_out, tuple(index.shape) + (D,))
    index = contiguous(index)
    host = index.get()
    _check_embedding_indices(op, host, num)
    offsets, order = _csr(host, num, index.device)
    grad_out = contiguous(grad_out)
    grad_weight = empty((num, D), grad_out.dtype, grad_out.device)
    _C.cuda.index_add(DTYPE_CODE[grad_out.dtype], 1, num, D, offsets.ptr, order.ptr, index.size, grad_out.ptr,
                      padding_idx, grad_weight.ptr)
    return grad_weight


# ---- dropout -----------------------------------------------------------------------------------

def dropout_forward(x, p, seed):
    """Inverted dropout: returns (y, keep); keep[i] = philox_bits(seed, i) >= ceil(p 2^32),
    y = keep ? x / (1 - p) : 0. The mask depends only on (seed, i)."""
    op = "dropout_forward"
    _check_float(op, "x", x)
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: p must be in [0, 1], got {p}")
    seed = int(seed)
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"{op}: seed must be in [0, 2^64), got {seed}")
    x = contiguous(x)
    y, keep = empty(x.shape, x.dtype, x.device), empty(x.shape, _BOOL, x.device)
    _C.cuda.dropout_forward(DTYPE_CODE[x.dtype], x.size, p, seed, x.ptr, y.ptr, keep.ptr)
    return y, keep


def dropout_backward(keep, grad_y, scale):
    """grad_x = keep ? grad_y * scale : 0."""
    op = "dropout_backward"
    _check_float(op, "grad_y", grad_y)
    _check_dtype(op, "keep", keep, _BOOL)
    _check_device(op, "grad_y", grad_y, "keep", keep)
    _check_shape(op, "grad_y", grad_y, keep.shape)
    keep, grad_y = contiguous(keep), contiguous(grad_y)
    grad_x = empty(grad_y.shape, grad_y.dtype, grad_y.device)
    _C.cuda.dropout_backward(DTYPE_CODE[grad_y.dtype], grad_y.size, float(scale), keep.ptr, grad_y.ptr,
                             grad_x.ptr)
    return grad_x


# ---- lstm_cell ---------------------------------------------------------------------------------

def _check_gates(op, arg, a):
    """(B, H) of a (B, 4H) gate array."""
    _check_float(op, arg, a)
    if a.ndim != 2:
        raise ValueError(f"{op}: {arg} must be 2-D (B, 4H), got shape {tuple(a.shape)}")
    if a.shape[1] % 4 != 0:
        raise ValueError(f"{op}: {arg} must be (B, 4H) with a second dim divisible by 4, got shape "
                         f"{tuple(a.shape)}")
    return a.shape[0], a.shape[1] // 4


def _check_state(op, ref_arg, ref, arg, a, B, H):
    """A (B, H) operand with the dtype and device of `ref`, made contiguous."""
    _check_cuda(op, arg, a)
    if a.dtype != ref.dtype:
        raise TypeError(f"{op}: {arg} must have the dtype of {ref_arg} ({ref.dtype}), got {a.dtype}")
    _check_device(op, ref_arg, ref, arg, a)
    _check_shape(op, arg, a, (B, H))
    return contiguous(a)


def lstm_cell_forward(gates_pre, c_prev):
    """LSTM cell pointwise part, gate order (i, f, g, o): returns (h, c, gates) with gates the
    activated gates (B, 4H)."""
    op = "lstm_cell_forward"
    B, H = _check_gates(op, "gates_pre", gates_pre)
    c_prev = _check_state(op, "gates_pre", gates_pre, "c_prev", c_prev, B, H)
    gates_pre = contiguous(gates_pre)
    dt, dev = gates_pre.dtype, gates_pre.device
    h, c, gates = empty((B, H), dt, dev), empty((B, H), dt, dev), empty((B, 4 * H), dt, dev)
    _C.cuda.lstm_cell_forward(DTYPE_CODE[dt], B, H, gates_pre.ptr, c_prev.ptr, h.ptr, c.ptr, gates.ptr)
    return h, c, gates


def lstm_cell_backward(gates, c_prev, c, grad_h=None, grad_c=None):
    """Returns (grad_gates_pre (B, 4H), grad_c_prev (B, H)); grad_h / grad_c may be None (zeros)."""
    op = "lstm_cell_backward"
    B, H = _check_gates(op, "gates", gates)
    c_prev = _check_state(op, "gates", gates, "c_prev", c_prev, B, H)
    c = _check_state(op, "gates", gates, "c", c, B, H)
    gh = None if grad_h is None else _check_state(op, "gates", gates, "grad_h", grad_h, B, H)
    gc = None if grad_c is None else _check_state(op, "gates", gates, "grad_c", grad_c, B, H)
    gates = contiguous(gates)
    dt, dev = gates.dtype, gates.device
    grad_gates_pre, grad_c_prev = empty((B, 4 * H), dt, dev), empty((B, H), dt, dev)
    _C.cuda.lstm_cell_backward(DTYPE_CODE[dt], B, H, gates.ptr, c_prev.ptr, c.ptr, 0 if gh is None else gh.ptr,
                               0 if gc is None else gc.ptr, grad_gates_pre.ptr, grad_c_prev.ptr)
    return grad_gates_pre, grad_c_prev
