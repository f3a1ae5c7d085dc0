"""GPU recurrences over a packed sequence with the CPU ``_C`` functions' names, signatures and
return conventions (csrc/bindings/ops_rnn.cpp), over CudaArrays: lstm_sequence_forward /
backward, gru_sequence_forward / backward, rnn_sequence_forward / backward. One layer and
direction per call; the caller (dlcore/ops/rnn.py) runs the input projection and the weight
gradients as GEMMs over all steps.

The steps are walked here on the host, as csrc/cpu/rnn/sequence_walk.h walks them: the forward
runs t = 0 .. T-1 (T-1 .. 0 when reverse), backward through time the opposite order. A step
is one recurrent GEMM on the rows active at that step (views of the packed arrays) -- two
when some of its rows continue from the previous step's rows of y and the others start from
h0 (reverse direction, variable lengths) -- and one fused pointwise kernel (csrc/cuda/rnn.cu).
Backward keeps one (B, H) carry of dL/dh (and dL/dc) that ends as grad_h0 (grad_c0).

batch_sizes is host metadata: a NumPy int64 array (T,), as on the CPU. Everything runs on the
one stream, in order; nothing waits for the device. No atomics: the same bits every run.
Cost: each step spends host time on one or two gemm calls and a launch (tens of us), so short
sequences with small H are launch-bound; correctness first, a fused walk is a later speed issue.
"""
from typing import NamedTuple

import numpy as np

from dlcore import _C
from dlcore.cuda.array import DTYPE_CODE, CudaArray, contiguous, empty, zeros
from dlcore.cuda.kernels.gemm import gemm
from dlcore.cuda.kernels.reduce import reduce_forward

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class _Step(NamedTuple):
    """One step of the walk (sequence_walk.h's Step): its rows are packed rows [off, off + rows);
    rows [0, carried) continue from the step run before it, whose rows start at prev_off; the
    rest start from the initial state; rows [finishing, rows) end here (their state is final)."""
    off: int
    rows: int
    carried: int
    prev_off: int
    finishing: int


def _walk(batch_sizes, reverse):
    """The steps in the order the forward runs them."""
    bs = [int(b) for b in batch_sizes]
    T = len(bs)
    offsets = np.concatenate([[0], np.cumsum(bs)]).tolist()
    steps = []
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        if not reverse:
            carried, prev_off = (bs[t], offsets[t - 1]) if t > 0 else (0, 0)
            finishing = bs[t + 1] if t + 1 < T else 0
        else:
            carried, prev_off = (bs[t + 1], offsets[t + 1]) if t + 1 < T else (0, 0)
            finishing = bs[t] if t > 0 else 0
        steps.append(_Step(offsets[t], bs[t], carried, prev_off, finishing))
    return steps


# ---- checks ----------------------------------------------------------------------------------

def _check_like(op, arg, a, w_hh):
    """a is a CudaArray with w_hh's dtype and device."""
    if not isinstance(a, CudaArray):
        raise TypeError(f"{op}: {arg} must be a CudaArray, got {type(a).__name__}")
    if a.dtype != w_hh.dtype:
        raise TypeError(f"{op}: {arg} must have the dtype of w_hh ({w_hh.dtype}), got {a.dtype}")
    if a.device != w_hh.device:
        raise ValueError(f"{op}: {arg} is on cuda:{a.device} but w_hh is on cuda:{w_hh.device}")


def _rows(op, arg, a, w_hh, shape):
    """a checked against w_hh and `shape`, made contiguous."""
    _check_like(op, arg, a, w_hh)
    if tuple(a.shape) != shape:
        raise ValueError(f"{op}: {arg} must have shape {shape}, got {tuple(a.shape)}")
    return contiguous(a)


def _optional_rows(op, arg, a, w_hh, shape):
    return None if a is None else _rows(op, arg, a, w_hh, shape)


def _in_place(op, arg, a, w_hh, shape):
    """An array the op overwrites in place: checked, and C-contiguous as it is (no copy)."""
    _check_like(op, arg, a, w_hh)
    if tuple(a.shape) != shape:
        raise ValueError(f"{op}: {arg} must have shape {shape}, got {tuple(a.shape)}")
    if not a.is_contiguous():
        raise ValueError(f"{op}: {arg} must be C-contiguous (it is overwritten in place), got strides that are not")
    return a


def _geometry(op, gates_per_unit, w_hh, state0, batch_sizes):
    """(B, H, total) of a call, with w_hh (G * H, H), the initial state (B, H) and batch_sizes
    (T,) checked against each other as the CPU binding checks them."""
    if not isinstance(w_hh, CudaArray):
        raise TypeError(f"{op}: w_hh must be a CudaArray, got {type(w_hh).__name__}")
    if w_hh.dtype not in _FLOATS:
        raise TypeError(f"{op}: w_hh must be float32 or float64, got {w_hh.dtype}")
    layout = "(H, H)" if gates_per_unit == 1 else f"({gates_per_unit} * H, H)"
    if w_hh.ndim != 2:
        raise ValueError(f"{op}: w_hh must be 2-D {layout}, got shape {tuple(w_hh.shape)}")
    H = w_hh.shape[1]
    if H < 1 or w_hh.shape[0] != gates_per_unit * H:
        raise ValueError(f"{op}: w_hh must be {layout} with H >= 1, got shape {tuple(w_hh.shape)}")
    _check_like(op, "h0", state0, w_hh)
    if state0.ndim != 2 or state0.shape[0] < 1 or state0.shape[1] != H:
        raise ValueError(f"{op}: h0 must be (B, H) with B >= 1, H = {H}, got shape {tuple(state0.shape)}")
    B = state0.shape[0]
    if not isinstance(batch_sizes, np.ndarray):
        raise TypeError(f"{op}: batch_sizes must be a host NumPy int64 array (T,), got {type(batch_sizes).__name__}")
    if batch_sizes.dtype != np.int64:
        raise TypeError(f"{op}: batch_sizes must be int64, got {batch_sizes.dtype}")
    if batch_sizes.ndim != 1:
        raise ValueError(f"{op}: batch_sizes must be 1-D (T,), got shape {batch_sizes.shape}")
    if batch_sizes.shape[0] < 1:
        raise ValueError(f"{op}: batch_sizes is empty (a sequence needs at least one step)")
    if batch_sizes[0] != B:
        raise ValueError(f"{op}: batch_sizes[0] must equal the batch size B = {B} of h0, got {int(batch_sizes[0])}")
    bad = (batch_sizes < 1) | (np.diff(batch_sizes, prepend=batch_sizes[0]) > 0)
    if bad.any():
        t = int(np.flatnonzero(bad)[0])
        after = f" after {int(batch_sizes[t - 1])}" if t > 0 else ""
        raise ValueError(f"{op}: batch_sizes must be non-increasing and >= 1, got {int(batch_sizes[t])} "
                         f"at step {t}{after}")
    return B, H, int(batch_sizes.sum())


def _relu(op, nonlinearity):
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"{op}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity == "relu"


# ---- step pieces -----------------------------------------------------------------------------

def _row_ptr(a, row):
    """Device address of row `row` of a contiguous 2-D array (0 for None)."""
    return 0 if a is None else a.ptr + row * a.strides[0]


def _prev_ptr(a, s):
    """The carried rows' previous states: rows prev_off.. of a (total, H); 0 when none is carried."""
    return _row_ptr(a, s.prev_off) if s.carried else 0


def _recurrent_gemm(out, y, h0, w_hh, s, beta, bias=None):
    """out (rows, G*H) := h_prev W_hh^T + beta * out (+ bias), h_prev's rows [0, carried) being
    rows prev_off.. of y (total, H) and the rest rows [carried, rows) of h0 (B, H)."""
    if s.carried:
        gemm(y[s.prev_off:s.prev_off + s.carried], w_hh, out[:s.carried], False, True, 1.0, beta, bias)
    if s.carried < s.rows:
        gemm(h0[s.carried:s.rows], w_hh, out[s.carried:], False, True, 1.0, beta, bias)


def _carry(grad_n, B, H, like):
    """A backward carry (B, H): a copy of the incoming gradient, or zeros for None."""
    return zeros((B, H), like.dtype, like.device) if grad_n is None else grad_n.copy()


# ---- LSTM ------------------------------------------------------------------------------------

def lstm_sequence_forward(gates, w_hh, h0, c0, batch_sizes, reverse=False):
    """LSTM layer over a packed sequence, one direction; gates (total, 4H) = x W_ih^T + b_ih +
    b_hh is overwritten with the activated gates. Returns (y, c_all, h_n, c_n)."""
    op = "lstm_sequence_forward"
    B, H, total = _geometry(op, 4, w_hh, h0, batch_sizes)
    w_hh, h0 = contiguous(w_hh), contiguous(h0)
    gates = _in_place(op, "gates", gates, w_hh, (total, 4 * H))
    c0 = _rows(op, "c0", c0, w_hh, (B, H))
    dt, dev = w_hh.dtype, w_hh.device
    y, c_all = empty((total, H), dt, dev), empty((total, H), dt, dev)
    h_n, c_n = empty((B, H), dt, dev), empty((B, H), dt, dev)
    for s in _walk(batch_sizes, reverse):
        g = gates[s.off:s.off + s.rows]  # (rows, 4H)
        _recurrent_gemm(g, y, h0, w_hh, s, 1.0)
        _C.cuda.lstm_step_forward(DTYPE_CODE[dt], dev, s.rows, H, s.carried, s.finishing, g.ptr,
                                  _prev_ptr(c_all, s), c0.ptr, _row_ptr(y, s.off), _row_ptr(c_all, s.off),
                                  h_n.ptr, c_n.ptr)
    return y, c_all, h_n, c_n


def lstm_sequence_backward(w_hh, gates, c_all, c0, batch_sizes, reverse, grad_y, grad_h_n, grad_c_n,
                           need_grad_h0=True):
    """LSTM backward through time. Returns (grad_gates, grad_h0, grad_c0, grad_bias), grad_bias
    (4H) = grad_gates summed over its rows; grads may be None. Without need_grad_h0, grad_h0 is
    None and the rows that start from h0 skip the GEMM that would make it."""
    op = "lstm_sequence_backward"
    B, H, total = _geometry(op, 4, w_hh, c0, batch_sizes)
    w_hh, c0 = contiguous(w_hh), contiguous(c0)
    gates = _rows(op, "gates", gates, w_hh, (total, 4 * H))
    c_all = _rows(op, "c_all", c_all, w_hh, (total, H))
    gy = _optional_rows(op, "grad_y", grad_y, w_hh, (total, H))
    grad_h0 = _carry(_optional_rows(op, "grad_h_n", grad_h_n, w_hh, (B, H)), B, H, w_hh)  # dL/dh carry
    grad_c0 = _carry(_optional_rows(op, "grad_c_n", grad_c_n, w_hh, (B, H)), B, H, w_hh)  # dL/dc carry
    dt, dev = w_hh.dtype, w_hh.device
    grad_gates = empty((total, 4 * H), dt, dev)
    for s in reversed(_walk(batch_sizes, reverse)):
        dg = grad_gates[s.off:s.off + s.rows]  # (rows, 4H)
        _C.cuda.lstm_step_backward(DTYPE_CODE[dt], dev, s.rows, H, s.carried, _row_ptr(gates, s.off),
                                   _row_ptr(c_all, s.off), _prev_ptr(c_all, s), c0.ptr, _row_ptr(gy, s.off),
                                   grad_h0.ptr, grad_c0.ptr, dg.ptr)
        rows = s.rows if need_grad_h0 else s.carried
        if rows:
            gemm(dg[:rows], w_hh, grad_h0[:rows], False, False, 1.0, 0.0)  # dL/dh_prev = d_gates W_hh
    grad_bias, _ = reduce_forward(_C.ReduceOp.sum, grad_gates, 0, 1)  # (4H)
    return grad_gates, grad_h0 if need_grad_h0 else None, grad_c0, grad_bias


# ---- GRU -------------------------------------------------------------------------------------

def gru_sequence_forward(gates, w_hh, b_hh, h0, batch_sizes, reverse=False):
    """GRU layer over a packed sequence, one direction; gates (total, 3H) = x W_ih^T + b_ih is
    overwritten with the activated (r, z, n). Returns (hidden, y, h_n), hidden (total, 3H) =
    h_prev W_hh^T + b_hh."""
    op = "gru_sequence_forward"
    B, H, total = _geometry(op, 3, w_hh, h0, batch_sizes)
    w_hh, h0 = contiguous(w_hh), contiguous(h0)
    gates = _in_place(op, "gates", gates, w_hh, (total, 3 * H))
    bias = _optional_rows(op, "b_hh", b_hh, w_hh, (3 * H,))
    dt, dev = w_hh.dtype, w_hh.device
    hidden, y, h_n = empty((total, 3 * H), dt, dev), empty((total, H), dt, dev), empty((B, H), dt, dev)
    for s in _walk(batch_sizes, reverse):
        hd = hidden[s.off:s.off + s.rows]  # (rows, 3H)
        _recurrent_gemm(hd, y, h0, w_hh, s, 0.0, bias)
        _C.cuda.gru_step_forward(DTYPE_CODE[dt], dev, s.rows, H, s.carried, s.finishing, _row_ptr(gates, s.off),
                                 hd.ptr, _prev_ptr(y, s), h0.ptr, _row_ptr(y, s.off), h_n.ptr)
    return hidden, y, h_n


def gru_sequence_backward(w_hh, h0, gates, hidden, y, batch_sizes, reverse, grad_y, grad_h_n, need_grad_h0=True):
    """GRU backward through time. Returns (grad_gates_x, grad_gates_h, grad_h0), the gradients
    w.r.t. x W_ih^T + b_ih and h_prev W_hh^T + b_hh (total, 3H) and h0; grads may be None.
    Without need_grad_h0, grad_h0 is None and the rows that start from h0 skip its GEMM."""
    op = "gru_sequence_backward"
    B, H, total = _geometry(op, 3, w_hh, h0, batch_sizes)
    w_hh, h0 = contiguous(w_hh), contiguous(h0)
    gates = _rows(op, "gates", gates, w_hh, (total, 3 * H))
    hidden = _rows(op, "hidden", hidden, w_hh, (total, 3 * H))
    y = _rows(op, "y", y, w_hh, (total, H))
    gy = _optional_rows(op, "grad_y", grad_y, w_hh, (total, H))
    grad_h0 = _carry(_optional_rows(op, "grad_h_n", grad_h_n, w_hh, (B, H)), B, H, w_hh)  # dL/dh carry
    dt, dev = w_hh.dtype, w_hh.device
    grad_x, grad_h = empty((total, 3 * H), dt, dev), empty((total, 3 * H), dt, dev)
    for s in reversed(_walk(batch_sizes, reverse)):
        dh = grad_h[s.off:s.off + s.rows]  # (rows, 3H)
        _C.cuda.gru_step_backward(DTYPE_CODE[dt], dev, s.rows, H, s.carried, _row_ptr(gates, s.off),
                                  _row_ptr(hidden, s.off), _prev_ptr(y, s), h0.ptr, _row_ptr(gy, s.off),
                                  grad_h0.ptr, _row_ptr(grad_x, s.off), dh.ptr)
        rows = s.rows if need_grad_h0 else s.carried
        if rows:
            gemm(dh[:rows], w_hh, grad_h0[:rows], False, False, 1.0, 1.0)  # dL/dh_prev = dh z + d(h side) W_hh
    return grad_x, grad_h, grad_h0 if need_grad_h0 else None


# ---- Elman RNN -------------------------------------------------------------------------------

def rnn_sequence_forward(y, w_hh, h0, batch_sizes, reverse=False, nonlinearity="tanh"):
    """Elman RNN layer over a packed sequence, one direction; y (total, H) = x W_ih^T + b_ih +
    b_hh is overwritten with h. Returns (y, h_n)."""
    op = "rnn_sequence_forward"
    relu = _relu(op, nonlinearity)
    B, H, total = _geometry(op, 1, w_hh, h0, batch_sizes)
    w_hh, h0 = contiguous(w_hh), contiguous(h0)
    y = _in_place(op, "y", y, w_hh, (total, H))
    dt, dev = w_hh.dtype, w_hh.device
    h_n = empty((B, H), dt, dev)
    for s in _walk(batch_sizes, reverse):
        yt = y[s.off:s.off + s.rows]  # (rows, H); the carried rows read other rows of y
        _recurrent_gemm(yt, y, h0, w_hh, s, 1.0)
        _C.cuda.rnn_step_forward(DTYPE_CODE[dt], dev, s.rows, H, s.finishing, relu, yt.ptr, h_n.ptr)
    return y, h_n


def rnn_sequence_backward(w_hh, h0, y, batch_sizes, reverse, nonlinearity, grad_y, grad_h_n, need_grad_h0=True):
    """Elman RNN backward through time. Returns (grad_pre, grad_h0); grads may be None. Without
    need_grad_h0, grad_h0 is None and the rows that start from h0 skip the GEMM that would make it."""
    op = "rnn_sequence_backward"
    relu = _relu(op, nonlinearity)
    B, H, total = _geometry(op, 1, w_hh, h0, batch_sizes)
    w_hh = contiguous(w_hh)
    y = _rows(op, "y", y, w_hh, (total, H))
    gy = _optional_rows(op, "grad_y", grad_y, w_hh, (total, H))
    grad_h0 = _carry(_optional_rows(op, "grad_h_n", grad_h_n, w_hh, (B, H)), B, H, w_hh)  # dL/dh carry
    dt, dev = w_hh.dtype, w_hh.device
    grad_pre = empty((total, H), dt, dev)
    for s in reversed(_walk(batch_sizes, reverse)):
        dp = grad_pre[s.off:s.off + s.rows]  # (rows, H)
        _C.cuda.rnn_step_backward(DTYPE_CODE[dt], dev, s.rows, H, relu, _row_ptr(y, s.off), _row_ptr(gy, s.off),
                                  grad_h0.ptr, dp.ptr)
        rows = s.rows if need_grad_h0 else s.carried
        if rows:
            gemm(dp[:rows], w_hh, grad_h0[:rows], False, False, 1.0, 0.0)  # dL/dh_prev = d_pre W_hh
    return grad_pre, grad_h0 if need_grad_h0 else None
