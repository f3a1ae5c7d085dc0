"""The fused conv2d + bias + ReLU forward: _C.conv2d_forward(..., relu=True) on every algorithm
and ISA, dlcore.ops.conv2d_relu (values and gradients), and nn.Sequential's fusion of a Conv2d
followed by a ReLU."""
import numpy as np
import pytest

import dlcore
from dlcore import _C, nn
from dlcore.gradcheck import gradcheck
from dlcore.ops.conv import conv2d_relu

# (N, C, H, W, C_out, K, pad, algo): a shape each algorithm (and the direct variants) runs
CASES = [
    (3, 5, 9, 11, 7, 3, 1, "gemm"),
    (2, 1, 12, 12, 6, 5, 2, "direct"),      # few input channels: the wide direct tile
    (2, 6, 14, 14, 16, 5, 0, "direct"),     # 16 output channels: channels in the vector
    (2, 20, 9, 17, 14, 1, 0, "direct"),     # pointwise
    (2, 16, 13, 15, 24, 3, 1, "winograd"),
    (4, 16, 30, 30, 16, 3, 1, "auto"),
]


@pytest.mark.parametrize("N, C, H, W, C_out, K, pad, algo", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [True, False])
def test_relu_epilogue_is_relu_of_the_plain_forward(isa, rng, N, C, H, W, C_out, K, pad, algo, dtype, with_bias):
    if algo == "winograd" and dtype == np.float64:
        pytest.skip("Winograd is float32 only")
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((C_out, C, K, K)).astype(dtype)
    b = rng.standard_normal(C_out).astype(dtype) if with_bias else None
    x[0, 0, H // 2, W // 2] = np.nan  # relu(NaN) is NaN, as torch.relu
    geo = ((1, 1), (pad, pad), (1, 1), 1)
    plain = _C.conv2d_forward(x, w, b, *geo, algo=algo)
    fused = _C.conv2d_forward(x, w, b, *geo, algo=algo, relu=True)
    expect = np.where(plain <= 0, np.zeros_like(plain), plain)  # NaN stays, -0 -> 0
    np.testing.assert_array_equal(fused, expect)
    assert np.isnan(fused).any() and (fused[~np.isnan(fused)] >= 0).all()


def test_conv2d_relu_values_and_gradients(rng):
    x = dlcore.tensor(rng.standard_normal((2, 3, 7, 8)), requires_grad=True)
    w = dlcore.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    b = dlcore.tensor(rng.standard_normal(4), requires_grad=True)
    y = conv2d_relu(x, w, b, padding=1)
    np.testing.assert_array_equal(y.detach().numpy(), dlcore.relu(dlcore.conv2d(x, w, b, padding=1)).detach().numpy())
    gradcheck(lambda x, w, b: conv2d_relu(x, w, b, stride=2, padding=1), [x, w, b])


def test_sequential_fuses_conv_then_relu_with_the_same_results(rng):
    dlcore.manual_seed(0)
    fused = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3), nn.ReLU())
    x = dlcore.from_numpy(rng.standard_normal((2, 3, 9, 9)).astype(np.float32))

    def unfused(x):
        for m in fused:
            x = m.forward(x)
        return x

    y = fused(x)
    y.sum().backward()
    grads = [p.grad.numpy().copy() for p in fused.parameters()]
    for p in fused.parameters():
        p.grad = None
    y_ref = unfused(x)
    y_ref.sum().backward()
    np.testing.assert_array_equal(y.detach().numpy(), y_ref.detach().numpy())
    for g, p in zip(grads, fused.parameters()):
        np.testing.assert_array_equal(g, p.grad.numpy())


def test_sequential_does_not_fuse_a_relu_subclass():
    class Leakyish(nn.ReLU):
        def forward(self, x):
            return x * 2.0

    seq = nn.Sequential(nn.Conv2d(1, 2, 3), Leakyish())
    x = dlcore.ones(1, 1, 5, 5)
    expect = seq[0](x) * 2.0
    np.testing.assert_array_equal(seq(x).detach().numpy(), expect.detach().numpy())


def test_relu_turns_negative_outputs_to_zero():
    x = np.ones((1, 1, 4, 4), np.float32)
    w = -np.ones((1, 1, 3, 3), np.float32)
    y = _C.conv2d_forward(x, w, None, (1, 1), (0, 0), (1, 1), 1, relu=True)
    np.testing.assert_array_equal(y, np.zeros((1, 1, 2, 2), np.float32))
