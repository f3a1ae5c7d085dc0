// The tensor-core GEMM as host C++ sees it (no CUDA types, so g++-compiled bindings include
// it). Kernels in gemm_tc.cu.
//
// Same contract as gemm (csrc/cuda/gemm.h: layouts, leading dimensions, batch strides, beta == 0
// never reads C, bias per column, ReLU) for float32 A, B, C and bias, with the products on the
// tensor cores (sm_80 and newer) in the chosen MathMode and the sums in FP32:
//   tf32: A and B rounded to TF32 (10-bit mantissa, round to nearest, ties away) as they are
//         loaded; relative error of a product <= 2^-10. On sm_90 the wgmma kernel (tile 256)
//         truncates instead (its tensor cores drop the low 13 bits of each FP32): <= 2^-9.
//   bf16: A and B rounded to BF16 (7-bit mantissa, round to nearest even) by a conversion pass
//         into scratch buffers first; relative error of a product <= 2^-7.
// This is what dlcore.set_matmul_precision("high") / ("medium") select for float32 on the GPU;
// "highest" keeps gemm (FP32). Deterministic: the same bits every run on a given GPU and build.
#pragma once

#include "cuda/gemm.h"

namespace dlcore::cuda {

enum class MathMode { tf32, bf16 };

const char* math_mode_name(MathMode mode);  // "tf32" or "bf16"

// Whether `device` has the tensor-core instructions gemm_tc uses (compute capability >= 8.0).
bool gemm_tc_supported(int device);

// Launches on current_stream() of the current device; validates d (dtype must be float32) and
// throws std::invalid_argument naming "gemm_tc" and the values on bad arguments, or when the
// device is older than sm_80. Returns once the kernels are queued.
void gemm_tc(const GemmDesc& d, MathMode mode);

// The kernels gemm_tc can use: the mma.sync block tiles 128 x 128 and 64 x 64 (both modes, sm_80+)
// and, on sm_90 in a build with sm_90a code, the wgmma kernel (tile 256: 128 x 256 block tiles,
// gemm_wgmma.h). gemm_tc picks one by size (auto_tile in gemm_tc.cu); this runs `tile` (0 =
// gemm_tc's own choice) so tests reach every kernel. tf32 operands that are not 16-byte aligned
// (start, lda/ldb or batch stride) take 4-byte copies in the mma.sync kernels, always with the
// 64-tile (the rule is written at the top of gemm_tc.cu).
void gemm_tc_with_tile(const GemmDesc& d, MathMode mode, int tile);

}  // namespace dlcore::cuda
