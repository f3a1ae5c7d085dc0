"""The matmul precision: how float32 matrix products on the GPU may be computed, the user's choice
and never a silent one (torch.set_float32_matmul_precision's three levels).

    "highest"  FP32 products and sums (the default): the CUDA SIMT gemm (csrc/cuda/gemm.cu).
    "high"     TF32 tensor cores: inputs rounded to TF32 (10-bit mantissa), FP32 sums
               (csrc/cuda/gemm_tc.cu, mode "tf32"); relative error of a product <= 2^-10, or
               <= 2^-9 on Hopper's wgmma kernel, whose tensor cores truncate to TF32 (PTX ISA).
    "medium"   BF16 tensor cores: inputs rounded to BF16 (7-bit mantissa), FP32 sums
               (mode "bf16"); relative error of a product <= 2^-7.

It covers the float32 GEMMs that go through dlcore.cuda.kernels.gemm (matmul, linear, the
recurrent layers' GEMMs, forward and backward) on GPUs of compute capability 8.0 and newer
(older ones raise a ValueError naming the mode rather than fall back silently). It changes
nothing else: conv2d's GEMMs stay FP32 (as torch's setting leaves convolutions alone), float64
always runs the FP64 kernels, and the CPU always computes float32 in FP32 and float64 in FP64,
whatever the setting. The setting is process-wide (one value for all threads).
"""

_MODES = {"highest": None, "high": "tf32", "medium": "bf16"}  # precision -> tensor-core math mode
_precision = "highest"


def set_matmul_precision(precision):
    """Sets the float32 matmul precision on the GPU: "highest" (FP32, the default), "high"
    (TF32 tensor cores) or "medium" (BF16 tensor cores), each with FP32 sums. The CPU and
    float64 ignore it."""
    global _precision
    if not isinstance(precision, str):
        raise TypeError(f"set_matmul_precision: precision must be a str, one of 'highest', 'high', 'medium'; "
                        f"got {type(precision).__name__}")
    if precision not in _MODES:
        raise ValueError(f"set_matmul_precision: precision must be one of 'highest', 'high', 'medium', "
                         f"got {precision!r}")
    _precision = precision


def get_matmul_precision():
    """The float32 matmul precision set_matmul_precision chose: "highest", "high" or "medium"."""
    return _precision


def math_mode():
    """The tensor-core math the current precision asks for: None ("highest"), "tf32" ("high")
    or "bf16" ("medium")."""
    return _MODES[_precision]
