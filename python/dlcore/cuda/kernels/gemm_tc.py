"""gemm on the tensor cores for float32 CudaArrays: TF32 or BF16 products, FP32 sums
(csrc/cuda/gemm_tc.cu through _C.cuda.gemm_tc).

Same signature, layout rules, checks and result as dlcore.cuda.kernels.gemm.gemm (whose helpers
it uses), plus `mode`: "tf32" or "bf16", or None for the one dlcore.set_matmul_precision asks
for ("high" -> "tf32", "medium" -> "bf16"). float32 only: float64 has no tensor-core path here.
gemm's dispatcher calls gemm_tc when use_tensor_cores(dtype) says the precision routes float32
GEMMs to it.
"""
import numpy as np

from dlcore import _C
from dlcore.cuda.kernels.gemm import _bias, _check_array, _matrices, _output, _readable
from dlcore.precision import get_matmul_precision, math_mode

_OP = "gemm"  # the helpers' messages name gemm: gemm_tc is what gemm runs under "high"/"medium"
_MODES = ("tf32", "bf16")


def use_tensor_cores(dtype):
    """Whether the current matmul precision sends float32 GEMMs of this dtype to gemm_tc:
    True for float32 under "high" or "medium", False otherwise (float64 never)."""
    return np.dtype(dtype) == np.float32 and math_mode() is not None


def _mode_arg(mode):
    if mode is None:
        mode = math_mode()
        if mode is None:
            raise ValueError("gemm_tc: the matmul precision is 'highest' (FP32, no tensor cores); pass mode='tf32' "
                             "or 'bf16', or call dlcore.set_matmul_precision('high' or 'medium')")
        return mode
    if mode not in _MODES:
        raise ValueError(f"gemm_tc: mode must be 'tf32', 'bf16' or None (from the matmul precision, now "
                         f"{get_matmul_precision()!r}), got {mode!r}")
    return mode


def gemm_tc_with_tile(tile, A, B, C=None, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, bias=None, relu=False,
                      mode=None):
    """gemm_tc with the kernel's block tile forced: 0 lets it choose, 64 or 128. For tests that
    must reach every kernel; everything else calls gemm_tc."""
    mode = _mode_arg(mode)
    _check_array("A", A)
    _check_array("B", B)
    if A.dtype != np.float32:
        raise TypeError(f"gemm_tc: A must be float32 (tensor cores take FP32 tensors), got {A.dtype}")
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
    alpha, beta = float(alpha), float(beta)

    C = _output(C, A, B, out_shape, beta)
    bias_c = _bias(bias, A, N)  # (N,) or None
    if M == 0 or N == 0 or batch == 0:
        return C
    _C.cuda.gemm_tc(mode, ta, tb, M, N, K, alpha, beta,
                    a.ptr, lda, stride_a,
                    b.ptr, ldb, stride_b,
                    C.ptr, N, M * N, batch,
                    0 if bias_c is None else bias_c.ptr, bool(relu), A.device, int(tile))
    return C


def gemm_tc(A, B, C=None, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, bias=None, relu=False, mode=None):
    """C := alpha * op(A) @ op(B) + beta * C for 2-D or batched 3-D float32 CudaArrays on the
    tensor cores (mode "tf32" or "bf16"; None = from the matmul precision), then the fused
    epilogue C += bias (N,) per column and C = max(C, 0) if relu; returns C."""
    return gemm_tc_with_tile(0, A, B, C, trans_a, trans_b, alpha, beta, bias, relu, mode)
