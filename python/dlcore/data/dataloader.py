"""DataLoader: batches of a Dataset, optionally shuffled, collated into Tensors.

    for x, y in DataLoader(ds, batch_size=64, shuffle=True, seed=0): ...

Shuffling draws one permutation per epoch from a NumPy Generator: the one passed as
``generator``, else one made from ``seed`` when the loader is built (so two loaders with
one seed yield the same epochs), else dlcore's default generator (``dlcore.manual_seed``).
Datasets with ``get_batch(indices)`` are indexed in bulk; others go through
``__getitems__(indices)`` (torch's protocol: a list of samples) or ``__getitem__`` per
sample, then ``collate_fn``. Loading runs in the calling process.
"""
import numbers

import numpy as np

from dlcore import random
from dlcore.tensor import Tensor


def default_collate(samples):
    """Stacks a list of samples: Tensors / arrays -> one Tensor with a new first dim,
    ints -> int64, floats -> float32, bools -> bool; tuples, lists and dicts field by field."""
    first = samples[0]
    if isinstance(first, Tensor):
        return Tensor(np.stack([s._data for s in samples]))
    if isinstance(first, np.ndarray):
        return Tensor(np.stack(samples))
    if isinstance(first, (bool, np.bool_)):
        return Tensor(np.asarray(samples, dtype=np.bool_))
    if isinstance(first, numbers.Integral):
        return Tensor(np.asarray(samples, dtype=np.int64))
    if isinstance(first, numbers.Real):
        return Tensor(np.asarray(samples, dtype=np.float32))
    if isinstance(first, (str, bytes)):
        return list(samples)
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in samples):
            raise ValueError("default_collate: samples in a batch have different numbers of fields")
        return type(first)(default_collate(list(field)) for field in zip(*samples)) if isinstance(first, tuple) \
            else [default_collate(list(field)) for field in zip(*samples)]
    raise TypeError(f"default_collate: don't know how to batch samples of type {type(first).__name__}")


class DataLoader:
    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, collate_fn=None, generator=None,
                 seed=None, num_workers=0, pin_memory=False):
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if generator is not None and seed is not None:
            raise ValueError("DataLoader: pass either generator or seed, not both")
        if isinstance(generator, (int, np.integer)):
            generator, seed = None, generator
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"DataLoader: generator must be a numpy.random.Generator or an int seed, "
                            f"got {type(generator).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.generator = np.random.default_rng(seed) if seed is not None else generator
        self.num_workers = num_workers  # accepted for torch compatibility; loading is in-process
        self.pin_memory = pin_memory

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self):
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        rng = self.generator if self.generator is not None else random.generator()
        return rng.permutation(n).astype(np.int64)

    def __iter__(self):
        order = self._order()
        n, bs = len(order), self.batch_size
        stop = n - n % bs if self.drop_last else n
        bulk = self.collate_fn is None and hasattr(self.dataset, "get_batch")
        many = hasattr(self.dataset, "__getitems__")
        collate = self.collate_fn or default_collate
        for start in range(0, stop, bs):
            idx = order[start:start + bs]
            if bulk:
                yield self.dataset.get_batch(idx)
            elif many:
                yield collate(self.dataset.__getitems__(idx.tolist()))
            else:
                yield collate([self.dataset[i] for i in idx.tolist()])
