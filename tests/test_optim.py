"""dlcore.optim: several steps of SGD / Adam / AdamW against float64 NumPy references of
torch's formulas (and against torch.optim itself when torch is installed), hyper-parameter
validation, state handling and the learning-rate schedules."""
import math

import numpy as np
import pytest

import dlcore
from dlcore import nn, optim
from dlcore.optim import lr_scheduler
from dlcore.tensor import Tensor
from helpers import assert_close

STEPS = 6
SHAPES = [(3, 4), (5,), (1,)]


def _problem(rng, dtype):
    """Parameters and a fixed sequence of gradients (per step, per parameter)."""
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]
    tensors = [nn.Parameter(dlcore.tensor(p.astype(dtype))) for p in params]
    return params, grads, tensors


def _run(opt, tensors, grads, dtype):
    for step_grads in grads:
        for t, g in zip(tensors, step_grads):
            t.grad = dlcore.tensor(g.astype(dtype))
        opt.step()
    return [t._data for t in tensors]


def sgd_reference(params, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                  maximize=False):
    params = [p.copy() for p in params]
    bufs = [None] * len(params)
    for step_grads in grads:
        for i, g in enumerate(step_grads):
            d = -g if maximize else g
            if weight_decay:
                d = d + weight_decay * params[i]
            if momentum:
                bufs[i] = d.copy() if bufs[i] is None else momentum * bufs[i] + (1 - dampening) * d
                d = d + momentum * bufs[i] if nesterov else bufs[i]
            params[i] = params[i] - lr * d
    return params


def adam_reference(params, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                   decoupled=False, maximize=False):
    b1, b2 = betas
    params = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    vmax = [np.zeros_like(p) for p in params]
    for t, step_grads in enumerate(grads, start=1):
        for i, g in enumerate(step_grads):
            g = -g if maximize else g
            if weight_decay:
                if decoupled:
                    params[i] = params[i] * (1 - lr * weight_decay)
                else:
                    g = g + weight_decay * params[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            vhat = v[i]
            if amsgrad:
                vmax[i] = np.maximum(vmax[i], v[i])
                vhat = vmax[i]
            denom = np.sqrt(vhat) / math.sqrt(1 - b2**t) + eps
            params[i] = params[i] - lr / (1 - b1**t) * m[i] / denom
    return params


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.02, momentum=0.9, weight_decay=0.1),
    dict(lr=0.02, momentum=0.5, nesterov=True, weight_decay=0.01, maximize=True),
]
ADAM_CASES = [
    dict(lr=0.01),
    dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, amsgrad=True),
    dict(lr=0.003, weight_decay=0.05, amsgrad=True, maximize=True),
]


@pytest.mark.parametrize("kwargs", SGD_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sgd_matches_reference(kwargs, dtype, rng):
    params, grads, tensors = _problem(rng, dtype)
    got = _run(optim.SGD(tensors, **kwargs), tensors, grads, dtype)
    ref = sgd_reference(params, grads, **kwargs)
    tol = dict(atol=1e-12, rtol=1e-12) if dtype is np.float64 else dict(atol=1e-6, rtol=1e-5)
    for i, (g, r) in enumerate(zip(got, ref)):
        assert g.dtype == dtype
        assert_close(g, r, what=f"SGD {kwargs} param {i}", **tol)


@pytest.mark.parametrize("kwargs", ADAM_CASES, ids=str)
@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_matches_reference(cls, kwargs, dtype, rng):
    params, grads, tensors = _problem(rng, dtype)
    kwargs = dict(kwargs)
    if cls is optim.AdamW:
        kwargs.setdefault("weight_decay", 0.01)  # AdamW's default
    got = _run(cls(tensors, **kwargs), tensors, grads, dtype)
    ref = adam_reference(params, grads, decoupled=cls is optim.AdamW, **kwargs)
    tol = dict(atol=1e-12, rtol=1e-11) if dtype is np.float64 else dict(atol=1e-6, rtol=1e-5)
    for i, (g, r) in enumerate(zip(got, ref)):
        assert_close(g, r, what=f"{cls.__name__} {kwargs} param {i}", **tol)


@pytest.mark.parametrize("name,kwargs", [("SGD", c) for c in SGD_CASES] + [("Adam", c) for c in ADAM_CASES]
                         + [("AdamW", c) for c in ADAM_CASES], ids=str)
def test_matches_torch_optim(name, kwargs, rng):
    torch = pytest.importorskip("torch")
    params, grads, tensors = _problem(rng, np.float32)
    got = _run(getattr(optim, name)(tensors, **kwargs), tensors, grads, np.float32)
    tparams = [torch.tensor(p.astype(np.float32), requires_grad=True) for p in params]
    topt = getattr(torch.optim, name)(tparams, **kwargs)
    for step_grads in grads:
        for t, g in zip(tparams, step_grads):
            t.grad = torch.tensor(g.astype(np.float32))
        topt.step()
    for i, (g, t) in enumerate(zip(got, tparams)):
        assert_close(g, t.detach().numpy(), atol=1e-6, rtol=1e-5, what=f"{name} {kwargs} vs torch, param {i}")


def test_param_groups_and_skip_without_grad():
    a, b, c = (nn.Parameter(dlcore.ones(2)) for _ in range(3))
    opt = optim.SGD([{"params": [a]}, {"params": [b, c], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = dlcore.ones(2), dlcore.ones(2)  # c has no grad: untouched
    opt.step()
    np.testing.assert_allclose(a._data, 0.9)
    np.testing.assert_allclose(b._data, 0.5)
    np.testing.assert_array_equal(c._data, 1.0)
    assert opt.param_groups[1]["momentum"] == 0.0  # defaults filled in
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


@pytest.mark.parametrize("cls,kwargs,match", [
    (optim.SGD, dict(lr=-0.1), "learning rate"),
    (optim.SGD, dict(lr=0.1, momentum=-0.5), "momentum"),
    (optim.SGD, dict(lr=0.1, weight_decay=-1), "weight_decay"),
    (optim.SGD, dict(lr=0.1, nesterov=True), "Nesterov"),
    (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (optim.Adam, dict(lr=-1e-3), "learning rate"),
    (optim.Adam, dict(betas=(1.0, 0.999)), "beta parameter at index 0"),
    (optim.Adam, dict(betas=(0.9, -0.1)), "beta parameter at index 1"),
    (optim.Adam, dict(eps=-1e-8), "epsilon"),
    (optim.AdamW, dict(weight_decay=-0.01), "weight_decay"),
])
def test_invalid_hyper_parameters(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls([nn.Parameter(dlcore.ones(2))], **kwargs)


def test_invalid_params():
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError):
        optim.SGD({nn.Parameter(dlcore.ones(2))}, lr=0.1)  # sets have no stable order
    with pytest.raises(TypeError):
        optim.SGD(nn.Parameter(dlcore.ones(2)), lr=0.1)
    x = nn.Parameter(dlcore.ones(2))
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([x * 2], lr=0.1)
    with pytest.raises(ValueError, match="twice"):
        optim.SGD([x, x], lr=0.1)


@pytest.mark.parametrize("cls,kwargs", [(optim.SGD, dict(lr=0.1, momentum=0.9)), (optim.Adam, {}),
                                        (optim.AdamW, dict(amsgrad=True))])
def test_state_never_aliases_grad(cls, kwargs):
    p = nn.Parameter(dlcore.ones(4))
    opt = cls([p], **kwargs)
    p.grad = dlcore.tensor([1.0, 2.0, 3.0, 4.0])
    opt.step()
    grad_arr = p.grad._data
    for name, v in opt.state[p].items():
        if isinstance(v, np.ndarray):
            assert not np.shares_memory(v, grad_arr), name
            assert not np.shares_memory(v, p._data), name
    saved = {k: v.copy() for k, v in opt.state[p].items() if isinstance(v, np.ndarray)}
    grad_arr[...] = 100.0  # the caller reusing its grad buffer must not change the state
    for k, v in saved.items():
        np.testing.assert_array_equal(opt.state[p][k], v)


def test_zero_grad():
    p = nn.Parameter(dlcore.ones(3))
    opt = optim.SGD([p], lr=0.1)
    p.grad = dlcore.ones(3)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad._data, 0.0)
    opt.zero_grad()
    assert p.grad is None
    opt.step()  # no grads: no-op
    np.testing.assert_array_equal(p._data, 1.0)


@pytest.mark.parametrize("cls,kwargs", [(optim.SGD, dict(lr=0.05, momentum=0.9)),
                                        (optim.Adam, dict(lr=0.01, amsgrad=True)), (optim.AdamW, dict(lr=0.01))])
def test_state_dict_resume(cls, kwargs, rng):
    """Training 3 steps, saving, loading into a fresh optimizer and training 3 more equals 6 steps."""
    params, grads, ta = _problem(rng, np.float32)
    tb = [nn.Parameter(dlcore.tensor(p.astype(np.float32))) for p in params]
    opt_a = cls(ta, **kwargs)
    _run(opt_a, ta, grads, np.float32)
    opt_b = cls(tb, **kwargs)
    _run(opt_b, tb, grads[:3], np.float32)
    sd = opt_b.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2] and sd["param_groups"][0]["params"] == [0, 1, 2]
    opt_c = cls(tb, lr=123.0)
    opt_c.load_state_dict(sd)
    assert opt_c.param_groups[0]["lr"] == kwargs["lr"]
    _run(opt_c, tb, grads[3:], np.float32)
    for a, b in zip(ta, tb):
        np.testing.assert_array_equal(a._data, b._data)


def test_load_state_dict_mismatch():
    opt = optim.SGD([nn.Parameter(dlcore.ones(2))], lr=0.1)
    other = optim.SGD([nn.Parameter(dlcore.ones(2)), nn.Parameter(dlcore.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match="parameters"):
        opt.load_state_dict(other.state_dict())


def test_closure():
    p = nn.Parameter(dlcore.tensor([3.0]))
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 9.0
    np.testing.assert_allclose(p._data, [1.5])


# ---- schedulers ------------------------------------------------------------------------------
def _lrs(sched, opt, n):
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_step_lr():
    opt = optim.SGD([nn.Parameter(dlcore.ones(1))], lr=0.1)
    sched = lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    got = _lrs(sched, opt, 10)
    np.testing.assert_allclose(got, [0.1 * 0.5 ** (e // 3) for e in range(10)], rtol=1e-12)
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]
    with pytest.raises(ValueError):
        lr_scheduler.StepLR(opt, step_size=0)


def test_cosine_annealing_lr():
    opt = optim.SGD([nn.Parameter(dlcore.ones(1))], lr=0.1)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=8, eta_min=0.01)
    got = _lrs(sched, opt, 17)
    ref = [0.01 + 0.09 * (1 + math.cos(math.pi * e / 8)) / 2 for e in range(17)]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert got[8] == pytest.approx(0.01)


def test_lambda_lr_and_state_dict():
    opt = optim.Adam([nn.Parameter(dlcore.ones(1))], lr=0.2)
    sched = lr_scheduler.LambdaLR(opt, lambda e: 1.0 / (1 + e))
    assert _lrs(sched, opt, 4) == pytest.approx([0.2, 0.1, 0.2 / 3, 0.05])
    sd = sched.state_dict()
    assert sd["last_epoch"] == 4 and "optimizer" not in sd


@pytest.mark.parametrize("make", [
    lambda m, o: m.StepLR(o, step_size=2, gamma=0.3),
    lambda m, o: m.CosineAnnealingLR(o, T_max=5, eta_min=0.001),
])
def test_schedulers_match_torch(make):
    torch = pytest.importorskip("torch")
    opt = optim.SGD([nn.Parameter(dlcore.ones(1))], lr=0.1)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    ours, theirs = make(lr_scheduler, opt), make(torch.optim.lr_scheduler, topt)
    for _ in range(12):
        assert opt.param_groups[0]["lr"] == pytest.approx(topt.param_groups[0]["lr"], rel=1e-9, abs=1e-15)
        opt.step()
        topt.step()
        ours.step()
        theirs.step()


@pytest.mark.parametrize("name,kwargs", [("SGD", c) for c in SGD_CASES] + [("Adam", c) for c in ADAM_CASES]
                         + [("AdamW", c) for c in ADAM_CASES], ids=str)
def test_numpy_update_matches_the_fused_kernel(name, kwargs, rng):
    # a strided gradient makes the optimiser take its NumPy update instead of _C.sgd_step / adam_step
    params, grads, fused = _problem(rng, np.float32)
    plain = [nn.Parameter(dlcore.tensor(p.astype(np.float32))) for p in params]
    opt_fused, opt_plain = getattr(optim, name)(fused, **kwargs), getattr(optim, name)(plain, **kwargs)
    for step_grads in grads:
        for f, p, g in zip(fused, plain, step_grads):
            f.grad = dlcore.tensor(g.astype(np.float32))
            strided = np.repeat(g.astype(np.float32), 2, axis=-1)[..., ::2]  # the same values, not contiguous
            assert g.size == 1 or not strided.flags.c_contiguous  # (one element counts as contiguous)
            p.grad = Tensor(strided)
        opt_fused.step()
        opt_plain.step()
    for i, (f, p) in enumerate(zip(fused, plain)):
        assert_close(f._data, p._data, atol=1e-6, rtol=1e-5, what=f"{name} {kwargs}: fused vs NumPy, param {i}")
