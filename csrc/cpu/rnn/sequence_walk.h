// Walking a packed sequence (RnnSequenceShape, core/kernel_args.h) one step at a time, for
// the LSTM, GRU and Elman recurrences in this folder; and the two loops every step shares:
// the recurrent GEMM over the previous state, and the pointwise pass over (rows, H) cells.
//
// The forward "runs" the steps t = 0 .. T-1 (t = T-1 .. 0 when reverse); backward through
// time walks the same steps in the opposite order. For a step, the rows [0, carried) continue
// from the step run just before it (their state is in that step's rows of y / c_all), and
// the rows [carried, rows) start here from the initial state (h0, c0):
//   forward direction: carried = rows = batch_sizes[t] (t > 0) or 0 (t == 0);
//   reverse direction: carried = batch_sizes[t + 1] (t < T-1) or 0 (t == T-1).
// Rows [finishing, rows) have their last step here: their final state is this step's.
//
// Backward through time keeps one (B, H) carry of dL/dh (and dL/dc) per batch row. Writing a
// step's dL/dh_prev into carry rows [0, rows) is right for both kinds of row: a carried row
// passes it to the previous step run, and a row that started here from h0 never appears in an
// earlier-run step again (those have fewer rows), so the carry ends as grad_h0.
#pragma once
#include <algorithm>
#include <cstdint>

#include "cpu/kernels.h"

namespace dlcore::cpu::DLCORE_ISA::rnn {

struct Step {
  int64_t t = -1;        // time index; -1 past either end of the walk
  int64_t off = 0;       // first row of this step in the (total, *) arrays
  int64_t rows = 0;      // active batch rows [0, rows)
  int64_t carried = 0;   // rows [0, carried) continue from the previous step run ...
  int64_t prev_off = 0;  // ... whose rows start here
  int64_t finishing = 0; // rows [finishing, rows) end at this step
};

inline int64_t total_rows(const RnnSequenceShape& s) {
  int64_t total = 0;
  for (int64_t t = 0; t < s.T; ++t) total += s.batch_sizes[t];
  return total;
}

// The step at time t whose rows start at off.
inline Step make_step(const RnnSequenceShape& s, int64_t t, int64_t off) {
  Step st;
  if (t < 0 || t >= s.T) return st;
  const int64_t* bs = s.batch_sizes;
  st.t = t;
  st.off = off;
  st.rows = bs[t];
  if (!s.reverse) {
    st.carried = t > 0 ? bs[t] : 0;
    st.prev_off = t > 0 ? off - bs[t - 1] : 0;
    st.finishing = t + 1 < s.T ? bs[t + 1] : 0;
  } else {
    st.carried = t + 1 < s.T ? bs[t + 1] : 0;
    st.prev_off = t + 1 < s.T ? off + bs[t] : 0;
    st.finishing = t > 0 ? bs[t] : 0;
  }
  return st;
}

// The first step the forward runs, and the one it runs after st.
inline Step first_step(const RnnSequenceShape& s, int64_t total) {
  return s.reverse ? make_step(s, s.T - 1, total - s.batch_sizes[s.T - 1]) : make_step(s, 0, 0);
}
inline Step next_step(const RnnSequenceShape& s, const Step& st) {
  if (!s.reverse) return make_step(s, st.t + 1, st.off + st.rows);
  return st.t > 0 ? make_step(s, st.t - 1, st.off - s.batch_sizes[st.t - 1]) : Step{};
}

// The step the forward runs last (where backward through time starts), and the one before st.
inline Step last_step(const RnnSequenceShape& s, int64_t total) {
  return s.reverse ? make_step(s, 0, 0) : make_step(s, s.T - 1, total - s.batch_sizes[s.T - 1]);
}
inline Step prev_step(const RnnSequenceShape& s, const Step& st) {
  if (s.reverse) return make_step(s, st.t + 1, st.off + st.rows);
  return st.t > 0 ? make_step(s, st.t - 1, st.off - s.batch_sizes[st.t - 1]) : Step{};
}

// C (rows, N), row stride ldc := h_prev W + beta * C (+ bias), where h_prev's rows [0, carried)
// are rows prev_off.. of `prev` (total, K) and the rest rows carried.. of `init` (B, K); W (K, N)
// is packed by gemm_pack_b.
template <class T>
void step_gemm(const Step& st, int64_t K, int64_t N, const T* prev, const T* init, const T* w_packed,
               T beta, const T* bias, T* C, int64_t ldc) {
  GemmArgs<T> g;
  g.K = K;
  g.N = N;
  g.beta = beta;
  g.bias = bias;
  g.lda = K;
  g.ldc = ldc;
  if (st.carried > 0) {
    g.M = st.carried;
    g.A = prev + st.prev_off * K;
    g.C = C;
    gemm_packed<T>(g, w_packed);
  }
  if (st.rows > st.carried) {
    g.M = st.rows - st.carried;
    g.A = init + st.carried * K;
    g.C = C + st.carried * ldc;
    gemm_packed<T>(g, w_packed);
  }
}

// Cells (rows x H) below which a step's pointwise pass stays on the calling thread (as in
// csrc/cpu/ref/lstm_cell.cpp: ~3.5 ns per LSTM cell, so 8K cells are ~30 us of work).
constexpr int64_t kParallelCells = 1 << 13;

// cell_block(r, j0, j1) for every row r < rows and unit block [j0, j1) of H: blocks of 256
// units, so a small batch still splits across threads.
template <class F>
void for_cells(int64_t rows, int64_t H, const F& cell_block) {
  constexpr int64_t kBlock = 256;
  const int64_t blocks = (H + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (rows * H >= kParallelCells)
  for (int64_t task = 0; task < rows * blocks; ++task) {
    const int64_t r = task / blocks, j0 = task % blocks * kBlock;
    cell_block(r, j0, std::min(H, j0 + kBlock));
  }
}

// dst rows [r0, r1) (H wide) := src rows [r0, r1).
template <class T>
void copy_rows(int64_t r0, int64_t r1, int64_t H, const T* src, T* dst) {
  std::copy(src + r0 * H, src + r1 * H, dst + r0 * H);
}

}  // namespace dlcore::cpu::DLCORE_ISA::rnn
