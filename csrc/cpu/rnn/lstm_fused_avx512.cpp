// The LSTM forward recurrence with the cell update fused into the recurrent GEMM's register tile
// (AVX-512, float): what lstm_sequence_forward (lstm_sequence.cpp) runs on this ISA for float.
// Same math, layout, threads and outputs as the unfused walk there; it differs in how a step
// is computed.
//
// Why: unfused, a step is four GEMM calls (one per gate, each packing h_prev again) that add
// h_prev W_g^T into the gates array, then a second pass that reads the four gates back and
// runs the cells (13 % of a 50x32x128x256 forward). Here W_hh is packed once per call with
// the four gates of each block of 16 units side by side, so one 6 x 64 register tile holds
// i, f, g, o of the same 16 units for 6 rows, and its epilogue finishes those cells while the
// pre-activations are still in registers: add the input projection, activate, c and h, store.
// h_prev is read in place (broadcasts from up to 6 rows), so nothing is packed per step.
// A batch of one over a few steps skips the pack and reads W_hh as is (in_place_tile below).
// Given x and W_ih (and from kInputInTileMinRows rows), the tile also makes the input
// projection: W_ih is packed above W_hh in the same panels, x's I depths run first and the
// accumulators start from the bias, so no pre-activation array is written and read back.
//
// Packed [W_ih | W_hh] (lstm_fused_pack): ceil(H / 16) panels (I + H, 64), panel b row k =
//   [W_i^T[k, u..u+16), W_f^T[k, u..u+16), W_g^T[k, u..u+16), W_o^T[k, u..u+16)], u = 16 b,
// with W_g^T[k, j] = W_ih[g H + j, k] for k < I, W_hh[g H + j, k - I] after, and units past H
// zero (I = 0 when the projection is not made here). 64-byte aligned ((I + H) * 256 bytes per
// panel).
// Tile: rows r0..r0+ROWS (ROWS <= 6) x one unit block; per depth k 4 aligned loads of the
// panel row and ROWS broadcasts of x[r][k] or h_prev[r][k - I]; 24 accumulators + 4 + 1 of the
// 32 zmm.
// Loop order per step and thread: unit blocks outer (the panel, H * 256 bytes, is reused by
// every row tile from L1/L2), row tiles inner (h_prev of all rows stays in L1/L2).
// Tested: tests/kernels/test_rnn_kernels.py (isa avx512, float32: the float64 oracle, tails of
// units and rows, variable lengths, both directions, 1 and 2 threads; the projection made here
// against the one precomputed). Timed: bench/bench_rnn.py.
// GCC 12 starts several AVX-512 intrinsics from _mm*_undefined_*() and warns at each use (bug
// 105593, see pool_avx512.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "cpu/dot_rows_avx512.h"
#include "cpu/rnn/lstm_fused.h"
#include "cpu/rnn/sequence_walk.h"
#include "cpu/transpose_parts.h"
#include "cpu/vec_math_avx512.h"

namespace dlcore::cpu::DLCORE_ISA::rnn {

namespace {

constexpr int kUnits = 16;   // units per block: one zmm per gate
constexpr int kWidth = 64;   // floats per packed panel row: 4 gates x 16 units
constexpr int kMaxRows = 6;  // rows per register tile
// ~3000 cycles of FMAs at 6 rows. 64 had left the epilogue's adds of the input projection
// waiting on its loads (6 % of the tile's samples at 50x32x128x256); 96-160 measured alike, 1
// thread, alternating builds: 50x32x128x256 forward 12.89 -> 12.64 ms, 35x20x650x650, 100x64x
// 512x512 and 100x1x128x256 unchanged within noise.
constexpr int64_t kPrefetchDepths = 128;
// Steps up to which a batch of one reads W_hh in place (in_place_tile) instead of packing it:
// the in-place stream runs a step slower (H = 512, W_hh in L3: 54 vs 45 us at 1 thread; H = 256
// on 2 threads: ~6.4 vs ~5.5 us), so the pack it skips (26 us at H = 256, 100 us at 512, 1
// thread) pays back over a handful of steps only. Forward, 1 thread, packed -> in place, us:
// H = 256: 1 step 39.8 -> 13.9, 8 steps 115.7 -> 85.2; H = 512: 1 step 161 -> 61, 8 steps 473
// -> 460, 16 steps 831 -> 897 (2 threads, 8 steps: 244-259 -> 234-236).
constexpr int64_t kInPlaceMaxSteps = 8;
// Batch rows from which the tile makes the input projection too (x W_ih^T as I more depths of
// its panel) instead of reading it from one GEMM over all steps: the panel then streams I more
// depth rows every step, which pays only with enough rows per panel. Projection + recurrence,
// 1 / 2 threads, ms, GEMM first -> in the tile: 50x32x128x256 12.68 -> 12.45 / 7.06-7.09 ->
// 6.39-6.60; 100x64x512x512 246.4 -> 240.0 / 124.6 -> 121.4; the char-LSTM's 100x32x64x512 70.6-
// 72.5 -> 69.0 / 35.4-36.3 -> 35.2-36.1; but 35x20x650x650 47.0 -> 47.8 / 23.7 -> 24.4 and
// 100x1x128x256 1.45 -> 1.72 / 0.78 -> 0.88.
constexpr int64_t kInputInTileMinRows = 32;

// The packed panels of [W_ih | W_hh] (4H, I + H), see the file comment (I = 0: W_hh alone).
// Panels are independent: threads pack whole ones.
void lstm_fused_pack(int64_t H, int64_t I, const float* w_ih, const float* w_hh, float* wp) {
  const int64_t blocks = (H + kUnits - 1) / kUnits, depth = I + H;
#pragma omp parallel for schedule(static) if (4 * H * depth >= (1 << 18) && !omp_in_parallel())
  for (int64_t b = 0; b < blocks; ++b) {
    float* panel = wp + b * depth * kWidth;  // (I + H, 64)
    const int64_t u0 = b * kUnits, units = std::min<int64_t>(kUnits, H - u0);
    // Each gate's 16 unit rows (H depths, W_hh rows H apart) turned into H depth rows of 16
    // units by 16 x 16 register transposes, zero past H (load_transposed). Element by element
    // the pack had cost about 1 ms more per call at H = 650 (a one-step 20 x 650 call, min of
    // 55, three alternating runs: 1.72-3.44 -> 1.26-1.47 ms), 4-6 % of a 35x20x650x650 forward.
    for (int g = 0; g < 4; ++g) {
      if (I > 0) load_transposed(w_ih + (g * H + u0) * I, I, units, panel + g * kUnits, kWidth, I);
      load_transposed(w_hh + (g * H + u0) * H, H, units, panel + I * kWidth + g * kUnits, kWidth, H);
    }
  }
}

// Fetches the lines of the 16 floats at p into L1: two of them unless p is 64-byte aligned, as
// a row's vectors are not when H is not a multiple of 16 (35x20x650x650) or the caller's arrays
// start 16 bytes into a line (NumPy's). With the first line alone, the epilogue stalled on the
// second: 1 thread, recurrence only, gates from NumPy, alternating in one process (medians of
// 16): 35x20x650 23.6-23.8 -> 22.6-23.1 ms, 100x32x512 65.8-66.2 -> 63.3-63.5, 100x64x512 131.5
// -> 127.1.
inline void prefetch_vector(const float* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(p + kUnits - 1), _MM_HINT_T0);
}

// Where the rows of one tile read and write, each a pointer to the row's start.
struct TileRows {
  const float* x[kMaxRows];       // (I): the row's input, when the tile makes the projection
  const float* h_prev[kMaxRows];  // (H): the state the row's step starts from
  const float* c_prev[kMaxRows];  // (H)
  float* gates[kMaxRows];         // (4H): in the input projection (unless x), out the activated gates
  float* c[kMaxRows];             // (H)
  float* h[kMaxRows];             // (H)
};

// The input side of a step: the projection precomputed in gates, or (made) x (I) W_ih^T + bias
// made by the tile from I more depths of its panel.
struct InputSide {
  bool made = false;
  int64_t I = 0;                // 0 unless made
  const float* bias = nullptr;  // (4H) or null
};

// The cells of ROWS rows x the 16 units [u, u + 16) (the first `valid` of them) from their
// four gates' h_prev W_hh^T sums acc[i][q], in registers: add the input projection (in
// rows.gates, where add_gates), activate, c and h, store.
template <int ROWS>
[[gnu::always_inline]] inline void cells_epilogue(__m512 (&acc)[ROWS][4], int64_t H, int64_t u, __mmask16 valid,
                                                  const TileRows& rows, bool add_gates) {
  // Epilogue in two passes, each made of independent chains (rows x gates, then rows), so the
  // core overlaps their exp / divide latencies; done row after row (gates, c, tanh(c), h) the
  // chains ran back to back. tanh(x) = 2 sigmoid(2x) - 1 gives one formula for all four gates
  // (absolute error ~1e-7 near 0, which the cell update cannot tell from exact). The values
  // stay in registers: a round trip through a stack buffer stalled on store forwarding.
  // The first pass ends each row with its c, which frees i, f and g's registers early.
  const __m512 two = _mm512_set1_ps(2.0f), one = _mm512_set1_ps(1.0f);
  __m512 c[ROWS];
#pragma GCC unroll 8
  for (int i = 0; i < ROWS; ++i) {
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      float* g = rows.gates[i] + q * H + u;  // gate q of units u.. of row i
      const __m512 x = add_gates ? _mm512_add_ps(acc[i][q], _mm512_maskz_loadu_ps(valid, g)) : acc[i][q];
      if (q == 2)  // g is a tanh, the others sigmoids
        acc[i][q] = _mm512_fmsub_ps(two, zmm::sigmoid(_mm512_add_ps(x, x)), one);
      else
        acc[i][q] = zmm::sigmoid(x);
      _mm512_mask_storeu_ps(g, valid, acc[i][q]);
    }
    const __m512 c_prev = _mm512_maskz_loadu_ps(valid, rows.c_prev[i] + u);
    c[i] = _mm512_fmadd_ps(acc[i][1], c_prev, _mm512_mul_ps(acc[i][0], acc[i][2]));
  }
#pragma GCC unroll 8
  for (int i = 0; i < ROWS; ++i) {
    const __m512 tc = _mm512_fmsub_ps(two, zmm::sigmoid(_mm512_add_ps(c[i], c[i])), one);
    _mm512_mask_storeu_ps(rows.c[i] + u, valid, c[i]);
    _mm512_mask_storeu_ps(rows.h[i] + u, valid, _mm512_mul_ps(acc[i][3], tc));
  }
}

// One tile: ROWS rows x the 16 units [u, u + 16) of the panel (the first `units` of them
// valid), K = I + H deep (x's I depths first, when the tile makes the projection), then the
// cells of those units.
// zero_h_prev: every row's h_prev is zeros (h0 of a layer without initial state), so its H
// depths are skipped.
template <int ROWS>
void fused_tile(int64_t H, const float* __restrict panel, int64_t u, __mmask16 valid, const TileRows& rows,
                bool zero_h_prev, const InputSide& in) {
  __m512 acc[ROWS][4];
#pragma GCC unroll 4
  for (int v = 0; v < 4; ++v) {
    const __m512 start = in.bias ? _mm512_maskz_loadu_ps(valid, in.bias + v * H + u) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < ROWS; ++i) acc[i][v] = start;
  }
  const float* a[ROWS];
  // acc += a[:, k0:k1] w[k0:k1], w the panel rows of those depths
  const auto depths = [&](const float* __restrict w, int64_t k0, int64_t k1) {
    w += k0 * kWidth;
    for (int64_t k = k0; k < k1; ++k, w += kWidth) {
      __m512 b[4];
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) b[v] = _mm512_load_ps(w + v * kUnits);
#pragma GCC unroll 8
      for (int i = 0; i < ROWS; ++i) {
        const __m512 ai = _mm512_set1_ps(a[i][k]);
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) acc[i][v] = _mm512_fmadd_ps(ai, b[v], acc[i][v]);
      }
    }
  };
  if (in.I > 0) {
#pragma GCC unroll 8
    for (int i = 0; i < ROWS; ++i) a[i] = rows.x[i];
    depths(panel, 0, in.I);
  }
#pragma GCC unroll 8
  for (int i = 0; i < ROWS; ++i) a[i] = rows.h_prev[i];
  const float* w_h = panel + in.I * kWidth;  // W_hh's H depth rows
  // The epilogue's operands are fetched into L1 kPrefetchDepths depths before the end: the
  // input projection was written long before (in L3 or memory by now), c and h are new lines,
  // and earlier the panel streaming through L1 would evict them again.
  const int64_t k_fetch = zero_h_prev ? 0 : std::max<int64_t>(0, H - kPrefetchDepths);
  if (!zero_h_prev) depths(w_h, 0, k_fetch);
#pragma GCC unroll 8
  for (int i = 0; i < ROWS; ++i) {
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) prefetch_vector(rows.gates[i] + q * H + u);
    prefetch_vector(rows.c_prev[i] + u);
    prefetch_vector(rows.c[i] + u);
    prefetch_vector(rows.h[i] + u);
  }
  if (!zero_h_prev) depths(w_h, k_fetch, H);
  cells_epilogue<ROWS>(acc, H, u, valid, rows, !in.made);
}

// ---- one row per step: W_hh read in place -------------------------------------------------
// A batch of one makes each step a matrix-vector product, bound by streaming W_hh; the packed
// panels save nothing on the arithmetic there (each weight feeds one FMA either way) and cost
// a pack per call, 16 x 16 transposes of all of W_hh: most of a one-step call, as when a
// language model samples one character at a time. For short sequences of one row (see
// kInPlaceMaxSteps), each gate row of W_hh (contiguous in depth) is instead a dot product with
// h_prev, 16 rows (one gate of a 16-unit block) at a time (dot_rows16), and no pack is made.

// The cells of one row's units [u, u + units): W_hh (4H, H) read in place, then the epilogue
// (only that where h_prev is zeros).
void in_place_tile(int64_t H, const float* __restrict w_hh, int64_t u, int64_t units, __mmask16 valid,
                   const TileRows& rows, bool zero_h_prev) {
  __m512 acc[1][4];
  if (zero_h_prev) {
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) acc[0][q] = _mm512_setzero_ps();
    cells_epilogue<1>(acc, H, u, valid, rows, true);
    return;
  }
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q) {
    if (q == 3) {  // the epilogue's operands, a gate's rows (16 H floats) before they are needed
#pragma GCC unroll 4
      for (int g = 0; g < 4; ++g) prefetch_vector(rows.gates[0] + g * H + u);
      prefetch_vector(rows.c_prev[0] + u);
      prefetch_vector(rows.c[0] + u);
      prefetch_vector(rows.h[0] + u);
    }
    acc[0][q] = dot_rows16(w_hh + (q * H + u) * H, H, units, H, rows.h_prev[0]);  // gate q's 16 rows
  }
  cells_epilogue<1>(acc, H, u, valid, rows, true);
}

using TileFn = void(int64_t, const float*, int64_t, __mmask16, const TileRows&, bool, const InputSide&);
constexpr TileFn* kTiles[kMaxRows + 1] = {nullptr,          &fused_tile<1>, &fused_tile<2>, &fused_tile<3>,
                                          &fused_tile<4>, &fused_tile<5>, &fused_tile<6>};

}  // namespace

void lstm_sequence_forward_fused(const RnnSequenceShape& s, const float* w_hh, const float* x, int64_t I,
                                 const float* w_ih, const float* bias, const float* h0, const float* c0, float* gates,
                                 float* y, float* c_all, float* h_n, float* c_n) {
  const int64_t H = s.H, G = 4 * H, blocks = (H + kUnits - 1) / kUnits;
  const bool input_in_tile = x && s.B >= kInputInTileMinRows;
  if (x && !input_in_tile) whole_gemm(total_rows(s), G, I, x, w_ih, true, bias, gates);  // gates := x W_ih^T + bias
  const InputSide in{input_in_tile, input_in_tile ? I : 0, input_in_tile ? bias : nullptr};
  const bool in_place = s.B == 1 && s.T <= kInPlaceMaxSteps;  // W_hh read as is (in_place_tile)
  const int64_t depth = in.I + H;                               // rows of a packed panel
  const auto packed = aligned_buffer<float>(in_place ? 0 : blocks * depth * kWidth);
  if (!in_place) lstm_fused_pack(H, in.I, w_ih, w_hh, packed.get());
  const float* wp = packed.get();
  auto step = [&](const Step& st, const Part& part) {
    const int64_t r_lo = part.row_lo(st), r_hi = part.row_hi(st);
    const int64_t b_lo = part.unit_lo() / kUnits, b_hi = (part.unit_hi(H) + kUnits - 1) / kUnits;
    // With at most kSerpentineRows rows a step is a stream through W_hh's panels (1 MiB at
    // H = 256, the size of L2), walked forwards on even steps and backwards on odd ones: each
    // step then starts on the panels the last one used most recently, still in L2, where the
    // same order every step makes LRU evict each panel just before its next use. 100 x 1 x 256,
    // 1 / 2 threads: 1.25 -> 1.12 ms / 0.67 -> 0.58 ms. From 8 rows on the reversed walk was
    // 4-7 % slower (50x32x128x256: 8.9 -> 9.4 ms), and at 4 rows the same.
    const bool backwards = r_hi - r_lo <= kSerpentineRows && st.t % 2 == 1;
    for (int64_t n_b = b_lo; n_b < b_hi; ++n_b) {
      const int64_t b = backwards ? b_hi - 1 - (n_b - b_lo) : n_b;
      const int64_t u = b * kUnits, units = std::min<int64_t>(kUnits, H - u);
      const __mmask16 valid = static_cast<__mmask16>((1u << units) - 1);
      if (in_place) {  // rows [r_lo, r_hi) are [0, 1) or none
        if (r_lo >= r_hi) continue;
        const bool carried = st.carried > 0;
        TileRows rows;
        rows.h_prev[0] = carried ? y + st.prev_off * H : h0;
        rows.c_prev[0] = carried ? c_all + st.prev_off * H : c0;
        rows.gates[0] = gates + st.off * G;
        rows.c[0] = c_all + st.off * H;
        rows.h[0] = y + st.off * H;
        in_place_tile(H, w_hh, u, units, valid, rows, !carried && s.h0_zero);  // batch 1: gates hold the projection
        continue;
      }
      // Balanced row tiles: 32 rows run as 6, 6, 5, 5, 5, 5 rather than 6 x 5 + 2. A tile
      // streams the whole panel from L2 whatever its height, and a 2-row one does 8 FMAs per
      // 256 bytes of it: that one tile took a quarter of the step's time.
      const int64_t tiles = (r_hi - r_lo + kMaxRows - 1) / kMaxRows;
      for (int64_t t = 0, r0 = r_lo; t < tiles; ++t) {
        const int n = static_cast<int>((r_hi - r0) / (tiles - t));  // the shorter tiles first
        TileRows rows;
        for (int i = 0; i < n; ++i) {
          const int64_t r = r0 + i;
          const bool carried = r < st.carried;
          rows.x[i] = in.I > 0 ? x + (st.off + r) * in.I : nullptr;
          rows.h_prev[i] = carried ? y + (st.prev_off + r) * H : h0 + r * H;
          rows.c_prev[i] = carried ? c_all + (st.prev_off + r) * H : c0 + r * H;
          rows.gates[i] = gates + (st.off + r) * G;
          rows.c[i] = c_all + (st.off + r) * H;
          rows.h[i] = y + (st.off + r) * H;
        }
        kTiles[n](H, wp + b * depth * kWidth, u, valid, rows, s.h0_zero && r0 >= st.carried, in);
        r0 += n;
      }
    }
    copy_part(st, part, st.finishing, st.rows, H, y + st.off * H, h_n);
    copy_part(st, part, st.finishing, st.rows, H, c_all + st.off * H, c_n);
  };
  auto nothing = [](const Step&, const Part&) {};
  for_each_step<float>(s, /*backward=*/false, /*barrier_after_second=*/true, 4, step, nothing, kUnits);
}

}  // namespace dlcore::cpu::DLCORE_ISA::rnn
