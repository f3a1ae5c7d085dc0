// The CPU kernel list: one row per kernel slot. This list drives registration (each
// ISA's csrc/cpu/register_isa.cpp fills a KernelTable from it), dispatch (bindings call
// slot::<name><T>()), and what `dlcore._C.kernels()` reports to tests and benchmarks.
//
// Kernels are stateless functions over raw pointers. Preconditions (shapes, contiguity,
// index ranges) are checked once in csrc/bindings/, never inside a kernel. Every kernel
// OVERWRITES its outputs; accumulation across uses belongs to the autograd engine.
// Each slot exists for T = float and T = double (double feeds finite-difference checks).
#pragma once
#include <cstdint>

#include "core/kernel_args.h"

namespace dlcore {

// ---- signatures, one alias template per slot (T = float | double) ----------------------
// C[b] := alpha * op(A[b]) * op(B[b]) + beta * C[b] for b in [0, batch).
template <class T> using GemmSig = void(const GemmArgs<T>&);
// Pre-packed B (pack a weight once, reuse it across calls), in this ISA's own layout: for each
// depth block of the equal-size blocking gemm uses for this K, all ceil(N / NR) column panels
// (kc, NR), zero-padded (csrc/cpu/gemm/README.md). The packed buffer is only valid for the ISA
// and element type that packed it.
// The number of T elements the packed op(B) (K, N) occupies (K * N rounded up to whole panels).
template <class T> using GemmPackedSizeSig = int64_t(int64_t K, int64_t N);
// Bp (gemm_packed_size(K, N) elements, 64-byte aligned) := op(B) (K, N) packed, where B is
// (K, N), or (N, K) when trans_b, with row stride ldb. Every element of Bp is written.
template <class T> using GemmPackBSig = void(bool trans_b, int64_t K, int64_t N, const T* B, int64_t ldb,
                                              T* Bp);
// C := alpha * op(A) * B + beta * C, then the fused epilogue, for one matrix (g.batch is 1),
// with op(B) (g.K, g.N) read from Bp packed by gemm_pack_b of the same ISA; g.B, g.ldb,
// g.trans_b and the batch strides are ignored.
template <class T> using GemmPackedSig = void(const GemmArgs<T>& g, const T* Bp);
// y[i] := f(x[i]), i < n.
template <class T> using UnaryForwardSig = void(UnaryOp, int64_t n, const T* x, T* y, T alpha, T beta);
// grad_x[i] := grad_y[i] * f'(x[i]) (uses x or y = f(x), whichever is cheaper).
template <class T> using UnaryBackwardSig = void(UnaryOp, int64_t n, const T* x, const T* y,
                                                  const T* grad_y, T* grad_x, T alpha, T beta);
// out[idx] := a[idx] (op) b[idx] over a broadcast iteration space; out is contiguous.
template <class T> using BinaryForwardSig = void(BinaryOp, const BroadcastIter& it, const T* a,
                                                  const T* b, T* out);
// out[idx] := a[idx] (cmp) b[idx], out is bool (one byte, 0 or 1) and contiguous.
template <class T> using CompareForwardSig = void(CompareOp, const BroadcastIter& it, const T* a,
                                                   const T* b, bool* out);
// out[idx] := cond[idx] ? a[idx] : b[idx]; operands 0,1,2 of `it` are cond, a, b.
template <class T> using WhereForwardSig = void(const BroadcastIter& it, const bool* cond,
                                                 const T* a, const T* b, T* out);
// x is (outer, R, inner) contiguous; out (outer, inner) := reduce over R.
// For ReduceOp::max / argmax, index (outer, inner) receives the arg index (first max);
// index may be null for sum / max when not needed.
template <class T> using ReduceForwardSig = void(ReduceOp, int64_t outer, int64_t R, int64_t inner,
                                                  const T* x, T* out, int64_t* index);
// grad_x (outer, R, inner) := 0 except grad_x[o, index[o,i], i] = grad_out[o, i].
template <class T> using ReduceMaxBackwardSig = void(int64_t outer, int64_t R, int64_t inner,
                                                      const int64_t* index, const T* grad_out,
                                                      T* grad_x);
// Softmax over the middle axis of (outer, R, inner); log = true gives log_softmax.
template <class T> using SoftmaxForwardSig = void(bool log, int64_t outer, int64_t R, int64_t inner,
                                                   const T* x, T* y);
// grad_x from y (the forward output) and grad_y.
template <class T> using SoftmaxBackwardSig = void(bool log, int64_t outer, int64_t R, int64_t inner,
                                                    const T* y, const T* grad_y, T* grad_x);
// Fused log_softmax + NLL per row. logits (N, C), target (N) in [0, C) or == ignore_index.
// loss (N) := lse - logits[n, target[n]] (0 for ignored rows); lse (N) saved for backward.
template <class T> using CrossEntropyForwardSig = void(int64_t N, int64_t C, const T* logits,
                                                        const int64_t* target, int64_t ignore_index,
                                                        T* loss, T* lse);
// grad_logits (N, C) := grad_loss[n] * (softmax(logits)[n] - onehot(target[n])); 0 rows if ignored.
template <class T> using CrossEntropyBackwardSig = void(int64_t N, int64_t C, const T* logits,
                                                         const int64_t* target, int64_t ignore_index,
                                                         const T* lse, const T* grad_loss,
                                                         T* grad_logits);
// loss (N) := -logp[n, target[n]] (0 for ignored rows).
template <class T> using NllLossForwardSig = void(int64_t N, int64_t C, const T* logp,
                                                   const int64_t* target, int64_t ignore_index, T* loss);
// grad_logp (N, C) := 0 except grad_logp[n, target[n]] = -grad_loss[n].
template <class T> using NllLossBackwardSig = void(int64_t N, int64_t C, const int64_t* target,
                                                    int64_t ignore_index, const T* grad_loss,
                                                    T* grad_logp);
// Inverted dropout: keep[i] = (u(seed, i) >= p); y[i] = keep[i] ? x[i] / (1 - p) : 0.
// u is a counter-based uniform in [0, 1) of (seed, i): reproducible, thread-count independent.
template <class T> using DropoutForwardSig = void(int64_t n, double p, uint64_t seed, const T* x,
                                                   T* y, bool* keep);
// grad_x[i] := keep[i] ? grad_y[i] * scale : 0.
template <class T> using DropoutBackwardSig = void(int64_t n, T scale, const bool* keep,
                                                    const T* grad_y, T* grad_x);
// out (n, D) := weight[index[i]] for weight (num, D); index values in [0, num).
template <class T> using EmbeddingForwardSig = void(int64_t num, int64_t D, const T* weight,
                                                     int64_t n, const int64_t* index, T* out);
// grad_weight (num, D) := sum over i with index[i] == r of grad_out[i] (zero rows elsewhere);
// rows equal to padding_idx (if >= 0) get no gradient.
template <class T> using EmbeddingBackwardSig = void(int64_t num, int64_t D, int64_t n,
                                                      const int64_t* index, int64_t padding_idx,
                                                      const T* grad_out, T* grad_weight);
// y (N, C_out, OH, OW) := conv(x (N, C, H, W), w (C_out, C/groups, KH, KW)) + bias (C_out | null).
template <class T> using Conv2dForwardSig = void(const Conv2dShape&, const T* x, const T* w,
                                                  const T* bias, T* y);
// grad_x (N, C, H, W) from w and grad_y.
template <class T> using Conv2dBackwardInputSig = void(const Conv2dShape&, const T* w,
                                                        const T* grad_y, T* grad_x);
// grad_w (C_out, C/groups, KH, KW) and grad_bias (C_out | null) from x and grad_y.
template <class T> using Conv2dBackwardWeightSig = void(const Conv2dShape&, const T* x,
                                                         const T* grad_y, T* grad_w, T* grad_bias);
// y (N, C, OH, OW) := max over each window (padding never wins). At most one index is written
// (either pointer may be null): plane_index (N, C, OH, OW) int64, the flat h*W + w position of
// the max inside its (H, W) plane (-1: empty window); or window_index (N, C, OH, OW) uint8, the
// position kh*KW + kw inside its window (255: empty window; only when KH*KW <= 255).
template <class T> using MaxPool2dForwardSig = void(const Pool2dShape&, const T* x, T* y,
                                                     int64_t* plane_index, uint8_t* window_index);
// grad_x (N, C, H, W) := grad_y added at the positions of exactly one of plane_index /
// window_index (the other null), both as written by max_pool2d_forward.
template <class T> using MaxPool2dBackwardSig = void(const Pool2dShape&, const int64_t* plane_index,
                                                      const uint8_t* window_index, const T* grad_y,
                                                      T* grad_x);
// y := mean over each window; divisor per Pool2dShape::count_include_pad.
template <class T> using AvgPool2dForwardSig = void(const Pool2dShape&, const T* x, T* y);
template <class T> using AvgPool2dBackwardSig = void(const Pool2dShape&, const T* grad_y, T* grad_x);
// LSTM cell pointwise part, gate order (i, f, g, o) as in PyTorch.
// gates_pre (B, 4H) = x W_ih^T + b_ih + h_prev W_hh^T + b_hh (the GEMMs run through gemm).
// c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g);  h = sigmoid(o) * tanh(c).
// gates (B, 4H) := activated gates (sigmoid i, f, o; tanh g), saved for backward.
template <class T> using LstmCellForwardSig = void(int64_t B, int64_t H, const T* gates_pre,
                                                    const T* c_prev, T* h, T* c, T* gates);
// From saved gates, c_prev, c and grad_h, grad_c (either may be null = zero):
// grad_gates_pre (B, 4H) and grad_c_prev (B, H).
template <class T> using LstmCellBackwardSig = void(int64_t B, int64_t H, const T* gates,
                                                     const T* c_prev, const T* c, const T* grad_h,
                                                     const T* grad_c, T* grad_gates_pre,
                                                     T* grad_c_prev);

// ---- recurrences over a packed sequence (RnnSequenceShape; total = sum of batch_sizes) ----
// The input projections of all steps are one GEMM before these kernels run; each step here is
// a GEMM of the previous state with the pre-packed W_hh (gemm_pack_b of the same ISA) and a
// fused pointwise pass. h0, c0, h_n, c_n, grad_h0, grad_c0 are (B, H); the (total, *) arrays
// hold exactly the rows each step runs (no padding). Gate orders as in PyTorch.
// The GRU and Elman forward kernels read w_hh_t: the gate blocks W_g^T (H, H) of W_hh (G*H, H),
// each packed by gemm_pack_b(trans_b = true) on its own and stored one after another
// (gemm_packed_size(H, H) elements each); the LSTM forward reads W_hh (4H, H) unpacked and packs
// it itself, in the layout of its ISA's step; the GRU and Elman backward kernels read w_hh: W_hh
// (G*H, H) as is, packed whole (K = G*H, N = H); the LSTM backward packs W_hh itself.
// LSTM forward. gates (total, 4H): in x W_ih^T + b_ih + b_hh, or, when x is not null, only out
// (the kernel then makes x (total, I) W_ih^T (W_ih (4H, I)) + bias (4H, or null) itself); out the
// activated gates (i, f, g, o). y, c_all (total, H): h and c of every step; h_n, c_n: each row's
// state after its last step.
template <class T> using LstmSequenceForwardSig = void(const RnnSequenceShape& s, const T* w_hh,
                                                        const T* x, int64_t I, const T* w_ih,
                                                        const T* bias, const T* h0, const T* c0,
                                                        T* gates, T* y, T* c_all, T* h_n, T* c_n);
// LSTM backward through time.
// From the forward's gates, c_all and c0 and the incoming gradients (each may be null = zero):
// grad_gates (total, 4H) (w.r.t. the gates before activation), grad_h0, grad_c0, and grad_bias
// (4H): grad_gates summed over its rows (the gradient of b_ih and of b_hh alike). W_hh (4H, H) as
// is (packed by the kernel, unlike the other backward kernels'). With grad_x (total, I) not null:
// grad_x := grad_gates W_ih, W_ih (4H, I) as is.
template <class T> using LstmSequenceBackwardSig = void(const RnnSequenceShape& s, const T* w_hh,
                                                         const T* w_ih, int64_t I, const T* gates,
                                                         const T* c_all, const T* c0, const T* grad_y,
                                                         const T* grad_h_n, const T* grad_c_n,
                                                         T* grad_gates, T* grad_h0, T* grad_c0,
                                                         T* grad_bias, T* grad_x);
// GRU forward, gates (r, z, n). b_hh (3H) | null.
// gates (total, 3H): in x W_ih^T + b_ih; out the activated r, z, n. hidden (total, 3H) :=
// h_prev W_hh^T + b_hh of every step (its n third is needed by backward). y (total, H), h_n.
template <class T> using GruSequenceForwardSig = void(const RnnSequenceShape& s, const T* w_hh_t,
                                                       const T* b_hh, const T* h0, T* gates,
                                                       T* hidden, T* y, T* h_n);
// GRU backward. grad_gates_x (total, 3H) w.r.t. x W_ih^T + b_ih,
// grad_gates_h (total, 3H) w.r.t. h_prev W_hh^T + b_hh; grad_h0.
template <class T> using GruSequenceBackwardSig = void(const RnnSequenceShape& s, const T* w_hh,
                                                        const T* h0, const T* gates, const T* hidden,
                                                        const T* y, const T* grad_y, const T* grad_h_n,
                                                        T* grad_gates_x, T* grad_gates_h, T* grad_h0);
// Elman RNN forward. y (total, H): in x W_ih^T + b_ih + b_hh,
// out h of every step (in place); h_n.
template <class T> using RnnSequenceForwardSig = void(const RnnSequenceShape& s, RnnActivation act,
                                                       const T* w_hh_t, const T* h0, T* y, T* h_n);
// Elman RNN backward. grad_pre (total, H) w.r.t. the pre-activation.
template <class T> using RnnSequenceBackwardSig = void(const RnnSequenceShape& s, RnnActivation act,
                                                        const T* w_hh, const T* y, const T* grad_y,
                                                        const T* grad_h_n, T* grad_pre, T* grad_h0);
// The weight gradients of one RNN layer and direction over a padded batch (T steps of B rows,
// total = T * B): grad_w_ih (G, I) := grad_gates^T x and grad_w_hh (G, H) := grad_gates^T h_prev,
// where grad_gates (total, G), x (total, I), y (total, H) and h_prev's row r is y's row r - B
// (r + B when reverse), or h0's row r mod B where that row does not exist; h0 (B, H), or null
// for zeros. Both outputs overwritten.
template <class T> using RnnWeightGradsSig = void(int64_t total, int64_t G, int64_t B, int64_t I, int64_t H,
                                                  bool reverse, const T* grad_gates, const T* x, const T* y,
                                                  const T* h0, T* grad_w_ih, T* grad_w_hh);
// One SGD step over n elements in place: d = (maximize ? -grad : grad) + weight_decay * p;
// with momentum buf = first ? d : momentum * buf + (1 - dampening) * d, then d = nesterov ?
// d + momentum * buf : buf; p -= lr * d. buf is null without momentum.
template <class T> using SgdStepSig = void(int64_t n, const SgdHyper& h, T* p, const T* grad, T* buf);
// One Adam (AdamW: decoupled) step over n elements in place: g = maximize ? -grad : grad;
// Adam g += weight_decay * p | AdamW p *= 1 - lr * weight_decay; m += (1 - beta1) (g - m);
// v = beta2 v + (1 - beta2) g^2; amsgrad: vmax = max(vmax, v), used for v below;
// p -= step_size * m / (sqrt(v) / bias_correction2_sqrt + eps). vmax null without amsgrad.
template <class T> using AdamStepSig = void(int64_t n, const AdamHyper& h, T* p, const T* grad, T* m, T* v,
                                            T* vmax);

// ---- the list ---------------------------------------------------------------------------
#define DLCORE_CPU_KERNELS(X)                            \
  X(gemm, GemmSig)                                       \
  X(gemm_packed_size, GemmPackedSizeSig)                 \
  X(gemm_pack_b, GemmPackBSig)                           \
  X(gemm_packed, GemmPackedSig)                          \
  X(unary_forward, UnaryForwardSig)                      \
  X(unary_backward, UnaryBackwardSig)                    \
  X(binary_forward, BinaryForwardSig)                    \
  X(compare_forward, CompareForwardSig)                  \
  X(where_forward, WhereForwardSig)                      \
  X(reduce_forward, ReduceForwardSig)                    \
  X(reduce_max_backward, ReduceMaxBackwardSig)           \
  X(softmax_forward, SoftmaxForwardSig)                  \
  X(softmax_backward, SoftmaxBackwardSig)                \
  X(cross_entropy_forward, CrossEntropyForwardSig)       \
  X(cross_entropy_backward, CrossEntropyBackwardSig)     \
  X(nll_loss_forward, NllLossForwardSig)                 \
  X(nll_loss_backward, NllLossBackwardSig)               \
  X(dropout_forward, DropoutForwardSig)                  \
  X(dropout_backward, DropoutBackwardSig)                \
  X(embedding_forward, EmbeddingForwardSig)              \
  X(embedding_backward, EmbeddingBackwardSig)            \
  X(conv2d_forward, Conv2dForwardSig)                    \
  X(conv2d_backward_input, Conv2dBackwardInputSig)       \
  X(conv2d_backward_weight, Conv2dBackwardWeightSig)     \
  X(max_pool2d_forward, MaxPool2dForwardSig)             \
  X(max_pool2d_backward, MaxPool2dBackwardSig)           \
  X(avg_pool2d_forward, AvgPool2dForwardSig)             \
  X(avg_pool2d_backward, AvgPool2dBackwardSig)           \
  X(lstm_cell_forward, LstmCellForwardSig)               \
  X(lstm_cell_backward, LstmCellBackwardSig)             \
  X(lstm_sequence_forward, LstmSequenceForwardSig)       \
  X(lstm_sequence_backward, LstmSequenceBackwardSig)     \
  X(gru_sequence_forward, GruSequenceForwardSig)         \
  X(gru_sequence_backward, GruSequenceBackwardSig)       \
  X(rnn_sequence_forward, RnnSequenceForwardSig)         \
  X(rnn_sequence_backward, RnnSequenceBackwardSig)       \
  X(rnn_weight_grads, RnnWeightGradsSig)                 \
  X(sgd_step, SgdStepSig)                                \
  X(adam_step, AdamStepSig)

}  // namespace dlcore
