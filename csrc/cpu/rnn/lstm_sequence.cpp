// LSTM layer over a whole (packed) sequence, one direction: the recurrence that a Python loop
// over lstm_cell would run, as one kernel call per direction.
//
// Math, gate order (i, f, g, o) as in PyTorch; per step, for the active rows:
//   pre = x_t W_ih^T + b_ih + b_hh (precomputed for all steps by one GEMM) + h_prev W_hh^T
//   i, f, o = sigmoid(pre_i, pre_f, pre_o);  g = tanh(pre_g)
//   c = f * c_prev + i * g;  h = o * tanh(c)
// Backward through time, dh = grad_y_t + (dL/dh from the step run after), dc likewise, tc = tanh(c):
//   dc_total = dc + dh * o * (1 - tc^2)
//   d_i = dc_total * g * i(1-i);  d_f = dc_total * c_prev * f(1-f)
//   d_g = dc_total * i * (1-g^2); d_o = dh * tc * o(1-o)
//   dL/dc_prev = dc_total * f;    dL/dh_prev = d_gates W_hh
// The weight gradients are GEMMs over all steps at once, done by the caller from grad_gates;
// the bias gradient (grad_gates summed over rows) is summed here, each row as its cells finish
// (a separate column sum re-read grad_gates from memory: 100x32x512 at 1 thread, backward +
// sum 66.35 -> 64.8 ms).
//
// Layout (RnnSequenceShape; csrc/cpu/rnn/sequence_walk.h walks it): gates, grad_gates (total, 4H);
// y, c_all, grad_y (total, H); h0, c0, h_n, c_n, grad_h_n, grad_c_n, grad_h0, grad_c0 (B, H);
// all row-major contiguous. Forward reads W_hh (4H, H) as is and packs it once per call: per
// gate W_g^T (H, H) by gemm_pack_b, or, in the AVX-512 float copy, for the fused step of
// lstm_fused_avx512.cpp (cells in the GEMM tile's epilogue; a 50x32x128x256 recurrence 9.9 ->
// 8.8 ms at 1 thread, min of 55). Backward packs W_hh (4H, H) whole, with W_ih beside it when it
// also makes grad_x (see lstm_sequence_backward). Threads (csrc/cpu/rnn/sequence_walk.h) own batch
// rows, or hidden units when the batch is small; a thread's GEMM and cells of one step run
// back to back on its own part, so the gates it just computed are still in its cache.
// Preconditions (csrc/bindings/ops_rnn.cpp): the shape's own (kernel_args.h); sizes agree.
// Overwrite: every output is written in full; gates is read then overwritten in place.
// Saved for backward: the activated gates, c_all, c0 (and y for dW_hh, used by the caller).
// Tested: tests/kernels/test_rnn_kernels.py (float64 NumPy recurrence, forward and backward,
// padded and variable-length batches, both directions, every ISA). Timed: bench/bench_rnn.py.
// Bound: per step 8 * rows * H * H flops of GEMM forward (16 backward incl. dW_hh), against
// 11 loads/stores of T per cell pointwise: the GEMM dominates from H ~ 64 up.
#include <omp.h>

#include <cstdint>
#include <type_traits>

#include "cpu/gemm/gemm_parts.h"
#include "cpu/kernels.h"
#include "cpu/rnn/lstm_fused.h"
#include "cpu/rnn/sequence_walk.h"
#include "cpu/vec_math.h"

namespace dlcore::cpu::DLCORE_ISA {

namespace {

// Units [j0, j1) of one row: gates (4H) in place pre -> activated; h, c (H) of this step.
template <class T>
inline void lstm_forward_cells(int64_t H, int64_t j0, int64_t j1, T* __restrict gates,
                               const T* __restrict c_prev, T* __restrict h, T* __restrict c) {
  for (int64_t j = j0; j < j1; ++j) {
    const T i = vec::sigmoid(gates[j]);
    const T f = vec::sigmoid(gates[H + j]);
    const T g = vec::tanh(gates[2 * H + j]);
    const T o = vec::sigmoid(gates[3 * H + j]);
    const T c_new = f * c_prev[j] + i * g;
    gates[j] = i;
    gates[H + j] = f;
    gates[2 * H + j] = g;
    gates[3 * H + j] = o;
    c[j] = c_new;
    h[j] = o * vec::tanh(c_new);
  }
}

// Units [j0, j1) of one row backward: carry_h in dL/dh from later steps (grad_y added here),
// out dL/dh_prev is written later by the GEMM; carry_c in dL/dc, out dL/dc_prev. HasY drops the
// load of an absent grad_y.
template <bool HasY, class T>
inline void lstm_backward_cells(int64_t H, int64_t j0, int64_t j1, const T* __restrict gates,
                                const T* __restrict c_prev, const T* __restrict c,
                                const T* __restrict grad_y, const T* __restrict carry_h,
                                T* __restrict carry_c, T* __restrict grad_gates) {
  for (int64_t j = j0; j < j1; ++j) {
    const T i = gates[j], f = gates[H + j], g = gates[2 * H + j], o = gates[3 * H + j];
    const T tc = vec::tanh(c[j]);
    const T dh = HasY ? carry_h[j] + grad_y[j] : carry_h[j];
    const T dc_total = carry_c[j] + dh * o * (T(1) - tc * tc);
    grad_gates[j] = dc_total * g * i * (T(1) - i);
    grad_gates[H + j] = dc_total * c_prev[j] * f * (T(1) - f);
    grad_gates[2 * H + j] = dc_total * i * (T(1) - g * g);
    grad_gates[3 * H + j] = dh * tc * o * (T(1) - o);
    carry_c[j] = dc_total * f;
  }
}

// sums[q H + j] += grad_gates[q H + j] for the four gates q and units [j0, j1) of one row, just
// written (still in L1): the bias gradient's column sums, in the order the thread runs its rows.
template <class T>
inline void add_gate_grads(int64_t H, int64_t j0, int64_t j1, const T* __restrict grad_gates, T* __restrict sums) {
  for (int q = 0; q < 4; ++q)
    for (int64_t j = q * H + j0; j < q * H + j1; ++j) sums[j] += grad_gates[j];
}

// Batch rows from which the backward's carry GEMM also makes grad_x (see lstm_sequence_backward).
constexpr int64_t kGradXInWalkMinRows = 32;

}  // namespace

template <class T>
void lstm_sequence_forward(const RnnSequenceShape& s, const T* w_hh, const T* x, int64_t I, const T* w_ih,
                           const T* bias, const T* h0, const T* c0, T* gates, T* y, T* c_all, T* h_n, T* c_n) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {  // the cells in the GEMM tile (lstm_fused_avx512.cpp)
    rnn::lstm_sequence_forward_fused(s, w_hh, x, I, w_ih, bias, h0, c0, gates, y, c_all, h_n, c_n);
    return;
  }
#endif
  const int64_t H = s.H, G = 4 * H, gate_size = gemm_packed_size<T>(H, H);
  if (x) rnn::whole_gemm(rnn::total_rows(s), G, I, x, w_ih, true, bias, gates);  // gates := x W_ih^T + bias
  // Each gate's W_g^T (H, H) packed on its own (threads owning units read whole panels of each).
  const auto packed = aligned_buffer<T>(4 * gate_size);
  for (int g = 0; g < 4; ++g) gemm_pack_b<T>(true, H, H, w_hh + g * H * H, H, packed.get() + g * gate_size);
  const T* w_hh_t = packed.get();
  auto step_gemm = [&](const rnn::Step& st, const rnn::Part& part) {  // gates += h_prev W_hh^T
    rnn::gates_gemm<T>(st, part, H, 4, y, h0, s.h0_zero, w_hh_t, gate_size, T(1), nullptr, gates + st.off * G);
  };
  auto step_cells = [&](const rnn::Step& st, const rnn::Part& part) {
    T* gt = gates + st.off * G;  // (rows, 4H)
    T* ht = y + st.off * H;      // (rows, H)
    T* ct = c_all + st.off * H;  // (rows, H)
    rnn::part_cells(st, part, H, [&](int64_t r, int64_t j0, int64_t j1) {
      const T* cp = r < st.carried ? c_all + (st.prev_off + r) * H : c0 + r * H;  // (H)
      lstm_forward_cells(H, j0, j1, gt + r * G, cp, ht + r * H, ct + r * H);
    });
    rnn::copy_part(st, part, st.finishing, st.rows, H, ht, h_n);
    rnn::copy_part(st, part, st.finishing, st.rows, H, ct, c_n);
  };
  rnn::for_each_step<T>(s, /*backward=*/false, /*barrier_after_second=*/true, 4, step_gemm, step_cells);
}
DLCORE_INSTANTIATE(lstm_sequence_forward, LstmSequenceForwardSig)

template <class T>
void lstm_sequence_backward(const RnnSequenceShape& s, const T* w_hh, const T* w_ih, int64_t I, const T* gates,
                            const T* c_all, const T* c0, const T* grad_y, const T* grad_h_n, const T* grad_c_n,
                            T* grad_gates, T* grad_h0, T* grad_c0, T* grad_bias, T* grad_x) {
  const int64_t H = s.H, G = 4 * H;
  // W_hh (4H, H) packed whole for the carry GEMM, with W_ih (4H, I) packed beside it when grad_x
  // is wanted, H fills whole panels and the rule below holds: each step's GEMM then also makes
  // that step's grad_x rows (d_gates W_ih) while d_gates is in cache, instead of a GEMM over all
  // of grad_gates after the walk, which reads it back from memory (26 MB for the char-LSTM's
  // 100x32x64x512). The packed [W_hh | W_ih] streams from L3 every step, so it pays with many
  // rows and a narrow W_ih only. In a training step, 1 thread, backward + that GEMM -> backward:
  // 100x32x64x512 64.7 + 8.4 -> 72.4 ms, 50x32x128x256 9.2-9.5 + 4.3-4.4 -> 13.0; on 2 threads
  // 33.5 + 4.7 -> 38.0 and 4.8 + 2.1 -> 6.8-7.7. Not taken: nn.LSTM fwd+bwd 100x64x512x512, 1
  // thread, 765-766 -> 794-802 ms (2 threads 392-399 -> 387-390); 100x1x128x256 4.12-4.26 -> 4.67-4.72.
  const bool x_in_walk = grad_x && I > 0 && H % GemmTile<T>::NR == 0 && s.B >= kGradXInWalkMinRows && 2 * I <= H;
  const int64_t width = H + (x_in_walk ? I : 0);
  const auto packed = aligned_buffer<T>(gemm_packed_size<T>(G, width));
  if (x_in_walk) {
    GemmColumnBlocks<T> both;
    both.count = 2;
    both.block[0].cols = H;
    both.block[0].pieces = 1;
    both.block[0].piece[0] = {G, w_hh, H};
    both.block[1].cols = I;
    both.block[1].pieces = 1;
    both.block[1].piece[0] = {G, w_ih, I};
    gemm_pack_b_column_blocks(both, G, packed.get());
  } else {
    gemm_pack_b<T>(false, G, H, w_hh, H, packed.get());
  }
  const rnn::ExtraColumns<T> x_columns{x_in_walk ? I : 0, grad_x};
  rnn::init_carry(s.B, H, grad_h_n, grad_h0);  // the carries end as grad_h0, grad_c0
  rnn::init_carry(s.B, H, grad_c_n, grad_c0);
  // The bias gradient: each thread's column sums of its rows (all G columns, zero where another
  // thread owns the units), added in thread order after the walk.
  const int threads = omp_get_max_threads();
  const auto partial = aligned_buffer<T>(threads * G, /*zero=*/true);  // (threads, 4H)
  auto step_cells = [&](const rnn::Step& st, const rnn::Part& part) {
    const T* gt = gates + st.off * G;                      // (rows, 4H)
    const T* ct = c_all + st.off * H;                      // (rows, H)
    const T* gy = grad_y ? grad_y + st.off * H : nullptr;  // (rows, H) | null
    T* dgt = grad_gates + st.off * G;                      // (rows, 4H)
    T* sums = partial.get() + omp_get_thread_num() * G;    // (4H)
    rnn::part_cells(st, part, H, [&](int64_t r, int64_t j0, int64_t j1) {
      const T* cp = r < st.carried ? c_all + (st.prev_off + r) * H : c0 + r * H;  // (H)
      if (gy)
        lstm_backward_cells<true>(H, j0, j1, gt + r * G, cp, ct + r * H, gy + r * H, grad_h0 + r * H,
                                  grad_c0 + r * H, dgt + r * G);
      else
        lstm_backward_cells<false>(H, j0, j1, gt + r * G, cp, ct + r * H, gy, grad_h0 + r * H,
                                   grad_c0 + r * H, dgt + r * G);
      add_gate_grads(H, j0, j1, dgt + r * G, sums);
    });
  };
  auto step_gemm = [&](const rnn::Step& st, const rnn::Part& part) {  // carry_h := d_gates W_hh (grad_x too)
    rnn::carry_gemm<T>(st, part, H, 4, grad_gates + st.off * G, packed.get(), T(0), s.want_grad_h0, grad_h0,
                       x_columns);
  };
  rnn::for_each_step<T>(s, /*backward=*/true, /*barrier_after_second=*/false, 4, step_cells, step_gemm);
  if (grad_x && I > 0 && !x_in_walk)  // grad_x (total, I) := grad_gates (total, 4H) W_ih (4H, I)
    rnn::whole_gemm(rnn::total_rows(s), I, G, grad_gates, w_ih, false, static_cast<const T*>(nullptr), grad_x);
  for (int64_t j = 0; j < G; ++j) {
    T sum = T(0);
    for (int u = 0; u < threads; ++u) sum += partial.get()[u * G + j];
    grad_bias[j] = sum;
  }
}
DLCORE_INSTANTIATE(lstm_sequence_backward, LstmSequenceBackwardSig)

}  // namespace dlcore::cpu::DLCORE_ISA
