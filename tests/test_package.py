"""Package plumbing: build info, run-time ISA choice and its env override, threads, CUDA status."""
import ast
import os
import subprocess
import sys

import pytest

import dlcore
from dlcore import _C


def run_python(code, **env):
    full_env = dict(os.environ, **env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_info_reports_version_isa_threads_and_cuda():
    text = subprocess.run([sys.executable, "-m", "dlcore.info"], capture_output=True, text=True, timeout=120).stdout
    assert f"dlcore {dlcore.__version__}" in text
    assert f"cpu isa: {_C.cpu_isa()}" in text
    assert "threads:" in text and "cuda built:" in text
    assert "conv2d_forward" in text  # the kernel list


def test_every_kernel_slot_is_listed_and_every_isa_compiled():
    assert _C.compiled_isas() == ["generic", "avx2", "avx512"]
    slots = _C.kernel_slots()
    for op in ("gemm", "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight", "max_pool2d_forward",
               "avg_pool2d_backward", "lstm_cell_forward", "lstm_cell_backward", "cross_entropy_forward"):
        assert op in slots


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_env_var_lowers_the_isa_but_never_raises_it(isa):
    chosen = run_python("import dlcore; print(dlcore.cpu_isa())", DLCORE_CPU_ISA=isa)
    order = ["generic", "avx2", "avx512"]
    best = _C.best_cpu_isa()
    assert chosen == order[min(order.index(isa), order.index(best))]


def test_set_cpu_isa_rejects_unknown_and_unsupported():
    with pytest.raises(ValueError, match="unknown ISA"):
        _C.set_cpu_isa("sse9")
    for isa in ("generic", "avx2", "avx512"):
        if not _C.isa_supported(isa):
            with pytest.raises(ValueError, match="cannot run"):
                _C.set_cpu_isa(isa)


def test_cuda_status_never_raises():
    assert isinstance(dlcore.cuda.is_built(), bool)
    assert dlcore.cuda.device_count() >= 0
    assert dlcore.cuda.is_available() == (dlcore.cuda.is_built() and dlcore.cuda.device_count() > 0)


def test_cuda_fill_kernel_runs_on_a_device():
    if not dlcore.cuda.is_available():
        pytest.skip("no CUDA device here (the fill kernel is only compiled, not run)")
    assert _C.cuda.fill_check(1000, 0.5) == pytest.approx(500.0)
    assert "sm_" in dlcore.cuda.get_device_name(0)


def test_the_C_stub_lists_exactly_the_module_names():
    stub_path = os.path.join(os.path.dirname(dlcore.__file__), "_C.pyi")
    tree = ast.parse(open(stub_path).read())
    stub = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    stub |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)}
    stub -= {"_Cuda"}
    public = {n for n in dir(_C) if not n.startswith("_")} | {"__version__"}
    assert stub == public, f"in the module only: {public - stub}; in the stub only: {stub - public}"


def test_every_kernel_slot_has_a_binding_reached_by_the_kernel_tests():
    kernel_tests = os.path.join(os.path.dirname(__file__), "kernels")
    text = "".join(open(os.path.join(kernel_tests, f)).read() for f in os.listdir(kernel_tests) if f.endswith(".py"))
    for slot in _C.kernel_slots():
        assert hasattr(_C, slot), f"kernel slot {slot} has no _C.{slot} binding"
        assert f"{slot}(" in text, f"no test in tests/kernels calls _C.{slot}"
