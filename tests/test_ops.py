"""The op table: every op's forward against a NumPy float64 oracle (float32 and float64,
every ISA the host runs, and on a CUDA device where there is one) and every differentiable op
through a float64 finite-difference gradient check (on the CPU and on the GPU). One row per (op, shapes); the tests are generated from the rows."""
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import dlcore
import dlcore.nn.functional as F
import oracles
from dlcore.gradcheck import gradcheck
from helpers import assert_close


@dataclass
class Case:
    name: str
    fn: Callable  # (*tensors) -> Tensor | tuple, the dlcore op
    ref: Callable  # (*float64 arrays) -> array | tuple, the oracle
    inputs: list  # per input: a shape (random normal), or a callable rng -> array
    grad: bool = True
    rtol32: float = 1e-5
    atol32: float = 1e-6
    k: int = 0  # a reduction of k products per output: adds the K-scaled bound 2 k eps (|A||B|)


def pos(shape, low=0.5, high=2.0):
    return lambda rng: rng.uniform(low, high, size=shape)


def away_from_zero(shape):
    """Normal values with |x| >= 0.05 so kinks (relu, abs) are outside the FD step."""
    def make(rng):
        x = rng.standard_normal(shape)
        return np.where(np.abs(x) < 0.05, 0.05 + np.abs(x), x)
    return make


def ints(high, shape):
    return lambda rng: rng.integers(0, high, size=shape).astype(np.int64)


def distinct(shape):
    """Values with no ties (max/argmax/max-pool need a unique winner)."""
    return lambda rng: rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01 + rng.uniform(0, 0.001, shape)


CASES = [
    # binary arithmetic with broadcasting
    Case("add", lambda a, b: a + b, np.add, [(3, 5), (3, 5)]),
    Case("add_broadcast", lambda a, b: a + b, np.add, [(3, 1, 5), (4, 5)]),
    Case("add_scalar", lambda a: a + 2.5, lambda a: a + 2.5, [(7,)]),
    Case("sub_broadcast", lambda a, b: a - b, np.subtract, [(2, 3, 4), (3, 1)]),
    Case("rsub", lambda a: 1.0 - a, lambda a: 1.0 - a, [(5, 3)]),
    Case("mul_broadcast", lambda a, b: a * b, np.multiply, [(6, 1), (1, 7)]),
    Case("mul_0d", lambda a, b: a * b, np.multiply, [(), (4, 3)]),
    Case("div", lambda a, b: a / b, np.divide, [(4, 3), pos((4, 3))]),
    Case("div_broadcast", lambda a, b: a / b, np.divide, [(2, 5), pos((5,))]),
    Case("rdiv", lambda a: 2.0 / a, lambda a: 2.0 / a, [pos((9,))]),
    Case("pow_tensor", lambda a, b: a ** b, np.power, [pos((3, 4)), (3, 4)]),
    Case("pow_scalar", lambda a: a ** 3, lambda a: a ** 3, [(13,)]),
    Case("pow_half", lambda a: a ** 0.5, np.sqrt, [pos((2, 7))]),
    # unary math and activations
    Case("neg", lambda a: -a, np.negative, [(3, 7)]),
    Case("exp", dlcore.exp, np.exp, [(4, 9)]),
    Case("log", dlcore.log, np.log, [pos((4, 9))]),
    Case("sqrt", dlcore.sqrt, np.sqrt, [pos((17,))]),
    Case("abs", dlcore.abs, np.abs, [away_from_zero((5, 5))]),
    Case("relu", dlcore.relu, lambda a: np.maximum(a, 0), [away_from_zero((4, 33))]),
    Case("tanh", dlcore.tanh, np.tanh, [(3, 31)]),
    Case("sigmoid", dlcore.sigmoid, oracles.sigmoid, [(64, 10)]),
    Case("clamp", lambda a: a.clamp(-0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7), [away_from_zero((6, 6))]),
    Case("clamp_min", lambda a: a.clamp(min=0.1), lambda a: np.maximum(a, 0.1), [(6, 6)]),
    Case("where", lambda a, b: dlcore.where(a > 0, a, b), lambda a, b: np.where(a > 0, a, b),
         [away_from_zero((4, 5)), (5,)]),
    # reductions
    Case("sum_all", lambda a: a.sum(), np.sum, [(3, 4, 5)], k=60),
    Case("sum_dim", lambda a: a.sum(1), lambda a: a.sum(1), [(3, 4, 5)], k=4),
    Case("sum_dims_keepdim", lambda a: a.sum((0, 2), keepdim=True), lambda a: a.sum((0, 2), keepdims=True),
         [(3, 4, 5)], k=15),
    Case("sum_neg_dim", lambda a: a.sum(-1), lambda a: a.sum(-1), [(2, 129)], k=129),
    Case("mean", lambda a: a.mean(), np.mean, [(7, 3)], k=21),
    Case("mean_dim", lambda a: a.mean(0, keepdim=True), lambda a: a.mean(0, keepdims=True), [(7, 3)], k=7),
    Case("max_all", lambda a: a.max(), np.max, [distinct((5, 6))]),
    Case("max_dim", lambda a: a.max(1).values, lambda a: a.max(1), [distinct((5, 6))]),
    Case("max_dim_keepdim", lambda a: a.max(0, keepdim=True).values, lambda a: a.max(0, keepdims=True),
         [distinct((5, 6, 2))]),
    Case("argmax", lambda a: a.argmax(1), lambda a: a.argmax(1), [distinct((5, 6))], grad=False),
    Case("argmax_all", lambda a: a.argmax(), lambda a: np.argmax(a), [distinct((5, 6))], grad=False),
    # shape ops and indexing
    Case("reshape", lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1), [(2, 6, 2)]),
    Case("view", lambda a: a.view(12, 2), lambda a: a.reshape(12, 2), [(2, 6, 2)]),
    Case("flatten", lambda a: a.flatten(1), lambda a: a.reshape(2, -1), [(2, 3, 4)]),
    Case("transpose", lambda a: a.transpose(0, 2) * 1.0, lambda a: a.transpose(2, 1, 0), [(2, 3, 4)]),
    Case("permute_contiguous", lambda a: a.permute(1, 2, 0).contiguous(), lambda a: a.transpose(1, 2, 0),
         [(2, 3, 4)]),
    Case("T_matmul", lambda a, b: a.T @ b, lambda a, b: a.T @ b, [(5, 3), (5, 4)], k=5),
    Case("unsqueeze_squeeze", lambda a: a.unsqueeze(1).squeeze(1) * 2.0, lambda a: a * 2.0, [(3, 4)]),
    Case("expand", lambda a: a.expand(3, 4, 5), lambda a: np.broadcast_to(a, (3, 4, 5)), [(4, 1)]),
    Case("getitem_slice", lambda a: a[1:3, ::2], lambda a: a[1:3, ::2], [(4, 5)]),
    Case("getitem_int", lambda a: a[2], lambda a: a[2], [(4, 5)]),
    Case("getitem_ellipsis_none", lambda a: a[..., None, 1], lambda a: a[..., None, 1], [(2, 3, 4)]),
    Case("getitem_array", lambda a: a[dlcore.tensor([0, 2, 2])], lambda a: a[[0, 2, 2]], [(4, 3)]),
    Case("cat", lambda a, b: dlcore.cat([a, b], 1), lambda a, b: np.concatenate([a, b], 1), [(2, 3), (2, 5)]),
    Case("stack", lambda a, b: dlcore.stack([a, b], 1), lambda a, b: np.stack([a, b], 1), [(2, 3), (2, 3)]),
    Case("split", lambda a: dlcore.split(a, [1, 3], 1), lambda a: tuple(np.split(a, [1], 1)), [(2, 4)]),
    Case("split_one_used", lambda a: dlcore.split(a, 2, 0)[1], lambda a: np.split(a, 2, 0)[1], [(4, 3)]),
    # matmul
    Case("matmul_2d", lambda a, b: a @ b, np.matmul, [(5, 7), (7, 3)], k=7),
    Case("matmul_vec", lambda a, b: a @ b, np.matmul, [(5, 7), (7,)], k=7),
    Case("matmul_vecvec", lambda a, b: a @ b, np.matmul, [(7,), (7,)], k=7),
    Case("matmul_batched", lambda a, b: a @ b, np.matmul, [(2, 3, 5, 4), (4, 6)], k=4),
    Case("matmul_batch_broadcast", lambda a, b: a @ b, np.matmul, [(2, 1, 3, 4), (5, 4, 2)], k=4),
    Case("matmul_transposed_view", lambda a, b: a.transpose(0, 1) @ b.transpose(0, 1), lambda a, b: a.T @ b.T,
         [(6, 5), (3, 6)], k=6),
    Case("linear", lambda x, w, b: F.linear(x, w, b), lambda x, w, b: x @ w.T + b, [(4, 7), (3, 7), (3,)], k=8),
    Case("linear_3d_nobias", lambda x, w: F.linear(x, w), lambda x, w: x @ w.T, [(2, 4, 7), (3, 7)], k=7),
    # softmax and losses
    Case("softmax", lambda a: dlcore.softmax(a, 1), lambda a: oracles.softmax(a, 1), [(4, 7)]),
    Case("softmax_dim0", lambda a: dlcore.softmax(a, 0), lambda a: oracles.softmax(a, 0), [(4, 3, 2)]),
    Case("log_softmax", lambda a: dlcore.log_softmax(a, -1), lambda a: oracles.log_softmax(a, -1), [(4, 7)]),
    Case("log_softmax_large", lambda a: dlcore.log_softmax(a, 1), lambda a: oracles.log_softmax(a, 1),
         [lambda rng: 1000.0 + rng.standard_normal((3, 5))]),
    Case("cross_entropy", lambda a, t: F.cross_entropy(a, t), oracles.cross_entropy, [(6, 10), ints(10, (6,))]),
    Case("cross_entropy_sum", lambda a, t: F.cross_entropy(a, t, reduction="sum"),
         lambda a, t: oracles.cross_entropy(a, t, "sum"), [(5, 3), ints(3, (5,))]),
    Case("cross_entropy_none", lambda a, t: F.cross_entropy(a, t, reduction="none"),
         lambda a, t: oracles.cross_entropy(a, t, "none"), [(5, 4), ints(4, (5,))]),
    Case("cross_entropy_ignore", lambda a, t: F.cross_entropy(a, t, ignore_index=1),
         lambda a, t: oracles.cross_entropy(a, t, ignore_index=1),
         [(8, 3), lambda rng: np.array([0, 1, 2, 1, 0, 2, 2, 1], dtype=np.int64)]),
    Case("nll_loss", lambda a, t: F.nll_loss(F.log_softmax(a, 1), t),
         lambda a, t: oracles.nll_loss(oracles.log_softmax(a, 1), t), [(6, 5), ints(5, (6,))]),
    Case("mse_loss", F.mse_loss, lambda a, b: np.mean((a - b) ** 2), [(4, 5), (4, 5)]),
    Case("embedding", lambda i, w: F.embedding(i, w), lambda i, w: w[i], [ints(7, (3, 4)), (7, 5)]),
    # convolution and pooling
    Case("conv2d", lambda x, w, b: F.conv2d(x, w, b, padding=1), lambda x, w, b: oracles.conv2d(x, w, b, padding=(1, 1)),
         [(2, 3, 7, 6), (4, 3, 3, 3), (4,)], rtol32=1e-4, k=28),
    Case("conv2d_stride_dilation", lambda x, w: F.conv2d(x, w, stride=2, dilation=2),
         lambda x, w: oracles.conv2d(x, w, stride=(2, 2), dilation=(2, 2)), [(1, 2, 9, 9), (3, 2, 2, 3)], rtol32=1e-4, k=12),
    Case("conv2d_groups", lambda x, w: F.conv2d(x, w, groups=2, padding=(0, 1)),
         lambda x, w: oracles.conv2d(x, w, padding=(0, 1), groups=2), [(2, 4, 5, 5), (6, 2, 3, 3)], rtol32=1e-4, k=18),
    Case("conv2d_lenet1", lambda x, w, b: F.conv2d(x, w, b, padding=2),
         lambda x, w, b: oracles.conv2d(x, w, b, padding=(2, 2)), [(4, 1, 28, 28), (6, 1, 5, 5), (6,)], grad=False,
         rtol32=1e-4, k=26),
    Case("conv2d_lenet1_grad", lambda x, w, b: F.conv2d(x, w, b, padding=2),
         lambda x, w, b: oracles.conv2d(x, w, b, padding=(2, 2)), [(1, 1, 6, 6), (2, 1, 5, 5), (2,)], rtol32=1e-4, k=26),
    Case("max_pool2d", lambda x: F.max_pool2d(x, 2), lambda x: oracles.max_pool2d(x, (2, 2), (2, 2)),
         [distinct((2, 3, 6, 8))]),
    Case("max_pool2d_odd", lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: oracles.max_pool2d(x, (3, 3), (2, 2), (1, 1)),
         [distinct((1, 2, 7, 5))]),
    Case("max_pool2d_ceil", lambda x: F.max_pool2d(x, 2, ceil_mode=True),
         lambda x: oracles.max_pool2d(x, (2, 2), (2, 2), ceil=True), [distinct((1, 2, 5, 7))]),
    Case("avg_pool2d", lambda x: F.avg_pool2d(x, 2), lambda x: oracles.avg_pool2d(x, (2, 2), (2, 2)), [(2, 3, 6, 8)], k=4),
    Case("avg_pool2d_pad", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
         lambda x: oracles.avg_pool2d(x, (3, 3), (2, 2), (1, 1), count_include_pad=False), [(1, 2, 7, 5)], k=9),
    # LSTM cell
    Case("lstm_cell", lambda x, h, c, wi, wh, bi, bh: F.lstm_cell(x, (h, c), wi, wh, bi, bh),
         oracles.lstm_cell, [(3, 4), (3, 5), (3, 5), (20, 4), (20, 5), (20,), (20,)], k=11),
]

IDS = [c.name for c in CASES]


def make_inputs(case, rng):
    arrays = []
    for spec in case.inputs:
        arrays.append(spec(rng) if callable(spec) else rng.standard_normal(spec))
    return arrays


def to_tensors(arrays, dtype, requires_grad=False, device="cpu"):
    out = []
    for a in arrays:
        if a.dtype.kind == "f":
            t = dlcore.tensor(np.ascontiguousarray(a, dtype=dtype), device=device)
            if requires_grad:
                t.requires_grad_(True)
            out.append(t)
        else:
            out.append(dlcore.tensor(a, device=device))
    return out


def as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def check_forward(case, dtype, rng, device, where):
    # The oracle sees the inputs exactly as the op does (rounded to dtype), in float64.
    arrays = [a.astype(dtype).astype(np.float64) if a.dtype.kind == "f" else a for a in make_inputs(case, rng)]
    outs = as_tuple(case.fn(*to_tensors(arrays, dtype, device=device)))
    refs = as_tuple(case.ref(*arrays))
    assert len(outs) == len(refs)
    for k, (out, ref) in enumerate(zip(outs, refs)):
        ref = np.asarray(ref)
        assert out.device == dlcore.device(device), f"{case.name}: output on {out.device}, want {device}"
        got = out.detach().cpu().numpy()
        if ref.dtype.kind in "iub":
            np.testing.assert_array_equal(got, ref, err_msg=f"{case.name} output {k} [{where}]")
            continue
        assert got.dtype == dtype, f"{case.name}: output dtype {got.dtype}, want {np.dtype(dtype)}"
        eps = 2.0**-24 if dtype == np.float32 else 2.0**-53
        atol = case.atol32 if dtype == np.float32 else 1e-12
        rtol = case.rtol32 if dtype == np.float32 else 1e-10
        if case.k:  # K-scaled bound from the same op on |inputs|
            atol = atol + 2 * case.k * eps * np.abs(as_tuple(case.ref(*[np.abs(a) for a in arrays]))[k])
        assert_close(got, ref, atol=atol, rtol=rtol, what=f"{case.name} output {k} [{where}] {np.dtype(dtype)}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_float64_oracle(case, dtype, isa, rng):
    check_forward(case, dtype, rng, "cpu", isa)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_on_cuda_matches_float64_oracle(case, dtype, cuda, rng):
    check_forward(case, dtype, rng, cuda, "cuda")


GRAD_CASES = [c for c in CASES if c.grad]


@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.name for c in GRAD_CASES])
def test_gradient_matches_finite_differences(case, isa, rng):
    tensors = to_tensors(make_inputs(case, rng), np.float64, requires_grad=True)
    gradcheck(case.fn, tensors)


@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.name for c in GRAD_CASES])
def test_gradient_on_cuda_matches_finite_differences(case, cuda, rng):
    tensors = to_tensors(make_inputs(case, rng), np.float64, requires_grad=True, device=cuda)
    gradcheck(case.fn, tensors)
