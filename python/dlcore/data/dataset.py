"""Datasets, as torch.utils.data: ``Dataset`` (``__getitem__`` + ``__len__``),
``TensorDataset`` over arrays with one first dim, and ``Subset``.

Bulk indexing: a dataset may define ``get_batch(indices)`` (indices an int64 NumPy array)
returning an already collated batch. The DataLoader prefers it to one ``__getitem__`` per
sample, which for MNIST-sized arrays is the difference between one fancy-index and
thousands of Python calls per batch.
"""
import numpy as np

from dlcore.tensor import Tensor


class Dataset:
    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} has no __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} has no __len__")


def _array(op, x):
    if isinstance(x, Tensor):
        return x._data
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"{op}: expected Tensors or NumPy arrays, got {type(x).__name__}")


class TensorDataset(Dataset):
    """Sample i is ``tuple(t[i] for t in tensors)``. Items are Tensors sharing memory with
    the inputs; get_batch gathers a whole batch with one fancy-index per tensor."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        arrays = [_array("TensorDataset", t) for t in tensors]
        n = arrays[0].shape[0] if arrays[0].ndim else None
        for a in arrays:
            if a.ndim == 0 or a.shape[0] != n:
                raise ValueError(f"TensorDataset: all tensors must share their first dim, got shapes "
                                 f"{[x.shape for x in arrays]}")
        self.tensors = tuple(t if isinstance(t, Tensor) else Tensor(t) for t in tensors)
        self._arrays = arrays

    def __len__(self):
        return self._arrays[0].shape[0]

    def __getitem__(self, index):
        return tuple(Tensor(np.asarray(a[index])) for a in self._arrays)

    def get_batch(self, indices):
        return tuple(Tensor(a[indices]) for a in self._arrays)


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        n = len(dataset)
        if self.indices.size and (self.indices.min() < -n or self.indices.max() >= n):
            raise IndexError(f"Subset: indices out of range for a dataset of {n} samples")

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def __getattr__(self, name):
        if name == "get_batch" and hasattr(self.__dict__.get("dataset"), "get_batch"):
            return lambda indices: self.dataset.get_batch(self.indices[indices])
        raise AttributeError(f"'Subset' object has no attribute '{name}'")


def random_split(dataset, lengths, generator=None):
    """Splits into non-overlapping Subsets of the given lengths (ints summing to len(dataset))."""
    from dlcore import random

    n = len(dataset)
    lengths = [int(x) for x in lengths]
    if sum(lengths) != n or any(x < 0 for x in lengths):
        raise ValueError(f"random_split: lengths {lengths} must be non-negative and sum to {n}")
    rng = random.generator() if generator is None else (
        np.random.default_rng(generator) if isinstance(generator, (int, np.integer)) else generator)
    perm = rng.permutation(n)
    out, start = [], 0
    for x in lengths:
        out.append(Subset(dataset, perm[start:start + x]))
        start += x
    return out
