"""CUDA tensor-core gemm (csrc/cuda/gemm_tc.cu via dlcore.cuda.kernels.gemm_tc) against a float64
NumPy oracle, and dlcore.set_matmul_precision on the GPU (matmul and linear route float32 GEMMs
by it; "highest" keeps the FP32 kernel).

Tolerance, a worst-case bound (not a statistical one), abs_ref = |alpha| |op(A)| @ |op(B)| +
|beta| |C| + |bias| as in test_cuda_gemm.py:
    |out - ref| <= (u_prod + 2 (K + 2) 2^-23) * abs_ref
  - u_prod: each input is rounded to the mode's format, relative error u = 2^-11 (TF32, 10
    fraction bits, round to nearest: the mma.sync kernels) or 2^-8 (BF16, 7 fraction bits); the
    Hopper wgmma kernel (tile 256) truncates TF32 instead (its tensor cores drop the low 13 bits of
    each FP32), u = 2^-10. A product of two such inputs is off by at most (1 + u)^2 - 1 = 2u + u^2
    (the product itself is exact in the tensor core): the bound takes TF32's worse case, 2^-9 +
    2^-20 (~2e-3), and 2^-7 + 2^-16 for BF16 (~8e-3);
  - the sums: K additions in FP32 plus alpha, beta and bias (K + 3 roundings). NVIDIA does not
    specify the tensor cores' accumulation rounding (it may truncate), so each counts 1 ulp
    (2^-23) and the bound takes K + 2 of them twice.
  For random inputs the typical error is far below this (~3e-4 * sqrt(K) relative to |ref| for
  TF32), so test_rounding_matches_the_documented_format also checks the tighter statement:
  against a reference built from inputs pre-rounded in NumPy (TF32 round-half-away, or truncated
  for the wgmma kernel; BF16 round-half-even), only the accumulation term remains. The integer-exact cases catch indexing
  bugs that loose bounds hide; test_precision_levels_are_distinguishable checks that each mode
  really computes at its precision.
Run: PYTHONPATH=python python3 -m pytest tests/cuda/test_cuda_gemm_tc.py -q -rs
"""
import itertools

import numpy as np
import pytest

import dlcore
import dlcore.cuda
import dlcore.nn.functional as F
from dlcore import _C, precision
from dlcore.cuda.array import broadcast_to, from_numpy
from dlcore.cuda.kernels.gemm import gemm, gemm_with_tile
from dlcore.cuda.kernels.gemm_tc import gemm_tc, gemm_tc_with_tile
from helpers import _assert_within, assert_close_reduction


def _tensor_cores_here():
    return dlcore.cuda.is_available() and _C.cuda.gemm_tc_supported(0)


def _wgmma_here():
    return _tensor_cores_here() and _C.cuda.gemm_wgmma_available(0)


pytestmark = pytest.mark.skipif(not _tensor_cores_here(), reason="no CUDA device of compute capability >= 8.0")
WGMMA = pytest.mark.skipif(not _wgmma_here(), reason="tile 256 (wgmma) needs an sm_90 GPU and a build with sm_90a code")

# (mode, tile): the mma.sync block tiles 64 and 128, and 256, the Hopper wgmma kernel (128 x 256).
KERNELS = [pytest.param("tf32", 64, id="tf32-64"), pytest.param("tf32", 128, id="tf32-128"),
           pytest.param("tf32", 256, id="tf32-wgmma", marks=WGMMA),
           pytest.param("bf16", 64, id="bf16-64"), pytest.param("bf16", 128, id="bf16-128"),
           pytest.param("bf16", 256, id="bf16-wgmma", marks=WGMMA)]
TRANSPOSES = list(itertools.product([False, True], repeat=2))
TRANS_IDS = ["NN", "NT", "TN", "TT"]
SIZES = [1, 2, 3, 7, 16, 31, 33, 64, 65, 70]
U_PRODUCT = {"tf32": 2.0**-9 + 2.0**-20, "bf16": 2.0**-7 + 2.0**-16}
ULP32 = 2.0**-23


@pytest.fixture(autouse=True)
def restore_precision():
    before = precision.get_matmul_precision()
    yield
    precision.set_matmul_precision(before)


def dev(x):
    return from_numpy(np.ascontiguousarray(x), 0)


def operands(rng, M, N, K, ta=False, tb=False, batch_a=None, batch_b=None):
    """Random float32 A, B in [-1, 1) stored as the kernel reads them ((K, M) when ta, (N, K) when tb)."""
    a_shape = ((K, M) if ta else (M, K)) if batch_a is None else (batch_a,) + ((K, M) if ta else (M, K))
    b_shape = ((N, K) if tb else (K, N)) if batch_b is None else (batch_b,) + ((N, K) if tb else (K, N))
    return rng.uniform(-1, 1, a_shape).astype(np.float32), rng.uniform(-1, 1, b_shape).astype(np.float32)


def reference(A, B, ta, tb, alpha=1.0, beta=0.0, C=None, bias=None, relu=False):
    """(ref, abs_ref) in float64 for host arrays."""
    a = np.swapaxes(A.astype(np.float64), -1, -2) if ta else A.astype(np.float64)
    b = np.swapaxes(B.astype(np.float64), -1, -2) if tb else B.astype(np.float64)
    ref = alpha * (a @ b)
    abs_ref = abs(alpha) * (np.abs(a) @ np.abs(b))
    if beta != 0:
        ref = ref + beta * C.astype(np.float64)
        abs_ref = abs_ref + abs(beta) * np.abs(C.astype(np.float64))
    if bias is not None:
        ref = ref + bias.astype(np.float64)
        abs_ref = abs_ref + np.abs(bias.astype(np.float64))
    if relu:
        ref = np.maximum(ref, 0)
    return ref, abs_ref


def check(out, ref, abs_ref, K, mode, what):
    assert out.dtype == np.float32, f"{what}: dtype {out.dtype}"
    _assert_within(out, ref, (U_PRODUCT[mode] + 2 * (K + 2) * ULP32) * abs_ref + 1e-30, what)


def run_case(rng, M, N, K, mode, tile, ta, tb):
    A, B = operands(rng, M, N, K, ta, tb)
    out = gemm_tc_with_tile(tile, dev(A), dev(B), None, ta, tb, mode=mode)
    ref, abs_ref = reference(A, B, ta, tb)
    check(out.get(), ref, abs_ref, K, mode, f"gemm_tc {mode} tile={tile} M={M} N={N} K={K} ta={ta} tb={tb}")


@pytest.mark.parametrize("mode,tile", KERNELS)
@pytest.mark.parametrize("ta,tb", TRANSPOSES, ids=TRANS_IDS)
def test_sizes_around_the_tiles(rng, mode, tile, ta, tb):
    """A sample of (M, N, K) over 1..70 plus corners, primes, 128 +- 1 and real model shapes
    (LeNet fc1, conv1 as im2col). Contiguous operands: 16-byte copies when the row length is a
    multiple of 4, 4-byte copies otherwise (tf32), both covered by the sample."""
    triples = list(itertools.product(SIZES, repeat=3))
    picked = [triples[i] for i in rng.choice(len(triples), 40, replace=False)]
    picked += [(1, 1, 1), (70, 70, 70), (1, 70, 1), (70, 1, 65), (127, 131, 137), (131, 127, 129),
               (129, 128, 127), (64, 120, 400), (6, 784, 25), (64, 64, 64), (128, 128, 36), (96, 200, 100)]
    for M, N, K in picked:
        run_case(rng, M, N, K, mode, tile, ta, tb)


@pytest.mark.parametrize("mode", ["tf32", "bf16"])
def test_auto_tile_agrees_with_reference(rng, mode):
    for M, N, K in [(300, 260, 70), (2048, 640, 24), (64, 4096, 256)]:  # few and many 128-tiles, skinny
        run_case(rng, M, N, K, mode, 0, False, False)


@pytest.mark.parametrize("mode,tile", KERNELS)
@pytest.mark.parametrize("ta,tb", TRANSPOSES, ids=TRANS_IDS)
def test_batched_and_broadcast_batches(rng, mode, tile, ta, tb):
    M, N, K = 67, 132, 36
    name = f"{mode} tile={tile} ta={ta} tb={tb}"
    for batch_a, batch_b in [(5, 5), (1, 5), (5, 1), (None, 4), (3, None)]:
        A, B = operands(rng, M, N, K, ta, tb, batch_a, batch_b)
        out = gemm_tc_with_tile(tile, dev(A), dev(B), None, ta, tb, mode=mode).get()
        ref, abs_ref = reference(A, B, ta, tb)
        check(out, ref, abs_ref, K, mode, f"gemm_tc batch {batch_a} x {batch_b} {name}")
    A, B = operands(rng, M, N, K, ta, tb, 1, 4)
    a = broadcast_to(dev(A), (4,) + A.shape[1:])
    assert a.strides[0] == 0
    out = gemm_tc_with_tile(tile, a, dev(B), None, ta, tb, mode=mode).get()
    ref, abs_ref = reference(np.broadcast_to(A, (4,) + A.shape[1:]), B, ta, tb)
    check(out, ref, abs_ref, K, mode, f"gemm_tc stride-0 batch {name}")


@pytest.mark.parametrize("mode,tile", KERNELS)
@pytest.mark.parametrize("ta,tb", TRANSPOSES, ids=TRANS_IDS)
def test_alpha_beta_bias_relu(rng, mode, tile, ta, tb):
    M, N, K = 70, 65, 33
    A, B = operands(rng, M, N, K, ta, tb)
    C0 = rng.uniform(-1, 1, (M, N)).astype(np.float32)
    bias = rng.uniform(-1, 1, N).astype(np.float32)
    name = f"{mode} tile={tile} ta={ta} tb={tb}"
    for alpha, beta, with_bias, relu in [(-1.5, 0.75, False, False), (0.5, 1.0, True, True), (2.0, 0.0, True, False),
                                         (1.0, 0.0, True, True), (0.0, 1.0, False, False), (1.0, 0.0, False, True)]:
        C_host = C0 if beta != 0 else np.full((M, N), np.nan, np.float32)  # beta == 0 must not read C
        C = dev(C_host)
        b = dev(bias) if with_bias else None
        out = gemm_tc_with_tile(tile, dev(A), dev(B), C, ta, tb, alpha, beta, b, relu, mode=mode)
        assert out is C
        ref, abs_ref = reference(A, B, ta, tb, alpha, beta, C_host, bias if with_bias else None, relu)
        check(out.get(), ref, abs_ref, K, mode, f"gemm_tc alpha={alpha} beta={beta} bias={with_bias} relu={relu} {name}")


@pytest.mark.parametrize("mode,tile", KERNELS)
def test_integer_inputs_are_exact(rng, mode, tile):
    """Small integers are exact in TF32 and BF16 and every partial sum (< 2^24) is exact in FP32,
    so the result must equal the int64 product bit for bit (catches an element read from the
    wrong place). Odd and 4-aligned row lengths: both copy widths."""
    for (M, N, K), (ta, tb) in itertools.product([(97, 131, 300), (128, 129, 17), (5, 3, 1000), (64, 68, 36)],
                                                 TRANSPOSES):
        A = rng.integers(-4, 5, (K, M) if ta else (M, K))
        B = rng.integers(-4, 5, (N, K) if tb else (K, N))
        bias = rng.integers(-9, 10, N)
        want = (A.T if ta else A) @ (B.T if tb else B) + bias
        out = gemm_tc_with_tile(tile, dev(A.astype(np.float32)), dev(B.astype(np.float32)), None, ta, tb,
                                bias=dev(bias.astype(np.float32)), mode=mode).get()
        assert np.array_equal(out, want.astype(np.float32)), \
            f"gemm_tc {mode} tile={tile} integer M={M} N={N} K={K} ta={ta} tb={tb}"


@pytest.mark.parametrize("mode,tile", KERNELS)
def test_strided_views_and_both_copy_widths(rng, mode, tile):
    """Leading dimensions that are and are not multiples of 4 floats, a start 4 bytes past a
    16-byte boundary (tf32 then takes 4-byte copies at the 64-tile), transposed views, a
    non-unit column stride (copied first) and a padded 3-D batch."""
    M, N, K = 45, 70, 38
    for extra_a, extra_b, col0 in [(13, 9, 5), (2, 2, 4), (6, 10, 1), (14, 6, 0)]:
        big_a = rng.uniform(-1, 1, (M + 3, K + extra_a + col0)).astype(np.float32)
        big_b = rng.uniform(-1, 1, (K + 2, N + extra_b + col0)).astype(np.float32)
        A, B = big_a[2:2 + M, col0:col0 + K], big_b[1:1 + K, col0:col0 + N]
        a, b = dev(big_a)[2:2 + M, col0:col0 + K], dev(big_b)[1:1 + K, col0:col0 + N]
        ref, abs_ref = reference(A, B, False, False)
        what = f"gemm_tc {mode} tile={tile} lda={K + extra_a + col0} ldb={N + extra_b + col0} col0={col0}"
        check(gemm_tc_with_tile(tile, a, b, mode=mode).get(), ref, abs_ref, K, mode, what)
        ref_t, abs_t = reference(A.T, B.T, True, True)
        check(gemm_tc_with_tile(tile, a.T, b.T, None, True, True, mode=mode).get(), ref_t, abs_t, K, mode,
              what + " flags on views")
    A, B = operands(rng, M, N, K)
    at, bt = dev(np.ascontiguousarray(A.T)).T, dev(np.ascontiguousarray(B.T)).T
    ref, abs_ref = reference(A, B, False, False)
    check(gemm_tc_with_tile(tile, at, bt, mode=mode).get(), ref, abs_ref, K, mode, "gemm_tc transposed views")
    big = rng.uniform(-1, 1, (M, 2 * K)).astype(np.float32)
    A2, a2 = big[:, ::2], dev(big)[:, ::2]
    ref2, abs2 = reference(A2, B, False, False)
    check(gemm_tc_with_tile(tile, a2, dev(B), mode=mode).get(), ref2, abs2, K, mode, "gemm_tc non-unit column stride")
    big3 = rng.uniform(-1, 1, (3, M + 2, K + 5)).astype(np.float32)
    A3, a3 = big3[:, 1:M + 1, 2:K + 2], dev(big3)[:, 1:M + 1, 2:K + 2]
    ref3, abs3 = reference(A3, B, False, False)
    check(gemm_tc_with_tile(tile, a3, dev(B), mode=mode).get(), ref3, abs3, K, mode, "gemm_tc padded batch")


@pytest.mark.parametrize("mode,tile", KERNELS)
def test_raw_binding_padded_c_and_broadcast_a(rng, mode, tile):
    """ldc > N and stride_c > M * ldc leave the padding untouched (poisoned with NaN here);
    stride_a = 0 reuses one A for every batch item."""
    M, N, K, batch, ldc = 33, 70, 29, 3, 77
    stride_c = (M + 2) * ldc
    A, B = operands(rng, M, N, K, False, True, None, batch)  # A (M, K), B (batch, N, K)
    C_host = np.full(batch * stride_c, np.nan, np.float32)
    a, b, c = dev(A), dev(B), dev(C_host)
    _C.cuda.gemm_tc(mode, False, True, M, N, K, 1.0, 0.0, a.ptr, K, 0, b.ptr, K, N * K,
                    c.ptr, ldc, stride_c, batch, 0, False, 0, tile)
    out = c.get()
    inner = np.lib.stride_tricks.as_strided(out, (batch, M, N), (stride_c * 4, ldc * 4, 4))
    ref, abs_ref = reference(np.broadcast_to(A, (batch, M, K)), B, False, True)
    check(np.array(inner), ref, abs_ref, K, mode, f"gemm_tc raw padded C {mode} tile={tile}")
    written = np.zeros(batch * stride_c, bool)
    np.lib.stride_tricks.as_strided(written, inner.shape, (stride_c, ldc, 1))[...] = True
    assert np.isnan(out[~written]).all(), "gemm_tc wrote outside C[:, :M, :N]"


@WGMMA
@pytest.mark.parametrize("mode", ["tf32", "bf16"])
def test_wgmma_many_tiles_and_slices(rng, mode):
    """The wgmma kernel over more tiles than SMs (each block walks several, its stage ring and
    barrier phases running on across tiles), K of many 128-byte slices with a tail, and partial
    edge tiles; integer inputs give the exact product, random ones the bound. Then bitwise the
    same on a second run."""
    for (M, N, K, batch), (ta, tb) in zip([(517, 1031, 777, None), (200, 300, 100, 40), (129, 257, 4000, None),
                                           (1000, 60, 300, 3)], TRANSPOSES):
        shape_a = ((K, M) if ta else (M, K)) if batch is None else (batch,) + ((K, M) if ta else (M, K))
        shape_b = ((N, K) if tb else (K, N)) if batch is None else (batch,) + ((N, K) if tb else (K, N))
        A, B = rng.integers(-4, 5, shape_a), rng.integers(-4, 5, shape_b)
        want = np.swapaxes(A, -1, -2) if ta else A
        want = want @ (np.swapaxes(B, -1, -2) if tb else B)
        out = gemm_tc_with_tile(256, dev(A.astype(np.float32)), dev(B.astype(np.float32)), None, ta, tb,
                                mode=mode).get()
        assert np.array_equal(out, want.astype(np.float32)), \
            f"gemm_tc {mode} wgmma integer M={M} N={N} K={K} batch={batch} ta={ta} tb={tb}"
        A, B = A.astype(np.float32) + rng.uniform(-0.5, 0.5, shape_a).astype(np.float32), \
            B.astype(np.float32) + rng.uniform(-0.5, 0.5, shape_b).astype(np.float32)
        a, b = dev(A), dev(B)
        out = gemm_tc_with_tile(256, a, b, None, ta, tb, mode=mode).get()
        ref, abs_ref = reference(A, B, ta, tb)
        check(out, ref, abs_ref, K, mode, f"gemm_tc {mode} wgmma M={M} N={N} K={K} batch={batch} ta={ta} tb={tb}")
        again = gemm_tc_with_tile(256, a, b, None, ta, tb, mode=mode).get()
        assert out.tobytes() == again.tobytes(), f"gemm_tc {mode} wgmma is not bitwise deterministic"


def test_wgmma_tile_is_refused_where_it_cannot_run(rng):
    if _wgmma_here():
        pytest.skip("this device and build run the wgmma kernel")
    A, B = operands(rng, 8, 8, 8)
    with pytest.raises(ValueError, match="gemm_tc: tile = 256 .*needs an sm_90 GPU"):
        gemm_tc_with_tile(256, dev(A), dev(B), mode="tf32")


@pytest.mark.parametrize("mode", ["tf32", "bf16"])
def test_batches_past_the_grid_limit(rng, mode):
    """More than 65535 batch items (grid z; the kernels loop over the rest)."""
    A, B = operands(rng, 3, 5, 7, batch_a=70000, batch_b=70000)
    out = gemm_tc(dev(A), dev(B), mode=mode).get()
    ref, abs_ref = reference(A, B, False, False)
    check(out, ref, abs_ref, 7, mode, f"gemm_tc {mode} batch 70000")


@pytest.mark.parametrize("mode", ["tf32", "bf16"])
def test_empty_and_k0(rng, mode):
    M, N = 5, 7
    C_host = rng.uniform(-1, 1, (M, N)).astype(np.float32)
    bias = rng.uniform(-1, 1, N).astype(np.float32)
    A, B = np.empty((M, 0), np.float32), np.empty((0, N), np.float32)
    out = gemm_tc(dev(A), dev(B), dev(C_host), beta=0.5, bias=dev(bias), relu=True, mode=mode).get()
    assert np.allclose(out, np.maximum(0.5 * C_host.astype(np.float64) + bias, 0), rtol=1e-6, atol=0)
    out = gemm_tc(dev(A), dev(B), mode=mode).get()
    assert out.shape == (M, N) and not out.any()
    assert gemm_tc(dev(np.ones((0, 3), np.float32)), dev(np.ones((3, N), np.float32)), mode=mode).shape == (0, N)


def _round_like_the_tensor_cores(x, mode, tile):
    """x (float32) in the format the kernel multiplies, as float64: TF32 (10 fraction bits) rounded
    half away from zero (cvt.rna, the mma.sync tiles) or truncated (tile 256, wgmma), or BF16 (7
    fraction bits, half to even)."""
    bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    if mode == "tf32":
        bits = (bits if tile == 256 else bits + 0x1000) & 0xFFFFE000
    else:
        bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


@pytest.mark.parametrize("mode,tile", KERNELS)
def test_rounding_matches_the_documented_format(rng, mode, tile):
    """Against a reference from inputs pre-rounded in NumPy, only the FP32 accumulation error
    may remain: |out - ref_rounded| <= 2 (K + 2) 2^-23 abs_ref. A kernel that truncated instead
    of rounding, or rounded to another format, fails this."""
    for (M, N, K), (ta, tb) in itertools.product([(70, 65, 300), (128, 132, 64)], TRANSPOSES):
        A, B = operands(rng, M, N, K, ta, tb)
        a, b = _round_like_the_tensor_cores(A, mode, tile), _round_like_the_tensor_cores(B, mode, tile)
        ref = (a.T if ta else a) @ (b.T if tb else b)
        abs_ref = np.abs(a.T if ta else a) @ np.abs(b.T if tb else b)
        out = gemm_tc_with_tile(tile, dev(A), dev(B), None, ta, tb, mode=mode).get()
        _assert_within(out, ref, 2 * (K + 2) * ULP32 * abs_ref + 1e-30,
                       f"gemm_tc {mode} tile={tile} vs pre-rounded inputs M={M} N={N} K={K} ta={ta} tb={tb}")


def test_precision_levels_are_distinguishable(rng):
    """FP32 (highest) << TF32 (high) << BF16 (medium) in max error on one random product: each
    setting really computes at its precision (expected ratios ~1e3 and ~8)."""
    M = N = 256
    K = 512
    A, B = operands(rng, M, N, K)
    ref, _ = reference(A, B, False, False)
    a, b = dev(A), dev(B)
    err = {}
    for value in ["highest", "high", "medium"]:
        dlcore.set_matmul_precision(value)
        err[value] = np.abs(gemm(a, b).get() - ref).max()
    assert err["highest"] * 30 < err["high"] and err["high"] * 3 < err["medium"], err


@pytest.mark.parametrize("mode", ["tf32", "bf16"])
def test_4096_cubed_and_bitwise_determinism(rng, mode):
    n = 4096
    A, B = operands(rng, n, n, n)
    a, b = dev(A), dev(B)
    first = gemm_tc(a, b, mode=mode).get()
    rows = np.sort(rng.choice(n, 96, replace=False))  # a float64 reference for a sample of rows
    ref, abs_ref = reference(A[rows], B, False, False)
    check(first[rows], ref, abs_ref, n, mode, f"gemm_tc {mode} 4096^3 (sampled rows)")
    again = gemm_tc(a, b, mode=mode).get()
    assert first.tobytes() == again.tobytes(), f"gemm_tc {mode} is not bitwise deterministic"
    A, B = operands(rng, 777, 555, 999, True, True)
    runs = [gemm_tc(dev(A), dev(B), None, True, True, mode=mode).get().tobytes() for _ in range(2)]
    assert runs[0] == runs[1], f"gemm_tc {mode} TT is not bitwise deterministic"


def test_matmul_and_linear_follow_the_precision(rng):
    """Through dlcore.matmul and F.linear on CUDA tensors: "highest" gives the FP32 kernel's
    bits (FP32 tolerance), "high"/"medium" give gemm_tc's tf32/bf16 bits, and float64 is the
    same under every setting."""
    M, N, K = 130, 70, 300
    A, B = operands(rng, M, N, K)
    ta, tb = dlcore.tensor(A).to("cuda"), dlcore.tensor(B).to("cuda")
    ref, abs_ref = reference(A, B, False, False)

    dlcore.set_matmul_precision("highest")
    out = dlcore.matmul(ta, tb).cpu().numpy()
    assert_close_reduction(out, ref, abs_ref, K + 2, np.float32, what="matmul float32 under 'highest'")
    assert out.tobytes() == gemm_with_tile(0, dev(A), dev(B)).get().tobytes(), "'highest' must run the FP32 kernel"

    for value, mode in [("high", "tf32"), ("medium", "bf16")]:
        dlcore.set_matmul_precision(value)
        out = dlcore.matmul(ta, tb).cpu().numpy()
        check(out, ref, abs_ref, K, mode, f"matmul float32 under {value!r}")
        assert out.tobytes() == gemm_tc(dev(A), dev(B), mode=mode).get().tobytes(), f"{value!r} must run {mode}"
        x = dlcore.tensor(A, requires_grad=True)
        w = dlcore.tensor(B.T.copy(), requires_grad=True)  # (N, K): linear computes x @ w^T
        xc, wc = x.to("cuda"), w.to("cuda")
        y = F.linear(xc, wc)
        check(y.detach().cpu().numpy(), ref, abs_ref, K, mode, f"linear forward under {value!r}")
        y.sum().backward()
        g_ref, g_abs = reference(np.ones((M, N), np.float32), B, False, True)  # dL/dx = 1 @ w
        check(x.grad.numpy(), g_ref, g_abs, N, mode, f"linear grad_x under {value!r}")

    D64 = [x.astype(np.float64) for x in (A, B)]
    dlcore.set_matmul_precision("highest")
    want = dlcore.matmul(dlcore.tensor(D64[0]).to("cuda"), dlcore.tensor(D64[1]).to("cuda")).cpu().numpy()
    dlcore.set_matmul_precision("medium")
    got = dlcore.matmul(dlcore.tensor(D64[0]).to("cuda"), dlcore.tensor(D64[1]).to("cuda")).cpu().numpy()
    assert got.dtype == np.float64 and got.tobytes() == want.tobytes(), "float64 must ignore the precision"


def test_bad_inputs_raise_clear_errors(rng):
    A = dev(rng.uniform(-1, 1, (4, 3)).astype(np.float32))
    B = dev(rng.uniform(-1, 1, (3, 5)).astype(np.float32))
    with pytest.raises(TypeError, match="gemm_tc: A must be float32 .*got float64"):
        gemm_tc(dev(np.ones((4, 3))), dev(np.ones((3, 5))), mode="tf32")
    with pytest.raises(ValueError, match="gemm_tc: mode must be 'tf32', 'bf16' or None"):
        gemm_tc(A, B, mode="fp16")
    precision.set_matmul_precision("highest")
    with pytest.raises(ValueError, match="gemm_tc: the matmul precision is 'highest'"):
        gemm_tc(A, B)
    with pytest.raises(ValueError, match=r"inner dimensions differ: op\(A\) is \(3, 4\)"):
        gemm_tc(A, B, trans_a=True, mode="bf16")
    with pytest.raises(ValueError, match="tile = 96 is not one of 0 \\(auto\\), 64, 128"):
        gemm_tc_with_tile(96, A, B, mode="tf32")
    C = dev(np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"gemm_tc: lda = 2 must be >= max\(1, K\) = 3"):
        _C.cuda.gemm_tc("tf32", False, False, 4, 5, 3, 1.0, 0.0, A.ptr, 2, 0, B.ptr, 5, 0, C.ptr, 5, 20, 1, 0,
                        False, 0)
    with pytest.raises(ValueError, match='gemm_tc: mode must be "tf32" or "bf16", got "fp8"'):
        _C.cuda.gemm_tc("fp8", False, False, 4, 5, 3, 1.0, 0.0, A.ptr, 3, 0, B.ptr, 5, 0, C.ptr, 5, 20, 1, 0,
                        False, 0)
