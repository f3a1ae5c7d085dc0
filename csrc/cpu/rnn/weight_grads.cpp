// The weight gradients of one RNN layer and direction over a padded batch (the rnn_weight_grads
// slot, core/kernel_list.h): grad_w_ih = grad_gates^T x and grad_w_hh = grad_gates^T h_prev, as
// one GEMM over the column blocks [x | h_prev] (gemm_column_blocks, cpu/gemm/gemm_parts.h).
//
// Why one GEMM: grad_gates (total, G), the large operand (26 MB for the char-LSTM's 100 x 32 x
// 2048), is then packed once for both products instead of twice, and h_prev is read where it
// lies, as two row pieces (h0 and y one step away), instead of being gathered into a copy.
// Against two GEMMs, 1 thread, medians: 50x32x128x256 12.4-12.6 -> 11.9 ms, 100x64x512x512
// 249-251 -> 245-248; against the [x | h_prev] copy and one GEMM the char-LSTM's 100x32x64x512
// had used (its halves copied out after), the training step 224.8-233.3 -> 222.4-228.3 ms on 1
// thread, 114.5-116.2 -> 112.4-114.7 on 2 (three alternating runs). 35x20x650x650 keeps two
// GEMMs inside gemm_column_blocks (650 columns are not whole 64-wide panels): same time.
//
// h_prev (total, H) of a padded batch, row r = step t's row b (r = t B + b): the state step t
// started from, y's row r - B (forward, t > 0) or r + B (reverse, t < T - 1), else h0's row b.
// So forward: h0 (B rows) above y's rows [0, total - B); reverse: y's rows [B, total) above h0.
// A null h0 is zeros: those depths add nothing (the GEMM still runs over them inside the blocked
// loops; per-block GEMMs skip them).
// Tested: tests/kernels/test_rnn_kernels.py (float64 NumPy products, every ISA, both directions,
// zero and nonzero h0, widths on and off the panel width, 1 and 2 threads).
#include <cstdint>

#include "cpu/gemm/gemm_parts.h"
#include "cpu/kernels.h"

namespace dlcore::cpu::DLCORE_ISA {

template <class T>
void rnn_weight_grads(int64_t total, int64_t G, int64_t B, int64_t I, int64_t H, bool reverse, const T* grad_gates,
                      const T* x, const T* y, const T* h0, T* grad_w_ih, T* grad_w_hh) {
  GemmArgs<T> g;
  g.trans_a = true;  // op(A) = grad_gates^T (G, total)
  g.M = G;
  g.K = total;
  g.A = grad_gates;
  g.lda = G;
  GemmColumnBlocks<T> blocks;
  blocks.count = 2;
  auto& bx = blocks.block[0];  // x (total, I)
  bx.cols = I;
  bx.pieces = 1;
  bx.piece[0] = {total, x, I};
  bx.C = grad_w_ih;
  bx.ldc = I;
  auto& bh = blocks.block[1];  // h_prev (total, H)
  bh.cols = H;
  bh.pieces = 2;
  if (!reverse) {
    bh.piece[0] = {B, h0, H};
    bh.piece[1] = {total - B, y, H};
  } else {
    bh.piece[0] = {total - B, y + B * H, H};
    bh.piece[1] = {B, h0, H};
  }
  bh.C = grad_w_hh;
  bh.ldc = H;
  gemm_column_blocks(g, blocks);
}
DLCORE_INSTANTIATE(rnn_weight_grads, RnnWeightGradsSig)

}  // namespace dlcore::cpu::DLCORE_ISA
