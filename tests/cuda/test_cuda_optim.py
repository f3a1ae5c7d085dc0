"""Fused CUDA optimizer steps (csrc/cuda/optim.cu via dlcore.cuda.kernels.optim and the CUDA
path of dlcore.optim.SGD / Adam / AdamW): several steps on the GPU against the CPU dlcore
optimizer on the same values (parameters and state bitwise equal), every
variant (momentum, dampening, nesterov, weight decay, maximize, amsgrad), many parameters in
one launch (chunk table across tensors of odd sizes), state_dict round trips, bad input.
CPU and GPU steps agree bitwise (see tolerance()).
Run: PYTHONPATH=python python3 -m pytest tests/cuda/test_cuda_optim.py -q -rs
"""
import numpy as np
import pytest

import dlcore
import dlcore.cuda
from dlcore import nn, optim
from dlcore.cuda.array import CudaArray, from_numpy
from dlcore.tensor import Tensor
from helpers import assert_close

pytestmark = pytest.mark.skipif(not dlcore.cuda.is_available(), reason="no CUDA device")

STEPS = 5
# odd sizes around the 4096-element chunk, a scalar-like (1,), and a conv weight
SHAPES = [(3, 4), (5,), (1,), (4097,), (2, 4096), (6, 1, 5, 5)]


def tolerance(dtype):
    """(atol, rtol): none. Both kernels round each operation once, in the same order (the CPU
    one is compiled with -ffp-contract=off, the CUDA one uses __fmul_rn), so they agree bitwise."""
    return (0.0, 0.0)


def problem(rng, dtype):
    """Initial parameter values and a gradient per step and parameter (random, never zero)."""
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(STEPS)]
    return params, grads


def run(make_opt, params, grads, device):
    """STEPS steps of make_opt(tensors) on `device`; (final params, optimizer, tensors)."""
    put = (lambda a: from_numpy(a, 0)) if device == "cuda" else (lambda a: a.copy())
    tensors = [nn.Parameter(put(p)) for p in params]
    opt = make_opt(tensors)
    for step_grads in grads:
        for t, g in zip(tensors, step_grads):
            t.grad = Tensor(put(g))
        opt.step()
    return [host(t._data) for t in tensors], opt, tensors


def host(a):
    return a.get() if isinstance(a, CudaArray) else np.asarray(a)


def compare(make_opt, rng, dtype, what):
    params, grads = problem(rng, dtype)
    cpu, cpu_opt, cpu_t = run(make_opt, params, grads, "cpu")
    gpu, gpu_opt, gpu_t = run(make_opt, params, grads, "cuda")
    atol, rtol = tolerance(dtype)
    for k, (a, b) in enumerate(zip(gpu, cpu)):
        assert a.dtype == np.dtype(dtype)
        assert_close(a, b, atol=atol, rtol=rtol, what=f"{what} param {k} {SHAPES[k]}")
    for k, (tc, tg) in enumerate(zip(cpu_t, gpu_t)):
        sc, sg = cpu_opt.state.get(tc, {}), gpu_opt.state.get(tg, {})
        assert sorted(sc) == sorted(sg), f"{what}: state keys {sorted(sg)} vs CPU {sorted(sc)}"
        for name, v in sc.items():
            if isinstance(v, np.ndarray):
                assert isinstance(sg[name], CudaArray) and sg[name].device == 0
                assert_close(sg[name].get(), v, atol=atol, rtol=rtol, what=f"{what} state {name} of param {k}")
            else:
                assert sg[name] == v
    return gpu_opt, gpu_t


SGD_VARIANTS = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
    dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1),
    dict(lr=0.1, momentum=0.5, maximize=True),
    dict(lr=0.1, weight_decay=0.2, maximize=True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", SGD_VARIANTS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_sgd_matches_cpu(rng, dtype, kwargs):
    compare(lambda ts: optim.SGD(ts, **kwargs), rng, dtype, f"SGD{kwargs}")


ADAM_VARIANTS = [
    dict(lr=1e-2),
    dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    dict(lr=1e-2, amsgrad=True),
    dict(lr=1e-2, maximize=True, weight_decay=0.05, amsgrad=True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
@pytest.mark.parametrize("kwargs", ADAM_VARIANTS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_adam_matches_cpu(rng, dtype, cls, kwargs):
    compare(lambda ts: cls(ts, **kwargs), rng, dtype, f"{cls.__name__}{kwargs}")


def test_parameters_without_grad_are_skipped_and_steps_counted_per_parameter(rng):
    """A parameter that first gets a gradient at step 3 has t = 1 there (its own bias correction)."""
    params, grads = problem(rng, np.float32)
    for step in range(2):
        grads[step][1] = None

    def run_partial(device):
        put = (lambda a: from_numpy(a, 0)) if device == "cuda" else (lambda a: a.copy())
        ts = [nn.Parameter(put(p)) for p in params]
        opt = optim.Adam(ts, lr=1e-2)
        for step_grads in grads:
            for t, g in zip(ts, step_grads):
                t.grad = None if g is None else Tensor(put(g))
            opt.step()
        return [host(t._data) for t in ts], [opt.state[t]["step"] for t in ts]

    (gpu, gpu_steps), (cpu, cpu_steps) = run_partial("cuda"), run_partial("cpu")
    assert gpu_steps == cpu_steps == [STEPS, STEPS - 2] + [STEPS] * (len(SHAPES) - 2)
    for a, b in zip(gpu, cpu):
        assert_close(a, b, atol=1e-7, rtol=1e-6, what="Adam with a late gradient")


def test_mixed_dtypes_in_one_group(rng):
    """float32 and float64 parameters in one group: one launch per dtype, both right."""
    params = [rng.standard_normal((7, 3)).astype(np.float32), rng.standard_normal(11)]
    grads = [[rng.standard_normal(p.shape).astype(p.dtype) for p in params] for _ in range(3)]
    gpu, _, _ = run(lambda ts: optim.SGD(ts, lr=0.1, momentum=0.9), params, grads, "cuda")
    cpu, _, _ = run(lambda ts: optim.SGD(ts, lr=0.1, momentum=0.9), params, grads, "cpu")
    for a, b in zip(gpu, cpu):
        assert a.dtype == b.dtype
        assert_close(a, b, atol=1e-7, rtol=1e-6, what="SGD mixed dtypes")


def test_state_dict_round_trip_continues_the_same_run(rng):
    """Save after 2 steps, load into a fresh optimizer, take 3 more: same as 5 straight steps."""
    params, grads = problem(rng, np.float32)
    make = lambda ts: optim.Adam(ts, lr=1e-2, amsgrad=True)  # noqa: E731
    straight, _, _ = run(make, params, grads, "cuda")
    first, opt, tensors = run(make, params, grads[:2], "cuda")
    saved = opt.state_dict()
    fresh = make(tensors)
    fresh.load_state_dict(saved)
    for state in fresh.state.values():
        for v in state.values():
            assert not isinstance(v, np.ndarray), "state of a CUDA parameter must stay on the device"
    for step_grads in grads[2:]:
        for t, g in zip(tensors, step_grads):
            t.grad = Tensor(from_numpy(g, 0))
        fresh.step()
    for k, (t, ref) in enumerate(zip(tensors, straight)):
        np.testing.assert_array_equal(t._data.get(), ref, err_msg=f"param {k} after the state_dict round trip")


def test_fused_steps_are_deterministic(rng):
    params, grads = problem(rng, np.float32)
    a, _, _ = run(lambda ts: optim.AdamW(ts, lr=1e-2), params, grads, "cuda")
    b, _, _ = run(lambda ts: optim.AdamW(ts, lr=1e-2), params, grads, "cuda")
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_kernel_mirrors_reject_bad_input(rng):
    from dlcore.cuda.kernels.optim import adam_step, sgd_step

    p = from_numpy(rng.standard_normal(5).astype(np.float32), 0)
    g64 = from_numpy(rng.standard_normal(5), 0)
    with pytest.raises(TypeError, match="sgd_step: grad 0 is float64 on cuda:0, expected float32"):
        sgd_step([p], [g64], [None], lr=0.1)
    with pytest.raises(ValueError, match="sgd_step: grad 0 has shape"):
        sgd_step([p], [from_numpy(np.ones(4, dtype=np.float32), 0)], [None], lr=0.1)
    with pytest.raises(ValueError, match="sgd_step: momentum 0.9 needs a momentum buffer"):
        sgd_step([p], [from_numpy(np.ones(5, dtype=np.float32), 0)], [None], lr=0.1, momentum=0.9)
    with pytest.raises(TypeError, match="sgd_step: parameters must be float32 or float64"):
        sgd_step([from_numpy(np.ones(5, dtype=np.int64), 0)], [from_numpy(np.ones(5, dtype=np.int64), 0)], [None],
                 lr=0.1)
    m = from_numpy(np.zeros(5, dtype=np.float32), 0)
    with pytest.raises(ValueError, match="adam_step: amsgrad needs a max_exp_avg_sq"):
        adam_step([p], [m], [m], [m], [None], [1], 1e-3, 0.9, 0.999, 1e-8, amsgrad=True)
    t = nn.Parameter(p)
    t.grad = Tensor(from_numpy(np.ones(4, dtype=np.float32), 0))
    with pytest.raises(RuntimeError, match="SGD: gradient shape"):
        optim.SGD([t], lr=0.1).step()
