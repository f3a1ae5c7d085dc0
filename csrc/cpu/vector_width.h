// The vector register width of the ISA copy being compiled (cmake/isa.cmake builds every CPU
// source once per ISA with that ISA's flags), for kernels that size their register tiles by it.
#pragma once

#ifndef DLCORE_ISA
#error "csrc/cpu sources must be compiled with -DDLCORE_ISA=<generic|avx2|avx512>"
#endif

namespace dlcore::cpu::DLCORE_ISA {

// Bytes in one vector register: zmm, ymm, or the baseline's xmm.
#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif

// Elements of type T in one vector register.
template <class T>
constexpr int kLanes = kVectorBytes / static_cast<int>(sizeof(T));

}  // namespace dlcore::cpu::DLCORE_ISA
