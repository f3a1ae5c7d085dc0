"""Winograd F(2x2, 3x3) conv2d (csrc/cpu/conv/winograd.cpp), forced with algo='winograd', against
the float64 NumPy oracle of test_conv_kernels.py in all three directions, on every ISA, at 1 and
2 OpenMP threads; plus integer-exact cases, determinism and the 'auto' rule."""
import numpy as np
import pytest

from dlcore import _C
from helpers import EPS, _assert_within
from test_conv_kernels import out_size, ref_backward_input, ref_backward_weight, ref_forward

ONE = (1, 1)

# (N, C, H, W, C_out, (pad_h, pad_w))
CASES = {
    "single_pixel": (1, 1, 1, 1, 1, (1, 1)),
    "odd_7x5": (3, 3, 7, 5, 4, (1, 1)),
    "pad0": (2, 5, 6, 9, 3, (0, 0)),
    "pad2": (2, 4, 5, 6, 5, (2, 2)),
    "pad_0_2": (1, 2, 9, 4, 6, (0, 2)),
    "pad_2_1": (1, 3, 4, 11, 2, (2, 1)),
    "c17_odd": (2, 17, 9, 10, 13, (1, 1)),
    # C_out past one pass of output channels (48), C and C_out not multiples of anything.
    "c65_c70": (2, 65, 11, 13, 70, (1, 1)),
    # C over one depth block of the micro-kernel (256).
    "c300": (1, 300, 6, 5, 7, (1, 0)),
    # Many 64-tile blocks (and 128-tile backward_weight blocks), N above the thread count.
    "blocks_n5": (5, 8, 30, 31, 13, (1, 2)),
    # One tile row longer than a block: runs split across blocks.
    "wide_row": (1, 2, 3, 301, 3, (1, 1)),
    "channels_1": (4, 1, 12, 10, 1, (1, 1)),
}
# Every H, W in 1..5 with padding 1 and with (2, 0) where the output exists.
for _h in range(1, 6):
    for _w in range(1, 6):
        for _pad in ((1, 1), (2, 0)):
            if out_size(_h, 3, 1, _pad[0], 1) >= 1 and out_size(_w, 3, 1, _pad[1], 1) >= 1:
                CASES[f"small_{_h}x{_w}_pad{_pad[0]}{_pad[1]}"] = (2, 3, _h, _w, 2, _pad)

INTEGER_CASES = ["odd_7x5", "pad_2_1", "c17_odd", "c65_c70", "c300", "blocks_n5", "wide_row", "small_1x4_pad11"]


def make(rng, case, integer=False):
    n, c, h, w, c_out, pad = case
    shapes = [(n, c, h, w), (c_out, c, 3, 3), (c_out,), (n, c_out, out_size(h, 3, 1, pad[0], 1), out_size(w, 3, 1, pad[1], 1))]
    if integer:
        return [rng.integers(-3, 4, size=s).astype(np.float32) for s in shapes]
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def run_all(x, w, b, gy, pad, algo="winograd"):
    y = _C.conv2d_forward(x, w, b, ONE, pad, ONE, 1, algo=algo)
    gx = _C.conv2d_backward_input(w, gy, x.shape, ONE, pad, ONE, 1, algo=algo)
    gw, gb = _C.conv2d_backward_weight(x, gy, w.shape, ONE, pad, ONE, 1, b is not None, algo=algo)
    return y, gx, gw, gb


def assert_winograd_close(out, ref, abs_ref, k, what):
    """|out - ref| <= 2 k eps max(abs_ref). Winograd's error is not bounded elementwise by the
    direct sum of |products|: each output mixes its whole 4x4 input tile through the transforms
    (entries up to 1, sums of up to 4 terms), so an output whose own |x||w| sum is small (e.g.
    mostly padding) still carries rounding of the tile's larger values. The bound therefore uses
    the largest |x||w| sum of the tensor; indexing errors are caught by the integer-exact cases."""
    tol = 2.0 * max(k, 1) * EPS[np.dtype(np.float32)] * float(np.max(abs_ref)) + 1e-30
    _assert_within(out, ref, tol, what)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("name", list(CASES))
def test_winograd_vs_reference(isa, rng, threads, name, with_bias):
    case = CASES[name]
    n, c, h, wd, c_out, pad = case
    x, w, b, gy = make(rng, case)
    b = b if with_bias else None
    oh, ow = gy.shape[2:]
    what = f"{name} {isa} threads={threads} bias={with_bias}"
    y, gx, gw, gb = run_all(x, w, b, gy, pad)
    assert y.dtype == gx.dtype == gw.dtype == np.float32
    assert_winograd_close(
        y,
        ref_forward(x, w, b, ONE, pad, ONE, 1),
        ref_forward(np.abs(x), np.abs(w), None if b is None else np.abs(b), ONE, pad, ONE, 1),
        9 * c + 1,
        f"conv2d_forward winograd {what}",
    )
    assert_winograd_close(
        gx,
        ref_backward_input(w, gy, x.shape, ONE, pad, ONE, 1),
        ref_backward_input(np.abs(w), np.abs(gy), x.shape, ONE, pad, ONE, 1),
        9 * c_out,
        f"conv2d_backward_input winograd {what}",
    )
    gw_ref, gb_ref = ref_backward_weight(x, gy, w.shape, ONE, pad, ONE, 1)
    gw_abs, _ = ref_backward_weight(np.abs(x), np.abs(gy), w.shape, ONE, pad, ONE, 1)
    assert_winograd_close(gw, gw_ref, gw_abs, n * oh * ow, f"conv2d_backward_weight winograd {what}")
    if with_bias:
        np.testing.assert_allclose(gb, gb_ref, rtol=1e-5, atol=1e-5 * np.abs(gy).sum(axis=(0, 2, 3)).max())
    else:
        assert gb is None


@pytest.mark.parametrize("name", INTEGER_CASES)
def test_winograd_integer_exact(isa, rng, threads, name):
    """Small integers: U = G g G^T holds quarters, every partial sum stays far below 2^24
    quarters, so all three directions must equal the float64 oracle bitwise."""
    case = CASES[name]
    pad = case[5]
    x, w, b, gy = make(rng, case, integer=True)
    y, gx, gw, _ = run_all(x, w, b, gy, pad)
    np.testing.assert_array_equal(y, ref_forward(x, w, b, ONE, pad, ONE, 1))
    np.testing.assert_array_equal(gx, ref_backward_input(w, gy, x.shape, ONE, pad, ONE, 1))
    np.testing.assert_array_equal(gw, ref_backward_weight(x, gy, w.shape, ONE, pad, ONE, 1)[0])


@pytest.mark.parametrize("name", ["blocks_n5", "c65_c70", "wide_row"])
def test_winograd_deterministic(isa, rng, name):
    """Same bits twice at 2 threads; forward and backward_input also the same bits at 1 and 2
    threads (each output is computed by one thread in a fixed order)."""
    case = CASES[name]
    pad = case[5]
    x, w, b, gy = make(rng, case)
    previous = _C.get_num_threads()
    try:
        _C.set_num_threads(2)
        first, second = run_all(x, w, b, gy, pad), run_all(x, w, b, gy, pad)
        _C.set_num_threads(1)
        single = run_all(x, w, b, gy, pad)
    finally:
        _C.set_num_threads(previous)
    for a, b_ in zip(first, second):
        np.testing.assert_array_equal(a, b_)
    np.testing.assert_array_equal(first[0], single[0])
    np.testing.assert_array_equal(first[1], single[1])


def preferred(n, c, h, w, c_out, direction):
    """Mirror of winograd_preferred() in winograd.cpp (pad 1, so OH, OW = H, W)."""
    cin, cout = (c_out, c) if direction == "backward_input" else (c, c_out)
    side, channels, tiles = min(h, w), cin * cout, n * ((h + 1) // 2) * ((w + 1) // 2)
    if min(cin, cout) < 16:
        return False
    if direction == "backward_weight":
        return tiles >= 256 and ((channels >= 48 * 48 and side >= 28) or (channels >= 128 * 128 and side >= 14))
    return tiles >= 96 and ((channels >= 32 * 32 and side >= 28) or (channels >= 64 * 64 and side >= 12))


AUTO_SHAPES = [
    (1, 32, 28, 28, 32),    # forward, backward_input: yes; backward_weight: no (32x32 channels)
    (2, 32, 16, 16, 32),    # no: 32x32 channels need 28x28
    (4, 64, 12, 12, 64),    # forward, backward_input: yes; backward_weight: no
    (1, 64, 12, 12, 64),    # no: 36 tiles
    (1, 16, 20, 20, 16),    # no: 16x16 channels
    (1, 16, 28, 28, 64),    # forward (16 -> 64) and backward_input (64 -> 16) yes, backward_weight no
    (2, 48, 28, 28, 48),    # every direction yes
    (1, 48, 28, 28, 48),    # backward_weight no (196 tiles), the others yes
    (4, 64, 14, 14, 64),    # backward_weight no (needs 128x128 channels at 14x14), the others yes
    (6, 128, 14, 14, 128),  # every direction yes
    (2, 3, 32, 32, 16),     # no: 3 input channels
]


@pytest.mark.parametrize("shape", AUTO_SHAPES)
def test_auto_picks_winograd_where_preferred(rng, shape):
    """'auto' equals forced 'winograd' bitwise exactly where the rule says yes, and differs
    (another summation order) where it says no."""
    n, c, h, w, c_out = shape
    pad = ONE
    x, wt, b, gy = make(rng, (n, c, h, w, c_out, pad))
    auto, wino = run_all(x, wt, b, gy, pad, "auto"), run_all(x, wt, b, gy, pad, "winograd")
    for direction, a, ww in zip(["forward", "backward_input", "backward_weight"], auto, wino):
        if preferred(n, c, h, w, c_out, direction):
            np.testing.assert_array_equal(a, ww, err_msg=f"auto did not take Winograd for {direction} {shape}")
        else:
            assert not np.array_equal(a, ww), f"auto took Winograd for {direction} {shape}"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(stride=(2, 2), padding=ONE, dtype=np.float32, k=3), "winograd"),
        (dict(stride=ONE, padding=(3, 3), dtype=np.float32, k=3), "winograd"),
        (dict(stride=ONE, padding=ONE, dtype=np.float64, k=3), "winograd"),
        (dict(stride=ONE, padding=ONE, dtype=np.float32, k=5), "winograd"),
    ],
)
def test_winograd_refuses_shapes_it_cannot_run(kwargs, match):
    x = np.ones((1, 2, 9, 9), kwargs["dtype"])
    w = np.ones((3, 2, kwargs["k"], kwargs["k"]), kwargs["dtype"])
    with pytest.raises(ValueError, match=match):
        _C.conv2d_forward(x, w, None, kwargs["stride"], kwargs["padding"], ONE, 1, algo="winograd")
