// The fused LSTM recurrences of the AVX-512 copy (lstm_fused_avx512.cpp), for float: the
// cells run in the epilogue of the recurrent GEMM's register tile. lstm_sequence.cpp calls them
// in place of its unfused walk; their contracts are those of the kernel slots
// lstm_sequence_forward / lstm_sequence_backward (core/kernel_list.h), with W_hh read as is
// (4H, H) and packed inside.
#pragma once
#include <cstdint>

#include "core/kernel_args.h"

#ifndef DLCORE_ISA
#error "csrc/cpu sources must be compiled with -DDLCORE_ISA=<generic|avx2|avx512>"
#endif

namespace dlcore::cpu::DLCORE_ISA::rnn {

#if defined(__AVX512F__)
void lstm_sequence_forward_fused(const RnnSequenceShape& s, const float* w_hh, const float* x, int64_t I,
                                 const float* w_ih, const float* bias, const float* h0, const float* c0, float* gates,
                                 float* y, float* c_all, float* h_n, float* c_n);
#endif

}  // namespace dlcore::cpu::DLCORE_ISA::rnn
