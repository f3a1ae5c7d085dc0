"""Shared fixtures: every kernel test runs once per ISA the host can run."""
import numpy as np
import pytest

import dlcore
from dlcore import _C

ALL_ISAS = ["generic", "avx2", "avx512"]


@pytest.fixture(params=ALL_ISAS)
def isa(request):
    """Makes `request.param` the active ISA for one test; skips ISAs this CPU lacks."""
    name = request.param
    if not _C.isa_supported(name):
        pytest.skip(f"this CPU cannot run the {name} kernels")
    previous = _C.cpu_isa()
    _C.set_cpu_isa(name)
    yield name
    _C.set_cpu_isa(previous)


@pytest.fixture(params=[1, 2], ids=["1thr", "2thr"])
def threads(request):
    """Runs a test with this many OpenMP threads (1 and 2 unless a test parametrizes it
    indirectly, e.g. [1, 4] for more threads than images)."""
    previous = _C.get_num_threads()
    _C.set_num_threads(request.param)
    yield request.param
    _C.set_num_threads(previous)


@pytest.fixture
def rng():
    """A fixed-seed generator: tests are random but reproducible."""
    return np.random.default_rng(1234)


@pytest.fixture
def cuda():
    """The CUDA device for a GPU test; skips (visibly) where there is none."""
    if not dlcore.cuda.is_available():
        pytest.skip("no CUDA device here" if dlcore.cuda.is_built() else "dlcore was built without CUDA")
    return "cuda"
