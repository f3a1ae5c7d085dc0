"""Neural-net Functions: softmax / log_softmax, the losses (cross_entropy fused with
log-softmax, nll_loss, mse_loss), dropout, embedding and the LSTM cell."""
import numpy as np

from dlcore import dtypes, random
from dlcore.autograd import Function
from dlcore.ops import elementwise, linalg, reduce
from dlcore.ops._util import SUM, broadcast_to, check_float, contig, is_cuda, lib, normalize_dim, scalar_like
from dlcore.tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, dim, log):
        y = lib(x._data).softmax_forward(contig(x._data), dim, log)
        ctx.y, ctx.dim, ctx.log = y, dim, log
        return Tensor(y)

    @staticmethod
    def backward(ctx, g):
        return Tensor(lib(ctx.y).softmax_backward(ctx.y, contig(g._data), ctx.dim, ctx.log)), None, None


def softmax(x, dim):
    check_float("softmax", x)
    return Softmax.apply(x, normalize_dim("softmax", dim, x.ndim), False)


def log_softmax(x, dim):
    check_float("log_softmax", x)
    return Softmax.apply(x, normalize_dim("log_softmax", dim, x.ndim), True)


def _check_loss_args(op, logits, target, reduction):
    check_float(op, logits)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not isinstance(target, Tensor) or target._data.dtype != dtypes.int64:
        got = target._data.dtype if isinstance(target, Tensor) else type(target).__name__
        raise TypeError(f"{op}: target must be an int64 Tensor of class indices, got {got}")
    if logits.ndim != 2 or target.ndim != 1 or target.shape[0] != logits.shape[0]:
        raise ValueError(
            f"{op}: expected input (N, C) and target (N,), got input {logits.shape} and target {target.shape}"
        )


def _reduce_rows(rows, target, ignore_index, reduction):
    """(loss array, per-row gradient scale) for the chosen reduction."""
    if reduction == "none":
        return rows, None
    if is_cuda(rows):
        return _reduce_rows_cuda(rows, target, ignore_index, reduction)
    total = rows.sum(dtype=np.float64)
    if reduction == "sum":
        return np.asarray(total, dtype=rows.dtype), 1.0
    count = int(np.count_nonzero(target != ignore_index))
    return np.asarray(total / count if count else np.nan, dtype=rows.dtype), (1.0 / count if count else np.nan)


def _reduce_rows_cuda(rows, target, ignore_index, reduction):
    """_reduce_rows on the GPU: a deterministic float64 sum; the count of kept targets is read
    on the host (one small copy)."""
    k = lib(rows)
    total, _ = k.reduce_forward(SUM, rows.astype(np.float64), 0, 1)
    if reduction == "sum":
        return total.astype(rows.dtype), 1.0
    count = int(np.count_nonzero(target.get() != ignore_index))
    scale = 1.0 / count if count else np.nan
    return k.binary_forward(elementwise.B.mul, total, scalar_like(scale, np.float64, total)).astype(rows.dtype), scale


def _rows_grad(g, scale, shape, dtype):
    """The per-row gradient g * scale for a reduced loss, as a (N,) array on g's device."""
    if not is_cuda(g):
        return np.full(shape, float(g) * scale, dtype=dtype)
    scaled = lib(g).binary_forward(elementwise.B.mul, g.astype(dtype), scalar_like(scale, dtype, g))
    return contig(broadcast_to(scaled, shape))


class CrossEntropy(Function):
    @staticmethod
    def forward(ctx, logits, target, reduction, ignore_index):
        x, t = contig(logits._data), contig(target._data)
        rows, lse = lib(x).cross_entropy_forward(x, t, ignore_index)
        loss, scale = _reduce_rows(rows, t, ignore_index, reduction)
        ctx.x, ctx.t, ctx.lse, ctx.scale, ctx.ignore_index = x, t, lse, scale, ignore_index
        return Tensor(loss)

    @staticmethod
    def backward(ctx, g):
        if ctx.scale is None:
            grad_rows = contig(g._data)
        else:
            grad_rows = _rows_grad(g._data, ctx.scale, ctx.t.shape, ctx.x.dtype)
        grad = lib(ctx.x).cross_entropy_backward(ctx.x, ctx.t, ctx.lse, grad_rows, ctx.ignore_index)
        return Tensor(grad), None, None, None


def cross_entropy(input, target, reduction="mean", ignore_index=-100):  # noqa: A002
    """log_softmax + nll_loss fused: input (N, C) logits, target (N,) class indices."""
    _check_loss_args("cross_entropy", input, target, reduction)
    return CrossEntropy.apply(input, target, reduction, int(ignore_index))


class NllLoss(Function):
    @staticmethod
    def forward(ctx, logp, target, reduction, ignore_index):
        t = contig(target._data)
        rows = lib(t).nll_loss_forward(contig(logp._data), t, ignore_index)
        loss, scale = _reduce_rows(rows, t, ignore_index, reduction)
        ctx.t, ctx.scale, ctx.ignore_index, ctx.C, ctx.dtype = t, scale, ignore_index, logp.shape[1], logp.dtype
        return Tensor(loss)

    @staticmethod
    def backward(ctx, g):
        if ctx.scale is None:
            grad_rows = contig(g._data)
        else:
            grad_rows = _rows_grad(g._data, ctx.scale, ctx.t.shape, ctx.dtype)
        return Tensor(lib(ctx.t).nll_loss_backward(ctx.t, grad_rows, ctx.C, ctx.ignore_index)), None, None, None


def nll_loss(input, target, reduction="mean", ignore_index=-100):  # noqa: A002
    """Negative log-likelihood of log-probabilities input (N, C) at target (N,)."""
    _check_loss_args("nll_loss", input, target, reduction)
    return NllLoss.apply(input, target, reduction, int(ignore_index))


def mse_loss(input, target, reduction="mean"):  # noqa: A002
    """Mean squared error; input and target must have one shape."""
    check_float("mse_loss", input)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not isinstance(target, Tensor) or target.shape != input.shape:
        shape = target.shape if isinstance(target, Tensor) else type(target).__name__
        raise ValueError(f"mse_loss: target must be a Tensor of the input's shape {input.shape}, got {shape}")
    sq = elementwise.pow(elementwise.sub(input, target), 2)
    if reduction == "none":
        return sq
    return reduce.mean(sq) if reduction == "mean" else reduce.sum(sq)


def _cuda_seed():
    from dlcore import cuda

    return cuda.next_seed()


class Dropout(Function):
    @staticmethod
    def forward(ctx, x, p):
        seed = _cuda_seed() if is_cuda(x._data) else random.next_seed()
        y, keep = lib(x._data).dropout_forward(contig(x._data), p, seed)
        ctx.keep, ctx.scale = keep, (0.0 if p >= 1.0 else 1.0 / (1.0 - p))
        return Tensor(y)

    @staticmethod
    def backward(ctx, g):
        return Tensor(lib(ctx.keep).dropout_backward(ctx.keep, contig(g._data), ctx.scale)), None


def dropout(x, p=0.5, training=True):
    """Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p)."""
    check_float("dropout", x)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    return Dropout.apply(x, float(p))


class Embedding(Function):
    @staticmethod
    def forward(ctx, index, weight, padding_idx):
        idx = contig(index._data)
        ctx.idx, ctx.num, ctx.padding_idx = idx, weight.shape[0], padding_idx
        return Tensor(lib(idx).embedding_forward(contig(weight._data), idx))

    @staticmethod
    def backward(ctx, g):
        grad = lib(ctx.idx).embedding_backward(ctx.idx, contig(g._data), ctx.num, ctx.padding_idx)
        return None, Tensor(grad), None


def embedding(input, weight, padding_idx=None):  # noqa: A002
    """Rows of weight (num, D) picked by int64 indices: output input.shape + (D,)."""
    if not isinstance(input, Tensor) or input._data.dtype != dtypes.int64:
        raise TypeError("embedding: input must be an int64 Tensor of indices")
    check_float("embedding", weight)
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, dim), got shape {weight.shape}")
    pad = -1
    if padding_idx is not None:
        pad = int(padding_idx) % weight.shape[0] if -weight.shape[0] <= padding_idx < weight.shape[0] else None
        if pad is None:
            raise ValueError(f"embedding: padding_idx {padding_idx} out of range for {weight.shape[0]} embeddings")
    return Embedding.apply(input, weight, pad)


class LstmCell(Function):
    """The pointwise half of an LSTM step, gate order (i, f, g, o)."""

    @staticmethod
    def forward(ctx, gates_pre, c_prev):
        c_prev_a = contig(c_prev._data)
        h, c, gates = lib(c_prev_a).lstm_cell_forward(contig(gates_pre._data), c_prev_a)
        ctx.gates, ctx.c_prev, ctx.c = gates, c_prev_a, c
        return Tensor(h), Tensor(c)

    @staticmethod
    def backward(ctx, grad_h, grad_c):
        gh = contig(grad_h._data) if grad_h is not None else None
        gc = contig(grad_c._data) if grad_c is not None else None
        grad_gates, grad_c_prev = lib(ctx.gates).lstm_cell_backward(ctx.gates, ctx.c_prev, ctx.c, gh, gc)
        return Tensor(grad_gates), Tensor(grad_c_prev)


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):  # noqa: A002
    """One LSTM step: input (B, I), hx = (h (B, H), c (B, H)), w_ih (4H, I), w_hh (4H, H).
    Returns (h', c'). The gate GEMMs run through linear (the GEMM kernel); the gates'
    pointwise math is one fused kernel."""
    h, c = hx
    hidden = w_hh.shape[1]
    if w_ih.shape[0] != 4 * hidden or w_hh.shape != (4 * hidden, hidden):
        raise ValueError(f"lstm_cell: w_ih {w_ih.shape} / w_hh {w_hh.shape} must be (4H, I) / (4H, H)")
    if h.shape != c.shape or h.ndim != 2 or h.shape[1] != hidden or h.shape[0] != input.shape[0]:
        raise ValueError(
            f"lstm_cell: h {h.shape} and c {c.shape} must be (B, H) = ({input.shape[0]}, {hidden})"
        )
    gates = elementwise.add(linalg.linear(input, w_ih, b_ih), linalg.linear(h, w_hh, b_hh))
    return LstmCell.apply(gates, c)
