// Declarations of the CPU kernels of one ISA. Every file under csrc/cpu/ is compiled once
// per ISA (cmake/isa.cmake) with DLCORE_ISA = generic | avx2 | avx512, so each copy lives in
// its own namespace dlcore::cpu::<isa> and the copies never merge at link time.
//
// A kernel source defines `template <class T> void <slot>(...)` in that namespace with the
// signature from core/kernel_list.h and instantiates it for float and double
// (DLCORE_INSTANTIATE). A later, hand-tuned kernel for one ISA replaces the row in
// register_isa.cpp for that ISA only.
#pragma once
#include "core/kernel_list.h"

#ifndef DLCORE_ISA
#error "csrc/cpu sources must be compiled with -DDLCORE_ISA=<generic|avx2|avx512>"
#endif

namespace dlcore::cpu::DLCORE_ISA {

#define DLCORE_DECLARE_KERNEL(name, Sig) template <class T> Sig<T> name;
DLCORE_CPU_KERNELS(DLCORE_DECLARE_KERNEL)
#undef DLCORE_DECLARE_KERNEL

}  // namespace dlcore::cpu::DLCORE_ISA

// Explicit instantiation of one slot's kernel for float and double.
#define DLCORE_INSTANTIATE(name, Sig) \
  template Sig<float> name<float>;    \
  template Sig<double> name<double>;
