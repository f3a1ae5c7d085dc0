// Host entry points of the CUDA recurrence kernels (csrc/cuda/rnn.cu): the pointwise part of
// ONE time step of an LSTM, GRU or Elman RNN layer over a packed sequence, forward and
// backward. The Python mirrors (python/dlcore/cuda/kernels/rnn.py) walk the steps on the host
// and run each step's recurrent GEMM (csrc/cuda/gemm.h) around these kernels.
//
// Plain C++ (no CUDA types) so g++-compiled bindings include it. Pointers are device addresses
// on the current device, every array contiguous row-major; a step's arrays start at its first
// packed row. Kernels run on current_stream(), OVERWRITE what they write, and throw
// std::invalid_argument naming the op on bad arguments.
#pragma once
#include <cstdint>

#include "cuda/dtype.h"

namespace dlcore::cuda {

// One step of a packed sequence (the walk of csrc/cpu/rnn/sequence_walk.h): the step's active
// batch rows are [0, rows); rows [0, carried) continue from the step run just before it (their
// previous state is a row of that step: `*_prev` pointers, (carried, H)); rows [carried, rows)
// start here from the initial state (`*0` pointers, (B, H), row r read); rows [finishing, rows)
// end here, so their new state is also written to row r of h_n / c_n (B, H).
// Preconditions: H >= 1, rows >= 1, 0 <= carried <= rows, 0 <= finishing <= rows.
struct RnnStep {
  int64_t rows;
  int64_t H;
  int64_t carried;
  int64_t finishing;
};

// LSTM, gate order (i, f, g, o). gates (rows, 4H): in the pre-activations
// x W_ih^T + b_ih + b_hh + h_prev W_hh^T, out the activated gates. c_prev (carried, H), c0 (B, H);
// h, c (rows, H) this step's rows of y and c_all; h_n, c_n (B, H).
void lstm_step_forward(DType dtype, const RnnStep& s, void* gates, const void* c_prev, const void* c0,
                       void* h, void* c, void* h_n, void* c_n);

// LSTM backward of one step. gates (rows, 4H) activated, c (rows, H), c_prev / c0 as forward;
// grad_y (rows, H) or null; carry_h, carry_c (B, H): dL/dh, dL/dc from the steps run after
// (rows [0, rows) read). Writes grad_gates (rows, 4H) = dL/d(pre-activations) and
// carry_c[r] := dL/dc_prev; the caller then sets carry_h[0:rows] := grad_gates W_hh.
void lstm_step_backward(DType dtype, const RnnStep& s, const void* gates, const void* c, const void* c_prev,
                        const void* c0, const void* grad_y, const void* carry_h, void* carry_c, void* grad_gates);

// GRU, gate order (r, z, n). gates (rows, 3H): in x W_ih^T + b_ih, out the activated (r, z, n);
// hidden (rows, 3H) = h_prev W_hh^T + b_hh; h_prev (carried, H), h0 (B, H); h (rows, H) this
// step's rows of y; h_n (B, H).
void gru_step_forward(DType dtype, const RnnStep& s, void* gates, const void* hidden, const void* h_prev,
                      const void* h0, void* h, void* h_n);

// GRU backward of one step. grad_y (rows, H) or null; carry_h (B, H): in dL/dh from the steps
// run after, out (rows [0, rows)) dh * z; grad_x, grad_h (rows, 3H): dL/d(x side), dL/d(h side).
// The caller then adds grad_h W_hh to carry_h[0:rows].
void gru_step_backward(DType dtype, const RnnStep& s, const void* gates, const void* hidden, const void* h_prev,
                       const void* h0, const void* grad_y, void* carry_h, void* grad_x, void* grad_h);

// Elman RNN: y (rows, H) in the pre-activations, out h = tanh(pre) or max(pre, 0) (relu);
// h_n (B, H).
void rnn_step_forward(DType dtype, const RnnStep& s, bool relu, void* y, void* h_n);

// Elman RNN backward of one step: grad_pre (rows, H) = (carry_h + grad_y) * act'(h), with y
// (rows, H) this step's h, grad_y (rows, H) or null, carry_h (B, H). The caller then sets
// carry_h[0:rows] := grad_pre W_hh.
void rnn_step_backward(DType dtype, const RnnStep& s, bool relu, const void* y, const void* grad_y,
                       const void* carry_h, void* grad_pre);

}  // namespace dlcore::cuda
