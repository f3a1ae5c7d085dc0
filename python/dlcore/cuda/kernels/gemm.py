"""gemm on CudaArrays: the GPU mirror of _C.gemm (csrc/bindings/ops_gemm.cpp), same
signature, defaults, checks and result.

C := alpha * op(A) @ op(B) + beta * C, then C += bias (N,) per column and C = max(C, 0) if
relu. A and B are 2-D matrices or 3-D batches of them (a batch of 1 broadcasts against the
other's); op(X) is X, or X^T with trans_x. Each matrix is read in place when its rows have
unit element stride and a row stride >= their length (a transposed view is read as its base
with the trans flag flipped); any other layout is first copied to a contiguous array.
C, when given, is a C-contiguous CudaArray of the result's shape and dtype not overlapping
A or B; beta == 0 overwrites it without reading it. Kernels: csrc/cuda/gemm.cu; variants()
lists them (gemm_with_tile forces one, for tests and benchmarks).
"""
from typing import NamedTuple

import numpy as np

from dlcore import _C
from dlcore.precision import math_mode
from dlcore.cuda.array import DTYPE_CODE, CudaArray, contiguous, empty

_OP = "gemm"
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _check_array(name, x):
    if not isinstance(x, CudaArray):
        raise TypeError(f"{_OP}: {name} must be a CudaArray, got {type(x).__name__}")


def _row_major(x):
    """Whether the kernel can read every matrix of x (2-D or 3-D) in place (the rule of
    matrix_view in ops_gemm.cpp): unit stride along rows, row stride >= the row length,
    batch stride >= 0, all whole elements."""
    if x.size == 0:
        return True
    item = x.itemsize
    rows, cols = x.shape[-2:]
    s_row, s_col = x.strides[-2:]
    if cols > 1 and s_col != item:
        return False
    if rows > 1 and (s_row % item or s_row < cols * item):
        return False
    return x.ndim == 2 or x.shape[0] <= 1 or (x.strides[0] >= 0 and x.strides[0] % item == 0)


def _readable(x, trans):
    """(array, trans) with op(array) == op(x) in a layout the kernel reads: x itself, its
    swapped view with trans flipped (a transposed view of a row-major base), or a copy."""
    if _row_major(x):
        return x, trans
    swapped = x.swapaxes(-1, -2)
    if _row_major(swapped):
        return swapped, not trans
    return contiguous(x), trans


def _matrices(x):
    """(batch, rows, cols, ld, batch_stride) of a readable 2-D/3-D x; ld and batch_stride in
    elements, batch_stride 0 when there is one matrix."""
    batch = x.shape[0] if x.ndim == 3 else 1
    rows, cols = x.shape[-2:]
    ld = x.strides[-2] // x.itemsize if rows > 1 and x.size else max(cols, 1)
    batch_stride = x.strides[0] // x.itemsize if batch > 1 and x.size else 0
    return batch, rows, cols, ld, batch_stride


def _byte_range(x):
    """[lo, hi) device addresses the elements of a non-empty x span."""
    lo = hi = x.ptr
    for n, s in zip(x.shape, x.strides):
        span = (n - 1) * s
        if span < 0:
            lo += span
        else:
            hi += span
    return lo, hi + x.itemsize


def _overlap(x, y):
    if x.size == 0 or y.size == 0 or x.device != y.device:
        return False
    (x_lo, x_hi), (y_lo, y_hi) = _byte_range(x), _byte_range(y)
    return x_lo < y_hi and y_lo < x_hi


def _output(C, A, B, out_shape, beta):
    """The C to write: a new array when C is None (beta must then be 0), else C checked."""
    if C is None:
        if beta != 0.0:
            raise ValueError(f"{_OP}: beta = {beta} needs C (got C=None)")
        return empty(out_shape, A.dtype, A.device)
    _check_array("C", C)
    if C.dtype != A.dtype:
        raise TypeError(f"{_OP}: C must have the dtype of A ({A.dtype}), got {C.dtype}")
    if tuple(C.shape) != out_shape:
        raise ValueError(f"{_OP}: C must have shape {out_shape}, got {tuple(C.shape)}")
    if C.device != A.device:
        raise ValueError(f"{_OP}: C is on cuda:{C.device} but A is on cuda:{A.device}")
    if not C.is_contiguous():
        raise ValueError(f"{_OP}: C must be C-contiguous (call .contiguous()), got strides that are not")
    if _overlap(C, A) or _overlap(C, B):
        raise ValueError(f"{_OP}: C must not overlap A or B")
    return C


def _bias(bias, A, N):
    """None, or bias as a contiguous (N,) array of A's dtype on A's device."""
    if bias is None:
        return None
    _check_array("bias", bias)
    if bias.dtype != A.dtype:
        raise TypeError(f"{_OP}: bias must have the dtype of A ({A.dtype}), got {bias.dtype}")
    if tuple(bias.shape) != (N,):
        raise ValueError(f"{_OP}: bias must have shape {(N,)}, got {tuple(bias.shape)}")
    if bias.device != A.device:
        raise ValueError(f"{_OP}: bias is on cuda:{bias.device} but A is on cuda:{A.device}")
    return contiguous(bias)


def variants():
    """The gemm kernels, {name: (tile, float64, split_k)}: tile is the code gemm_with_tile
    takes (the name works too), float64 whether the kernel runs float64 (all run float32),
    split_k whether it takes splits > 1. The one list tests and benchmarks iterate."""
    return {name: (tile, f64, split_k) for tile, name, f64, split_k in _C.cuda.gemm_variants()}


def choice(M, N, K, batch=1, dtype=np.float32, device=0):
    """(kernel name, K ranges) gemm runs for op(A) (M, K) @ op(B) (K, N) x batch of `dtype` on
    `device`: its selection rule (csrc/cuda/gemm.cu, gemm_with_tile) made visible."""
    _, name, splits = _C.cuda.gemm_choice(DTYPE_CODE[np.dtype(dtype)], int(M), int(N), int(K), int(batch),
                                          int(device))
    return name, splits


def _tile_code(tile):
    if isinstance(tile, str):
        table = variants()
        if tile not in table:
            raise ValueError(f"{_OP}: unknown kernel {tile!r}; the kernels are {sorted(table)}")
        return table[tile][0]
    return int(tile)


class Operands(NamedTuple):
    """A checked GEMM call: op flags, sizes, the operands as the kernel reads them, and C."""
    ta: bool
    tb: bool
    M: int
    N: int
    K: int
    batch: int
    a: CudaArray  # (batch_a, M, K), or (batch_a, K, M) when ta
    lda: int
    stride_a: int
    b: CudaArray  # (batch_b, K, N), or (batch_b, N, K) when tb
    ldb: int
    stride_b: int
    C: CudaArray  # (M, N) or (batch, M, N), contiguous
    bias: object  # (N,) CudaArray or None


def operands(A, B, C, trans_a, trans_b, beta, bias):
    """The shape, device and layout checks every GEMM entry shares (the dtype check is each
    entry's own), and the output C allocated or checked: an Operands."""
    _check_array("A", A)
    _check_array("B", B)
    if B.dtype != A.dtype:
        raise TypeError(f"{_OP}: B must have the dtype of A ({A.dtype}), got {B.dtype}")
    for name, x in (("A", A), ("B", B)):
        if x.ndim not in (2, 3):
            raise ValueError(f"{_OP}: {name} must be 2-D (rows, cols) or 3-D (batch, rows, cols), "
                             f"got shape {tuple(x.shape)}")
    if B.device != A.device:
        raise ValueError(f"{_OP}: B is on cuda:{B.device} but A is on cuda:{A.device}")
    trans_a, trans_b = bool(trans_a), bool(trans_b)
    a, ta = _readable(A, trans_a)  # (batch_a, M, K), or (batch_a, K, M) when ta
    b, tb = _readable(B, trans_b)  # (batch_b, K, N), or (batch_b, N, K) when tb
    batch_a, rows_a, cols_a, lda, stride_a = _matrices(a)
    batch_b, rows_b, cols_b, ldb, stride_b = _matrices(b)
    M, K = (cols_a, rows_a) if ta else (rows_a, cols_a)
    K_b, N = (cols_b, rows_b) if tb else (rows_b, cols_b)
    if K != K_b:
        raise ValueError(
            f"{_OP} (matmul): inner dimensions differ: op(A) is ({M}, {K}) from A of shape {tuple(A.shape)}"
            f"{' (trans_a)' if trans_a else ''}, op(B) is ({K_b}, {N}) from B of shape {tuple(B.shape)}"
            f"{' (trans_b)' if trans_b else ''}")
    if batch_a != batch_b and batch_a != 1 and batch_b != 1:
        raise ValueError(f"{_OP} (matmul): batch sizes differ and neither is 1: A has shape {tuple(A.shape)}, "
                         f"B has shape {tuple(B.shape)}")
    batch = max(batch_a, batch_b)
    out_shape = (batch, M, N) if A.ndim == 3 or B.ndim == 3 else (M, N)
    C = _output(C, A, B, out_shape, float(beta))
    return Operands(ta, tb, M, N, K, batch, a, lda, stride_a, b, ldb, stride_b, C, _bias(bias, A, N))


def gemm_with_tile(tile, A, B, C=None, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, bias=None, relu=False,
                   splits=0):
    """gemm with the kernel forced: tile 0 lets it choose, else a kernel's name or code from
    variants(); splits (cp_async kernels) 0 = the rule's split-K count, 1 = none, s = s K
    ranges. For tests and benchmarks that must reach every kernel; everything else calls gemm."""
    code = _tile_code(tile)
    _check_array("A", A)
    if A.dtype not in _FLOATS:
        raise TypeError(f"{_OP}: A must be float32 or float64, got {A.dtype}")
    o = operands(A, B, C, trans_a, trans_b, beta, bias)
    if o.M == 0 or o.N == 0 or o.batch == 0:
        return o.C
    _C.cuda.gemm(DTYPE_CODE[A.dtype], o.ta, o.tb, o.M, o.N, o.K, float(alpha), float(beta),
                 o.a.ptr, o.lda, o.stride_a,
                 o.b.ptr, o.ldb, o.stride_b,
                 o.C.ptr, o.N, o.M * o.N, o.batch,
                 0 if o.bias is None else o.bias.ptr, bool(relu), A.device, code, int(splits))
    return o.C


def gemm(A, B, C=None, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, bias=None, relu=False):
    """C := alpha * op(A) @ op(B) + beta * C for 2-D or batched 3-D float CudaArrays, then the
    fused epilogue C += bias (N,) per column and C = max(C, 0) if relu; returns C. float32
    products run on the tensor cores (gemm_tc) when dlcore.set_matmul_precision chose "high"
    (TF32) or "medium" (BF16); in FP32 otherwise."""
    if math_mode() is not None and np.dtype(A.dtype) == np.float32:
        from dlcore.cuda.kernels.gemm_tc import gemm_tc  # (gemm_tc imports this module's helpers)

        return gemm_tc(A, B, C, trans_a, trans_b, alpha, beta, bias, relu)
    return gemm_with_tile(0, A, B, C, trans_a, trans_b, alpha, beta, bias, relu)
