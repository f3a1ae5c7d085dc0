"""Datasets read from local files (``$DLCORE_DATA``): MNIST / Fashion-MNIST (plus a small
MNIST sample shipped in the package), and character-level text (Tiny Shakespeare)."""
from dlcore.datasets.mnist import MNIST, FashionMNIST, mnist_sample, read_idx
from dlcore.datasets.text import BPTTBatches, CharCorpus, RandomWindows, TinyShakespeare, batchify, read_text

__all__ = ["BPTTBatches", "CharCorpus", "FashionMNIST", "MNIST", "RandomWindows", "TinyShakespeare", "batchify",
           "mnist_sample", "read_idx", "read_text"]
