"""dlcore.set_matmul_precision / get_matmul_precision (python/dlcore/precision.py): the API, its
validation, which GEMMs it routes to the tensor cores (use_tensor_cores), and that the CPU
ignores it (float32 always FP32, float64 always FP64: bitwise the same results under every
setting). Runs everywhere; the GPU side is tests/cuda/test_cuda_gemm_tc.py.
"""
import subprocess
import sys

import numpy as np
import pytest

import dlcore
import dlcore.nn.functional as F
from dlcore import precision
from dlcore.cuda.kernels.gemm_tc import gemm_tc, use_tensor_cores

PRECISIONS = ["highest", "high", "medium"]


@pytest.fixture(autouse=True)
def restore_precision():
    before = precision.get_matmul_precision()
    yield
    precision.set_matmul_precision(before)


def test_exported_from_dlcore():
    assert dlcore.set_matmul_precision is precision.set_matmul_precision
    assert dlcore.get_matmul_precision is precision.get_matmul_precision


def test_default_is_highest_in_a_fresh_process():
    out = subprocess.run([sys.executable, "-c", "import dlcore.precision as p; print(p.get_matmul_precision())"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "highest"


@pytest.mark.parametrize("value,mode", [("highest", None), ("high", "tf32"), ("medium", "bf16")])
def test_set_get_and_the_math_mode(value, mode):
    precision.set_matmul_precision(value)
    assert precision.get_matmul_precision() == value
    assert precision.math_mode() == mode


@pytest.mark.parametrize("bad", ["low", "HIGH", "High", "", "tf32", "fp32", " high"])
def test_unknown_values_raise_value_error(bad):
    precision.set_matmul_precision("high")
    with pytest.raises(ValueError, match=r"set_matmul_precision: precision must be one of 'highest', 'high', "
                                         r"'medium', got " + repr(bad).replace("(", r"\(")):
        precision.set_matmul_precision(bad)
    assert precision.get_matmul_precision() == "high", "a rejected value must leave the setting alone"


@pytest.mark.parametrize("bad", [None, 1, 0.5, b"high", ["high"]])
def test_non_strings_raise_type_error(bad):
    with pytest.raises(TypeError, match=f"set_matmul_precision: precision must be a str.*got {type(bad).__name__}"):
        precision.set_matmul_precision(bad)
    assert precision.get_matmul_precision() == "highest"


def test_use_tensor_cores_only_for_float32_under_high_or_medium():
    for value in PRECISIONS:
        precision.set_matmul_precision(value)
        assert use_tensor_cores(np.float32) is (value != "highest")
        assert use_tensor_cores(np.dtype(np.float32)) is (value != "highest")
        assert use_tensor_cores(np.float64) is False
        assert use_tensor_cores(np.int64) is False


def test_gemm_tc_mode_is_checked_before_anything_runs():
    with pytest.raises(ValueError, match="gemm_tc: the matmul precision is 'highest'"):
        gemm_tc(None, None)
    with pytest.raises(ValueError, match=r"gemm_tc: mode must be 'tf32', 'bf16' or None .*got 'fp16'"):
        gemm_tc(None, None, mode="fp16")


def _cpu_results(rng_seed):
    """Every CPU GEMM path a user reaches: matmul 2-D, batched with broadcasting, a transposed
    view; linear with bias, forward and both gradients; for float32 and float64."""
    rng = np.random.default_rng(rng_seed)
    out = []
    for dtype in (np.float32, np.float64):
        a = rng.uniform(-1, 1, (37, 29)).astype(dtype)
        b = rng.uniform(-1, 1, (29, 41)).astype(dtype)
        out.append(dlcore.matmul(dlcore.tensor(a), dlcore.tensor(b)).numpy())
        x3 = rng.uniform(-1, 1, (3, 5, 29)).astype(dtype)
        out.append(dlcore.matmul(dlcore.tensor(x3), dlcore.tensor(b)).numpy())
        out.append(dlcore.matmul(dlcore.tensor(b).transpose(0, 1), dlcore.tensor(a).transpose(0, 1)).numpy())
        x = dlcore.tensor(rng.uniform(-1, 1, (17, 29)).astype(dtype), requires_grad=True)
        w = dlcore.tensor(rng.uniform(-1, 1, (13, 29)).astype(dtype), requires_grad=True)
        bias = dlcore.tensor(rng.uniform(-1, 1, 13).astype(dtype), requires_grad=True)
        y = F.linear(x, w, bias)
        (y * y).sum().backward()
        out += [y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), bias.grad.numpy()]
    return out


def test_cpu_results_are_bitwise_the_same_under_every_precision():
    precision.set_matmul_precision("highest")
    want = _cpu_results(7)
    assert {r.dtype for r in want} == {np.dtype(np.float32), np.dtype(np.float64)}
    for value in ("high", "medium"):
        precision.set_matmul_precision(value)
        got = _cpu_results(7)
        for i, (g, w) in enumerate(zip(got, want)):
            assert g.dtype == w.dtype and g.tobytes() == w.tobytes(), f"CPU result {i} changed under {value!r}"
