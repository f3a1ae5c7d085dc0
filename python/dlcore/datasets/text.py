"""Character-level text for language models: ``CharCorpus`` (any text file, plain or .gz),
``TinyShakespeare`` (``<root>/tinyshakespeare/input.txt.gz``, root defaulting to
``$DLCORE_DATA``), and the two usual ways to cut a token stream into (inputs, targets)
batches, both time-major (seq_len, batch) int64 as nn.LSTM expects by default:

- ``BPTTBatches``: truncated backprop through time. The stream is cut into ``batch_size``
  contiguous columns (``batchify``) that are walked in windows of ``seq_len``, so column j
  of one batch continues column j of the previous one and the hidden state can be carried.
- ``RandomWindows``: each column an independent window at a random offset (shuffled
  training; start every batch from a zero hidden state).

targets are inputs shifted one step ahead: ``targets[t, j] == inputs[t + 1, j]``.
"""
import gzip
import os

import numpy as np

from dlcore import random
from dlcore.datasets._root import data_root
from dlcore.tensor import Tensor


def read_text(path, encoding="utf-8"):
    """The text of a file; ``*.gz`` files are decompressed."""
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding=encoding, newline="") as f:
        return f.read()


class CharCorpus:
    """``CharCorpus(path=None, text=None, train_fraction=0.9)``: one text (from a file or given
    directly) as int64 character ids over its sorted character vocabulary. ``train`` is the
    first ``train_fraction`` of the ids, ``val`` the rest (a contiguous split)."""

    def __init__(self, path=None, text=None, train_fraction=0.9):
        if (path is None) == (text is None):
            raise ValueError("CharCorpus: pass exactly one of path and text")
        if not 0.0 < train_fraction <= 1.0:
            raise ValueError(f"CharCorpus: train_fraction must be in (0, 1], got {train_fraction}")
        self.path = None if path is None else os.fspath(path)
        self.text = read_text(self.path) if text is None else str(text)
        if not self.text:
            raise ValueError(f"CharCorpus: the text is empty{f' ({self.path})' if self.path else ''}")
        self.itos = sorted(set(self.text))  # id -> character
        self.stoi = {c: i for i, c in enumerate(self.itos)}  # character -> id
        self.data = self.encode(self.text)  # (N,) int64
        n_train = int(train_fraction * self.data.size)
        self.train_fraction = train_fraction
        self.train = self.data[:n_train]
        self.val = self.data[n_train:]

    @property
    def vocab_size(self):
        return len(self.itos)

    def __len__(self):
        return self.data.size

    def encode(self, text):
        """A string -> (len,) int64 ids; raises KeyError on characters outside the vocabulary."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (len,) code points
        vocab = np.frombuffer("".join(self.itos).encode("utf-32-le"), dtype=np.uint32)  # sorted
        ids = np.minimum(np.searchsorted(vocab, codes), vocab.size - 1)
        bad = np.flatnonzero(vocab[ids] != codes)
        if bad.size:
            raise KeyError(f"CharCorpus.encode: character {text[bad[0]]!r} (position {bad[0]}) is not in the "
                           f"vocabulary ({self.vocab_size} characters)")
        return ids.astype(np.int64)

    def decode(self, ids):
        """int ids (a sequence, NumPy array or Tensor) -> string."""
        if isinstance(ids, Tensor):
            ids = ids._data
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            bad = ids[(ids < 0) | (ids >= self.vocab_size)][0]
            raise ValueError(f"CharCorpus.decode: id {bad} out of range 0..{self.vocab_size - 1}")
        return "".join(self.itos[i] for i in ids.tolist())

    def __repr__(self):
        src = f"path={self.path!r}" if self.path else "text"
        return (f"{type(self).__name__}({src}, chars={len(self)}, vocab={self.vocab_size}, "
                f"train={self.train.size}, val={self.val.size})")


class TinyShakespeare(CharCorpus):
    """``TinyShakespeare(root=None, train_fraction=0.9)``: karpathy/char-rnn's 1,115,394-character
    Shakespeare text, read from ``<root>/tinyshakespeare/input.txt[.gz]``; root defaults to
    ``$DLCORE_DATA``."""

    folder, name = "tinyshakespeare", "input.txt"

    def __init__(self, root=None, train_fraction=0.9):
        self.root = data_root(root)
        looked = [os.path.join(self.root, self.folder, n) for n in (self.name + ".gz", self.name)]
        path = next((p for p in looked if os.path.isfile(p)), None)
        if path is None:
            raise FileNotFoundError(
                f"TinyShakespeare: cannot find {looked[0]} (nor {looked[1]}). Pass root=<data dir> or set "
                "the DLCORE_DATA environment variable to the folder holding tinyshakespeare/"
            )
        super().__init__(path=path, train_fraction=train_fraction)


def _ids(op, ids):
    if isinstance(ids, Tensor):
        ids = ids._data
    arr = np.asarray(ids)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{op}: ids must be a 1-D integer array, got shape {arr.shape} dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _positive(op, name, value):
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{op}: {name} must be a positive int, got {value!r}")
    return int(value)


def batchify(ids, batch_size):
    """(N,) ids -> (N // batch_size, batch_size) int64: column j is the j-th contiguous slice
    of the stream (the tail that does not fill a row is dropped)."""
    ids = _ids("batchify", ids)
    batch_size = _positive("batchify", "batch_size", batch_size)
    rows = ids.size // batch_size
    if rows == 0:
        raise ValueError(f"batchify: {ids.size} ids are fewer than batch_size {batch_size}")
    return np.ascontiguousarray(ids[:rows * batch_size].reshape(batch_size, rows).T)  # (rows, B)


class BPTTBatches:
    """``BPTTBatches(ids, batch_size, seq_len, drop_last=False)``: iterates (inputs, targets),
    each (L, batch_size) int64 with L = seq_len (the last window is shorter unless drop_last),
    walking ``batchify(ids, batch_size)`` in order. Re-iterable; ``len()`` is batches per pass."""

    def __init__(self, ids, batch_size, seq_len, drop_last=False):
        self.seq_len = _positive("BPTTBatches", "seq_len", seq_len)
        self.columns = batchify(ids, batch_size)  # (rows, B)
        if self.columns.shape[0] < 2:
            raise ValueError(f"BPTTBatches: {self.columns.shape[0]} row(s) per column leave no targets; "
                             "need more ids or a smaller batch_size")
        self.drop_last = bool(drop_last)

    def __len__(self):
        steps = self.columns.shape[0] - 1  # the last row is only ever a target
        return steps // self.seq_len if self.drop_last else -(-steps // self.seq_len)

    def __iter__(self):
        steps = self.columns.shape[0] - 1
        for i in range(0, len(self) * self.seq_len, self.seq_len):
            n = min(self.seq_len, steps - i)
            yield self.columns[i:i + n], self.columns[i + 1:i + 1 + n]


class RandomWindows:
    """``RandomWindows(ids, batch_size, seq_len, num_batches, seed=None)``: iterates
    ``num_batches`` (inputs, targets) pairs, each (seq_len, batch_size) int64, every column a
    window starting at a uniformly random offset. Offsets come from a generator made from
    ``seed`` when given (each pass continues it), else dlcore's default (``dlcore.manual_seed``)."""

    def __init__(self, ids, batch_size, seq_len, num_batches, seed=None):
        self.ids = _ids("RandomWindows", ids)
        self.batch_size = _positive("RandomWindows", "batch_size", batch_size)
        self.seq_len = _positive("RandomWindows", "seq_len", seq_len)
        self.num_batches = _positive("RandomWindows", "num_batches", num_batches)
        if self.ids.size < self.seq_len + 1:
            raise ValueError(f"RandomWindows: {self.ids.size} ids are too few for windows of seq_len "
                             f"{self.seq_len} plus one target")
        self.generator = None if seed is None else np.random.default_rng(seed)

    def __len__(self):
        return self.num_batches

    def __iter__(self):
        rng = self.generator if self.generator is not None else random.generator()
        span = np.arange(self.seq_len + 1, dtype=np.int64)[:, None]  # (L + 1, 1)
        for _ in range(self.num_batches):
            starts = rng.integers(0, self.ids.size - self.seq_len, size=self.batch_size)  # (B,)
            window = self.ids[span + starts[None, :]]  # (L + 1, B)
            yield np.ascontiguousarray(window[:-1]), np.ascontiguousarray(window[1:])


__all__ = ["BPTTBatches", "CharCorpus", "RandomWindows", "TinyShakespeare", "batchify", "read_text"]
