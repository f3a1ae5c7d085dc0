"""dlcore.data (Dataset, TensorDataset, DataLoader) and dlcore.datasets (MNIST,
Fashion-MNIST): batching, seeded shuffles, drop_last, collation, the embedded MNIST sample,
the full sets when present, and the errors for missing or corrupt files."""
import gzip
import os
import shutil
import struct

import numpy as np
import pytest

import dlcore
from dlcore.data import DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split
from dlcore.datasets import MNIST, FashionMNIST, mnist_sample
from dlcore.datasets.mnist import SAMPLE_DIR

HERE = os.path.dirname(os.path.abspath(__file__))


def _data_root():
    """$DLCORE_DATA, else a shared/data folder next to or above the checkout (None if absent)."""
    candidates = [os.environ.get("DLCORE_DATA"), os.path.join(HERE, "..", "shared", "data"),
                  os.path.join(HERE, "..", "..", "shared", "data")]
    for c in candidates:
        if c and os.path.isfile(os.path.join(c, "mnist", "train-images-idx3-ubyte.gz")):
            return os.path.abspath(c)
    return None


DATA_ROOT = _data_root()
needs_full = pytest.mark.skipif(DATA_ROOT is None, reason="full MNIST not found: set DLCORE_DATA to the folder "
                                "holding mnist/ and fashion-mnist/ (e.g. shared/data)")
needs_fashion = pytest.mark.skipif(
    DATA_ROOT is None or not os.path.isfile(os.path.join(DATA_ROOT, "fashion-mnist", "t10k-images-idx3-ubyte.gz")),
    reason="Fashion-MNIST not found: the data folder ($DLCORE_DATA or shared/data) has no fashion-mnist/")


# ---- DataLoader ----------------------------------------------------------------------------
def _dataset(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return TensorDataset(x, dlcore.tensor(y))


def test_tensor_dataset():
    ds = _dataset()
    assert len(ds) == 10
    x, y = ds[4]
    np.testing.assert_array_equal(x.numpy(), [12, 13, 14])
    assert y.item() == 4 and y.dtype == dlcore.int64
    with pytest.raises(ValueError, match="first dim"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))


def test_batching_in_order():
    batches = list(DataLoader(_dataset(), batch_size=4))
    assert [b[1].numpy().tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    x, y = batches[0]
    assert x.shape == (4, 3) and x.dtype == dlcore.float32 and y.dtype == dlcore.int64
    assert len(DataLoader(_dataset(), batch_size=4)) == 3


def test_drop_last():
    loader = DataLoader(_dataset(), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [b[1].numpy().tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(_dataset(8), batch_size=4, drop_last=True)) == 2
    assert len(DataLoader(_dataset(3), batch_size=4, drop_last=True)) == 0


def _epoch(loader):
    return np.concatenate([b[1].numpy() for b in loader])


def test_shuffle_reproducible_with_seed():
    a = DataLoader(_dataset(50), batch_size=8, shuffle=True, seed=123)
    b = DataLoader(_dataset(50), batch_size=8, shuffle=True, seed=123)
    a1, a2 = _epoch(a), _epoch(a)
    np.testing.assert_array_equal(a1, _epoch(b))
    np.testing.assert_array_equal(a2, _epoch(b))  # the epoch sequence repeats too
    assert sorted(a1.tolist()) == list(range(50))  # a permutation: every sample once
    assert not np.array_equal(a1, a2)  # a new order each epoch
    assert not np.array_equal(a1, np.arange(50))
    assert not np.array_equal(a1, _epoch(DataLoader(_dataset(50), batch_size=8, shuffle=True, seed=124)))


def test_shuffle_generator_and_manual_seed():
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(_epoch(DataLoader(_dataset(30), 7, shuffle=True, generator=g1)),
                                  _epoch(DataLoader(_dataset(30), 7, shuffle=True, generator=g2)))
    dlcore.manual_seed(9)
    e1 = _epoch(DataLoader(_dataset(30), 7, shuffle=True))
    dlcore.manual_seed(9)
    np.testing.assert_array_equal(e1, _epoch(DataLoader(_dataset(30), 7, shuffle=True)))
    with pytest.raises(ValueError):
        DataLoader(_dataset(), batch_size=0)
    with pytest.raises(ValueError):
        DataLoader(_dataset(), generator=g1, seed=1)


class PairDataset(Dataset):
    """Per-item dataset without a bulk path: (image array, int label, float weight)."""

    def __len__(self):
        return 7

    def __getitem__(self, i):
        return np.full((2, 2), i, dtype=np.float32), i, 0.5 * i


def test_default_collate_per_item():
    x, y, w = next(iter(DataLoader(PairDataset(), batch_size=3)))
    assert x.shape == (3, 2, 2) and x.dtype == dlcore.float32
    assert y.dtype == dlcore.int64 and y.numpy().tolist() == [0, 1, 2]
    assert w.dtype == dlcore.float32 and w.numpy().tolist() == [0.0, 0.5, 1.0]
    out = default_collate([{"a": 1, "b": dlcore.ones(2)}, {"a": 2, "b": dlcore.zeros(2)}])
    assert out["a"].numpy().tolist() == [1, 2] and out["b"].shape == (2, 2)
    custom = DataLoader(PairDataset(), batch_size=4, collate_fn=lambda s: len(s))
    assert list(custom) == [4, 3]


def test_getitems_protocol():
    class Many(PairDataset):
        calls = 0

        def __getitems__(self, indices):
            Many.calls += 1
            return [self[i] for i in indices]

    batches = list(DataLoader(Many(), batch_size=4))
    assert Many.calls == 2 and batches[1][1].numpy().tolist() == [4, 5, 6]


def test_subset_and_random_split():
    ds = _dataset(20)
    sub = Subset(ds, [3, 1, 4])
    assert len(sub) == 3 and sub[1][1].item() == 1
    assert next(iter(DataLoader(sub, batch_size=3)))[1].numpy().tolist() == [3, 1, 4]
    a, b = random_split(ds, [15, 5], generator=0)
    assert len(a) == 15 and len(b) == 5
    assert sorted(np.concatenate([a.indices, b.indices]).tolist()) == list(range(20))


# ---- MNIST: the embedded sample ------------------------------------------------------------------
SAMPLE_TRAIN_HIST = [479, 563, 488, 493, 535, 434, 501, 550, 462, 495]
SAMPLE_TEST_HIST = [85, 126, 116, 107, 110, 87, 87, 99, 89, 94]


def test_sample_is_small_and_packaged():
    files = sorted(os.listdir(SAMPLE_DIR))
    assert files == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
                     "train-labels-idx1-ubyte.gz"]
    assert sum(os.path.getsize(os.path.join(SAMPLE_DIR, f)) for f in files) < 1_500_000


@pytest.mark.parametrize("train,n,first,hist", [(True, 5000, [5, 0], SAMPLE_TRAIN_HIST),
                                                (False, 1000, [7, 2], SAMPLE_TEST_HIST)])
def test_mnist_sample(train, n, first, hist):
    ds = MNIST.sample(train=train)
    assert len(ds) == n
    assert ds.data.shape == (n, 28, 28) and ds.data.dtype == np.uint8
    assert ds.targets.shape == (n,) and ds.targets.dtype == np.int64
    assert ds.targets[:2].tolist() == first
    assert np.bincount(ds.targets, minlength=10).tolist() == hist
    img, label = ds[0]
    assert isinstance(img, dlcore.Tensor) and img.shape == (1, 28, 28) and img.dtype == dlcore.float32
    assert label == first[0] and isinstance(label, int)
    raw = ds.data[0].astype(np.float64) / 255.0
    np.testing.assert_allclose(img.numpy()[0], (raw - 0.1307) / 0.3081, rtol=1e-6, atol=1e-6)
    assert len(mnist_sample(train)) == n


def test_mnist_sample_unnormalized_and_bulk_batches():
    ds = MNIST.sample(train=False, normalize=False)
    x0 = ds[0][0].numpy()
    assert x0.min() == 0.0 and x0.max() == 1.0
    idx = np.array([5, 0, 999, 3])
    xb, yb = ds.get_batch(idx)
    assert xb.shape == (4, 1, 28, 28) and yb.dtype == dlcore.int64
    for k, i in enumerate(idx):
        np.testing.assert_array_equal(xb.numpy()[k], ds[int(i)][0].numpy())
        assert yb.numpy()[k] == ds[int(i)][1]
    loader = DataLoader(ds, batch_size=256, shuffle=True, seed=0)
    seen = np.concatenate([y.numpy() for _, y in loader])
    assert np.bincount(seen, minlength=10).tolist() == SAMPLE_TEST_HIST


def test_mnist_transforms_use_per_item_path():
    ds = MNIST.sample(train=False, transform=lambda t: t * 0, target_transform=lambda y: y + 10)
    x, y = next(iter(DataLoader(ds, batch_size=3)))
    assert not x.numpy().any() and y.numpy().tolist() == [17, 12, 11]


# ---- MNIST: the full sets ----------------------------------------------------------------------
@needs_full
def test_full_mnist():
    train = MNIST(root=DATA_ROOT, train=True)
    test = MNIST(root=DATA_ROOT, train=False)
    assert len(train) == 60000 and len(test) == 10000
    assert train.targets[:2].tolist() == [5, 0] and test.targets[:2].tolist() == [7, 2]
    assert np.bincount(train.targets).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(test.targets).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    sample = MNIST.sample(train=False)
    np.testing.assert_array_equal(test.data[:1000], sample.data)  # the sample is a prefix
    # root may also point straight at the mnist folder, and DLCORE_DATA is the default root
    assert len(MNIST(root=os.path.join(DATA_ROOT, "mnist"), train=False)) == 10000


@needs_full
def test_default_root_from_env(monkeypatch):
    monkeypatch.setenv("DLCORE_DATA", DATA_ROOT)
    assert len(MNIST(train=False)) == 10000


@needs_fashion
def test_full_fashion_mnist():
    test = FashionMNIST(root=DATA_ROOT, train=False)
    assert len(test) == 10000 and test.targets[:2].tolist() == [9, 2]
    assert np.bincount(test.targets).tolist() == [1000] * 10


# ---- MNIST: errors ------------------------------------------------------------------------------
def test_missing_dir_error_names_file_and_places(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as info:
        MNIST(root=str(missing), train=True)
    msg = str(info.value)
    assert "train-images-idx3-ubyte" in msg
    for place in (os.path.join(str(missing), "mnist"), str(missing)):
        assert os.path.join(place, "train-images-idx3-ubyte.gz") in msg
        assert os.path.join(place, "train-images-idx3-ubyte") in msg
    assert "DLCORE_DATA" in msg


def _copy_sample(tmp_path, gz=True):
    """The test split of the sample under tmp_path/mnist, gzip'd or raw."""
    d = tmp_path / "mnist"
    d.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        src = os.path.join(SAMPLE_DIR, name + ".gz")
        if gz:
            shutil.copy(src, d / (name + ".gz"))
        else:
            with gzip.open(src, "rb") as f:
                (d / name).write_bytes(f.read())
    return d


def test_raw_idx_files(tmp_path):
    _copy_sample(tmp_path, gz=False)
    ds = MNIST(root=str(tmp_path), train=False)
    np.testing.assert_array_equal(ds.data, MNIST.sample(train=False).data)


def _rewrite(path, edit):
    raw = bytearray(path.read_bytes())
    path.write_bytes(bytes(edit(raw)))


def test_corrupted_header_magic(tmp_path):
    d = _copy_sample(tmp_path, gz=False)

    def bad_magic(raw):
        raw[:4] = struct.pack(">I", 2049)
        return raw

    _rewrite(d / "t10k-images-idx3-ubyte", bad_magic)
    with pytest.raises(ValueError, match="magic"):
        MNIST(root=str(tmp_path), train=False)


@pytest.mark.parametrize("gz", [False, True])
def test_corrupted_count_and_size(tmp_path, gz):
    d = _copy_sample(tmp_path, gz=False)
    images = d / "t10k-images-idx3-ubyte"

    def bigger_count(raw):
        raw[4:8] = struct.pack(">I", 1001)
        return raw

    _rewrite(images, bigger_count)
    if gz:
        (d / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(images.read_bytes()))
        images.unlink()
    with pytest.raises(ValueError, match="too short"):
        MNIST(root=str(tmp_path), train=False)


def test_trailing_bytes_and_label_mismatch(tmp_path):
    d = _copy_sample(tmp_path, gz=False)
    labels = d / "t10k-labels-idx1-ubyte"
    _rewrite(labels, lambda raw: raw + b"\x00")
    with pytest.raises(ValueError, match="longer than its header"):
        MNIST(root=str(tmp_path), train=False)

    def fewer(raw):
        raw[4:8] = struct.pack(">I", 999)
        return raw[:8 + 999]

    _rewrite(labels, fewer)
    with pytest.raises(ValueError, match="1000 images but 999 labels"):
        MNIST(root=str(tmp_path), train=False)


def test_truncated_gzip(tmp_path):
    d = _copy_sample(tmp_path, gz=True)
    path = d / "t10k-images-idx3-ubyte.gz"
    _rewrite(path, lambda raw: raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="t10k-images"):
        MNIST(root=str(tmp_path), train=False)


def test_mlp_learns_mnist_sample():
    """End to end on the embedded sample: 3 epochs of a 784-64-10 MLP with SGD + momentum
    reach >= 85 % on the 1000 sample test images."""
    from dlcore import nn, optim

    dlcore.manual_seed(0)
    train, test = MNIST.sample(train=True), MNIST.sample(train=False)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loader = DataLoader(train, batch_size=100, shuffle=True, seed=0)
    for _ in range(3):
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
    x, y = test.get_batch(np.arange(len(test)))
    with dlcore.no_grad():
        acc = (model(x).argmax(1).numpy() == y.numpy()).mean()
    assert acc >= 0.85, f"MNIST-sample accuracy {acc:.3f} < 0.85"
