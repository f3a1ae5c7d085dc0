"""CUDA gemm (csrc/cuda/gemm.cu via dlcore.cuda.kernels.gemm) against a float64 NumPy oracle.

C := alpha * op(A) @ op(B) + beta * C, then + bias and ReLU, with the K-scaled tolerance of
STYLE.md (abs_ref = |alpha| |op(A)| @ |op(B)| + |beta| |C| + |bias|): all four transposes,
every kernel forced (KERNELS: the register-staged float32 64/128 and float64 64 tiles, the
three cp.async tiles unsplit and split-K at several counts) over sizes around the tiles and
primes, batches and broadcast batches, alpha/beta with C poisoned by NaN when beta == 0,
strided and transposed views, padded C through the raw binding, both cp.async copy widths
(16-byte aligned operands and misaligned ones), launches past the grid limits, an
integer-exact case (bitwise), 1024^3 and run-to-run bitwise determinism.
Run: PYTHONPATH=python python3 -m pytest tests/cuda/test_cuda_gemm.py -q -rs
"""
import itertools

import numpy as np
import pytest

import dlcore
import dlcore.cuda
from dlcore import _C
from dlcore.cuda.array import DTYPE_CODE, broadcast_to, from_numpy
from dlcore.cuda.kernels.gemm import choice, gemm, gemm_with_tile, variants
from helpers import assert_close_reduction

pytestmark = pytest.mark.skipif(not dlcore.cuda.is_available(), reason="no CUDA device")

# (dtype, kernel, splits): every kernel gemm can run (csrc/cuda/gemm.h's table), forced, the
# cp.async ones unsplit (splits 1) and split-K at several counts (a count above a problem's
# K-slices runs as many ranges as there are slices). The staged kernels take splits 0.
# test_kernel_list_matches_the_binding keeps the names in step with the C++ list.
KERNELS = [
    (np.float32, "staged_64x64x16", 0), (np.float32, "staged_128x128x8", 0), (np.float64, "staged_64x64x16", 0),
    (np.float32, "cp_async_128x128x16", 1), (np.float32, "cp_async_128x256x8", 1),
    (np.float32, "cp_async_64x64x16", 1),
    (np.float32, "cp_async_64x64x16", 2), (np.float32, "cp_async_128x128x16", 3),
    (np.float32, "cp_async_128x256x8", 5), (np.float32, "cp_async_64x64x16", 16),
]
KERNEL_IDS = [f"{np.dtype(d).name}-{k}" + (f"-split{s}" if s > 1 else "") for d, k, s in KERNELS]
CP_ASYNC = ["cp_async_128x128x16", "cp_async_128x256x8", "cp_async_64x64x16"]
TRANSPOSES = list(itertools.product([False, True], repeat=2))
TRANS_IDS = ["NN", "NT", "TN", "TT"]
SIZES = [1, 2, 3, 7, 16, 31, 33, 64, 65, 70]


def dev(x):
    return from_numpy(x, 0)


def operands(rng, M, N, K, dtype, ta=False, tb=False, batch_a=None, batch_b=None):
    """Random A, B in [-1, 1) stored as the kernel reads them ((K, M) when ta, (N, K) when tb)."""
    a_shape = ((K, M) if ta else (M, K)) if batch_a is None else (batch_a,) + ((K, M) if ta else (M, K))
    b_shape = ((N, K) if tb else (K, N)) if batch_b is None else (batch_b,) + ((N, K) if tb else (K, N))
    return rng.uniform(-1, 1, a_shape).astype(dtype), rng.uniform(-1, 1, b_shape).astype(dtype)


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


def check(out, ref, abs_ref, K, dtype, what):
    """K + 2 terms: the K products plus the beta and bias additions."""
    assert out.dtype == dtype, f"{what}: dtype {out.dtype}"
    assert_close_reduction(out, ref, abs_ref, K + 2, dtype, what=what)


def run_case(rng, M, N, K, dtype, kernel, ta, tb, splits=0):
    A, B = operands(rng, M, N, K, dtype, ta, tb)
    out = gemm_with_tile(kernel, dev(A), dev(B), None, ta, tb, splits=splits)
    ref, abs_ref = reference(A, B, ta, tb)
    check(out.get(), ref, abs_ref, K, dtype,
          f"gemm {kernel} splits={splits} M={M} N={N} K={K} ta={ta} tb={tb} {np.dtype(dtype).name}")


@pytest.mark.parametrize("dtype,kernel,splits", KERNELS, ids=KERNEL_IDS)
@pytest.mark.parametrize("ta,tb", TRANSPOSES, ids=TRANS_IDS)
def test_sizes_around_the_tiles(rng, dtype, kernel, splits, ta, tb):
    """A sample of (M, N, K) over 1..70 (edges of the 64-tile, inside the 128-tile) plus the
    corners, primes, 128 +- 1, 256 +- 1 and real model shapes (LeNet fc1 and conv1 as im2col).
    The sizes that are multiples of 4 give the cp.async kernels 16-byte rows (row16 copies),
    the others 4-byte copies."""
    triples = list(itertools.product(SIZES, repeat=3))
    picked = [triples[i] for i in rng.choice(len(triples), 40, replace=False)]
    picked += [(1, 1, 1), (70, 70, 70), (1, 70, 1), (70, 1, 65), (127, 131, 137), (131, 127, 129),
               (129, 128, 127), (64, 120, 400), (6, 784, 25), (129, 257, 33), (128, 256, 16)]
    for M, N, K in picked:
        run_case(rng, M, N, K, dtype, kernel, ta, tb, splits)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_auto_tile_and_both_f32_tiles_agree_with_reference(rng, dtype):
    for M, N, K in [(300, 260, 70), (2048, 640, 24), (64, 1000, 1024), (1000, 64, 576)]:  # few and many tiles
        run_case(rng, M, N, K, dtype, 0, False, False)


@pytest.mark.parametrize("kernel", CP_ASYNC)
def test_cp_async_with_the_rules_split_count(rng, kernel):
    """splits=0: the rule's split-K count for the forced kernel (several on skinny shapes)."""
    for M, N, K in [(64, 1024, 1024), (1024, 64, 576), (256, 120, 400), (500, 500, 64)]:
        run_case(rng, M, N, K, np.float32, kernel, False, False, 0)
        run_case(rng, M, N, K, np.float32, kernel, True, True, 0)


@pytest.mark.parametrize("dtype,kernel,splits", KERNELS, ids=KERNEL_IDS)
@pytest.mark.parametrize("ta,tb", TRANSPOSES, ids=TRANS_IDS)
def test_batched_and_broadcast_batches(rng, dtype, kernel, splits, ta, tb):
    M, N, K = 67, 131, 35
    name = f"{kernel} splits={splits} ta={ta} tb={tb} {np.dtype(dtype).name}"
    for batch_a, batch_b in [(5, 5), (1, 5), (5, 1), (None, 4), (3, None)]:
        A, B = operands(rng, M, N, K, dtype, ta, tb, batch_a, batch_b)
        out = gemm_with_tile(kernel, dev(A), dev(B), None, ta, tb, splits=splits).get()
        ref, abs_ref = reference(A, B, ta, tb)
        check(out, ref, abs_ref, K, dtype, f"gemm batch {batch_a} x {batch_b} {name}")
    # A batch broadcast by a stride-0 view (what matmul's broadcast_to passes).
    A, B = operands(rng, M, N, K, dtype, ta, tb, 1, 4)
    a = broadcast_to(dev(A), (4,) + A.shape[1:])
    assert a.strides[0] == 0
    out = gemm_with_tile(kernel, a, dev(B), None, ta, tb, splits=splits).get()
    ref, abs_ref = reference(np.broadcast_to(A, (4,) + A.shape[1:]), B, ta, tb)
    check(out, ref, abs_ref, K, dtype, f"gemm stride-0 batch {name}")


@pytest.mark.parametrize("dtype,kernel,splits", KERNELS, ids=KERNEL_IDS)
@pytest.mark.parametrize("ta,tb", TRANSPOSES, ids=TRANS_IDS)
def test_alpha_beta_bias_relu(rng, dtype, kernel, splits, ta, tb):
    # N = 65: partial column groups at the edge; N = 68: every group whole (float4 epilogue).
    for M, N, K in [(70, 65, 33), (70, 68, 100)]:
        A, B = operands(rng, M, N, K, dtype, ta, tb)
        C0 = rng.uniform(-1, 1, (M, N)).astype(dtype)
        bias = rng.uniform(-1, 1, N).astype(dtype)
        name = f"{kernel} splits={splits} M={M} N={N} K={K} ta={ta} tb={tb} {np.dtype(dtype).name}"
        for alpha, beta, with_bias, relu in [(-1.5, 0.75, False, False), (0.5, 1.0, True, True),
                                             (2.0, 0.0, True, False), (1.0, 0.0, True, True),
                                             (0.0, 1.0, False, False), (1.0, 0.0, False, True)]:
            C_host = C0 if beta != 0 else np.full((M, N), np.nan, dtype)  # beta == 0 must not read C
            C = dev(C_host)
            b = dev(bias) if with_bias else None
            out = gemm_with_tile(kernel, dev(A), dev(B), C, ta, tb, alpha, beta, b, relu, splits=splits)
            assert out is C
            ref, abs_ref = reference(A, B, ta, tb, alpha, beta, C_host, bias if with_bias else None, relu)
            check(out.get(), ref, abs_ref, K, dtype,
                  f"gemm alpha={alpha} beta={beta} bias={with_bias} relu={relu} {name}")


@pytest.mark.parametrize("dtype,kernel,splits", KERNELS, ids=KERNEL_IDS)
def test_integer_inputs_are_exact(rng, dtype, kernel, splits):
    """Small integers: every partial sum is exact in any order, so the result must equal the
    int64 product bit for bit (catches an element read from the wrong place)."""
    for (M, N, K), (ta, tb) in itertools.product([(97, 131, 300), (128, 129, 17), (5, 3, 1000), (64, 256, 512)],
                                                 TRANSPOSES):
        A = rng.integers(-4, 5, (K, M) if ta else (M, K))
        B = rng.integers(-4, 5, (N, K) if tb else (K, N))
        bias = rng.integers(-9, 10, N)
        want = (A.T if ta else A) @ (B.T if tb else B) + bias
        out = gemm_with_tile(kernel, dev(A.astype(dtype)), dev(B.astype(dtype)), None, ta, tb,
                             bias=dev(bias.astype(dtype)), splits=splits).get()
        assert np.array_equal(out, want.astype(dtype)), \
            f"gemm integer {kernel} splits={splits} M={M} N={N} K={K} ta={ta} tb={tb}"


@pytest.mark.parametrize("dtype,kernel,splits", KERNELS, ids=KERNEL_IDS)
def test_strided_and_transposed_views(rng, dtype, kernel, splits):
    def run(*args, **kwargs):
        return gemm_with_tile(kernel, *args, **kwargs, splits=splits)

    M, N, K = 45, 70, 38
    big_a = rng.uniform(-1, 1, (M + 3, K + 13)).astype(dtype)
    big_b = rng.uniform(-1, 1, (K + 2, N + 9)).astype(dtype)
    A, B = big_a[2:2 + M, 5:5 + K], big_b[1:1 + K, 3:3 + N]  # row strides > cols
    a, b = dev(big_a)[2:2 + M, 5:5 + K], dev(big_b)[1:1 + K, 3:3 + N]
    assert a.strides[0] == (K + 13) * A.itemsize
    ref, abs_ref = reference(A, B, False, False)
    check(run(a, b).get(), ref, abs_ref, K, dtype, "gemm leading dims > cols")
    # Transposed views without flags (read as their base with the flag flipped) and with them.
    at, bt = dev(np.ascontiguousarray(A.T)).T, dev(np.ascontiguousarray(B.T)).T
    check(run(at, bt).get(), ref, abs_ref, K, dtype, "gemm transposed views")
    ref_t, abs_t = reference(A.T, B.T, True, True)
    check(run(a.T, b.T, None, True, True).get(), ref_t, abs_t, K, dtype, "gemm flags on views")
    # Non-unit element strides (copied first) and a padded 3-D batch.
    A2 = big_a[:M, ::2][:, :K // 2]
    a2 = dev(big_a)[:M, ::2][:, :K // 2]
    B2 = rng.uniform(-1, 1, (K // 2, N)).astype(dtype)
    ref2, abs2 = reference(A2, B2, False, False)
    check(run(a2, dev(B2)).get(), ref2, abs2, K // 2, dtype, "gemm non-unit column stride")
    big3 = rng.uniform(-1, 1, (3, M + 2, K + 5)).astype(dtype)
    A3, a3 = big3[:, 1:M + 1, 2:K + 2], dev(big3)[:, 1:M + 1, 2:K + 2]
    ref3, abs3 = reference(A3, B, False, False)
    check(run(a3, dev(B)).get(), ref3, abs3, K, dtype, "gemm padded batch")


@pytest.mark.parametrize("kernel", CP_ASYNC)
@pytest.mark.parametrize("ta,tb", TRANSPOSES, ids=TRANS_IDS)
def test_cp_async_copy_widths(rng, kernel, ta, tb):
    """The operands whose rows run along M or N (A with trans_a, B without trans_b) are copied
    16 bytes at a time when pointer, row stride and batch stride are multiples of 16 bytes,
    else 4 bytes at a time: the same problem through aligned views, a view one element past
    an aligned start, and a row stride of 4k + 2 floats must agree with the reference."""
    M, N, K = 68, 72, 52
    A, B = operands(rng, M, N, K, np.float32, ta, tb)
    ref, abs_ref = reference(A, B, ta, tb)
    for offset, extra in [(0, 0), (0, 4), (1, 0), (1, 3), (0, 2)]:
        big_a = np.zeros((A.shape[0], A.shape[1] + extra + offset), np.float32)
        big_b = np.zeros((B.shape[0], B.shape[1] + extra + offset), np.float32)
        big_a[:, offset:offset + A.shape[1]] = A
        big_b[:, offset:offset + B.shape[1]] = B
        a = dev(big_a)[:, offset:offset + A.shape[1]]
        b = dev(big_b)[:, offset:offset + B.shape[1]]
        for splits in (1, 2):
            out = gemm_with_tile(kernel, a, b, None, ta, tb, splits=splits).get()
            check(out, ref, abs_ref, K, np.float32, f"gemm {kernel} offset={offset} pad={extra} splits={splits}")


@pytest.mark.parametrize("kernel", CP_ASYNC)
def test_split_k_counts_and_determinism(rng, kernel):
    """Every split count from 1 to 64 on one problem: each matches the reference, integer
    inputs stay bitwise exact, and each count gives the same bits on a second run."""
    M, N, K = 67, 96, 1000
    A, B = operands(rng, M, N, K, np.float32)
    Ai, Bi = rng.integers(-4, 5, (M, K)), rng.integers(-4, 5, (K, N))
    ref, abs_ref = reference(A, B, False, False)
    a, b, ai, bi = dev(A), dev(B), dev(Ai.astype(np.float32)), dev(Bi.astype(np.float32))
    for splits in (1, 2, 3, 4, 7, 16, 63, 64):
        first = gemm_with_tile(kernel, a, b, splits=splits).get()
        check(first, ref, abs_ref, K, np.float32, f"gemm {kernel} splits={splits}")
        assert gemm_with_tile(kernel, a, b, splits=splits).get().tobytes() == first.tobytes(), \
            f"gemm {kernel} splits={splits} is not bitwise deterministic"
        exact = gemm_with_tile(kernel, ai, bi, splits=splits).get()
        assert np.array_equal(exact, (Ai @ Bi).astype(np.float32)), f"gemm integer {kernel} splits={splits}"


RULE_SCRIPT = """
import numpy as np
from dlcore.cuda.array import from_numpy
from dlcore.cuda.kernels.gemm import choice, gemm
rng = np.random.default_rng(7)
picked = set()
for M, N, K, ta, tb in [(64, 4096, 1024, False, False), (4096, 64, 576, False, True), (256, 120, 400, True, False),
                        (1024, 1024, 256, True, True), (2048, 1100, 96, False, False), (2100, 2100, 64, False, True),
                        (4200, 4200, 32, True, True)]:
    A = rng.integers(-4, 5, (K, M) if ta else (M, K)).astype(np.float32)
    B = rng.integers(-4, 5, (N, K) if tb else (K, N)).astype(np.float32)
    want = (A.T if ta else A).astype(np.int64) @ (B.T if tb else B).astype(np.int64)
    out = gemm(from_numpy(A, 0), from_numpy(B, 0), None, ta, tb).get()
    assert np.array_equal(out, want.astype(np.float32)), (M, N, K, ta, tb, choice(M, N, K))
    picked.add(choice(M, N, K))
assert choice(64, 4096, 1024)[1] > 1, choice(64, 4096, 1024)  # skinny: split-K
assert all(name.startswith("cp_async_") for name, _ in picked), picked  # the rule is on
assert choice(64, 64, 64, dtype=np.float64) == ("staged_64x64x16", 1)
print("rule ok", sorted(picked))
"""


def test_the_rule_under_its_environment_switch():
    """gemm's rule (on by default since kCpAsyncVerified; DLCORE_GEMM_CP_ASYNC=1 turns it on
    where that constant is false, read once a process): skinny shapes (split-K), mid and large
    grids (on an H100's 132 SMs both chosen cp.async kernels), integer-exact."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, DLCORE_GEMM_CP_ASYNC="1")
    run = subprocess.run([sys.executable, "-c", RULE_SCRIPT], env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0 and "rule ok" in run.stdout, run.stdout + run.stderr


def test_choice_names_a_kernel_of_the_list():
    table = variants()
    for M, N, K, batch in [(64, 4096, 1024, 1), (1024, 1024, 1024, 1), (8192, 8192, 64, 1), (5, 7, 0, 3)]:
        name, splits = choice(M, N, K, batch)
        assert name in table and splits >= 1 and (splits == 1 or table[name][2]), (M, N, K, name, splits)
    assert choice(100, 100, 100, dtype=np.float64) == ("staged_64x64x16", 1)


def test_kernel_list_matches_the_binding():
    """KERNELS names every kernel of _C.cuda.gemm_variants(), the one C++ list, so a new
    kernel cannot go untested."""
    table = variants()
    assert {k for _, k, _ in KERNELS} == set(table), "KERNELS is out of step with gemm_variants()"
    for dtype, kernel, splits in KERNELS:
        _, f64, split_k = table[kernel]
        assert f64 or dtype == np.float32, f"{kernel} does not run float64"
        assert split_k or splits <= 1, f"{kernel} does not split K"
    assert set(CP_ASYNC) == {k for k, (_, _, split_k) in table.items() if split_k}


@pytest.mark.parametrize("dtype,kernel,splits", KERNELS, ids=KERNEL_IDS)
def test_raw_binding_padded_c_and_broadcast_a(rng, dtype, kernel, splits):
    """The C++ contract the conv kernels use: ldc > N and stride_c > M * ldc leave the padding
    untouched (poisoned with NaN here); stride_a = 0 reuses one A for every batch item."""
    M, N, K, batch, ldc = 33, 70, 29, 3, 77
    stride_c = (M + 2) * ldc
    A, B = operands(rng, M, N, K, dtype, False, True, None, batch)  # A (M, K), B (batch, N, K)
    C_host = np.full(batch * stride_c, np.nan, dtype)
    a, b, c = dev(A), dev(B), dev(C_host)
    _C.cuda.gemm(DTYPE_CODE[np.dtype(dtype)], False, True, M, N, K, 1.0, 0.0, a.ptr, K, 0, b.ptr, K, N * K,
                 c.ptr, ldc, stride_c, batch, 0, False, 0, variants()[kernel][0], splits)
    out = c.get()
    inner = np.lib.stride_tricks.as_strided(out, (batch, M, N), (stride_c * out.itemsize, ldc * out.itemsize,
                                                                 out.itemsize))
    ref, abs_ref = reference(np.broadcast_to(A, (batch, M, K)), B, False, True)
    check(np.array(inner), ref, abs_ref, K, dtype, f"gemm raw padded C {kernel} splits={splits}")
    written = np.zeros(batch * stride_c, bool)
    np.lib.stride_tricks.as_strided(written, inner.shape, (stride_c, ldc, 1))[...] = True
    assert np.isnan(out[~written]).all(), "gemm wrote outside C[:, :M, :N]"


@pytest.mark.parametrize("kernel", ["staged_64x64x16", "cp_async_64x64x16"])
def test_past_the_grid_limits(rng, kernel):
    """More than 65535 batch items (grid z) and 64-row tiles (grid y): grid-stride loops in
    the staged kernels, several launches for the cp.async ones (split-K doubles the items)."""
    A, B = operands(rng, 1, 2, 40, np.float32, batch_a=70000, batch_b=70000)  # K = 40: 3 slices of 16
    ref, abs_ref = reference(A, B, False, False)
    for splits in ((0,) if kernel.startswith("staged") else (1, 2)):
        out = gemm_with_tile(kernel, dev(A), dev(B), splits=splits).get()
        check(out, ref, abs_ref, 40, np.float32, f"gemm {kernel} batch 70000 splits={splits}")
    out = gemm(dev(A), dev(B)).get()
    check(out, ref, abs_ref, 40, np.float32, "gemm batch 70000")
    M = 65535 * 64 + 100
    A, B = operands(rng, M, 1, 2, np.float32)
    out = gemm_with_tile(kernel, dev(A), dev(B)).get()
    ref, abs_ref = reference(A, B, False, False)
    check(out, ref, abs_ref, 2, np.float32, f"gemm {kernel} M={M}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_and_k0(rng, dtype):
    M, N = 5, 7
    C_host = rng.uniform(-1, 1, (M, N)).astype(dtype)
    bias = rng.uniform(-1, 1, N).astype(dtype)
    A, B = np.empty((M, 0), dtype), np.empty((0, N), dtype)
    out = gemm(dev(A), dev(B), dev(C_host), beta=0.5, bias=dev(bias), relu=True).get()
    assert np.allclose(out, np.maximum(0.5 * C_host.astype(np.float64) + bias, 0), rtol=1e-6, atol=0)
    out = gemm(dev(A), dev(B)).get()
    assert out.shape == (M, N) and not out.any()
    assert gemm(dev(np.ones((0, 3), dtype)), dev(np.ones((3, N), dtype))).shape == (0, N)
    assert gemm(dev(np.ones((0, M, 3), dtype)), dev(np.ones((0, 3, N), dtype))).shape == (0, M, N)


@pytest.mark.parametrize("dtype,kernel,splits", KERNELS, ids=KERNEL_IDS)
def test_1024_cubed_and_bitwise_determinism(rng, dtype, kernel, splits):
    n = 1024
    A, B = operands(rng, n, n, n, dtype)
    a, b = dev(A), dev(B)
    first = gemm_with_tile(kernel, a, b, splits=splits).get()
    ref, abs_ref = reference(A, B, False, False)
    check(first, ref, abs_ref, n, dtype, f"gemm 1024^3 {kernel} splits={splits}")
    again = gemm_with_tile(kernel, a, b, splits=splits).get()
    assert first.tobytes() == again.tobytes(), "gemm is not bitwise deterministic"
    A, B = operands(rng, 777, 555, 999, dtype, True, True)
    runs = [gemm_with_tile(kernel, dev(A), dev(B), None, True, True, splits=splits).get().tobytes() for _ in range(2)]
    assert runs[0] == runs[1], "gemm TT is not bitwise deterministic"


def test_bad_inputs_raise_clear_errors(rng):
    A = dev(rng.uniform(-1, 1, (4, 3)).astype(np.float32))
    B = dev(rng.uniform(-1, 1, (3, 5)).astype(np.float32))
    with pytest.raises(TypeError, match="gemm: A must be a CudaArray, got ndarray"):
        gemm(np.ones((4, 3), np.float32), B)
    with pytest.raises(TypeError, match="gemm: A must be float32 or float64, got int64"):
        gemm(dev(np.ones((4, 3), np.int64)), B)
    with pytest.raises(TypeError, match=r"gemm: B must have the dtype of A \(float32\), got float64"):
        gemm(A, dev(np.ones((3, 5))))
    with pytest.raises(ValueError, match=r"gemm: A must be 2-D .* got shape \(3,\)"):
        gemm(dev(np.ones(3, np.float32)), B)
    with pytest.raises(ValueError, match=r"inner dimensions differ: op\(A\) is \(3, 4\)"):
        gemm(A, B, trans_a=True)
    with pytest.raises(ValueError, match="batch sizes differ and neither is 1"):
        gemm(dev(np.ones((2, 4, 3), np.float32)), dev(np.ones((3, 3, 5), np.float32)))
    with pytest.raises(ValueError, match=r"gemm: beta = 0.5 needs C \(got C=None\)"):
        gemm(A, B, beta=0.5)
    with pytest.raises(ValueError, match=r"gemm: C must have shape \(4, 5\), got \(5, 4\)"):
        gemm(A, B, dev(np.ones((5, 4), np.float32)))
    with pytest.raises(TypeError, match="gemm: C must have the dtype of A"):
        gemm(A, B, dev(np.ones((4, 5))))
    with pytest.raises(ValueError, match="gemm: C must be C-contiguous"):
        gemm(A, B, dev(np.ones((5, 4), np.float32)).T)
    square = dev(np.ones((4, 4), np.float32))
    with pytest.raises(ValueError, match="gemm: C must not overlap A or B"):
        gemm(square, square, square)
    with pytest.raises(ValueError, match=r"gemm: bias must have shape \(5,\), got \(4,\)"):
        gemm(A, B, bias=dev(np.ones(4, np.float32)))
    with pytest.raises(ValueError, match="tile = 128 is not one of"):
        gemm_with_tile(128, dev(np.ones((4, 3))), dev(np.ones((3, 5))))
    with pytest.raises(ValueError, match=r"tile = 1 is not one of 0 \(auto\), 64 \(staged_64x64x16\) for float64"):
        gemm_with_tile("cp_async_128x128x16", dev(np.ones((4, 3))), dev(np.ones((3, 5))))
    with pytest.raises(ValueError, match="gemm: unknown kernel 'cp_async_1x1x1'"):
        gemm_with_tile("cp_async_1x1x1", A, B)
    with pytest.raises(ValueError, match="splits = 2 needs a split-K kernel forced"):
        gemm_with_tile("staged_128x128x8", A, B, splits=2)
    with pytest.raises(ValueError, match="splits = 2 needs a split-K kernel forced"):
        gemm_with_tile(0, A, B, splits=2)
    with pytest.raises(ValueError, match=r"splits = 65 must be in \[0, 64\]"):
        gemm_with_tile("cp_async_64x64x16", A, B, splits=65)
    C = dev(np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"gemm: lda = 2 must be >= max\(1, K\) = 3"):
        _C.cuda.gemm(0, False, False, 4, 5, 3, 1.0, 0.0, A.ptr, 2, 0, B.ptr, 5, 0, C.ptr, 5, 20, 1, 0, False, 0)
