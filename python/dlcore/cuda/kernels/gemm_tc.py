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
from dlcore.cuda.kernels.gemm import _check_array, operands
from dlcore.precision import get_matmul_precision, math_mode

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
    if A.dtype != np.float32:
        raise TypeError(f"gemm_tc: A must be float32 (tensor cores take FP32 tensors), got {A.dtype}")
    o = operands(A, B, C, trans_a, trans_b, beta, bias)
    if o.M == 0 or o.N == 0 or o.batch == 0:
        return o.C
    _C.cuda.gemm_tc(mode, o.ta, o.tb, o.M, o.N, o.K, float(alpha), float(beta),
                    o.a.ptr, o.lda, o.stride_a,
                    o.b.ptr, o.ldb, o.stride_b,
                    o.C.ptr, o.N, o.M * o.N, o.batch,
                    0 if o.bias is None else o.bias.ptr, bool(relu), A.device, int(tile))
    return o.C


def gemm_tc(A, B, C=None, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, bias=None, relu=False, mode=None):
    """C := alpha * op(A) @ op(B) + beta * C for 2-D or batched 3-D float32 CudaArrays on the
    tensor cores (mode "tf32" or "bf16"; None = from the matmul precision), then the fused
    epilogue C += bias (N,) per column and C = max(C, 0) if relu; returns C."""
    return gemm_tc_with_tile(0, A, B, C, trans_a, trans_b, alpha, beta, bias, relu, mode)
