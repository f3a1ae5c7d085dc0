// Walking a packed sequence (RnnSequenceShape, core/kernel_args.h) one step at a time, for
// the LSTM, GRU and Elman recurrences in this folder; how one team of threads shares the steps
// (see "threads" below); and the two loops every step runs on a thread's part: the recurrent
// GEMM over the previous state, and the pointwise pass over the cells.
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
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "cpu/aligned_buffer.h"
#include "cpu/gemm/gemm_parts.h"
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

// ---- threads ------------------------------------------------------------------------------
// One OpenMP team runs the whole sequence; each thread owns a part of every step:
//  * batch rows [lo, hi): a row's step depends only on its own previous step, so the threads
//    never wait for each other (each reads all of W_hh);
//  * hidden units [lo, hi) (when the batch is too small to share): the thread computes the gate
//    columns of its units and then their pointwise cells, so W_hh's slice stays in its own L2;
//    one barrier per step, because the next step's GEMM reads every unit of h.
// Unit ranges start at multiples of unit_align: the GEMM tile width NR (a packed panel
// boundary) by default, or the unit block of a fused kernel.
struct Part {
  bool by_rows = true;
  int64_t lo = 0, hi = 0;
  int64_t row_lo(const Step& st) const { return by_rows ? std::min(lo, st.rows) : 0; }
  int64_t row_hi(const Step& st) const { return by_rows ? std::min(hi, st.rows) : st.rows; }
  int64_t unit_lo() const { return by_rows ? 0 : lo; }
  int64_t unit_hi(int64_t H) const { return by_rows ? H : hi; }
};

// Rows per thread from which the batch is split by rows (a full 6-row GEMM tile each).
constexpr int64_t kMinRowsPerThread = 6;

inline Part thread_part(int64_t B, int64_t H, int tid, int nt, int64_t unit_align) {
  Part p;
  if (nt == 1 || B >= kMinRowsPerThread * nt) {
    p.lo = B * tid / nt;
    p.hi = B * (tid + 1) / nt;
    return p;
  }
  const int64_t tiles = (H + unit_align - 1) / unit_align;
  p.by_rows = false;
  p.lo = std::min(H, tiles * tid / nt * unit_align);
  p.hi = std::min(H, tiles * (tid + 1) / nt * unit_align);
  return p;
}

// Whether a recurrence of G gates of H units over B rows is worth a team of threads: a step
// must outweigh the ~1 us barrier. W_hh of G*H*H elements is read every step, so even one row
// (memory-bound) pays from H ~ 256.
inline bool worth_threads(int64_t B, int64_t H, int gates) {
  return static_cast<double>(gates) * H * H * std::max<int64_t>(B, 4) >= 96.0 * 96.0 * 96.0;
}

// Runs every step in the forward's order (or backward's, reversed), each thread on its part:
// first(st, part), then second(st, part). For a split by units, a barrier follows second
// (barrier_after_second) or sits between the two, as the data flow of the recurrence needs.
// Unit ranges are aligned to unit_align (default: the GEMM tile width of T).
template <class T, class First, class Second>
void for_each_step(const RnnSequenceShape& s, bool backward, bool barrier_after_second, int gates,
                   const First& first, const Second& second, int64_t unit_align = GemmTile<T>::NR) {
  const int64_t total = total_rows(s);
#pragma omp parallel if (worth_threads(s.B, s.H, gates))
  {
    const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
    const Part part = thread_part(s.B, s.H, tid, nt, unit_align);
    const bool sync = !part.by_rows && nt > 1;  // the same for every thread of the team
    for (Step st = backward ? last_step(s, total) : first_step(s, total); st.t >= 0;
         st = backward ? prev_step(s, st) : next_step(s, st)) {
      first(st, part);
      if (sync && !barrier_after_second) {
#pragma omp barrier
      }
      second(st, part);
      if (sync && barrier_after_second) {
#pragma omp barrier
      }
    }
  }
}

// ---- the two loops of a step, on one thread's part ---------------------------------------
// C[rows, gate columns of units [u0, u1)] := h_prev[rows] W_g^T[:, u0:u1] + beta * C (+ bias)
// for each gate g < gates, rows = the part's rows of this step. h_prev's rows [0, carried) are
// rows prev_off.. of `prev` (total, H) and the rest rows of `init` (B, H). w_gates holds the G
// blocks W_g^T (H, H) packed one after another (gate_size elements each). C (rows, gates * H).
// init_zero: init is all zeros; its rows skip the GEMM and take C := beta * C (+ bias) alone
// (beta 0 writes, never reads, C).
template <class T>
void gates_gemm(const Step& st, const Part& part, int64_t H, int gates, const T* prev, const T* init,
                bool init_zero, const T* w_gates, int64_t gate_size, T beta, const T* bias, T* C) {
  const int64_t r0 = part.row_lo(st), u0 = part.unit_lo(), u1 = part.unit_hi(H);
  const int64_t G = gates * H;
  const int64_t r1 = init_zero ? std::min(part.row_hi(st), st.carried) : part.row_hi(st);
  if (init_zero && (beta != T(1) || bias))
    for (int64_t r = std::max(r0, r1); r < part.row_hi(st); ++r)  // the rows from init
      for (int g = 0; g < gates; ++g)
        for (int64_t j = g * H + u0; j < g * H + u1; ++j) {
          T& c = C[r * G + j];
          c = (beta == T(0) ? T(0) : beta * c) + (bias ? bias[j] : T(0));
        }
  if (r0 >= r1 || u0 >= u1) return;
  // (first row, row count, A rows): the carried rows, then the rows starting from init
  const int64_t split = std::clamp(st.carried, r0, r1);
  const int64_t starts[2] = {r0, split}, ends[2] = {split, r1};
  const T* sources[2] = {prev + (st.prev_off + r0) * H, init + split * H};
  for (int part_i = 0; part_i < 2; ++part_i) {
    if (starts[part_i] >= ends[part_i]) continue;
    for (int g = 0; g < gates; ++g) {
      GemmArgs<T> a;
      a.M = ends[part_i] - starts[part_i];
      a.N = H;
      a.K = H;
      a.beta = beta;
      a.bias = bias ? bias + g * H : nullptr;
      a.A = sources[part_i];
      a.lda = H;
      a.C = C + starts[part_i] * G + g * H;
      a.ldc = G;
      gemm_packed_columns<T>(a, w_gates + g * gate_size, u0, u1);
    }
  }
}

// Columns of a packed B past its H units: an LSTM's W_ih (G*H, I) packed beside W_hh, whose
// product with a step's d_gates is that step's grad_x rows, made while d_gates is still in cache.
template <class T>
struct ExtraColumns {
  int64_t cols = 0;   // 0: none
  T* out = nullptr;   // (total, cols): the step's rows from st.off on
};

// carry[rows, units [u0, u1)] := d_gates[rows] (rows, G*H) W_hh[:, u0:u1] + beta * carry, with
// W_hh (G*H, H) packed whole; carry (B, H). Without want_init_rows, the rows that start from
// the initial state here (their carry would be final: grad_h0) are skipped. With extra columns
// (packed after W_hh's H, H a whole number of panels), the part that owns the last units also
// writes out[rows] := d_gates[rows] W_extra (+ beta * out), for every row of the part.
// With at most kSerpentineRows rows the GEMM is a stream through W_hh, whose packed panels
// are then walked one column tile at a time, backwards on odd steps: each step starts on the
// panels the last one read most recently, still in L2 (the same order every step lets LRU evict
// each panel of a W_hh about L2's size just before its next use). Batch-1 LSTM backward,
// 100 x 1 x 256, 1 thread: 1.50-1.53 -> 1.11-1.13 ms (min of 37).
constexpr int64_t kSerpentineRows = 2;

template <class T>
void carry_gemm(const Step& st, const Part& part, int64_t H, int gates, const T* d_gates, const T* w_hh,
                T beta, bool want_init_rows, T* carry, const ExtraColumns<T>& extra = {}) {
  const int64_t r0 = part.row_lo(st), r_all = part.row_hi(st), u0 = part.unit_lo(), u1 = part.unit_hi(H);
  const int64_t r1 = want_init_rows ? r_all : std::min(r_all, st.carried);
  const bool extra_here = extra.cols > 0 && u0 < H && u1 == H;
  GemmArgs<T> a;
  a.N = H + extra.cols;
  a.K = gates * H;
  a.beta = beta;
  a.lda = gates * H;
  a.ldc = H;
  GemmColumnBlocks<T> out;  // carry, then the extra columns' rows
  out.count = 2;
  out.block[0].cols = H;
  out.block[0].ldc = H;
  out.block[1].cols = extra.cols;
  out.block[1].ldc = extra.cols;
  // Rows [ra, rb) of the step, columns [n0, n1).
  const auto rows_times_columns = [&](int64_t ra, int64_t rb, int64_t n0, int64_t n1) {
    if (ra >= rb || n0 >= n1) return;
    a.M = rb - ra;
    a.A = d_gates + ra * gates * H;
    a.C = carry + ra * H;
    out.block[0].C = a.C;
    out.block[1].C = extra.out + (st.off + ra) * extra.cols;
    const GemmColumnBlocks<T>* blocks = extra.cols > 0 ? &out : nullptr;
    if (rb - ra > kSerpentineRows) {
      gemm_packed_columns<T>(a, w_hh, n0, n1, blocks);
      return;
    }
    constexpr int64_t NR = GemmTile<T>::NR;
    const int64_t tiles = (n1 - n0 + NR - 1) / NR;
    for (int64_t n = 0; n < tiles; ++n) {
      const int64_t tile = st.t % 2 == 1 ? tiles - 1 - n : n;
      const int64_t c0 = n0 + tile * NR;
      gemm_packed_columns<T>(a, w_hh, c0, std::min(n1, c0 + NR), blocks);
    }
  };
  rows_times_columns(r0, r1, u0, extra_here ? H + extra.cols : u1);
  if (extra_here) rows_times_columns(std::max(r0, r1), r_all, H, H + extra.cols);  // rows without a carry
}

// C (M, N) := A (M, K) op(B) + bias (N, or null), all contiguous; op(B) = B (K, N), or B^T for
// B (N, K) when trans_b. One GEMM on the caller's threads: an input projection over every step,
// x W_ih^T + bias, or an input gradient, d_gates W_ih.
template <class T>
void whole_gemm(int64_t M, int64_t N, int64_t K, const T* A, const T* B, bool trans_b, const T* bias, T* C) {
  GemmArgs<T> g;
  g.trans_b = trans_b;
  g.M = M;
  g.N = N;
  g.K = K;
  g.A = A;
  g.lda = K;
  g.B = B;
  g.ldb = trans_b ? K : N;
  g.C = C;
  g.ldc = N;
  g.bias = bias;
  gemm<T>(g);
}

// cells(r, u0, u1) for each row of this step in the part, on the part's units.
template <class F>
void part_cells(const Step& st, const Part& part, int64_t H, const F& cells) {
  const int64_t u0 = part.unit_lo(), u1 = part.unit_hi(H);
  if (u0 >= u1) return;
  for (int64_t r = part.row_lo(st); r < part.row_hi(st); ++r) cells(r, u0, u1);
}

// A backward carry (B, H) := the incoming gradient src, or zeros when src is null (None).
template <class T>
void init_carry(int64_t B, int64_t H, const T* src, T* carry) {
  for (int64_t k = 0; k < B * H; ++k) carry[k] = src ? src[k] : T(0);
}

// dst rows [r0, r1) x units of the part := src's, for the rows of the part among them.
template <class T>
void copy_part(const Step& st, const Part& part, int64_t r0, int64_t r1, int64_t H, const T* src, T* dst) {
  const int64_t lo = std::max(r0, part.row_lo(st)), hi = std::min(r1, part.row_hi(st));
  const int64_t u0 = part.unit_lo(), u1 = part.unit_hi(H);
  for (int64_t r = lo; r < hi; ++r) std::copy(src + r * H + u0, src + r * H + u1, dst + r * H + u0);
}

}  // namespace dlcore::cpu::DLCORE_ISA::rnn
