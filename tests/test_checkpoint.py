"""dlcore.checkpoint: bit-exact round trips in the safetensors format, nested model +
optimizer checkpoints, and atomic writes (a save that fails midway leaves the old file)."""
import os

import numpy as np
import pytest

import dlcore
from dlcore import checkpoint, nn, optim

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def _arrays(rng):
    return {
        "w32": rng.standard_normal((3, 5)).astype(np.float32),
        "w64": rng.standard_normal((7,)),
        "idx": rng.integers(-(2**62), 2**62, size=(2, 2, 3)),
        "mask": rng.random(6) < 0.5,
        "scalar": np.array(rng.standard_normal(), dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }


def test_round_trip_bit_exact(tmp_path, rng):
    arrays = _arrays(rng)
    arrays["w32"][0, :3] = [np.nan, np.inf, -0.0]
    path = tmp_path / "ck.safetensors"
    checkpoint.save({k: dlcore.from_numpy(v) for k, v in arrays.items()}, path)
    out = checkpoint.load(path)
    assert list(out) == list(arrays)
    for k, v in arrays.items():
        t = out[k]
        assert isinstance(t, dlcore.Tensor), k
        assert t.dtype == v.dtype and t.shape == v.shape, k
        assert t.numpy().tobytes() == v.tobytes(), k  # bit-exact, NaN and -0.0 included
    assert out["w32"].numpy().flags.writeable


def test_readable_by_safetensors(tmp_path, rng):
    arrays = _arrays(rng)
    path = str(tmp_path / "ck.safetensors")
    checkpoint.save({k: dlcore.from_numpy(v) for k, v in arrays.items()}, path, metadata={"note": "hi"})
    plain = safetensors_numpy.load_file(path)
    assert set(plain) == set(arrays)
    for k, v in arrays.items():
        np.testing.assert_array_equal(plain[k], v)
    assert checkpoint.load_metadata(path)["note"] == "hi"
    # and a file written by safetensors itself loads as a flat dict of Tensors
    other = str(tmp_path / "plain.safetensors")
    safetensors_numpy.save_file({"a": arrays["w64"]}, other)
    loaded = checkpoint.load(other)
    assert list(loaded) == ["a"] and loaded["a"].numpy().tobytes() == arrays["w64"].tobytes()


def test_non_contiguous_and_numpy_inputs(tmp_path, rng):
    base = rng.standard_normal((4, 6))
    path = tmp_path / "ck.safetensors"
    checkpoint.save({"t": dlcore.from_numpy(base).T, "a": base[:, ::2]}, path)
    out = checkpoint.load(path)
    np.testing.assert_array_equal(out["t"].numpy(), base.T)
    np.testing.assert_array_equal(out["a"].numpy(), base[:, ::2])


def _train(model, opt, x, y, steps):
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def _model():
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def test_model_and_optimizer_resume(tmp_path):
    """Saving model + optimizer + epoch mid-training and resuming gives the same parameters
    as training straight through."""
    dlcore.manual_seed(0)
    x, y = dlcore.randn(32, 4), dlcore.randint(0, 3, (32,))
    dlcore.manual_seed(1)
    a = _model()
    dlcore.manual_seed(1)
    b = _model()
    opt_a = optim.Adam(a.parameters(), lr=0.01, amsgrad=True)
    opt_b = optim.Adam(b.parameters(), lr=0.01, amsgrad=True)
    _train(a, opt_a, x, y, 6)
    _train(b, opt_b, x, y, 3)
    path = tmp_path / "resume.safetensors"
    checkpoint.save({"model": b.state_dict(), "optim": opt_b.state_dict(), "epoch": 3}, path)
    # the file holds the tensors under dotted keys
    keys = set(safetensors_numpy.load_file(str(path)))
    assert "model.0.weight" in keys and "optim.state.0.exp_avg" in keys
    dlcore.manual_seed(99)
    c = _model()
    opt_c = optim.Adam(c.parameters(), lr=0.5)
    ck = checkpoint.load(path)
    assert ck["epoch"] == 3
    assert ck["optim"]["param_groups"][0]["betas"] == (0.9, 0.999)
    c.load_state_dict(ck["model"])
    opt_c.load_state_dict(ck["optim"])
    assert opt_c.state[c[0].weight]["step"] == 3
    _train(c, opt_c, x, y, 3)
    for (name, pa), pc in zip(a.named_parameters(), c.parameters()):
        np.testing.assert_array_equal(pa._data, pc._data, err_msg=name)


def test_crash_mid_save_keeps_previous_file(tmp_path, monkeypatch, rng):
    path = tmp_path / "ck.safetensors"
    checkpoint.save({"w": dlcore.from_numpy(rng.standard_normal((64, 64)))}, path)
    before = path.read_bytes()

    def write_half_then_crash(f, data):
        f.write(bytes(data[: len(data) // 2]))
        f.flush()
        raise OSError("simulated crash: disk full")

    monkeypatch.setattr(checkpoint, "_write_chunks", write_half_then_crash)
    with pytest.raises(OSError, match="simulated crash"):
        checkpoint.save({"w": dlcore.from_numpy(rng.standard_normal((64, 64)))}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ck.safetensors"]  # no temp file left behind
    with pytest.raises(OSError):
        checkpoint.save({"w": dlcore.zeros(3)}, tmp_path / "new.safetensors")
    assert os.listdir(tmp_path) == ["ck.safetensors"]


def test_crash_in_fsync_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ck.safetensors"
    checkpoint.save({"w": dlcore.ones(3)}, path)
    before = path.read_bytes()

    def failing_fsync(fd):
        raise OSError("simulated fsync failure")

    monkeypatch.setattr(checkpoint.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="fsync"):
        checkpoint.save({"w": dlcore.zeros(3)}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ck.safetensors"]


def test_save_errors(tmp_path):
    with pytest.raises(TypeError):
        checkpoint.save(dlcore.ones(2), tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="object"):
        checkpoint.save({"a": object()}, tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="same key"):
        checkpoint.save({"a.b": dlcore.ones(1), "a": {"b": dlcore.ones(1)}}, tmp_path / "x.safetensors")
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json")
    with pytest.raises(ValueError, match="not a valid safetensors"):
        checkpoint.load(bad)
    assert not (tmp_path / "x.safetensors").exists()


def test_top_level_save_load_exported():
    if not hasattr(dlcore, "save"):
        pytest.skip("dlcore/__init__.py does not export save/load yet (from dlcore.checkpoint import load, save)")
    assert dlcore.save is checkpoint.save and dlcore.load is checkpoint.load


def test_saved_file_mode_follows_umask(tmp_path):
    """Like a plain open(): 0666 minus the umask, not mkstemp's private 0600."""
    previous = os.umask(0o022)
    try:
        dlcore.save({"w": dlcore.ones(3)}, tmp_path / "a.safetensors")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.safetensors").stat().st_mode & 0o777 == 0o644
