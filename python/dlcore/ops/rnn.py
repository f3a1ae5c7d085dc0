"""Recurrent layers over a whole sequence, one Function per layer and direction: one GEMM for
the input projection of every step, one _C call for the recurrence (forward, and backward
through time), then GEMMs over all steps at once for the weight gradients.

Sequences are in PyTorch's packed layout (dlcore.nn.utils.rnn.PackedSequence): x (total, I)
holds the batch_sizes[0] rows of step 0, then the batch_sizes[1] rows of step 1, ...; a padded
(T, B, I) batch is x.reshape(T * B, I) with batch_sizes [B] * T. Gate orders as in PyTorch:
LSTM (i, f, g, o), GRU (r, z, n)."""
import numpy as np

from dlcore import _C
from dlcore.autograd import Function
from dlcore.ops._util import concatenate, contig, lib, sum_dims
from dlcore.tensor import Tensor


def previous_state_rows(batch_sizes, reverse):
    """For each packed row: the row of the step run before it that holds its previous state, or
    -1 - b where it starts from row b of the initial state. (total,) int64."""
    T = batch_sizes.shape[0]
    offsets = np.concatenate([[0], np.cumsum(batch_sizes)])
    step = np.repeat(np.arange(T), batch_sizes)  # time index of each row
    row = np.arange(offsets[-1]) - offsets[step]  # batch index of each row
    if not reverse:
        has_prev = step > 0
        prev = offsets[np.maximum(step - 1, 0)] + row
    else:
        nxt = np.minimum(step + 1, T - 1)
        has_prev = (step < T - 1) & (row < batch_sizes[nxt])
        prev = offsets[nxt] + row
    return np.where(has_prev, prev, -1 - row)


def gather_previous_states(y, h0, batch_sizes, reverse):
    """(total, H): the state each packed row's step started from (rows of y, or of h0), on the
    device of y."""
    B = h0.shape[0]
    if np.all(batch_sizes == B):  # a padded batch: one shifted copy
        T = batch_sizes.shape[0]
        y3 = y.reshape(T, B, -1)
        steps = (y3[1:], h0[None]) if reverse else (h0[None], y3[:-1])
        return concatenate(steps, 0).reshape(y.shape)
    src = previous_state_rows(batch_sizes, reverse)  # (total,) host metadata
    total = y.shape[0]
    # one gather from [y; h0] (total + B, H): row -1 - b of src is row total + b there
    return concatenate([y, h0], 0)[np.where(src >= 0, src, total - 1 - src)]


def _recurrent_weight_grad(k, grad_h_side, ctx):
    """grad_h_side^T h_prev (G*H, H). A padded batch on the CPU reads y and h0 where they lie,
    as two GEMMs over the steps that start from y and those that start from h0, instead of
    first copying them into h_prev (total, H)."""
    y, h0, batch_sizes = ctx.y, ctx.h0, ctx.batch_sizes
    B = h0.shape[0]
    if type(y) is not np.ndarray or not np.all(batch_sizes == B):
        h_prev = gather_previous_states(y, h0, batch_sizes, ctx.reverse)
        return k.gemm(grad_h_side, h_prev, None, True, False)
    rest = y.shape[0] - B  # rows whose previous state is a row of y
    if ctx.reverse:  # step t starts from step t + 1's h; the last step from h0
        from_h0, from_y, y_rows = grad_h_side[rest:], grad_h_side[:rest], y[B:]
    else:
        from_h0, from_y, y_rows = grad_h_side[:B], grad_h_side[B:], y[:rest]
    if rest == 0 or np.any(h0):
        out = k.gemm(from_h0, h0, None, True, False)
        return out if rest == 0 else k.gemm(from_y, y_rows, out, True, False, 1.0, 1.0)
    return k.gemm(from_y, y_rows, None, True, False)  # h0 is zeros (no initial state): no GEMM on it


def _inputs_beside_previous_states(ctx):
    """[x | h_prev] (total, I + H), h_prev as gather_previous_states gives it (a packed batch of
    varying lengths, or arrays on the GPU; a padded CPU batch takes _C.rnn_weight_grads instead)."""
    return concatenate([ctx.x, gather_previous_states(ctx.y, ctx.h0, ctx.batch_sizes, ctx.reverse)], 1)


def _data(t):
    return None if t is None else contig(t._data)


def _needs_grad_h0(ctx):
    """Whether backward must return grad_h0 (else the recurrence kernel skips the GEMM that makes it)."""
    return bool(dict(zip(ctx.names, ctx.needs_input_grad)).get("h0"))


def _input_grads(ctx, grad_x_side, grad_h_side, grad_h0, grad_c0=None, grad_bias=None, grad_x=None):
    """(dx, dh0[, dc0], dw_ih, dw_hh, db_ih, db_hh), each only where needed. grad_x_side /
    grad_h_side: gradients w.r.t. x W_ih^T + b_ih and h_prev W_hh^T + b_hh (total, G*H).
    grad_bias: their column sums (G*H) where the two sides are one array and the kernel summed
    it already, else None. grad_x: dx where the recurrence kernel made it already, else None."""
    need = dict(zip(ctx.names, ctx.needs_input_grad))
    out = {"x": None, "h0": None, "c0": None, "w_ih": None, "w_hh": None, "b_ih": None, "b_hh": None}
    k = lib(grad_x_side)
    if need.get("x"):
        out["x"] = Tensor(grad_x if grad_x is not None else k.gemm(grad_x_side, ctx.w_ih))
    inputs, hidden = ctx.x.shape[1], ctx.h0.shape[1]
    both_weights = need.get("w_ih") and need.get("w_hh") and grad_h_side is grad_x_side
    if both_weights and type(ctx.y) is np.ndarray and np.all(ctx.batch_sizes == ctx.h0.shape[0]):
        # A padded batch on the CPU: one GEMM over [x | h_prev] read where they lie, d_gates packed
        # once (_C.rnn_weight_grads). 1 thread, against two GEMMs: 50x32x128x256 12.4-12.6 ->
        # 11.9 ms, 100x64x512x512 249-251 -> 245-248; the char-LSTM's 100x32x64x512 saves building
        # [x | h_prev] and copying out the halves (below).
        dw_ih, dw_hh = _C.rnn_weight_grads(grad_x_side, ctx.x, ctx.y, ctx.h0, ctx.reverse)
        out["w_ih"], out["w_hh"] = Tensor(dw_ih), Tensor(dw_hh)
    elif both_weights and min(inputs, hidden) < 128:
        # Packed sequences and GPU arrays: one GEMM for both, d_gates^T [x | h_prev] (G*H, I + H),
        # when one side is thinner than two column tiles: its own GEMM would spend too much on
        # d_gates^T for them (100x32x64x512, 1 thread: 76-78 ms vs 79-84). Otherwise two GEMMs,
        # which skip the concatenation and the copies of the two halves (measured on padded CPU
        # batches: 35x20x650x650 27.1 -> 24.4 ms and 50x32x128x256 7.6-8.4 -> 6.6-6.9 ms at 2 threads).
        xh = _inputs_beside_previous_states(ctx)  # (total, I + H)
        both = k.gemm(grad_x_side, xh, None, True, False)
        out["w_ih"], out["w_hh"] = Tensor(contig(both[:, :inputs])), Tensor(contig(both[:, inputs:]))
    else:
        if need.get("w_ih"):
            out["w_ih"] = Tensor(k.gemm(grad_x_side, ctx.x, None, True, False))
        if need.get("w_hh"):
            out["w_hh"] = Tensor(_recurrent_weight_grad(k, grad_h_side, ctx))
    if need.get("b_ih"):
        out["b_ih"] = Tensor(grad_bias if grad_bias is not None else sum_dims(grad_x_side, (0,)))
    if need.get("b_hh"):
        if grad_h_side is grad_x_side and out["b_ih"] is not None:
            out["b_hh"] = Tensor(out["b_ih"]._data.copy())
        else:
            out["b_hh"] = Tensor(grad_bias if grad_bias is not None else sum_dims(grad_h_side, (0,)))
    if need.get("h0"):
        out["h0"] = Tensor(grad_h0)
    if need.get("c0") and grad_c0 is not None:
        out["c0"] = Tensor(grad_c0)
    return tuple(out[n] for n in ctx.names) + (None, None)


def _save_common(ctx, names, x, h0, w_ih, w_hh, batch_sizes, reverse):
    ctx.names, ctx.batch_sizes, ctx.reverse = names, batch_sizes, reverse
    ctx.x, ctx.h0, ctx.w_ih, ctx.w_hh = x, h0, w_ih, w_hh


def _bias_sum(b_ih, b_hh):
    """b_ih + b_hh as one array for the projection's epilogue (either may be None)."""
    present = [contig(b._data) for b in (b_ih, b_hh) if b is not None]
    if len(present) < 2:
        return present[0] if present else None
    return lib(present[0]).binary_forward(_C.BinaryOp.add, present[0], present[1])


def _projection(x, w_ih, bias):
    """x (total, I) W_ih^T + bias: the input side of every step, one GEMM."""
    return lib(x).gemm(x, w_ih, None, False, True, 1.0, 0.0, bias)


class LstmLayer(Function):
    """One LSTM layer and direction. Returns y (total, H), h_n (B, H), c_n (B, H)."""

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse):
        xa, h0a, c0a, w_ih_a, w_hh_a = _data(x), _data(h0), _data(c0), _data(w_ih), _data(w_hh)
        bias = _bias_sum(b_ih, b_hh)  # (4H)
        if type(xa) is np.ndarray:  # the kernel makes the projection too (in its tile, on AVX-512)
            gates = _C.host_empty((xa.shape[0], w_hh_a.shape[0]), xa.dtype)  # (total, 4H), written
            y, c_all, h_n, c_n = _C.lstm_sequence_forward(gates, w_hh_a, h0a, c0a, batch_sizes, reverse,
                                                          xa, w_ih_a, bias)
        else:
            gates = _projection(xa, w_ih_a, bias)  # (total, 4H)
            y, c_all, h_n, c_n = lib(gates).lstm_sequence_forward(gates, w_hh_a, h0a, c0a, batch_sizes, reverse)
        _save_common(ctx, ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"), xa, h0a, w_ih_a, w_hh_a,
                     batch_sizes, reverse)
        ctx.c0, ctx.gates, ctx.c_all, ctx.y = c0a, gates, c_all, y
        return Tensor(y), Tensor(h_n), Tensor(c_n)

    @staticmethod
    def backward(ctx, grad_y, grad_h_n, grad_c_n):
        # On the CPU the kernel also makes dx = grad_gates W_ih, step by step while each step's
        # grad_gates is in cache, instead of a GEMM that reads all of it back (lstm_sequence.cpp).
        grad_x = None
        extra = {}
        if type(ctx.w_hh) is np.ndarray and dict(zip(ctx.names, ctx.needs_input_grad)).get("x"):
            grad_x = _C.host_empty((ctx.x.shape[0], ctx.w_ih.shape[1]), ctx.w_hh.dtype)
            extra = {"w_ih": ctx.w_ih, "grad_x_out": grad_x}
        grad_gates, grad_h0, grad_c0, grad_bias = lib(ctx.w_hh).lstm_sequence_backward(
            ctx.w_hh, ctx.gates, ctx.c_all, ctx.c0, ctx.batch_sizes, ctx.reverse,
            _data(grad_y), _data(grad_h_n), _data(grad_c_n), need_grad_h0=_needs_grad_h0(ctx), **extra)
        return _input_grads(ctx, grad_gates, grad_gates, grad_h0, grad_c0, grad_bias, grad_x)


class GruLayer(Function):
    """One GRU layer and direction. Returns y (total, H), h_n (B, H)."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse):
        xa, h0a, w_ih_a, w_hh_a = _data(x), _data(h0), _data(w_ih), _data(w_hh)
        gates = _projection(xa, w_ih_a, _data(b_ih))  # (total, 3H)
        hidden, y, h_n = lib(gates).gru_sequence_forward(gates, w_hh_a, _data(b_hh), h0a, batch_sizes, reverse)
        _save_common(ctx, ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"), xa, h0a, w_ih_a, w_hh_a, batch_sizes, reverse)
        ctx.gates, ctx.hidden, ctx.y = gates, hidden, y
        return Tensor(y), Tensor(h_n)

    @staticmethod
    def backward(ctx, grad_y, grad_h_n):
        grad_x_side, grad_h_side, grad_h0 = lib(ctx.w_hh).gru_sequence_backward(
            ctx.w_hh, ctx.h0, ctx.gates, ctx.hidden, ctx.y, ctx.batch_sizes, ctx.reverse,
            _data(grad_y), _data(grad_h_n), need_grad_h0=_needs_grad_h0(ctx))
        return _input_grads(ctx, grad_x_side, grad_h_side, grad_h0)


class RnnLayer(Function):
    """One Elman RNN layer and direction (tanh or relu). Returns y (total, H), h_n (B, H)."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse, nonlinearity):
        xa, h0a, w_ih_a, w_hh_a = _data(x), _data(h0), _data(w_ih), _data(w_hh)
        bias = _bias_sum(b_ih, b_hh)  # (H)
        y = _projection(xa, w_ih_a, bias)  # (total, H), becomes h in place
        y, h_n = lib(y).rnn_sequence_forward(y, w_hh_a, h0a, batch_sizes, reverse, nonlinearity)
        _save_common(ctx, ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"), xa, h0a, w_ih_a, w_hh_a, batch_sizes, reverse)
        ctx.y, ctx.nonlinearity = y, nonlinearity
        return Tensor(y), Tensor(h_n)

    @staticmethod
    def backward(ctx, grad_y, grad_h_n):
        grad_pre, grad_h0 = lib(ctx.w_hh).rnn_sequence_backward(
            ctx.w_hh, ctx.h0, ctx.y, ctx.batch_sizes, ctx.reverse, ctx.nonlinearity,
            _data(grad_y), _data(grad_h_n), need_grad_h0=_needs_grad_h0(ctx))
        return _input_grads(ctx, grad_pre, grad_pre, grad_h0) + (None,)
