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
