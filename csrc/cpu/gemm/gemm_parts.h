// Pieces of the GEMM driver (csrc/cpu/gemm/gemm.cpp) for kernels that split one GEMM across
// their own threads, e.g. the recurrences in csrc/cpu/rnn/, whose threads each own a slice of
// the hidden units for a whole sequence. Not kernel slots: called from inside another kernel of
// the same ISA copy.
#pragma once
#include <cstdint>

#include "core/kernel_args.h"
#include "cpu/gemm/ukernels.h"

namespace dlcore::cpu::DLCORE_ISA {

// Columns [n0, n1) of gemm_packed(g, Bp) (C[:, n0:n1] := alpha * op(A) * op(B)[:, n0:n1] +
// beta * C[:, n0:n1], then the epilogue), on the calling thread only. n0 is a multiple of
// GemmTile<T>::NR (a packed panel boundary); n1 is one too, or g.N.
template <class T>
void gemm_packed_columns(const GemmArgs<T>& g, const T* Bp, int64_t n0, int64_t n1);

}  // namespace dlcore::cpu::DLCORE_ISA
