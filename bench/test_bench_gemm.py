"""pytest-benchmark suite for float32 GEMM: dlcore `_C.gemm` and the NumPy / PyTorch baselines
over bench_gemm.py's shapes (squares 32..2048, the training shapes and their backward GEMMs).

    DLCORE_DEV_BUILD=/tmp/build PYTHONPATH=python python -m pytest bench/test_bench_gemm.py --benchmark-only \
        [-k "dlcore and lenet"] [--benchmark-group-by=param:shape]

It lives in bench/, not tests/, so CI's `pytest tests` never runs it. Cases skip cleanly when
pytest-benchmark, torch or dlcore's extension is missing. Each case reports GFLOP/s in
`extra_info`.

Threads: every library runs on DLCORE_BENCH_THREADS threads (default 1). All three share this
one process, and with more than one thread their pools (GNU OpenMP, MKL's OpenMP, OpenBLAS)
spin against each other on a 2-core machine and times jump to scheduler ticks (4-16 ms). For
multi-threaded, side-by-side numbers and % of peak use `python bench/bench_gemm.py`, which
gives each library its own process; this suite tracks times across commits
(`--benchmark-save`, `--benchmark-compare`).
"""
import ctypes
import glob
import os
import sys

THREADS = int(os.environ.get("DLCORE_BENCH_THREADS", "1"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))  # effective only if NumPy is not loaded yet

import numpy as np  # noqa: E402
import pytest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_gemm import all_shapes, operands  # noqa: E402

pytest.importorskip("pytest_benchmark")


def _set_openblas_threads(n):
    """NumPy's OpenBLAS may already be loaded (by conftest, by dlcore): set its pool size directly."""
    libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in glob.glob(os.path.join(libdir, "*openblas*.so*")):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads"):
            if hasattr(lib, name):
                getattr(lib, name)(ctypes.c_int(n))
                break


_set_openblas_threads(THREADS)

SHAPES = [pytest.param(row, id=f"{row[0]}-{row[1]}x{row[2]}x{row[3]}-{'T' if row[4] else 'N'}{'T' if row[5] else 'N'}")
          for row in all_shapes()]


def _record(benchmark, m, n, k):
    benchmark.extra_info["gflops_median"] = 2.0 * m * n * k / benchmark.stats.stats.median / 1e9


def _bench(benchmark, fn, m, n, k):
    fn()  # warm-up outside the timed rounds (thread pools, first-touch of C)
    benchmark(fn)
    _record(benchmark, m, n, k)


@pytest.mark.parametrize("shape", SHAPES)
def test_gemm_dlcore(benchmark, shape):
    try:
        import dlcore
        from dlcore import _C
    except ImportError as e:
        pytest.skip(f"dlcore extension not importable: {e}")
    dlcore.set_num_threads(THREADS)
    key, m, n, k, ta, tb = shape
    a, b, c = operands(m, n, k, ta, tb)
    benchmark.group = f"gemm {key} {m}x{n}x{k}"
    _bench(benchmark, lambda: _C.gemm(a, b, c, ta, tb), m, n, k)
    ref = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    np.testing.assert_allclose(c, ref, rtol=1e-3, atol=1e-3 * np.sqrt(k))


@pytest.mark.parametrize("shape", SHAPES)
def test_gemm_numpy(benchmark, shape):
    key, m, n, k, ta, tb = shape
    a, b, c = operands(m, n, k, ta, tb)
    a, b = (a.T if ta else a), (b.T if tb else b)
    benchmark.group = f"gemm {key} {m}x{n}x{k}"
    _bench(benchmark, lambda: np.matmul(a, b, out=c), m, n, k)


@pytest.mark.parametrize("shape", SHAPES)
def test_gemm_torch(benchmark, shape):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(THREADS)
    key, m, n, k, ta, tb = shape
    a, b, c = (torch.from_numpy(x) for x in operands(m, n, k, ta, tb))
    a, b = (a.t() if ta else a), (b.t() if tb else b)
    benchmark.group = f"gemm {key} {m}x{n}x{k}"
    _bench(benchmark, lambda: torch.mm(a, b, out=c), m, n, k)
