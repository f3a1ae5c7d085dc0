// LSTM cell, fused pointwise part, reference kernels. The gate GEMMs
// (x W_ih^T + h_prev W_hh^T + biases) run through gemm; these kernels do everything after.
//
// Gate order (i, f, g, o), as in PyTorch: gates_pre[b] = [i | f | g | o], each H wide.
// Forward, per (b, j):
//   i = sigmoid(i_pre), f = sigmoid(f_pre), g = tanh(g_pre), o = sigmoid(o_pre)
//   c = f * c_prev + i * g;   h = o * tanh(c)
// Backward, with dh = grad_h, dc = grad_c (zero when null), tc = tanh(c):
//   dc_total = dc + dh * o * (1 - tc^2)
//   d_i_pre = dc_total * g * i(1-i);   d_f_pre = dc_total * c_prev * f(1-f)
//   d_g_pre = dc_total * i * (1-g^2);  d_o_pre = dh * tc * o(1-o)
//   grad_c_prev = dc_total * f
//
// Layout: gates_pre, gates, grad_gates_pre (B, 4H); c_prev, c, h, grad_h, grad_c,
// grad_c_prev (B, H); all row-major contiguous. Preconditions (csrc/bindings/ops_nn.cpp):
// shapes agree. Saved for backward: gates (activated), c_prev, c. Every output is OVERWRITTEN.
//
// sigmoid and tanh come from cpu/vec_math.h: float32 branch-free polynomials that vectorise
// (<= 2.5 / 1.5 ulp), float64 std::exp / std::tanh. Sigmoid is evaluated from e = exp(-|x|) <= 1,
// so it never overflows and keeps full relative precision in both tails: sigmoid(x) = 1/(1+e)
// for x >= 0, e/(1+e) for x < 0.
//
// Threads: one RNN step is often B*H of a few thousand, so OpenMP runs only above kParallelMin
// cells. Tested: pytest tests/kernels/test_nn_kernels.py -k lstm (float64 NumPy cell, finite
// differences in float64). Bound: 5 exp/tanh per cell forward, 1 backward; memory 11 (forward)
// / 12 (backward) sizeof(T) per cell. Measured forward B 20, H 650 float32, avx512: 0.045 ms
// on 1 thread, 0.024 ms on 2 (NumPy 0.06 ms; scalar libm was 0.89 ms).
#include <cmath>
#include <cstdint>

#include "cpu/kernels.h"
#include "cpu/vec_math.h"

namespace dlcore::cpu::DLCORE_ISA {

namespace {

// B*H below which a step stays on the calling thread. Measured float32 forward cost is ~3.5 ns
// per cell (vectorised sigmoid / tanh), so 8K cells are ~30 us, still well above the few
// microseconds of waking the team (B 20, H 650 = 13K cells: 45 us on 1 thread, 24 us on 2),
// while steps of a few thousand cells (B 20, H 200) stay serial.
constexpr int64_t kParallelMin = 1 << 13;

// One batch row of the forward. A separate function (like the backward's): written inline in
// the OpenMP loop body, GCC 12 finds a "complicated access pattern" and leaves it scalar.
template <class T>
inline void lstm_cell_forward_row(int64_t H, const T* __restrict pre, const T* __restrict cp,
                                  T* __restrict h_row, T* __restrict c_row, T* __restrict act) {
  // pre, act (4H); cp, h_row, c_row (H)
  for (int64_t j = 0; j < H; ++j) {
    const T i = vec::sigmoid(pre[j]);
    const T f = vec::sigmoid(pre[H + j]);
    const T g = vec::tanh(pre[2 * H + j]);
    const T o = vec::sigmoid(pre[3 * H + j]);
    const T c_new = f * cp[j] + i * g;
    act[j] = i;
    act[H + j] = f;
    act[2 * H + j] = g;
    act[3 * H + j] = o;
    c_row[j] = c_new;
    h_row[j] = o * vec::tanh(c_new);
  }
}

// One batch row of the backward; HasH / HasC drop the loads of absent gradients.
template <bool HasH, bool HasC, class T>
inline void lstm_cell_backward_row(int64_t H, const T* __restrict gates, const T* __restrict c_prev,
                                   const T* __restrict c, const T* __restrict grad_h,
                                   const T* __restrict grad_c, T* __restrict grad_gates_pre,
                                   T* __restrict grad_c_prev) {
  // gates, grad_gates_pre (4H); c_prev, c, grad_h, grad_c, grad_c_prev (H)
  for (int64_t j = 0; j < H; ++j) {
    const T i = gates[j], f = gates[H + j], g = gates[2 * H + j], o = gates[3 * H + j];
    const T tc = vec::tanh(c[j]);
    const T dh = HasH ? grad_h[j] : T(0);
    const T dc_total = (HasC ? grad_c[j] : T(0)) + dh * o * (T(1) - tc * tc);
    grad_gates_pre[j] = dc_total * g * i * (T(1) - i);
    grad_gates_pre[H + j] = dc_total * c_prev[j] * f * (T(1) - f);
    grad_gates_pre[2 * H + j] = dc_total * i * (T(1) - g * g);
    grad_gates_pre[3 * H + j] = dh * tc * o * (T(1) - o);
    grad_c_prev[j] = dc_total * f;
  }
}

}  // namespace

template <class T>
void lstm_cell_forward(int64_t B, int64_t H, const T* gates_pre, const T* c_prev, T* h, T* c,
                       T* gates) {
  // gates_pre, gates (B, 4H); c_prev, h, c (B, H)
#pragma omp parallel for schedule(static) if (B * H >= kParallelMin)
  for (int64_t b = 0; b < B; ++b)
    lstm_cell_forward_row(H, gates_pre + b * 4 * H, c_prev + b * H, h + b * H, c + b * H,
                          gates + b * 4 * H);
}
DLCORE_INSTANTIATE(lstm_cell_forward, LstmCellForwardSig)

template <class T>
void lstm_cell_backward(int64_t B, int64_t H, const T* gates, const T* c_prev, const T* c,
                        const T* grad_h, const T* grad_c, T* grad_gates_pre, T* grad_c_prev) {
  // gates, grad_gates_pre (B, 4H); c_prev, c, grad_c_prev (B, H); grad_h, grad_c (B, H) | null
#pragma omp parallel for schedule(static) if (B * H >= kParallelMin)
  for (int64_t b = 0; b < B; ++b) {
    const T* gh = grad_h ? grad_h + b * H : nullptr;  // (H) | null
    const T* gc = grad_c ? grad_c + b * H : nullptr;  // (H) | null
    const T* gt = gates + b * 4 * H;                  // (4H)
    const T* cp = c_prev + b * H;                     // (H)
    const T* cr = c + b * H;                          // (H)
    T* ggp = grad_gates_pre + b * 4 * H;              // (4H)
    T* gcp = grad_c_prev + b * H;                     // (H)
    if (gh && gc) lstm_cell_backward_row<true, true>(H, gt, cp, cr, gh, gc, ggp, gcp);
    else if (gh) lstm_cell_backward_row<true, false>(H, gt, cp, cr, gh, gc, ggp, gcp);
    else if (gc) lstm_cell_backward_row<false, true>(H, gt, cp, cr, gh, gc, ggp, gcp);
    else lstm_cell_backward_row<false, false>(H, gt, cp, cr, gh, gc, ggp, gcp);
  }
}
DLCORE_INSTANTIATE(lstm_cell_backward, LstmCellBackwardSig)

}  // namespace dlcore::cpu::DLCORE_ISA
