"""_C.gemm against a NumPy float64 oracle, on every ISA, float32 and float64.

C := alpha * op(A) @ op(B) + beta * C with the K-scaled tolerance of STYLE.md
(abs_ref = |alpha| |op(A)| @ |op(B)| + |beta| |C|), plus an integer-exact case; and the
pre-packed path (_C.gemm_pack_b once, _C.gemm_packed many times) against the same oracle and
bitwise against _C.gemm on integers.

Timing (not run here), dlcore vs NumPy/OpenBLAS on one shape, e.g. float32 512^3 on AVX-512:
  unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; PYTHONPATH=python python3 -c "
  import timeit, numpy as np; from dlcore import _C; _C.set_cpu_isa('avx512')
  a = np.random.rand(512, 512).astype(np.float32); b = a.copy(); c = a.copy(); f = 2 * 512**3 / 1e9
  print('dlcore', f / min(timeit.repeat(lambda: _C.gemm(a, b, c), number=1, repeat=50)), 'GFLOP/s')
  print('numpy ', f / min(timeit.repeat(lambda: np.matmul(a, b, out=c), number=1, repeat=50)), 'GFLOP/s')"
"""
import ctypes
import mmap

import numpy as np
import pytest

from dlcore import _C
from helpers import assert_close_reduction

DTYPES = [np.float32, np.float64]


def make_operands(rng, M, N, K, dtype, trans_a=False, trans_b=False, batch_a=None, batch_b=None):
    """Random A, B stored as the kernel reads them ((K, M) when trans_a, (N, K) when trans_b)."""
    a_shape = (K, M) if trans_a else (M, K)
    b_shape = (N, K) if trans_b else (K, N)
    if batch_a is not None:
        a_shape = (batch_a,) + a_shape
    if batch_b is not None:
        b_shape = (batch_b,) + b_shape
    A = rng.standard_normal(a_shape).astype(dtype)
    B = rng.standard_normal(b_shape).astype(dtype)
    return A, B


def reference(A, B, C, trans_a, trans_b, alpha, beta):
    """(ref, abs_ref) in float64; C may be None (beta must be 0 then)."""
    a = np.asarray(A, np.float64)
    b = np.asarray(B, np.float64)
    op_a = np.swapaxes(a, -1, -2) if trans_a else a
    op_b = np.swapaxes(b, -1, -2) if trans_b else b
    ref = alpha * (op_a @ op_b)
    abs_ref = abs(alpha) * (np.abs(op_a) @ np.abs(op_b))
    if C is not None and beta != 0:
        c = np.asarray(C, np.float64)
        ref = ref + beta * c
        abs_ref = abs_ref + abs(beta) * np.abs(c)
    return ref, abs_ref


def check_gemm(rng, M, N, K, dtype, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, with_c=False, what=""):
    A, B = make_operands(rng, M, N, K, dtype, trans_a, trans_b)
    C = rng.standard_normal((M, N)).astype(dtype) if with_c else None
    ref, abs_ref = reference(A, B, C, trans_a, trans_b, alpha, beta)
    out = _C.gemm(A, B, None if C is None else C.copy(), trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta)
    assert out.dtype == dtype and out.shape == (M, N)
    assert_close_reduction(out, ref, abs_ref, K, dtype,
                           what=f"gemm {what} M={M} N={N} K={K} ta={trans_a} tb={trans_b} {np.dtype(dtype).name}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_small_size(isa, rng, dtype):
    for s in range(1, 21):
        for M, N, K in [(s, s, s), (s, 17, 5), (13, s, 7), (9, 11, s), (s, 40, 30)]:
            check_gemm(rng, M, N, K, dtype, what=isa)


# Around the register tile (MR = 6; NR = 8 / 16 / 64 floats or 4 / 8 / 32 doubles per ISA),
# the depth block (KC = 256), the row block (MC = 192) and the column block
# (NC = 2048 .. 4096 columns), plus primes.
TILE_SHAPES = [
    (5, 7, 33), (6, 8, 64), (7, 9, 65), (11, 15, 16), (12, 16, 17), (13, 17, 31),
    (6, 32, 128), (7, 33, 129), (5, 31, 257), (18, 63, 385), (67, 131, 67), (97, 65, 130),
    (131, 67, 513), (193, 33, 20), (7, 8200, 5),
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_tile_edges(isa, rng, dtype):
    for M, N, K in TILE_SHAPES:
        check_gemm(rng, M, N, K, dtype, what=isa)


TRANSPOSES = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
def test_a_in_place_and_packed(isa, rng, dtype, trans_a, trans_b):
    """A thread's block of at most 2 column tiles reads A in place, a wider one packs it (the
    tile is 64 / 32 / 16 / 8 columns wide by ISA and dtype): both sides of that line, with row
    edges, a row block past MC = 192 and a depth past KC = 256."""
    # (128, 16, 300): A transposed with lda = 128 (512 bytes) stays packed although thin
    for M, N, K in [(7, 16, 300), (199, 128, 300), (199, 129, 300), (13, 200, 45), (200, 33, 513), (128, 16, 300)]:
        check_gemm(rng, M, N, K, dtype, trans_a, trans_b, 0.5, 1.5, True, what=f"{isa} A in place / packed")


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_row_b_transposed(isa, rng, dtype):
    """One row of C with B transposed (a Linear layer at batch one; AVX-512 float runs it as 16
    dot products at a time): column counts around 16, depths around the 128-depth chunk and row
    strides of a multiple of 4 KiB (1024 floats), A transposed or not, B a column slice."""
    for N, K in [(1, 1), (16, 128), (37, 130), (300, 256), (33, 1024), (17, 1000), (20, 2048)]:
        for trans_a in (False, True):
            check_gemm(rng, 1, N, K, dtype, trans_a, True, 0.75, -1.25, True, what=f"{isa} one row")
    B = rng.standard_normal((37, 300 + 11)).astype(dtype)[:, 5:305]  # (N, K), ldb = K + 11
    A = rng.standard_normal((1, 300)).astype(dtype)
    ref, abs_ref = reference(A, B, None, False, True, 1.0, 0.0)
    assert_close_reduction(_C.gemm(A, B, trans_b=True), ref, abs_ref, 300, dtype, what=f"{isa} one row, ldb > K")


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_size_to_70(isa, rng, dtype):
    """Each of M, N, K over 1..70 with the other two fixed at sizes that are not tile multiples;
    the four transposes and two alpha/beta cases take turns."""
    for s in range(1, 71):
        ta, tb = TRANSPOSES[s % 4]
        alpha, beta, with_c = (0.75, -1.25, True) if s % 3 == 0 else (1.0, 0.0, False)
        for M, N, K in [(s, 37, 23), (13, s, 29), (11, 67, s)]:
            check_gemm(rng, M, N, K, dtype, ta, tb, alpha, beta, with_c, what=f"{isa} sweep")


# MR - 1, MR, MR + 1 of every ISA's tile (MR = 6) and NR - 1, NR, NR + 1 of every float and
# double tile (NR = 4, 8, 16, 32, 64), crossed, at a depth below and one past KC = 256.
NEAR_MR = [5, 6, 7, 13]
NEAR_NR = [3, 5, 7, 9, 15, 17, 31, 32, 33, 63, 64, 65]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
def test_near_tile_sizes(isa, rng, dtype, trans_a, trans_b):
    for i, M in enumerate(NEAR_MR):
        for j, N in enumerate(NEAR_NR):
            K = 257 if (i + j) % 3 == 0 else 61
            with_c = (i + j) % 2 == 0
            check_gemm(rng, M, N, K, dtype, trans_a, trans_b, alpha=-0.5, beta=2.0 if with_c else 0.0,
                       with_c=with_c, what=f"{isa} near tile")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
def test_leading_dims_larger(isa, rng, dtype, trans_a, trans_b):
    """Operands that are column slices of wider arrays (lda, ldb > row width), on the unpacked,
    dot-product (few rows, B transposed), blocked and C^T (B transposed, 40 rows) paths."""
    for M, N, K in [(3, 5, 4), (6, 25, 784), (8, 70, 300), (45, 131, 260), (40, 300, 520)]:
        a_shape = (K, M) if trans_a else (M, K)
        b_shape = (N, K) if trans_b else (K, N)
        A = rng.standard_normal((a_shape[0], a_shape[1] + 9)).astype(dtype)[:, 4:4 + a_shape[1]]
        B = rng.standard_normal((b_shape[0], b_shape[1] + 13)).astype(dtype)[:, :b_shape[1]]
        C = rng.standard_normal((M, N)).astype(dtype)
        ref, abs_ref = reference(A, B, C, trans_a, trans_b, 1.5, -0.5)
        out = _C.gemm(A, B, C.copy(), trans_a=trans_a, trans_b=trans_b, alpha=1.5, beta=-0.5)
        assert_close_reduction(out, ref, abs_ref, K, dtype, what=f"{isa} ld M={M} N={N} K={K} ta={trans_a} tb={trans_b}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_transposes_alpha_beta(isa, rng, dtype, trans_a, trans_b):
    for M, N, K in [(1, 1, 1), (3, 5, 2), (37, 29, 41), (70, 100, 300)]:
        check_gemm(rng, M, N, K, dtype, trans_a, trans_b, what=isa)
        check_gemm(rng, M, N, K, dtype, trans_a, trans_b, alpha=0.75, beta=-1.25, with_c=True, what=isa)
        check_gemm(rng, M, N, K, dtype, trans_a, trans_b, alpha=-2.0, beta=1.0, with_c=True, what=isa)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_thin_shapes(isa, rng, dtype, trans_a, trans_b):
    """Vector-matrix, matrix-vector and a few-column outputs (the unpacked paths, threaded)."""
    for M, N, K in [(1, 300, 200), (300, 1, 200), (2000, 3, 300), (5, 2000, 3), (1, 1, 500)]:
        check_gemm(rng, M, N, K, dtype, trans_a, trans_b, alpha=0.5, beta=-1.0, with_c=True, what=isa)


@pytest.mark.parametrize("dtype", DTYPES)
def test_integer_exact(isa, rng, dtype):
    """Small integers: every partial sum is exact, so any indexing slip shows bitwise."""
    for M, N, K, ta, tb in [(1, 1, 1, False, False), (7, 33, 129, False, True), (67, 131, 300, True, False),
                            (100, 70, 513, True, True), (6, 16, 1, False, False), (6, 25, 784, False, True),
                            (8, 65, 257, True, True), (9, 63, 255, False, True), (13, 129, 520, False, False)]:
        A = rng.integers(-4, 5, (K, M) if ta else (M, K)).astype(dtype)
        B = rng.integers(-4, 5, (N, K) if tb else (K, N)).astype(dtype)
        C = rng.integers(-4, 5, (M, N)).astype(dtype)
        ref, _ = reference(A, B, C, ta, tb, 2.0, 3.0)
        out = _C.gemm(A, B, C, trans_a=ta, trans_b=tb, alpha=2.0, beta=3.0)
        np.testing.assert_array_equal(out, ref.astype(dtype), err_msg=f"{isa} {M}x{N}x{K} ta={ta} tb={tb}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_beta_zero_overwrites_nan(isa, rng, dtype):
    for M, N, K, tb in [(1, 1, 1, False), (5, 7, 3, False), (67, 131, 300, False), (40, 300, 50, True)]:
        A, B = make_operands(rng, M, N, K, dtype, False, tb)
        C = np.full((M, N), np.nan, dtype)
        out = _C.gemm(A, B, C, trans_b=tb, alpha=1.5, beta=0.0)
        assert out is C or np.shares_memory(out, C)
        assert not np.isnan(C).any()
        ref, abs_ref = reference(A, B, None, False, tb, 1.5, 0.0)
        assert_close_reduction(C, ref, abs_ref, K, dtype, what=f"{isa} beta=0 NaN C")


@pytest.mark.parametrize("dtype", DTYPES)
def test_k_zero_and_empty(isa, rng, dtype):
    A = np.empty((4, 0), dtype)
    B = np.empty((0, 3), dtype)
    np.testing.assert_array_equal(_C.gemm(A, B), np.zeros((4, 3)))
    C = rng.standard_normal((4, 3)).astype(dtype)
    np.testing.assert_array_equal(_C.gemm(A, B, C.copy(), beta=2.0), 2 * C)
    assert _C.gemm(np.empty((0, 5), dtype), rng.standard_normal((5, 3)).astype(dtype)).shape == (0, 3)
    assert _C.gemm(rng.standard_normal((2, 5)).astype(dtype), np.empty((5, 0), dtype)).shape == (2, 0)
    assert _C.gemm(np.empty((0, 2, 5), dtype), np.empty((0, 5, 3), dtype)).shape == (0, 2, 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batched_broadcast(isa, rng, dtype):
    for M, N, K, ba, bb, ta, tb in [(5, 7, 3, 4, 4, False, False), (37, 29, 41, 3, 1, True, False),
                                    (70, 90, 200, 1, 5, False, True), (64, 64, 64, 2, 2, True, True),
                                    (130, 150, 120, 3, 3, False, False), (100, 100, 100, 4, 4, False, True)]:
        A, B = make_operands(rng, M, N, K, dtype, ta, tb, ba, bb)
        ref, abs_ref = reference(A, B, None, ta, tb, 1.0, 0.0)
        out = _C.gemm(A, B, trans_a=ta, trans_b=tb)
        assert out.shape == (max(ba, bb), M, N)
        assert_close_reduction(out, ref, abs_ref, K, dtype, what=f"{isa} batched")
    # Stride-0 batches (np.broadcast_to), a 2-D operand against a 3-D one, and C given.
    A, B = make_operands(rng, 19, 23, 17, dtype, batch_b=3)
    A_b = np.broadcast_to(A, (3, 19, 17))
    C = rng.standard_normal((3, 19, 23)).astype(dtype)
    ref, abs_ref = reference(A_b, B, C, False, False, 0.5, 2.0)
    assert_close_reduction(_C.gemm(A_b, B, C.copy(), alpha=0.5, beta=2.0), ref, abs_ref, 17, dtype,
                           what=f"{isa} broadcast_to")
    assert_close_reduction(_C.gemm(A, B, C.copy(), alpha=0.5, beta=2.0), ref, abs_ref, 17, dtype,
                           what=f"{isa} 2-D x 3-D")


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_views(isa, rng, dtype):
    """Row strides larger than the row (slices of a bigger array) and batch slices."""
    big_a = rng.standard_normal((3, 50, 70)).astype(dtype)
    big_b = rng.standard_normal((3, 80, 60)).astype(dtype)
    A = big_a[:, :45, 5:38]   # (3, 45, 33), row stride 70
    B = big_b[::1, 3:36, :51]  # (3, 33, 51), row stride 60
    ref, abs_ref = reference(A, B, None, False, False, 1.0, 0.0)
    assert_close_reduction(_C.gemm(A, B), ref, abs_ref, 33, dtype, what=f"{isa} strided")
    # A transposed view is passed as its base with the flag.
    At = big_a[0, :33, :45]   # op(A) = At.T (45, 33)
    ref, abs_ref = reference(At, B[0], None, True, False, 1.0, 0.0)
    assert_close_reduction(_C.gemm(At, B[0], trans_a=True), ref, abs_ref, 33, dtype, what=f"{isa} trans view")
    ref, abs_ref = reference(big_a[::2, :7, :9], big_b[::2, :9, :5], None, False, False, 1.0, 0.0)
    assert_close_reduction(_C.gemm(big_a[::2, :7, :9], big_b[::2, :9, :5]), ref, abs_ref, 9, dtype,
                           what=f"{isa} batch stride")


@pytest.mark.parametrize("dtype", DTYPES)
def test_model_shapes(isa, rng, dtype):
    # LeNet conv as im2col GEMM, a Linear layer forward/backward, a conv on 64x64 images.
    for M, N, K, ta, tb in [(256, 120, 400, False, False), (64, 2048, 512, False, True),
                            (512, 64, 2048, True, False), (4096, 64, 576, False, False)]:
        check_gemm(rng, M, N, K, dtype, ta, tb, what=f"{isa} model")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
def test_one_row_block_groups(isa, rng, dtype, trans_a, trans_b):
    # Rows that fit one row block run as balanced tiles (20 = 5 5 5 5, 64 = 11 tiles of 5-6)
    # over B packed several panels at a time: N spans several groups with a partial last
    # group and panel (K = 650 as 3 depth blocks of 216-217; with alpha, beta and C).
    for M, N, K in [(20, 2600, 650), (64, 1100, 300), (13, 777, 97)]:
        check_gemm(rng, M, N, K, dtype, trans_a, trans_b, alpha=0.5, beta=1.5, with_c=True,
                   what=f"{isa} one row block")


def guarded_array(shape, dtype, rng):
    """A random C-contiguous array whose last byte ends a page followed by an unreadable page
    (kept alive through the returned array's base), so reading past its end faults."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    page = mmap.PAGESIZE
    data_pages = -(-nbytes // page)
    buf = mmap.mmap(-1, (data_pages + 1) * page)
    libc = ctypes.CDLL(None, use_errno=True)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    assert libc.mprotect(ctypes.c_void_p(base + data_pages * page), page, 0) == 0  # PROT_NONE
    start = data_pages * page - nbytes
    out = np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=start).view(dtype).reshape(shape)
    out[...] = rng.standard_normal(shape).astype(dtype)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
def test_b_read_in_place(isa, rng, dtype, trans_a, threads):
    """B as is with one block of rows of C: its whole register-tile panels are read where they
    lie (the narrower last one packed). Whole and partial last panels, several depth blocks,
    B a column slice (row stride > N, rows off the cache lines), the bias and ReLU epilogue; and
    B ending just before an unreadable page, so a load past its last element would crash."""
    for M, N, K in [(65, 512, 700), (32, 128, 64), (20, 650, 260), (192, 70, 33), (7, 257, 513)]:
        A, _ = make_operands(rng, M, N, K, dtype, trans_a, False)
        wide = rng.standard_normal((K, N + 19)).astype(dtype)
        for B in (wide[:, 3:3 + N], guarded_array((K, N), dtype, rng)):
            C = rng.standard_normal((M, N)).astype(dtype)
            bias = rng.standard_normal(N).astype(dtype)
            ref, abs_ref = reference(A, B, C, trans_a, False, 0.5, -1.25)
            ref = np.maximum(ref + bias, 0.0)
            out = _C.gemm(A, B, C, trans_a=trans_a, alpha=0.5, beta=-1.25, bias=bias, relu=True)
            assert_close_reduction(out, ref, abs_ref + np.abs(bias), K + 2, dtype,
                                   what=f"gemm B in place M={M} N={N} K={K} ta={trans_a} [{isa}, {threads} thr]")


# (M, N, K, trans_b) reaching each path of the driver: K == 0 (scale), small (axpy), thin N and
# small transposed-B (dots), the blocked micro-kernel path over several depth blocks, and B
# transposed with few rows of C computed as C^T (gemm_swapped: 64x300x520), one row and edge
# columns as dot products.
EPILOGUE_SHAPES = [(5, 7, 0, False), (3, 9, 5, False), (9, 3, 40, True), (6, 100, 33, True),
                   (37, 131, 300, False), (70, 67, 600, True), (64, 300, 70, True), (1, 37, 300, True),
                   (64, 300, 520, True)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M, N, K, trans_b", EPILOGUE_SHAPES)
@pytest.mark.parametrize("with_bias, relu", [(True, False), (False, True), (True, True)])
def test_fused_bias_relu_epilogue(isa, rng, dtype, M, N, K, trans_b, with_bias, relu):
    A, B = make_operands(rng, M, N, K, dtype, False, trans_b)
    C = rng.standard_normal((M, N)).astype(dtype)
    bias = rng.standard_normal(N).astype(dtype) if with_bias else None
    ref, abs_ref = reference(A, B, C, False, trans_b, 0.5, 0.75)
    if with_bias:
        ref = ref + bias.astype(np.float64)
        abs_ref = abs_ref + np.abs(bias.astype(np.float64))
    if relu:
        ref = np.maximum(ref, 0.0)
    out = _C.gemm(A, B, C, trans_b=trans_b, alpha=0.5, beta=0.75, bias=bias, relu=relu)
    if relu:
        assert (out >= 0).all()
    assert_close_reduction(out, ref, abs_ref, K + 2, dtype, what=f"gemm epilogue M={M} N={N} K={K} [{isa}]")


@pytest.mark.parametrize("M, N, K, trans_b", EPILOGUE_SHAPES)
def test_relu_epilogue_keeps_nan_like_torch_relu(isa, rng, M, N, K, trans_b):
    """relu(NaN) is NaN (torch.relu, and dlcore's unary relu): a NaN in C must not become 0."""
    A, B = make_operands(rng, M, N, K, np.float32, False, trans_b)
    C = rng.standard_normal((M, N)).astype(np.float32)
    C[M // 2, N // 3] = np.nan  # beta * NaN stays NaN whatever A @ B adds
    out = _C.gemm(A, B, C, trans_b=trans_b, alpha=0.5, beta=0.75, relu=True)
    assert np.isnan(out[M // 2, N // 3])
    assert np.isnan(out).sum() == 1 and (out[~np.isnan(out)] >= 0).all()


def test_epilogue_bad_bias(rng):
    A, B = make_operands(rng, 4, 5, 3, np.float32)
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\)"):
        _C.gemm(A, B, bias=np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="bias"):
        _C.gemm(A, B, bias=np.zeros(5, np.float64))


def test_isas_agree(rng):
    """Every ISA's result stays within the K-scaled bound of the others'."""
    A, B = make_operands(rng, 77, 91, 300, np.float32)
    ref, abs_ref = reference(A, B, None, False, False, 1.0, 0.0)
    previous = _C.cpu_isa()
    try:
        outs = {}
        for name in ["generic", "avx2", "avx512"]:
            if _C.isa_supported(name):
                _C.set_cpu_isa(name)
                outs[name] = _C.gemm(A, B)
    finally:
        _C.set_cpu_isa(previous)
    for name, out in outs.items():
        assert_close_reduction(out, outs["generic"], 2 * abs_ref, 300, np.float32, what=f"{name} vs generic")


def test_bad_inputs(rng):
    A = rng.standard_normal((4, 5)).astype(np.float32)
    B = rng.standard_normal((5, 3)).astype(np.float32)
    with pytest.raises(TypeError, match="gemm: A must be float32 or float64"):
        _C.gemm(A.astype(np.int64), B)
    with pytest.raises(TypeError, match="gemm: B must have the dtype of A"):
        _C.gemm(A, B.astype(np.float64))
    with pytest.raises(TypeError, match="gemm: C must have the dtype of A"):
        _C.gemm(A, B, np.zeros((4, 3), np.float64))
    with pytest.raises(ValueError, match=r"matmul.*\(4, 5\).*\(3, 5\)"):
        _C.gemm(A, B.T.copy())
    with pytest.raises(ValueError, match=r"gemm: A must be 2-D .* got shape \(5,\)"):
        _C.gemm(A[0], B)
    with pytest.raises(ValueError, match="gemm: B must be 2-D"):
        _C.gemm(A, np.zeros((1, 1, 5, 3), np.float32))
    with pytest.raises(ValueError, match="unsupported memory layout"):
        _C.gemm(A.T, B[:4])  # a transposed view without trans_a
    with pytest.raises(ValueError, match="unsupported memory layout"):
        _C.gemm(A, rng.standard_normal((5, 6)).astype(np.float32)[:, ::2])
    with pytest.raises(ValueError, match="beta = 2 needs C"):
        _C.gemm(A, B, beta=2.0)
    with pytest.raises(ValueError, match=r"C must have shape \(4, 3\)"):
        _C.gemm(A, B, np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="C must be C-contiguous"):
        _C.gemm(A, B, np.zeros((3, 4), np.float32).T)
    with pytest.raises(ValueError, match="batch sizes differ"):
        _C.gemm(np.zeros((2, 4, 5), np.float32), np.zeros((3, 5, 3), np.float32))
    with pytest.raises(ValueError, match=r"C must have shape \(2, 4, 3\)"):
        _C.gemm(np.zeros((2, 4, 5), np.float32), B, np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="must not overlap"):
        sq = np.zeros((5, 5), np.float32)
        _C.gemm(sq, sq[:, :5].copy(), sq)
    C_ro = np.zeros((4, 3), np.float32)
    C_ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _C.gemm(A, B, C_ro)


# ---- pre-packed B: gemm_pack_b once, gemm_packed many times ------------------------------
# Sizes around MR (6) and every NR (4..64), and K around the depth block (KC = 256, split into
# equal blocks: 600 runs as 3 x 200), plus the LSTM step shape.
PACKED_SHAPES = [(1, 1, 1), (1, 70, 33), (5, 3, 7), (7, 9, 255), (6, 17, 256), (13, 33, 257),
                 (5, 65, 600), (20, 63, 2), (37, 131, 300), (20, 520, 130)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
def test_gemm_packed_matches_gemm(isa, rng, dtype, trans_a, trans_b):
    """One packed B reused for several A (and alpha/beta cases) against the float64 oracle."""
    for M, N, K in PACKED_SHAPES:
        B = rng.standard_normal((N, K) if trans_b else (K, N)).astype(dtype)
        packed = _C.gemm_pack_b(B, trans_b=trans_b)
        assert (packed.K, packed.N, packed.dtype, packed.isa) == (K, N, np.dtype(dtype), isa)
        assert packed.nbytes == _C.gemm_packed_size(K, N, dtype) * np.dtype(dtype).itemsize
        for rows, alpha, beta in [(M, 1.0, 0.0), (M + 6, 0.75, -1.25), (max(M - 1, 1), -2.0, 1.0)]:
            A = rng.standard_normal((K, rows) if trans_a else (rows, K)).astype(dtype)
            C = rng.standard_normal((rows, N)).astype(dtype) if beta != 0 else None
            ref, abs_ref = reference(A, B, C, trans_a, trans_b, alpha, beta)
            out = _C.gemm_packed(A, packed, None if C is None else C.copy(), trans_a=trans_a, alpha=alpha, beta=beta)
            assert out.dtype == dtype and out.shape == (rows, N)
            assert_close_reduction(out, ref, abs_ref, K, dtype,
                                   what=f"gemm_packed {isa} M={rows} N={N} K={K} ta={trans_a} tb={trans_b}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_packed_near_tile_sizes(isa, rng, dtype):
    for i, M in enumerate(NEAR_MR):
        for j, N in enumerate(NEAR_NR):
            K = 257 if (i + j) % 3 == 0 else 61
            A, B = make_operands(rng, M, N, K, dtype)
            ref, abs_ref = reference(A, B, None, False, False, 1.0, 0.0)
            assert_close_reduction(_C.gemm_packed(A, _C.gemm_pack_b(B)), ref, abs_ref, K, dtype,
                                   what=f"gemm_packed {isa} near tile M={M} N={N} K={K}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_packed_integer_exact_equals_gemm(isa, rng, dtype):
    """Small integers: gemm_packed is bitwise the unpacked gemm (and the exact product)."""
    for M, N, K, ta, tb in [(1, 1, 1, False, False), (7, 33, 129, False, True), (67, 131, 300, True, False),
                            (100, 70, 513, True, True), (9, 63, 255, False, True), (20, 260, 650, False, False)]:
        A = rng.integers(-4, 5, (K, M) if ta else (M, K)).astype(dtype)
        B = rng.integers(-4, 5, (N, K) if tb else (K, N)).astype(dtype)
        C = rng.integers(-4, 5, (M, N)).astype(dtype)
        packed = _C.gemm_pack_b(B, trans_b=tb)
        out = _C.gemm_packed(A, packed, C.copy(), trans_a=ta, alpha=2.0, beta=3.0)
        np.testing.assert_array_equal(out, _C.gemm(A, B, C.copy(), trans_a=ta, trans_b=tb, alpha=2.0, beta=3.0))
        ref, _ = reference(A, B, C, ta, tb, 2.0, 3.0)
        np.testing.assert_array_equal(out, ref.astype(dtype), err_msg=f"{isa} {M}x{N}x{K} ta={ta} tb={tb}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M, N, K", [(5, 7, 0), (3, 9, 5), (6, 100, 33), (70, 67, 600)])
def test_gemm_packed_bias_relu(isa, rng, dtype, M, N, K):
    A, B = make_operands(rng, M, N, K, dtype)
    packed = _C.gemm_pack_b(B)
    for with_bias, relu in [(True, False), (False, True), (True, True)]:
        C = rng.standard_normal((M, N)).astype(dtype)
        bias = rng.standard_normal(N).astype(dtype) if with_bias else None
        ref, abs_ref = reference(A, B, C, False, False, 0.5, 0.75)
        if with_bias:
            ref = ref + bias.astype(np.float64)
            abs_ref = abs_ref + np.abs(bias.astype(np.float64))
        if relu:
            ref = np.maximum(ref, 0.0)
        out = _C.gemm_packed(A, packed, C, alpha=0.5, beta=0.75, bias=bias, relu=relu)
        assert_close_reduction(out, ref, abs_ref, K + 2, dtype, what=f"gemm_packed epilogue M={M} N={N} K={K} [{isa}]")


def test_gemm_packed_lstm_step_threads(rng):
    """The LSTM recurrent GEMM (h (20, 650) x W_hh^T, W_hh (2600, 650)) across thread counts."""
    A, B = make_operands(rng, 20, 2600, 650, np.float32, trans_b=True)
    packed = _C.gemm_pack_b(B, trans_b=True)
    ref, abs_ref = reference(A, B, None, False, True, 1.0, 0.0)
    previous = _C.get_num_threads()
    try:
        for threads in [1, 2, 3]:
            _C.set_num_threads(threads)
            assert_close_reduction(_C.gemm_packed(A, packed), ref, abs_ref, 650, np.float32,
                                   what=f"gemm_packed LSTM step, {threads} threads")
    finally:
        _C.set_num_threads(previous)


def test_gemm_packed_size_and_empty(rng):
    for dtype in DTYPES:
        assert _C.gemm_packed_size(0, 5, dtype) == 0
        assert _C.gemm_packed_size(3, 5, dtype) >= 15
        A = rng.standard_normal((4, 0)).astype(dtype)
        packed = _C.gemm_pack_b(np.empty((0, 3), dtype))
        np.testing.assert_array_equal(_C.gemm_packed(A, packed), np.zeros((4, 3)))
        C = rng.standard_normal((4, 3)).astype(dtype)
        np.testing.assert_array_equal(_C.gemm_packed(A, packed, C.copy(), beta=2.0), 2 * C)
        assert _C.gemm_packed(np.empty((0, 5), dtype), _C.gemm_pack_b(np.ones((5, 3), dtype))).shape == (0, 3)
        assert _C.gemm_packed(np.ones((2, 5), dtype), _C.gemm_pack_b(np.empty((5, 0), dtype))).shape == (2, 0)
    with pytest.raises(TypeError, match="gemm_packed_size: dtype must be float32 or float64"):
        _C.gemm_packed_size(3, 5, np.int32)
    with pytest.raises(ValueError, match="gemm_packed_size: K and N must be >= 0"):
        _C.gemm_packed_size(-1, 5, np.float32)


def test_gemm_packed_isa_mismatch(rng):
    supported = [name for name in ["generic", "avx2", "avx512"] if _C.isa_supported(name)]
    if len(supported) < 2:
        pytest.skip("needs two ISAs this CPU can run")
    A, B = make_operands(rng, 4, 5, 3, np.float32)
    previous = _C.cpu_isa()
    try:
        _C.set_cpu_isa(supported[0])
        packed = _C.gemm_pack_b(B)
        _C.set_cpu_isa(supported[1])
        with pytest.raises(ValueError, match=f"gemm_packed: B was packed for the {supported[0]} kernels .*"
                                             f"{supported[1]}.*re-pack"):
            _C.gemm_packed(A, packed)
        _C.set_cpu_isa(supported[0])
        ref, abs_ref = reference(A, B, None, False, False, 1.0, 0.0)
        assert_close_reduction(_C.gemm_packed(A, packed), ref, abs_ref, 3, np.float32, what="same ISA again")
    finally:
        _C.set_cpu_isa(previous)


def test_gemm_packed_bad_inputs(rng):
    A = rng.standard_normal((4, 5)).astype(np.float32)
    B = rng.standard_normal((5, 3)).astype(np.float32)
    packed = _C.gemm_pack_b(B)
    with pytest.raises(TypeError, match="gemm_pack_b: B must be float32 or float64"):
        _C.gemm_pack_b(B.astype(np.int64))
    with pytest.raises(ValueError, match=r"gemm_pack_b: B must be 2-D \(K, N\), got shape \(2, 5, 3\)"):
        _C.gemm_pack_b(np.zeros((2, 5, 3), np.float32))
    with pytest.raises(ValueError, match="gemm_pack_b: B has an unsupported memory layout"):
        _C.gemm_pack_b(rng.standard_normal((5, 6)).astype(np.float32)[:, ::2])
    with pytest.raises(ValueError, match=r"gemm_packed \(matmul\): inner dimensions differ: op\(A\) is \(4, 6\).*"
                                         r"packed B is \(5, 3\)"):
        _C.gemm_packed(rng.standard_normal((4, 6)).astype(np.float32), packed)
    with pytest.raises(ValueError, match=r"inner dimensions differ: op\(A\) is \(5, 4\).*\(trans_a\)"):
        _C.gemm_packed(A, packed, trans_a=True)
    with pytest.raises(TypeError, match=r"gemm_packed: A must have the dtype of the packed B \(float32\), got float64"):
        _C.gemm_packed(A.astype(np.float64), packed)
    with pytest.raises(TypeError, match="gemm_packed: A must be float32 or float64"):
        _C.gemm_packed(A.astype(np.int32), packed)
    with pytest.raises(ValueError, match=r"gemm_packed: A must be 2-D \(M, K\), got shape \(1, 4, 5\)"):
        _C.gemm_packed(A[None], packed)
    with pytest.raises(ValueError, match="gemm_packed: beta = 2 needs C"):
        _C.gemm_packed(A, packed, beta=2.0)
    with pytest.raises(ValueError, match=r"gemm_packed: C must have shape \(4, 3\)"):
        _C.gemm_packed(A, packed, np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match="gemm_packed: C must have the dtype of A"):
        _C.gemm_packed(A, packed, np.zeros((4, 3), np.float64))
    with pytest.raises(ValueError, match="gemm_packed: C must be C-contiguous"):
        _C.gemm_packed(A, packed, np.zeros((3, 4), np.float32).T)
    with pytest.raises(ValueError, match="gemm_packed: C must not overlap A"):
        sq = np.zeros((5, 5), np.float32)
        _C.gemm_packed(sq, _C.gemm_pack_b(np.ones((5, 5), np.float32)), sq)
    with pytest.raises(ValueError, match=r"gemm_packed: bias must have shape \(3,\)"):
        _C.gemm_packed(A, packed, bias=np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="gemm_packed: bias must have the dtype of A"):
        _C.gemm_packed(A, packed, bias=np.zeros(3, np.float64))
    with pytest.raises(TypeError):
        _C.gemm_packed(A, B)  # an unpacked array is not a PackedB
