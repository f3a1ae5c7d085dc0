"""MNIST and Fashion-MNIST from their idx files (gzip or raw).

Files, big-endian: images ``*-images-idx3-ubyte``: uint32 magic 2051, count, rows, cols,
then count*rows*cols uint8 pixels; labels ``*-labels-idx1-ubyte``: uint32 magic 2049,
count, then count uint8 labels. Looked up in ``<root>/mnist/`` (``<root>/fashion-mnist/``)
and in ``<root>`` itself; root defaults to ``$DLCORE_DATA``.

Sample i is ``(image, label)``: image a float32 Tensor (1, 28, 28), pixels scaled to [0, 1]
and normalised with the dataset's mean and std (unless ``normalize=False``), label an int.
``.data`` (N, 28, 28) uint8 and ``.targets`` (N,) int64 are the decoded NumPy arrays.
"""
import gzip
import hashlib
import os
import shutil
import struct
import tempfile
import urllib.request
import zlib

import numpy as np

from dlcore.data.dataset import Dataset
from dlcore.datasets._root import data_root
from dlcore.tensor import Tensor

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
SAMPLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample")


def _open(path):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _read_exact(f, n, path, what):
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = f.readinto(view[got:])
        if not k:
            raise ValueError(f"{path}: file too short: {what} needs {n} bytes, only {got} present")
        got += k
    return buf


def read_idx(path, magic):
    """The array stored in idx file `path` (uint8, (N, rows, cols) or (N,)), after checking
    the magic number and that the payload size matches the header exactly."""
    ndim = {IMAGES_MAGIC: 3, LABELS_MAGIC: 1}[magic]
    try:
        with _open(path) as f:
            head = _read_exact(f, 4 * (1 + ndim), path, "the idx header")
            fields = struct.unpack(f">{1 + ndim}I", head)
            if fields[0] != magic:
                raise ValueError(f"{path}: bad idx magic number {fields[0]:#010x}, expected {magic:#010x}")
            shape = fields[1:]
            n = int(np.prod(shape, dtype=np.int64))
            payload = _read_exact(f, n, path, f"the {'x'.join(map(str, shape))} payload")
            if f.read(1):
                raise ValueError(f"{path}: file longer than its header says ({'x'.join(map(str, shape))} values)")
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path}: cannot read idx file: {e}") from None
    return np.frombuffer(payload, dtype=np.uint8).reshape(shape)


class MNIST(Dataset):
    """``MNIST(root=None, train=True, download=False, transform=None, target_transform=None,
    normalize=True)``. ``transform`` (if given) is applied to each image Tensor after the
    scaling/normalisation, ``target_transform`` to each int label."""

    folder = "mnist"
    mean, std = 0.1307, 0.3081
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]
    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"]
    sha256 = {  # of the .gz files (see shared/data/README.md)
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    }

    def __init__(self, root=None, train=True, download=False, transform=None, target_transform=None,
                 normalize=True):
        self.root = data_root(root)
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        self.normalize = normalize
        split = "train" if self.train else "t10k"
        names = (f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte")
        if download and not all(self._find(n, raise_missing=False) for n in names):
            self.download()
        images = read_idx(self._find(names[0]), IMAGES_MAGIC)
        labels = read_idx(self._find(names[1]), LABELS_MAGIC)
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{type(self).__name__}: {images.shape[0]} images but {labels.shape[0]} labels "
                             f"in {self.root}")
        if labels.size and labels.max() >= len(self.classes):
            raise ValueError(f"{type(self).__name__}: label {labels.max()} out of range 0..{len(self.classes) - 1}")
        self.data = images  # (N, rows, cols) uint8
        self.targets = labels.astype(np.int64)  # (N,)
        scale = np.arange(256, dtype=np.float64) / 255.0
        if normalize:
            scale = (scale - self.mean) / self.std
        self._lut = scale.astype(np.float32)  # uint8 pixel -> float32 value

    @classmethod
    def sample(cls, train=True, transform=None, target_transform=None, normalize=True):
        """The small MNIST sample shipped in the package (the first 5000 train / 1000 test
        images of MNIST); always available, for tests and quick demos."""
        if cls.folder != "mnist":
            raise ValueError(f"{cls.__name__}.sample: only an MNIST sample is shipped")
        return cls(SAMPLE_DIR, train=train, transform=transform, target_transform=target_transform,
                   normalize=normalize)

    def _dirs(self):
        return [os.path.join(self.root, self.folder), self.root]

    def _find(self, name, raise_missing=True):
        looked = []
        for d in self._dirs():
            for candidate in (name + ".gz", name):
                path = os.path.join(d, candidate)
                looked.append(path)
                if os.path.isfile(path):
                    return path
        if not raise_missing:
            return None
        raise FileNotFoundError(
            f"{type(self).__name__}: cannot find {name}[.gz]; looked in: " + ", ".join(looked)
            + ". Pass root=<data dir>, set DLCORE_DATA, or use download=True."
        )

    def download(self):
        """Fetches the four .gz files into <root>/<folder>/ (atomically, sha256-checked)."""
        target = os.path.join(self.root, self.folder)
        os.makedirs(target, exist_ok=True)
        for name, digest in self.sha256.items():
            path = os.path.join(target, name)
            if os.path.isfile(path):
                continue
            errors = []
            for mirror in self.mirrors:
                try:
                    _download(mirror + name, path, digest)
                    break
                except (OSError, ValueError) as e:
                    errors.append(f"{mirror}{name}: {e}")
            else:
                raise RuntimeError(f"{type(self).__name__}: download of {name} failed: " + "; ".join(errors))

    def __len__(self):
        return self.data.shape[0]

    def _image(self, pixels):
        return Tensor(self._lut[pixels][None])  # (1, rows, cols)

    def __getitem__(self, index):
        img = self._image(self.data[index])
        label = int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return img, label

    def get_batch(self, indices):
        """(images (B, 1, rows, cols) float32, labels (B,) int64) in one gather each."""
        if self.transform is not None or self.target_transform is not None:
            from dlcore.data.dataloader import default_collate

            return default_collate([self[int(i)] for i in indices])
        x = self._lut[self.data[indices]][:, None]
        return Tensor(x), Tensor(self.targets[indices])

    def __repr__(self):
        return (f"{type(self).__name__}(split={'train' if self.train else 'test'}, n={len(self)}, "
                f"root={self.root!r})")


class FashionMNIST(MNIST):
    folder = "fashion-mnist"
    mean, std = 0.2860, 0.3530
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    sha256 = {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    }


def mnist_sample(train=True, **kwargs):
    """The embedded MNIST sample: MNIST.sample(train)."""
    return MNIST.sample(train, **kwargs)


def _download(url, path, sha256, timeout=60):
    """url -> path via a temp file in the same folder, renamed only after the hash checks."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix="." + os.path.basename(path), suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
            shutil.copyfileobj(resp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        h = hashlib.sha256()
        with open(tmp, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != sha256:
            raise ValueError(f"sha256 mismatch: got {h.hexdigest()}, expected {sha256}")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
