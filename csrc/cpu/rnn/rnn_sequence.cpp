// Elman RNN layer (tanh or ReLU) over a whole (packed) sequence, one direction.
//
// Math, per step for the active rows:
//   h = act(x_t W_ih^T + b_ih + b_hh (precomputed by one GEMM) + h_prev W_hh^T)
// Backward, dh = grad_y_t + (dL/dh from the step run after):
//   d_pre = dh * act'(h)   (tanh: 1 - h^2; relu: h > 0)
//   dL/dh_prev = d_pre W_hh
//
// Layout (RnnSequenceShape; csrc/cpu/rnn/sequence_walk.h): y, grad_y, grad_pre (total, H);
// h0, h_n, grad_h_n, grad_h0 (B, H). W_hh pre-packed by gemm_pack_b: W_hh^T forward, W_hh
// backward (both (H, H)). Threads as in csrc/cpu/rnn/sequence_walk.h.
// Preconditions (csrc/bindings/ops_rnn.cpp): the shape's own (kernel_args.h); sizes agree.
// Overwrite: every output is written in full; y is read then overwritten in place.
// Saved for backward: y (also the previous states for dW_hh).
// Tested: tests/kernels/test_rnn_kernels.py (float64 NumPy recurrence, every ISA).
// Bound: per step 2 * rows * H * H flops of GEMM forward, 4 backward plus 2 for dW_hh.
#include <cstdint>

#include "cpu/kernels.h"
#include "cpu/rnn/sequence_walk.h"
#include "cpu/vec_math.h"

namespace dlcore::cpu::DLCORE_ISA {

namespace {

template <class T>
inline void activate_cells(RnnActivation act, int64_t j0, int64_t j1, T* __restrict h) {
  if (act == RnnActivation::tanh) {
    for (int64_t j = j0; j < j1; ++j) h[j] = vec::tanh(h[j]);
  } else {
    for (int64_t j = j0; j < j1; ++j) h[j] = h[j] > T(0) ? h[j] : T(0);
  }
}

// Units [j0, j1) of one row: carry_h in dL/dh from later steps (grad_y added here).
template <bool HasY, class T>
inline void rnn_backward_cells(RnnActivation act, int64_t j0, int64_t j1, const T* __restrict h,
                               const T* __restrict grad_y, const T* __restrict carry_h,
                               T* __restrict grad_pre) {
  if (act == RnnActivation::tanh) {
    for (int64_t j = j0; j < j1; ++j)
      grad_pre[j] = (HasY ? carry_h[j] + grad_y[j] : carry_h[j]) * (T(1) - h[j] * h[j]);
  } else {
    for (int64_t j = j0; j < j1; ++j)
      grad_pre[j] = h[j] > T(0) ? (HasY ? carry_h[j] + grad_y[j] : carry_h[j]) : T(0);
  }
}

}  // namespace

template <class T>
void rnn_sequence_forward(const RnnSequenceShape& s, RnnActivation act, const T* w_hh_t, const T* h0,
                          T* y, T* h_n) {
  const int64_t H = s.H, gate_size = gemm_packed_size<T>(H, H);
  auto step_gemm = [&](const rnn::Step& st, const rnn::Part& part) {  // y += h_prev W_hh^T
    rnn::gates_gemm<T>(st, part, H, 1, y, h0, s.h0_zero, w_hh_t, gate_size, T(1), nullptr, y + st.off * H);
  };
  auto step_cells = [&](const rnn::Step& st, const rnn::Part& part) {
    T* ht = y + st.off * H;  // (rows, H)
    rnn::part_cells(st, part, H, [&](int64_t r, int64_t j0, int64_t j1) { activate_cells(act, j0, j1, ht + r * H); });
    rnn::copy_part(st, part, st.finishing, st.rows, H, ht, h_n);
  };
  rnn::for_each_step<T>(s, /*backward=*/false, /*barrier_after_second=*/true, 1, step_gemm, step_cells);
}
DLCORE_INSTANTIATE(rnn_sequence_forward, RnnSequenceForwardSig)

template <class T>
void rnn_sequence_backward(const RnnSequenceShape& s, RnnActivation act, const T* w_hh, const T* y,
                           const T* grad_y, const T* grad_h_n, T* grad_pre, T* grad_h0) {
  const int64_t H = s.H;
  rnn::init_carry(s.B, H, grad_h_n, grad_h0);  // the carry ends as grad_h0
  auto step_cells = [&](const rnn::Step& st, const rnn::Part& part) {
    const T* ht = y + st.off * H;                          // (rows, H)
    const T* gy = grad_y ? grad_y + st.off * H : nullptr;  // (rows, H) | null
    T* dp = grad_pre + st.off * H;                         // (rows, H)
    rnn::part_cells(st, part, H, [&](int64_t r, int64_t j0, int64_t j1) {
      if (gy) rnn_backward_cells<true>(act, j0, j1, ht + r * H, gy + r * H, grad_h0 + r * H, dp + r * H);
      else rnn_backward_cells<false>(act, j0, j1, ht + r * H, gy, grad_h0 + r * H, dp + r * H);
    });
  };
  auto step_gemm = [&](const rnn::Step& st, const rnn::Part& part) {  // carry := d_pre W_hh
    rnn::carry_gemm<T>(st, part, H, 1, grad_pre + st.off * H, w_hh, T(0), s.want_grad_h0, grad_h0);
  };
  rnn::for_each_step<T>(s, /*backward=*/true, /*barrier_after_second=*/false, 1, step_cells, step_gemm);
}
DLCORE_INSTANTIATE(rnn_sequence_backward, RnnSequenceBackwardSig)

}  // namespace dlcore::cpu::DLCORE_ISA
