"""dlcore.datasets.text: CharCorpus on small texts (plain and gzip), the BPTT and random-window
batchers checked element by element against the token stream, and Tiny Shakespeare's known
facts when the data folder is present."""
import gzip
import os

import numpy as np
import pytest

import dlcore
from dlcore.datasets.text import BPTTBatches, CharCorpus, RandomWindows, TinyShakespeare, batchify

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT = "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer\n"


def _data_root():
    """$DLCORE_DATA, else a shared/data folder next to or above the checkout (None if absent)."""
    candidates = [os.environ.get("DLCORE_DATA"), os.path.join(HERE, "..", "shared", "data"),
                  os.path.join(HERE, "..", "..", "shared", "data")]
    for c in candidates:
        if c and os.path.isfile(os.path.join(c, "tinyshakespeare", "input.txt.gz")):
            return os.path.abspath(c)
    return None


DATA_ROOT = _data_root()
needs_data = pytest.mark.skipif(DATA_ROOT is None, reason="tinyshakespeare/input.txt.gz not found: set "
                                "DLCORE_DATA to the folder holding it (e.g. shared/data)")


# ---- CharCorpus ----------------------------------------------------------------------------
@pytest.mark.parametrize("compressed", [False, True])
def test_char_corpus_from_file(tmp_path, compressed):
    path = tmp_path / ("t.txt.gz" if compressed else "t.txt")
    data = TEXT.encode("utf-8")
    path.write_bytes(gzip.compress(data) if compressed else data)
    c = CharCorpus(path, train_fraction=0.75)
    assert c.text == TEXT and len(c) == len(TEXT)
    assert c.itos == sorted(set(TEXT)) and c.vocab_size == len(set(TEXT))
    assert all(c.itos[c.stoi[ch]] == ch for ch in c.itos)
    assert c.data.dtype == np.int64
    np.testing.assert_array_equal(c.data, [sorted(set(TEXT)).index(ch) for ch in TEXT])
    n_train = int(0.75 * len(TEXT))
    np.testing.assert_array_equal(c.train, c.data[:n_train])
    np.testing.assert_array_equal(c.val, c.data[n_train:])
    assert c.decode(c.data) == TEXT
    assert c.decode(dlcore.tensor(c.encode("the mind"))) == "the mind"


def test_char_corpus_unicode_and_errors():
    c = CharCorpus(text="héllo wörld ☃")
    assert c.decode(c.encode("wörld ☃")) == "wörld ☃"
    with pytest.raises(KeyError, match="character 'z'"):
        c.encode("hlz")
    with pytest.raises(ValueError, match=f"id {c.vocab_size} out of range"):
        c.decode([0, c.vocab_size])
    with pytest.raises(ValueError, match="exactly one of path and text"):
        CharCorpus()
    with pytest.raises(ValueError, match="train_fraction"):
        CharCorpus(text="abc", train_fraction=1.5)
    with pytest.raises(ValueError, match="empty"):
        CharCorpus(text="")


def test_tiny_shakespeare_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"tinyshakespeare.input\.txt\.gz.*DLCORE_DATA"):
        TinyShakespeare(tmp_path)


@needs_data
def test_tiny_shakespeare_facts():
    c = TinyShakespeare(DATA_ROOT)
    assert len(c) == 1_115_394 and c.vocab_size == 65
    assert "".join(c.itos) == "\n !$&',-.3:;?" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmnopqrstuvwxyz"
    assert c.text.startswith("First Citizen:") and c.text.count("\n") == 40_000
    assert c.train.size == 1_003_854 and c.val.size == 1_115_394 - 1_003_854
    assert c.decode(c.val[:20]) == c.text[1_003_854:1_003_874]


# ---- batchers ------------------------------------------------------------------------------
def test_batchify():
    ids = np.arange(23)
    cols = batchify(ids, 4)  # 5 rows, the last 3 ids dropped
    assert cols.shape == (5, 4) and cols.dtype == np.int64
    np.testing.assert_array_equal(cols[:, 2], [10, 11, 12, 13, 14])
    with pytest.raises(ValueError, match="fewer than batch_size"):
        batchify(np.arange(3), 4)
    with pytest.raises(ValueError, match="1-D integer"):
        batchify(np.zeros(8), 2)


@pytest.mark.parametrize("drop_last", [False, True])
def test_bptt_batches(drop_last):
    ids = np.random.default_rng(0).integers(0, 50, size=103)
    batches = BPTTBatches(ids, batch_size=4, seq_len=7, drop_last=drop_last)  # 25 rows -> 24 input steps
    got = list(batches)
    assert len(got) == len(batches) == (3 if drop_last else 4)
    assert [x.shape for x, _ in got] == [(7, 4)] * 3 + ([] if drop_last else [(3, 4)])
    stream = ids[:100].reshape(4, 25)  # column j is ids[25j:25j+25]
    for i, (x, y) in enumerate(got):
        assert x.dtype == np.int64 and y.dtype == np.int64 and x.flags.c_contiguous
        for j in range(4):
            t0 = 7 * i
            np.testing.assert_array_equal(x[:, j], stream[j, t0:t0 + x.shape[0]])
            np.testing.assert_array_equal(y[:, j], stream[j, t0 + 1:t0 + 1 + x.shape[0]])
    # hidden state can be carried: window i+1 of column j starts where window i ended
    np.testing.assert_array_equal(got[1][0][0], got[0][1][-1])
    assert len(list(batches)) == len(got)  # re-iterable


def test_random_windows():
    ids = np.arange(1000, 1200)  # id == position + 1000, so every offset is readable
    w = RandomWindows(ids, batch_size=5, seq_len=9, num_batches=6, seed=3)
    got = list(w)
    assert len(got) == len(w) == 6
    starts = []
    for x, y in got:
        assert x.shape == y.shape == (9, 5) and x.dtype == np.int64
        np.testing.assert_array_equal(np.diff(x, axis=0), 1)  # contiguous windows
        np.testing.assert_array_equal(y, x + 1)
        assert x.min() >= 1000 and y.max() <= 1199
        starts += (x[0] - 1000).tolist()
    assert len(set(starts)) > 20  # offsets differ
    again = [x for x, _ in RandomWindows(ids, 5, 9, 6, seed=3)]
    np.testing.assert_array_equal(np.stack(again), np.stack([x for x, _ in got]))
    dlcore.manual_seed(7)
    a = next(iter(RandomWindows(ids, 5, 9, 1)))[0]
    dlcore.manual_seed(7)
    np.testing.assert_array_equal(next(iter(RandomWindows(ids, 5, 9, 1)))[0], a)
    with pytest.raises(ValueError, match="too few"):
        RandomWindows(np.arange(5), 2, 5, 1)
    with pytest.raises(ValueError, match="seq_len must be a positive int"):
        RandomWindows(ids, 2, 0, 1)


@needs_data
def test_bptt_on_shakespeare():
    c = TinyShakespeare(DATA_ROOT)
    x, y = next(iter(BPTTBatches(c.train, batch_size=16, seq_len=64)))
    assert x.shape == (64, 16)
    assert c.decode(x[:, 0]) == c.text[:64] and c.decode(y[:, 0]) == c.text[1:65]
