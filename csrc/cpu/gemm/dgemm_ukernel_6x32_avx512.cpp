// dgemm_ukernel_6x32_avx512: the AVX-512 double GEMM micro-kernel, a 6 x 32 register tile
// (6 rows x 4 vectors of 8 doubles).
//
// Math/contract (and of the _strided_a / _strided_b twins, which read A / B in place): C[:m, :n] :=
// alpha * a * b + beta * C[:m, :n] over a packed A panel a (kc, 6) and
// a packed B panel b (kc, 32), zero-padded, m <= 6, n <= 32; beta == 0 does not read C; edges
// masked inside (csrc/cpu/gemm/README.md). Registered in csrc/cpu/gemm/ukernels.h.
// Tested: tests/kernels/test_gemm_kernels.py (isa fixture = avx512: every size 1..70, the tile edges).
#include "cpu/gemm/ukernel_avx512.h"
#include "cpu/gemm/ukernels.h"

namespace dlcore::cpu::DLCORE_ISA {

DLCORE_DEFINE_GEMM_UKERNELS(dgemm_ukernel_6x32_avx512, double, gemm_ukernel_avx512<double, 6, 4>)
DLCORE_DEFINE_GEMM_UKERNEL_STRIDED_B(dgemm_ukernel_6x32_avx512, double, gemm_ukernel_avx512_whole<double, 6, 4>)

}  // namespace dlcore::cpu::DLCORE_ISA
