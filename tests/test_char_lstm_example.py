"""examples/char_lstm: a tiny run on a small text trains, checkpoints, resumes and samples;
its validation loss matches torch on the same weights when torch is installed."""
import math
import os

import numpy as np
import pytest

import dlcore
from dlcore.datasets.text import BPTTBatches, CharCorpus
from dlcore.examples import char_lstm

TEXT = ("the quick brown fox jumps over the lazy dog.\n"
        "to be, or not to be: that is the question.\n") * 100

TINY = ["--embedding-dim", "8", "--hidden-size", "16", "--num-layers", "2", "--dropout", "0.1",
        "--batch-size", "4", "--seq-len", "16", "--max-steps", "100", "--lr", "2e-2",
        "--sample", "0", "--no-progress", "--seed", "3"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One epoch of the tiny model; returns (text file, checkpoint dir)."""
    root = tmp_path_factory.mktemp("char_lstm")
    path = root / "tiny.txt"
    path.write_text(TEXT)
    out = str(root / "ckpt")
    assert char_lstm.main(["--text", str(path), "--out", out, "--epochs", "1"] + TINY) == 0
    return str(path), out


def test_checkpoint_written_and_reloads(run):
    path, out = run
    ckpt_file = char_lstm.checkpoint_path(out)
    assert os.path.isfile(ckpt_file)
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")], "a temp file of the atomic write was left"
    ckpt = dlcore.load(ckpt_file)
    corpus = CharCorpus(path=path)
    assert ckpt["vocab"] == "".join(corpus.itos)
    assert ckpt["epoch"] == 1 and ckpt["args"]["hidden_size"] == 16
    model, itos, history = char_lstm.load_model(out)
    for name, p in model.state_dict().items():
        np.testing.assert_array_equal(p.numpy(), ckpt["model"][name].numpy(), err_msg=name)
    assert itos == corpus.itos and len(history) == 1


def test_val_loss_learned_something(run):
    path, out = run
    model, itos, history = char_lstm.load_model(out)
    val = history[-1]["val_loss"]
    assert math.isfinite(val) and val < 0.6 * math.log(len(itos)), (val, math.log(len(itos)))
    assert history[-1]["val_bpc"] == pytest.approx(val / math.log(2))
    corpus = CharCorpus(path=path)
    assert char_lstm.evaluate(model, BPTTBatches(corpus.val, 4, 16)) == pytest.approx(val, rel=1e-5)


def test_sample_length_vocab_and_seed(run):
    _, out = run
    model, itos, _ = char_lstm.load_model(out)
    text = char_lstm.sample(model, itos, 57, temperature=0.7, prime="the ", seed=5)
    assert isinstance(text, str) and len(text) == 57 and set(text) <= set(itos)
    assert text == char_lstm.sample(model, itos, 57, temperature=0.7, prime="the ", seed=5)
    cold = char_lstm.sample(model, itos, 40, temperature=1e-4, prime="the quick brown ", seed=1)
    assert cold == char_lstm.sample(model, itos, 40, temperature=1e-4, prime="the quick brown ", seed=2)
    with pytest.raises(ValueError, match="temperature"):
        char_lstm.sample(model, itos, 5, temperature=0.0)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        char_lstm.sample(model, itos, 5, prime="ROMEO:")


def test_generate_from_checkpoint_prints_sample(run, capsys):
    _, out = run
    assert char_lstm.main(["--generate", "--out", out, "--sample", "30", "--prime", "to be"]) == 0
    printed = capsys.readouterr().out
    assert "final val loss" in printed and "to be" in printed


def test_resume_continues(run, tmp_path):
    path, out = run
    resumed = str(tmp_path / "ckpt")
    os.makedirs(resumed)
    with open(char_lstm.checkpoint_path(out), "rb") as src, open(char_lstm.checkpoint_path(resumed), "wb") as dst:
        dst.write(src.read())
    before = dlcore.load(char_lstm.checkpoint_path(resumed))
    assert char_lstm.main(["--text", path, "--out", resumed, "--epochs", "2", "--resume"] + TINY) == 0
    after = dlcore.load(char_lstm.checkpoint_path(resumed))
    assert after["epoch"] == 2 and len(after["history"]) == 2
    assert after["history"][0] == before["history"][0]
    steps = [s["step"] for s in after["optimizer"]["state"].values()]
    assert steps and all(s == 200 for s in steps), steps  # 100 steps per epoch, counted on from epoch 1
    name = "lstm.weight_hh_l0"
    assert not np.array_equal(after["model"][name].numpy(), before["model"][name].numpy())


def test_val_loss_matches_torch(run):
    torch = pytest.importorskip("torch")
    path, out = run
    model, itos, history = char_lstm.load_model(out)
    state = {k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()}
    emb = torch.nn.Embedding(len(itos), 8)
    lstm = torch.nn.LSTM(8, 16, 2)
    head = torch.nn.Linear(16, len(itos))
    emb.load_state_dict({"weight": state["embed.weight"]})
    lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
    head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
    corpus = CharCorpus(path=path)
    total, count, hc = 0.0, 0, None
    with torch.no_grad():
        for x, y in BPTTBatches(corpus.val, 4, 16):
            h, hc = lstm(emb(torch.from_numpy(x)), hc)
            logits = head(h).reshape(-1, len(itos)).double()
            total += torch.nn.functional.cross_entropy(logits, torch.from_numpy(y.reshape(-1)), reduction="sum")
            count += y.size
    assert history[-1]["val_loss"] == pytest.approx(float(total) / count, rel=1e-4)
