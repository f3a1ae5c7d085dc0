"""Datasets read from local files (``$DLCORE_DATA``), plus a small MNIST sample shipped
in the package (``MNIST.sample()``)."""
from dlcore.datasets.mnist import MNIST, FashionMNIST, mnist_sample, read_idx

__all__ = ["MNIST", "FashionMNIST", "mnist_sample", "read_idx"]
