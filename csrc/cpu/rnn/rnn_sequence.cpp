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
// backward (both (H, H)).
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
  const int64_t H = s.H, total = rnn::total_rows(s);
  for (rnn::Step st = rnn::first_step(s, total); st.t >= 0; st = rnn::next_step(s, st)) {
    T* ht = y + st.off * H;  // (rows, H)
    rnn::step_gemm<T>(st, H, H, y, h0, w_hh_t, T(1), nullptr, ht, H);
    rnn::for_cells(st.rows, H, [&](int64_t r, int64_t j0, int64_t j1) {
      activate_cells(act, j0, j1, ht + r * H);
    });
    rnn::copy_rows(st.finishing, st.rows, H, ht, h_n);
  }
}
DLCORE_INSTANTIATE(rnn_sequence_forward, RnnSequenceForwardSig)

template <class T>
void rnn_sequence_backward(const RnnSequenceShape& s, RnnActivation act, const T* w_hh, const T* y,
                           const T* grad_y, const T* grad_h_n, T* grad_pre, T* grad_h0) {
  const int64_t H = s.H, total = rnn::total_rows(s);
  for (int64_t k = 0; k < s.B * H; ++k) grad_h0[k] = grad_h_n ? grad_h_n[k] : T(0);  // the carry
  for (rnn::Step st = rnn::last_step(s, total); st.t >= 0; st = rnn::prev_step(s, st)) {
    const T* ht = y + st.off * H;                          // (rows, H)
    const T* gy = grad_y ? grad_y + st.off * H : nullptr;  // (rows, H) | null
    T* dp = grad_pre + st.off * H;                         // (rows, H)
    rnn::for_cells(st.rows, H, [&](int64_t r, int64_t j0, int64_t j1) {
      if (gy) rnn_backward_cells<true>(act, j0, j1, ht + r * H, gy + r * H, grad_h0 + r * H, dp + r * H);
      else rnn_backward_cells<false>(act, j0, j1, ht + r * H, gy, grad_h0 + r * H, dp + r * H);
    });
    GemmArgs<T> g;  // carry (rows, H) := d_pre (rows, H) W_hh (H, H)
    g.M = st.rows;
    g.N = H;
    g.K = H;
    g.A = dp;
    g.lda = H;
    g.C = grad_h0;
    g.ldc = H;
    gemm_packed<T>(g, w_hh);
  }
}
DLCORE_INSTANTIATE(rnn_sequence_backward, RnnSequenceBackwardSig)

}  // namespace dlcore::cpu::DLCORE_ISA
