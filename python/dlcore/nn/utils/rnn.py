"""Variable-length sequences, as torch.nn.utils.rnn: ``PackedSequence``, ``pack_padded_sequence``,
``pad_packed_sequence``, ``pad_sequence``, ``pack_sequence``, ``unpad_sequence``,
``unpack_sequence``.

Packed layout (PyTorch's): the batch is sorted by descending length (``sorted_indices[k]`` is
the original index of the k-th longest sequence); ``data`` (total, *) holds the
``batch_sizes[0]`` rows of time step 0 in that order, then the ``batch_sizes[1]`` rows of step
1, and so on; ``batch_sizes[t]`` is the number of sequences longer than t. Packing and
unpacking are Functions (a gather and a scatter) so gradients flow through both.
"""
from typing import NamedTuple, Optional

import numpy as np

from dlcore.autograd import Function
from dlcore.cuda.array import full
from dlcore.ops._util import concatenate, contig, is_cuda, lib
from dlcore.tensor import Tensor


def _int64_tensor(x):
    if x is None or isinstance(x, Tensor):
        return x
    return Tensor(np.ascontiguousarray(np.asarray(x, dtype=np.int64)))


def invert_permutation(perm):
    """The inverse of an int64 permutation Tensor (None stays None)."""
    if perm is None:
        return None
    p = perm._data
    inv = np.empty_like(p)
    inv[p] = np.arange(p.size, dtype=np.int64)
    return Tensor(inv)


class _PackedSequence(NamedTuple):
    data: Tensor  # (total, *)
    batch_sizes: Tensor  # (T,) int64, non-increasing
    sorted_indices: Optional[Tensor]  # (B,) int64 or None
    unsorted_indices: Optional[Tensor]  # (B,) int64 or None


class PackedSequence(_PackedSequence):
    """``PackedSequence(data, batch_sizes, sorted_indices=None, unsorted_indices=None)``: a
    packed batch (see the module docstring). Built by ``pack_padded_sequence`` or
    ``pack_sequence``, read by LSTM and ``pad_packed_sequence``. As in torch, a missing
    ``unsorted_indices`` is the inverse of ``sorted_indices``."""

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if not isinstance(data, Tensor):
            raise TypeError(f"PackedSequence: data must be a Tensor, got {type(data).__name__}")
        if batch_sizes is None:
            raise TypeError("PackedSequence: batch_sizes is required")
        batch_sizes = _int64_tensor(batch_sizes)
        sorted_indices = _int64_tensor(sorted_indices)
        unsorted_indices = _int64_tensor(unsorted_indices)
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)


def _packed_index(batch_sizes):
    """(t, k) of every packed row: its time step and its position in the sorted batch."""
    total = int(batch_sizes.sum())
    t = np.repeat(np.arange(batch_sizes.size, dtype=np.int64), batch_sizes)  # (total,)
    starts = np.cumsum(batch_sizes) - batch_sizes  # (T,) first packed row of each step
    k = np.arange(total, dtype=np.int64) - np.repeat(starts, batch_sizes)  # (total,)
    return t, k


def _flat_rows(index, shape):
    """The (t, b) index pair as flat row numbers into shape[:2] (host int64)."""
    return np.ravel_multi_index(index, shape[:2]).astype(np.int64)


class PackPadded(Function):
    """Gather: data[r] = padded[t_r, b_r] (time-major; [b_r, t_r] when batch_first). On a GPU:
    the take kernel over the flattened (T * B, *) rows, index_add back."""

    @staticmethod
    def forward(ctx, padded, index):
        ctx.shape, ctx.dtype, ctx.index = padded.shape, padded._data.dtype, index
        if not is_cuda(padded._data):
            return Tensor(padded._data[index])  # (total, *)
        ctx.rows = _flat_rows(index, padded.shape)
        flat = padded._data.reshape((-1,) + padded.shape[2:])  # (T * B, *)
        return Tensor(lib(flat).take(flat, ctx.rows, 0))

    @staticmethod
    def backward(ctx, g):
        if is_cuda(g._data):
            flat_shape = (ctx.shape[0] * ctx.shape[1],) + ctx.shape[2:]
            return Tensor(lib(g._data).index_add(flat_shape, 0, ctx.rows, g._data).reshape(ctx.shape)), None
        grad = np.zeros(ctx.shape, dtype=ctx.dtype)
        grad[ctx.index] = g._data  # each (t, b) appears once: plain assignment
        return Tensor(grad), None


class PadPacked(Function):
    """Scatter: out[t_r, b_r] = data[r], every other entry padding_value. On a GPU: a gather
    from data plus one padding row, by the inverse of the packing index."""

    @staticmethod
    def forward(ctx, data, index, shape, padding_value):
        ctx.index = index
        if not is_cuda(data._data):
            out = np.full(shape, padding_value, dtype=data._data.dtype)
            out[index] = data._data
            return Tensor(out)
        ctx.rows = _flat_rows(index, shape)
        total = data.shape[0]
        source = np.full(shape[0] * shape[1], total, dtype=np.int64)  # (T * B,) packed row, or the pad row
        source[ctx.rows] = np.arange(total, dtype=np.int64)
        pad = full((1,) + data.shape[1:], padding_value, data._data.dtype, data._data.device)
        rows = concatenate([contig(data._data), pad], 0)  # (total + 1, *)
        return Tensor(lib(rows).take(rows, source, 0).reshape(shape))

    @staticmethod
    def backward(ctx, g):
        if is_cuda(g._data):
            flat = contig(g._data).reshape((-1,) + g.shape[2:])
            return Tensor(lib(flat).take(flat, ctx.rows, 0)), None, None, None
        return Tensor(np.ascontiguousarray(g._data[ctx.index])), None, None, None


def _lengths_array(op, lengths, batch):
    if isinstance(lengths, Tensor):
        lengths = lengths._data
    arr = np.asarray(lengths)
    if arr.ndim != 1:
        raise ValueError(f"{op}: lengths must be 1-D, got shape {arr.shape}")
    if arr.size and not (np.issubdtype(arr.dtype, np.integer) or np.all(arr == np.round(arr))):
        raise ValueError(f"{op}: lengths must be integers, got {arr.tolist()}")
    arr = arr.astype(np.int64)
    if arr.size != batch:
        raise ValueError(f"{op}: expected len(lengths) to equal the batch size {batch}, got {arr.size}")
    if arr.size == 0 or arr.min() <= 0:
        raise ValueError(f"{op}: every length must be >= 1, got lengths {arr.tolist()}")
    return arr


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):  # noqa: A002
    """Packs a padded batch (T, B, *) ((B, T, *) if batch_first) of sequences with the given
    lengths. enforce_sorted=True requires lengths in descending order (indices then None);
    otherwise the batch is sorted here (stable) and the indices are recorded."""
    op = "pack_padded_sequence"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim < 2:
        raise ValueError(f"{op}: input must have at least 2 dims (T, B, *), got shape {input.shape}")
    t_dim, b_dim = (1, 0) if batch_first else (0, 1)
    lengths = _lengths_array(op, lengths, input.shape[b_dim])
    if lengths.max() > input.shape[t_dim]:
        raise ValueError(f"{op}: the longest length {lengths.max()} exceeds the input's time dim "
                         f"{input.shape[t_dim]} (shape {input.shape}, batch_first={batch_first})")
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise ValueError(f"{op}: lengths must be sorted in decreasing order when enforce_sorted=True, "
                             f"got {lengths.tolist()}; pass enforce_sorted=False to sort them here")
        sorted_indices = None
        order = np.arange(lengths.size, dtype=np.int64)
    else:
        order = np.argsort(-lengths, kind="stable").astype(np.int64)  # (B,)
        sorted_indices = Tensor(order)
    sorted_lengths = lengths[order]
    batch_sizes = np.count_nonzero(sorted_lengths[None, :] > np.arange(sorted_lengths[0])[:, None], axis=1)
    batch_sizes = batch_sizes.astype(np.int64)  # (T,)
    t, k = _packed_index(batch_sizes)
    b = order[k]  # original batch index of each packed row
    data = PackPadded.apply(input, (b, t) if batch_first else (t, b))
    return PackedSequence(data, Tensor(batch_sizes), sorted_indices, None)


def _check_batch_sizes(op, sequence):
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"{op}: expected a PackedSequence, got {type(sequence).__name__}")
    bs = sequence.batch_sizes._data
    if bs.ndim != 1 or bs.size == 0 or bs.min() <= 0 or np.any(np.diff(bs) > 0):
        raise ValueError(f"{op}: batch_sizes must be a non-empty, non-increasing 1-D sequence of "
                         f"positive ints, got {bs.tolist()}")
    if sequence.data.ndim < 1 or sequence.data.shape[0] != int(bs.sum()):
        raise ValueError(f"{op}: data has {sequence.data.shape[0] if sequence.data.ndim else 0} rows but "
                         f"batch_sizes {bs.tolist()} add up to {int(bs.sum())}")
    return bs.astype(np.int64)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Inverse of pack_padded_sequence: (padded (T, B, *) or (B, T, *), lengths (B,) int64),
    the batch back in its original order. total_length pads T up to that length."""
    op = "pad_packed_sequence"
    bs = _check_batch_sizes(op, sequence)
    steps, batch = bs.size, int(bs[0])
    if total_length is not None:
        if total_length < steps:
            raise ValueError(f"{op}: expected total_length to be at least the length of the longest "
                             f"sequence ({steps}), got total_length={total_length}")
        steps = int(total_length)
    t, k = _packed_index(bs)
    unsorted = sequence.unsorted_indices
    position = np.arange(batch, dtype=np.int64) if unsorted is None else invert_permutation(unsorted)._data
    b = position[k]  # output batch column of each packed row
    feat = sequence.data.shape[1:]
    shape = (batch, steps) + feat if batch_first else (steps, batch) + feat
    out = PadPacked.apply(sequence.data, (b, t) if batch_first else (t, b), shape, padding_value)
    lengths = np.count_nonzero(bs[None, :] > np.arange(batch)[:, None], axis=1).astype(np.int64)  # sorted
    if unsorted is not None:
        lengths = lengths[unsorted._data]
    return out, Tensor(lengths)


class PadSequence(Function):
    """Stacks sequences (L_i, *) into (T, B, *) ((B, T, *) if batch_first), padded."""

    @staticmethod
    def forward(ctx, batch_first, padding_value, left, *seqs):
        ctx.batch_first, ctx.left = batch_first, left
        ctx.lengths = [s.shape[0] for s in seqs]
        steps, feat = max(ctx.lengths), seqs[0].shape[1:]
        shape = (len(seqs), steps) + feat if batch_first else (steps, len(seqs)) + feat
        out = np.full(shape, padding_value, dtype=seqs[0]._data.dtype)
        rows = out if batch_first else out.swapaxes(0, 1)  # (B, T, *) view
        for i, s in enumerate(seqs):
            if left:
                rows[i, steps - s.shape[0]:] = s._data
            else:
                rows[i, :s.shape[0]] = s._data
        return Tensor(out)

    @staticmethod
    def backward(ctx, g):
        g = g._data if ctx.batch_first else g._data.swapaxes(0, 1)  # (B, T, *)
        steps = g.shape[1]
        grads = []
        for i, (n, need) in enumerate(zip(ctx.lengths, ctx.needs_input_grad[3:])):
            if not need:
                grads.append(None)
                continue
            part = g[i, steps - n:] if ctx.left else g[i, :n]
            grads.append(Tensor(np.ascontiguousarray(part)))
        return (None, None, None) + tuple(grads)


def _check_sequences(op, sequences):
    if isinstance(sequences, Tensor):
        sequences = list(sequences)
    seqs = list(sequences)
    if not seqs:
        raise ValueError(f"{op}: expected a non-empty list of Tensors")
    for i, s in enumerate(seqs):
        if not isinstance(s, Tensor):
            raise TypeError(f"{op}: sequences[{i}] must be a Tensor, got {type(s).__name__}")
        if s.ndim < 1:
            raise ValueError(f"{op}: sequences[{i}] must have at least 1 dim (L, *), got a 0-d tensor")
        if s.shape[1:] != seqs[0].shape[1:] or s.dtype != seqs[0].dtype:
            raise ValueError(f"{op}: all sequences need one trailing shape and dtype; sequences[0] is "
                             f"{seqs[0].shape} {seqs[0].dtype}, sequences[{i}] is {s.shape} {s.dtype}")
    return seqs


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Pads a list of (L_i, *) Tensors to (T, B, *) ((B, T, *) if batch_first), T = max L_i."""
    seqs = _check_sequences("pad_sequence", sequences)
    if padding_side not in ("right", "left"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right', got {padding_side!r}")
    return PadSequence.apply(bool(batch_first), padding_value, padding_side == "left", *seqs)


def pack_sequence(sequences, enforce_sorted=True):
    """Packs a list of (L_i, *) Tensors (pad_sequence then pack_padded_sequence)."""
    seqs = _check_sequences("pack_sequence", sequences)
    lengths = [s.shape[0] for s in seqs]
    return pack_padded_sequence(pad_sequence(seqs), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The list of (L_i, *) Tensors inside a padded batch (inverse of pad_sequence)."""
    op = "unpad_sequence"
    if not isinstance(padded_sequences, Tensor) or padded_sequences.ndim < 2:
        raise ValueError(f"{op}: padded_sequences must be a Tensor with at least 2 dims")
    t_dim, b_dim = (1, 0) if batch_first else (0, 1)
    lengths = _lengths_array(op, lengths, padded_sequences.shape[b_dim])
    if lengths.max() > padded_sequences.shape[t_dim]:
        raise ValueError(f"{op}: the longest length {lengths.max()} exceeds the time dim "
                         f"{padded_sequences.shape[t_dim]}")
    if batch_first:
        return [padded_sequences[i, :n] for i, n in enumerate(lengths.tolist())]
    return [padded_sequences[:n, i] for i, n in enumerate(lengths.tolist())]


def unpack_sequence(packed_sequences):
    """The list of (L_i, *) Tensors inside a PackedSequence, in the original batch order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pack_sequence", "pad_packed_sequence",
           "pad_sequence", "unpack_sequence", "unpad_sequence"]
