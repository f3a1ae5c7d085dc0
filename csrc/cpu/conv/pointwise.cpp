// conv2d's direct path for pointwise convolutions (1x1, stride 1, padding 0): forward (and
// backward_input, the same product with w transposed per group) and backward_weight.
//
// Math, per image n and group g (Cg = C / G, Cog = C_out / G, P = H*W):
//   forward          y[n, g*Cog + i, q] = bias[g*Cog + i]
//                                       + sum_{c < Cg} w[g*Cog + i, c] * x[n, g*Cg + c, q]
//   backward_weight  grad_w[g*Cog + j, c] = sum_{n, q} x[n, g*Cg + c, q] * grad_y[n, g*Cog + j, q]
// The gemm path runs each image as a gemm that packs x[n] into panels on every call (for
// backward_weight transposed, x[n]^T as B), and each packed element then feeds only C_out
// multiply-adds (64 for conv1x1_28). Here the register tiles read x[n]'s rows where they are:
// forward     MR = 6 output channels x NV vectors of consecutive q (NV = 4: 6 x 64 floats, 24
//             accumulators on AVX-512; 2 elsewhere); per input channel c one broadcast of each
//             of 6 packed weights and NV loads of the row x[n, c, q0 : q0 + NV*V]. A last row
//             block of at most 4 channels runs a 4-row tile (64 channels: 10 x 6 + 4 rows, not
//             66), and where NV + 1 whole vectors are left the last strips are 3 + 2 vectors,
//             not 4 + 1 (28x28: 49 vectors = 11 x 4 + 3 + 2). (8 x 48, no dropped rows for 64
//             channels, measured slower: 10.9 vs 10.0 ms; summing a strip in channel chunks of
//             64 or 128 that stay in L1, 10.2 / 9.8 vs 9.6 ms: the extra tile calls cost more.)
// backward_weight  MR = 6 input channels x NV vectors of output channels (64), summed over
//             all q: per q, NV loads of grad_y^T[q] (grad_y[n] transposed once per image into
//             (P, Cog rounded up to V), 16 x 16 register transposes on AVX-512) and one
//             broadcast of x[n, c, q] from each of 6 rows read front to back. Partial sums
//             (C, Cog rounded up) per thread persist across its images.
//
// Layout (forward): weights packed once per call (G, nblk, Cg, MR), nblk = ceil(Cog / MR),
// rows past Cog zero (the 6-row tile computes and drops them; the 4-row tile reads the first
// 4 of each MR), bias likewise. Loop order per image: group, channel block of kDepth (256)
// rows, strip of NV*V columns, row block: each row of x is read front to back (streams the
// prefetchers follow; column strips across all channels first measured 83 vs 90 GFLOP/s),
// the next strip's rows prefetched to L2 and this strip's rows of the next image from memory,
// a share of each per row block (prefetch_share), while y (C_out, P) stays in
// L2 between channel blocks. Where P is not a multiple of V, the last P % V columns of every
// channel are copied once per image into a zero-padded (C, V) buffer, so no read passes the
// end of x and no write the end of a y row.
// Summation order: forward, channels in order for every output (as the gemm does within one
// depth block; results can differ from the gemm path in the last bits where it splits the
// depth); backward_weight, per thread its images and positions in order, then the threads'
// partial sums in thread order (deterministic for a given thread count).
//
// Threads: whole images per thread (static), per-thread buffers allocated before the parallel
// region (a failed allocation raises instead of terminating).
// Tested: tests/kernels/test_conv_kernels.py ("pointwise_*" cases with algo='direct': edge
// vectors, row blocks, output-channel tiles, groups; every ISA, float32/64, integer-exact at
// 1 and 4 threads).
// Bound: 2*N*C_out*C*P/G flops; measured (conv1x1_28, 1 thread, float32, AVX-512): forward
// 9.20 ms vs the gemm path's 10.35 (89 vs 79 GFLOP/s; 9.56 before the 4-row tile and the
// 3 + 2 strips; medians of 7 alternating runs; 2 threads 4.63 vs 4.73 before), backward_weight
// 8.6 vs 10.8 (95 vs 76 GFLOP/s); backward_input stays on the gemm (its 64 -> 256 product:
// 10.6 here vs 8.9). Where it is lost: the same tile reaches ~109 GFLOP/s with x[n] in L1
// (64 images of 128 x 8x8) and ~100 with each strip in L2 (256 x 8x8), 88-90 for 28x28, whose
// strips are 256 rows of 256 bytes 3136 apart (not the TLB: x on 2 MiB pages measured the
// same; 12 x 2 and 4 x 6 tiles measured 11.84 vs 9.33 and 9.37 vs 9.17 ms).
#include "cpu/conv/pointwise.h"

#include <omp.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "cpu/conv/conv_dims.h"
#include "cpu/transpose_parts.h"
#include "cpu/kernels.h"
#include "cpu/vector_width.h"

namespace dlcore::cpu::DLCORE_ISA {
namespace {

// Vectors per tile row: 6 x 4 zmm = 24 of 32 registers; 6 x 2 of 16 ymm/xmm.
constexpr int kMaxNV = kVectorBytes == 64 ? 4 : 2;
constexpr int MR = 6;
// Input channels per pass: kDepth rows of x are walked front to back, strip by strip, before
// the next kDepth. 256 (the whole of conv1x1_28's C) measured best: 9.1 ms vs 9.9 with 64 and
// 11.8 with 32 (the extra passes over y cost more than L1-sized strips save).
template <class T>
constexpr int64_t kDepth = 65536 / (kMaxNV * kVectorBytes);

// out[i*ldo + j] := (first ? bias[i] : out[i*ldo + j]) + sum_k a[k*MR + i] * b[k*ldb + j] for
// i < m, j < NV*V, k in order, then v <= 0 ? 0 : v when relu (the last channel block of a
// fused forward); M rows computed (m <= M <= MR), rows i >= m from zero weights and not stored.
// a (K, MR) packed weights of one row block, b (K rows of stride ldb) the strip of x.
template <class T, int NV, int M>
void pointwise_tile(int64_t K, const T* __restrict a, const T* __restrict b, int64_t ldb,
                    const T* __restrict bias, bool first, bool relu, T* __restrict out,
                    int64_t ldo, int64_t m) {
  constexpr int NR = NV * kLanes<T>;
  // The tile's lines of y, fetched now so that the stores at the end (y is written once, 6.4 MB
  // for conv1x1_28) do not wait on their misses, as in the GEMM micro-kernel: conv1x1_28
  // forward, min of ~400 calls, 9.31-9.40 -> 8.87-8.96 ms at 1 thread, 4.63-4.65 -> 4.31-4.43 at 2.
  constexpr int kLines = (NR * static_cast<int>(sizeof(T)) + 63) / 64;
  for (int64_t i = 0; i < m; ++i)
    for (int l = 0; l < kLines; ++l) __builtin_prefetch(reinterpret_cast<const char*>(out + i * ldo) + 64 * l, 1, 3);
  T acc[M][NR];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = first || i >= m ? bias[i] : out[i * ldo + j];
  for (int64_t k = 0; k < K; ++k, a += MR, b += ldb) {
#pragma GCC unroll 6
    for (int i = 0; i < M; ++i) {
      const T ai = a[i];
#pragma omp simd
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
  }
  if (relu) {
    for (int64_t i = 0; i < m; ++i)
      for (int j = 0; j < NR; ++j) out[i * ldo + j] = acc[i][j] <= T(0) ? T(0) : acc[i][j];
  } else {
    for (int64_t i = 0; i < m; ++i)
      for (int j = 0; j < NR; ++j) out[i * ldo + j] = acc[i][j];
  }
}

template <class T>
using PointwiseTileFn = void (*)(int64_t, const T*, const T*, int64_t, const T*, bool, bool, T*,
                                 int64_t, int64_t);

// The tile of nv vectors, 1 <= nv <= kMaxNV, and 4 rows where m <= 4 (else MR).
template <class T, std::size_t... I>
PointwiseTileFn<T> pointwise_tile_for(int64_t nv, int64_t m, std::index_sequence<I...>) {
  static constexpr PointwiseTileFn<T> six[] = {&pointwise_tile<T, static_cast<int>(I) + 1, MR>...};
  static constexpr PointwiseTileFn<T> four[] = {&pointwise_tile<T, static_cast<int>(I) + 1, 4>...};
  return m <= 4 ? four[nv - 1] : six[nv - 1];
}

// part[i*ldp + j] += sum_{q < P} xr[i][q] * gyt[q*ldg + j] for i < MR, j < NV*V, q in order,
// rows i >= m not stored. xr: MR rows of x (rows past m repeat row m-1), gyt grad_y transposed
// (P, ldg) at this tile's first output channel, part (MR, ldp) this thread's partial sums.
template <class T, int NV>
void pointwise_weight_tile(int64_t P, const T* x0, int64_t ldx, int64_t m, const T* __restrict gyt,
                           int64_t ldg, T* __restrict part, int64_t ldp) {
  constexpr int NR = NV * kLanes<T>;
  const T* xr[MR];
  for (int i = 0; i < MR; ++i) xr[i] = x0 + std::min<int64_t>(i, m - 1) * ldx;
  T acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = i < m ? part[i * ldp + j] : T(0);
  for (int64_t q = 0; q < P; ++q) {
    const T* __restrict g = gyt + q * ldg;  // (NR)
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const T xi = xr[i][q];
#pragma omp simd
      for (int j = 0; j < NR; ++j) acc[i][j] += xi * g[j];
    }
  }
  for (int64_t i = 0; i < m; ++i)
    for (int j = 0; j < NR; ++j) part[i * ldp + j] = acc[i][j];
}

template <class T>
using PointwiseWeightTileFn = void (*)(int64_t, const T*, int64_t, int64_t, const T*, int64_t, T*,
                                       int64_t);

template <class T, std::size_t... I>
PointwiseWeightTileFn<T> pointwise_weight_tile_for(int64_t nv, std::index_sequence<I...>) {
  static constexpr PointwiseWeightTileFn<T> table[] = {
      &pointwise_weight_tile<T, static_cast<int>(I) + 1>...};
  return table[nv - 1];
}

// Prefetches row block blk's share (of nblk) of `count` rows of x (stride P) from `rows`, the
// first `cols` elements of each: into L2 (Locality 2) or, a whole image ahead, from memory
// (Locality 1; the lines go to L2 and, evicted from there, stay in Zen's victim L3).
template <int Locality, class T>
void prefetch_share(const T* rows, int64_t count, int64_t P, int64_t cols, int64_t blk, int64_t nblk) {
  const int64_t c_lo = blk * count / nblk, c_hi = (blk + 1) * count / nblk;
  const int64_t lines = (cols * static_cast<int64_t>(sizeof(T)) + 63) / 64;
  for (int64_t c = c_lo; c < c_hi; ++c) {
    const char* row = reinterpret_cast<const char*>(rows + c * P);
    for (int64_t l = 0; l < lines; ++l) __builtin_prefetch(row + 64 * l, 0, Locality);
  }
}

}  // namespace

bool pointwise_fits(const Conv2dShape& s) { return dims_of(s).direct; }

template <class T>
void pointwise_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  // x (N, C, P), w (C_out, Cg), bias (C_out) or null, y (N, C_out, P)
  constexpr int V = kLanes<T>;
  const int64_t G = s.groups, Cg = s.C / G, Cog = s.C_out / G, P = s.H * s.W;
  const int64_t nblk = (Cog + MR - 1) / MR;
  // packed (G, nblk, Cg, MR), bias_p (G, nblk, MR): rows past Cog zero.
  std::unique_ptr<T[]> packed(new T[G * nblk * (Cg + 1) * MR]);
  T* bias_p = packed.get() + G * nblk * Cg * MR;
  for (int64_t g = 0; g < G; ++g)
    for (int64_t blk = 0; blk < nblk; ++blk)
      for (int i = 0; i < MR; ++i) {
        const int64_t row = blk * MR + i, co = g * Cog + row;
        for (int64_t c = 0; c < Cg; ++c)
          packed[((g * nblk + blk) * Cg + c) * MR + i] = row < Cog ? w[co * Cg + c] : T(0);
        bias_p[(g * nblk + blk) * MR + i] = row < Cog && bias ? bias[co] : T(0);
      }
  constexpr int64_t NRmax = kMaxNV * V;
  const int64_t kc = kDepth<T>;
  // Per thread: the zero-padded last strip (C, NRmax) and its output (C_out padded, NRmax).
  const int64_t per_thread = s.C * NRmax + G * nblk * MR * V;
  const auto tile_for = [](int64_t nv, int64_t m) {
    return pointwise_tile_for<T>(nv, m, std::make_index_sequence<kMaxNV>{});
  };
  std::unique_ptr<T[]> scratch(new T[omp_get_max_threads() * per_thread]);
#pragma omp parallel
  {
    T* strip = scratch.get() + omp_get_thread_num() * per_thread;  // (C, NRmax)
    T* ytail = strip + s.C * NRmax;                                // (G*nblk*MR, V)
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) {
      const T* x_n = x + n * s.C * P;  // (C, P)
      T* y_n = y + n * s.C_out * P;    // (C_out, P)
      // The last strip, when it ends inside a vector, is read from a zero-padded copy.
      const int64_t q_tail = P / V * V;  // columns [q_tail, P) are copied (none if P % V == 0)
      const bool has_tail = q_tail < P;
      if (has_tail)
        for (int64_t c = 0; c < s.C; ++c) {
          std::copy(x_n + c * P + q_tail, x_n + (c + 1) * P, strip + c * NRmax);
          std::fill(strip + c * NRmax + (P - q_tail), strip + (c + 1) * NRmax, T(0));
        }
      // Channel block outer, strips inner: each of the kc rows of x is read front to back
      // (sequential streams the prefetchers follow) while y (C_out, P) stays in L2 between passes.
      for (int64_t g = 0; g < G; ++g)
        for (int64_t k0 = 0; k0 < Cg; k0 += kc) {
          const int64_t k = std::min(kc, Cg - k0);
          for (int64_t q0 = 0, width = NRmax; q0 < P; q0 += width) {
            // Strips of kMaxNV vectors; where kMaxNV + 1 whole vectors are left, two strips of
            // 3 + 2 instead of 4 + 1 (the 1-vector tile does 6 broadcasts per 6 multiply-adds).
            const int64_t left = (q_tail - q0) / V;
            width = kMaxNV > 2 && left == kMaxNV + 1 ? (left + 1) / 2 * V : NRmax;
            const bool tail = has_tail && q0 + width > q_tail;  // this strip ends in the copy
            const int64_t cols = std::min(width, (tail ? q_tail : P) - q0);
            // Two prefetch streams, a share of each during every row block: into L2 the rows
            // of the strip that runs next (the next one here, else the first of the next channel
            // block, group or image); from memory, this strip's rows in the next image. x
            // (25.7 MB for conv1x1_28) does not stay in L3 between calls, and the rows, 3136 bytes
            // apart, are too many streams for the hardware prefetchers: with only the first,
            // 88 GFLOP/s (x in L3, 8 images: 100); with both 94, 1 thread (min of 25, alternating).
            const T* near_rows = x_n + (g * Cg + k0) * P + q0 + width;  // (near_k rows, stride P)
            int64_t near_k = k, near_cols = std::min(NRmax, P - q0 - width);
            if (q0 + width >= P) {
              near_cols = std::min(NRmax, P);
              if (k0 + kc < Cg) {
                near_rows = x_n + (g * Cg + k0 + kc) * P;
                near_k = std::min(kc, Cg - k0 - kc);
              } else if (g + 1 < G) {
                near_rows = x_n + (g + 1) * Cg * P;
                near_k = std::min(kc, Cg);
              } else {
                near_rows = n + 1 < s.N ? x_n + s.C * P : nullptr;
                near_k = std::min(kc, Cg);
              }
            }
            const T* far_rows = n + 1 < s.N ? x_n + s.C * P + (g * Cg + k0) * P + q0 : nullptr;
            for (int64_t blk = 0; blk < nblk; ++blk) {
              if (far_rows) prefetch_share<1>(far_rows, k, P, std::min(width, P - q0), blk, nblk);
              if (near_rows) prefetch_share<2>(near_rows, near_k, P, near_cols, blk, nblk);
              const int64_t row0 = g * Cog + blk * MR, m = std::min<int64_t>(MR, Cog - blk * MR);
              const T* a = packed.get() + ((g * nblk + blk) * Cg + k0) * MR;  // (k, MR)
              const T* bb = bias_p + (g * nblk + blk) * MR;                 // (MR)
              const bool relu = s.relu && k0 + kc >= Cg;  // after the last channel block
              if (cols > 0)
                tile_for(cols / V, m)(k, a, x_n + (g * Cg + k0) * P + q0, P, bb, k0 == 0, relu,
                                      y_n + row0 * P + q0, P, m);
              if (tail) {
                T* out = ytail + (g * nblk + blk) * MR * V;  // (m, V)
                tile_for(1, m)(k, a, strip + (g * Cg + k0) * NRmax, NRmax, bb, k0 == 0, relu, out,
                               V, m);
                if (k0 + kc >= Cg)
                  for (int64_t i = 0; i < m; ++i)
                    std::copy(out + i * V, out + i * V + (P - q_tail),
                              y_n + (row0 + i) * P + q_tail);
              }
            }
            if (tail) break;
          }
        }
    }
  }
}
template void pointwise_forward<float>(const Conv2dShape&, const float*, const float*, const float*,
                                       float*);
template void pointwise_forward<double>(const Conv2dShape&, const double*, const double*,
                                        const double*, double*);


template <class T>
void pointwise_backward_weight(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w) {
  // x (N, C, P), grad_y (N, C_out, P), grad_w (C_out, Cg)
  constexpr int V = kLanes<T>;
  constexpr int64_t NRmax = kMaxNV * V;
  const int64_t G = s.groups, Cg = s.C / G, Cog = s.C_out / G, P = s.H * s.W;
  const int64_t Copad = (Cog + V - 1) / V * V;  // grad_y^T row length per group
  // Per thread: gyt (G, P, Copad) then part (G, Cg, Copad) last.
  const int64_t part_size = G * Cg * Copad;
  const int64_t per_thread = G * P * Copad + part_size;
  std::unique_ptr<T[]> scratch(new T[omp_get_max_threads() * per_thread]);
#pragma omp parallel
  {
    const int threads = omp_get_num_threads();
    T* gyt = scratch.get() + omp_get_thread_num() * per_thread;  // (G, P, Copad)
    T* part = gyt + G * P * Copad;                               // (G, Cg, Copad)
    std::fill(gyt, gyt + per_thread, T(0));  // lanes past Cog and the partial sums start at 0
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) {
      const T* x_n = x + n * s.C * P;  // (C, P)
      for (int64_t g = 0; g < G; ++g)
        for (int64_t co0 = 0; co0 < Cog; co0 += V)
          load_transposed(grad_y + (n * s.C_out + g * Cog + co0) * P, P,
                          std::min<int64_t>(V, Cog - co0), gyt + g * P * Copad + co0, Copad);
      for (int64_t g = 0; g < G; ++g)
        for (int64_t j0 = 0; j0 < Copad; j0 += NRmax) {
          const int64_t nv = std::min(NRmax, Copad - j0) / V;
          const PointwiseWeightTileFn<T> tile =
              pointwise_weight_tile_for<T>(nv, std::make_index_sequence<kMaxNV>{});
          for (int64_t c0 = 0; c0 < Cg; c0 += MR)
            tile(P, x_n + (g * Cg + c0) * P, P, std::min<int64_t>(MR, Cg - c0),
                 gyt + g * P * Copad + j0, Copad, part + (g * Cg + c0) * Copad + j0, Copad);
        }
    }
    // The implicit barrier above makes every thread's partial sums complete.
#pragma omp for schedule(static)
    for (int64_t i = 0; i < s.C_out * Cg; ++i) {
      const int64_t co = i / Cg, c = i % Cg, g = co / Cog;
      const int64_t at = (g * Cg + c) * Copad + co % Cog;  // in part
      T acc = 0;
      for (int u = 0; u < threads; ++u)
        acc += scratch[u * per_thread + per_thread - part_size + at];
      grad_w[i] = acc;
    }
  }
}
template void pointwise_backward_weight<float>(const Conv2dShape&, const float*, const float*,
                                               float*);
template void pointwise_backward_weight<double>(const Conv2dShape&, const double*, const double*,
                                                double*);

}  // namespace dlcore::cpu::DLCORE_ISA
