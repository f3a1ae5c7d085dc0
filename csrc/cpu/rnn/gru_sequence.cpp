// GRU layer over a whole (packed) sequence, one direction, gate order (r, z, n) as in PyTorch.
//
// Math, per step for the active rows (xr, xz, xn = x_t W_ih^T + b_ih, precomputed by one GEMM;
// hr, hz, hn = h_prev W_hh^T + b_hh, one GEMM per step):
//   r = sigmoid(xr + hr);  z = sigmoid(xz + hz);  n = tanh(xn + r * hn)
//   h = (1 - z) * n + z * h_prev
// Backward, dh = grad_y_t + (dL/dh from the step run after):
//   dn = dh (1 - z) (1 - n^2);  dz = dh (h_prev - n) z (1 - z);  dr = dn hn r (1 - r)
//   d(x side) = (dr, dz, dn);  d(h side) = (dr, dz, dn * r)
//   dL/dh_prev = dh * z + d(h side) W_hh
//
// Layout (RnnSequenceShape; csrc/cpu/rnn/sequence_walk.h): gates, hidden, grad_gates_x,
// grad_gates_h (total, 3H); y, grad_y (total, H); h0, h_n, grad_h_n, grad_h0 (B, H); b_hh (3H).
// W_hh pre-packed by gemm_pack_b: per gate W_g^T (H, H) forward, W_hh (3H, H) whole backward.
// Threads as in csrc/cpu/rnn/sequence_walk.h (batch rows, or hidden units for a small batch).
// Preconditions (csrc/bindings/ops_rnn.cpp): the shape's own (kernel_args.h); sizes agree.
// Overwrite: every output is written in full; gates is read then overwritten in place.
// Saved for backward: activated gates, hidden (for hn), y and h0 (the previous states).
// Tested: tests/kernels/test_rnn_kernels.py (float64 NumPy recurrence, every ISA).
// Bound: per step 6 * rows * H * H flops of GEMM forward, 12 backward incl. dW_hh.
#include <cstdint>

#include "cpu/kernels.h"
#include "cpu/rnn/sequence_walk.h"
#include "cpu/vec_math.h"

namespace dlcore::cpu::DLCORE_ISA {

namespace {

// Units [j0, j1) of one row: gates (3H) in place x side -> (r, z, n); hidden (3H); h (H).
template <class T>
inline void gru_forward_cells(int64_t H, int64_t j0, int64_t j1, T* __restrict gates,
                              const T* __restrict hidden, const T* __restrict h_prev, T* __restrict h) {
  for (int64_t j = j0; j < j1; ++j) {
    const T r = vec::sigmoid(gates[j] + hidden[j]);
    const T z = vec::sigmoid(gates[H + j] + hidden[H + j]);
    const T n = vec::tanh(gates[2 * H + j] + r * hidden[2 * H + j]);
    gates[j] = r;
    gates[H + j] = z;
    gates[2 * H + j] = n;
    h[j] = (T(1) - z) * n + z * h_prev[j];
  }
}

// Units [j0, j1) of one row backward; carry_h in dL/dh from later steps, out dh * z (the GEMM
// then adds d(h side) W_hh).
template <bool HasY, class T>
inline void gru_backward_cells(int64_t H, int64_t j0, int64_t j1, const T* __restrict gates,
                               const T* __restrict hidden, const T* __restrict h_prev,
                               const T* __restrict grad_y, T* __restrict carry_h,
                               T* __restrict grad_x, T* __restrict grad_h) {
  for (int64_t j = j0; j < j1; ++j) {
    const T r = gates[j], z = gates[H + j], n = gates[2 * H + j];
    const T dh = HasY ? carry_h[j] + grad_y[j] : carry_h[j];
    const T dn = dh * (T(1) - z) * (T(1) - n * n);
    const T dz = dh * (h_prev[j] - n) * z * (T(1) - z);
    const T dr = dn * hidden[2 * H + j] * r * (T(1) - r);
    grad_x[j] = dr;
    grad_x[H + j] = dz;
    grad_x[2 * H + j] = dn;
    grad_h[j] = dr;
    grad_h[H + j] = dz;
    grad_h[2 * H + j] = dn * r;
    carry_h[j] = dh * z;
  }
}

}  // namespace

template <class T>
void gru_sequence_forward(const RnnSequenceShape& s, const T* w_hh_t, const T* b_hh, const T* h0,
                          T* gates, T* hidden, T* y, T* h_n) {
  const int64_t H = s.H, G = 3 * H, gate_size = gemm_packed_size<T>(H, H);
  auto step_gemm = [&](const rnn::Step& st, const rnn::Part& part) {  // hidden := h_prev W_hh^T + b_hh
    rnn::gates_gemm<T>(st, part, H, 3, y, h0, s.h0_zero, w_hh_t, gate_size, T(0), b_hh, hidden + st.off * G);
  };
  auto step_cells = [&](const rnn::Step& st, const rnn::Part& part) {
    T* gt = gates + st.off * G;   // (rows, 3H)
    T* hd = hidden + st.off * G;  // (rows, 3H)
    T* ht = y + st.off * H;       // (rows, H)
    rnn::part_cells(st, part, H, [&](int64_t r, int64_t j0, int64_t j1) {
      const T* hp = r < st.carried ? y + (st.prev_off + r) * H : h0 + r * H;  // (H)
      gru_forward_cells(H, j0, j1, gt + r * G, hd + r * G, hp, ht + r * H);
    });
    rnn::copy_part(st, part, st.finishing, st.rows, H, ht, h_n);
  };
  rnn::for_each_step<T>(s, /*backward=*/false, /*barrier_after_second=*/true, 3, step_gemm, step_cells);
}
DLCORE_INSTANTIATE(gru_sequence_forward, GruSequenceForwardSig)

template <class T>
void gru_sequence_backward(const RnnSequenceShape& s, const T* w_hh, const T* h0, const T* gates,
                           const T* hidden, const T* y, const T* grad_y, const T* grad_h_n,
                           T* grad_gates_x, T* grad_gates_h, T* grad_h0) {
  const int64_t H = s.H, G = 3 * H;
  rnn::init_carry(s.B, H, grad_h_n, grad_h0);  // the carry ends as grad_h0
  auto step_cells = [&](const rnn::Step& st, const rnn::Part& part) {
    const T* gt = gates + st.off * G;                      // (rows, 3H)
    const T* hd = hidden + st.off * G;                     // (rows, 3H)
    const T* gy = grad_y ? grad_y + st.off * H : nullptr;  // (rows, H) | null
    T* dx = grad_gates_x + st.off * G;                     // (rows, 3H)
    T* dh = grad_gates_h + st.off * G;                     // (rows, 3H)
    rnn::part_cells(st, part, H, [&](int64_t r, int64_t j0, int64_t j1) {
      const T* hp = r < st.carried ? y + (st.prev_off + r) * H : h0 + r * H;  // (H)
      if (gy)
        gru_backward_cells<true>(H, j0, j1, gt + r * G, hd + r * G, hp, gy + r * H, grad_h0 + r * H,
                                 dx + r * G, dh + r * G);
      else
        gru_backward_cells<false>(H, j0, j1, gt + r * G, hd + r * G, hp, gy, grad_h0 + r * H,
                                  dx + r * G, dh + r * G);
    });
  };
  auto step_gemm = [&](const rnn::Step& st, const rnn::Part& part) {  // carry += d(h side) W_hh
    rnn::carry_gemm<T>(st, part, H, 3, grad_gates_h + st.off * G, w_hh, T(1), s.want_grad_h0, grad_h0);
  };
  rnn::for_each_step<T>(s, /*backward=*/true, /*barrier_after_second=*/false, 3, step_cells, step_gemm);
}
DLCORE_INSTANTIATE(gru_sequence_backward, GruSequenceBackwardSig)

}  // namespace dlcore::cpu::DLCORE_ISA
