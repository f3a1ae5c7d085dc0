// gemm: the portable GEMM driver (cache blocking, packing, threads) around the register-tile
// micro-kernel of this ISA copy (csrc/cpu/gemm/ukernels.h: intrinsics on AVX2 / AVX-512, a
// plain-C++ tile that GCC vectorises on generic x86-64). Design notes: csrc/cpu/gemm/README.md.
//
// Math:   C[b] := alpha * op(A[b]) * op(B[b]) + beta * C[b],  b < batch,
//         op(A) (M, K), op(B) (K, N), C (M, N), all row-major with row strides lda/ldb/ldc.
// Layout: see GemmArgs (core/kernel_args.h). A is (M, K), or (K, M) when trans_a; B is (K, N),
//         or (N, K) when trans_b. Batch b reads A + b*stride_a, B + b*stride_b, C + b*stride_c;
//         a stride may be 0 (broadcast; stride_c == 0 accumulates in order b = 0, 1, ...).
// Preconditions (checked in csrc/bindings/ops_gemm.cpp): M, N, K, batch >= 0; every row and
//         element addressed through the strides lies inside the caller's arrays; C overlaps
//         neither A nor B.
// Overwrite: beta == 0 overwrites C without reading it (NaNs in C do not leak); K == 0 gives
//         C := beta * C. The optional epilogue (bias per column, ReLU) runs inside the
//         micro-kernel on its last depth block, in registers before the one store (as a second
//         pass over each stored tile it had cost 8 % of a 1600x1024x128 GEMM with bias). No
//         element outside the M x N (x K) index space is ever read or written: packing
//         zero-pads edge panels instead of reading past the matrices.
// Algorithm (BLIS / GotoBLAS): loop jc over NC columns, pc over KC depth, pack op(B)[pc, jc]
//         into NR-wide panels; loop ic over MC rows, pack op(A)[ic, pc] into MR-tall panels;
//         then every MR x NR tile of C is one micro-kernel call over the packed panels. Packing
//         makes all four transpose combinations look the same to the micro-kernel. Float
//         packing on AVX-512 is vectorised: A as is = 8 depths x 6 rows per 8 x 8 register
//         transpose, A transposed = one masked 6-wide copy per depth, B transposed = 8 x 8
//         register transposes (was element by element: 64x512x2048 NT 81 -> 95 GFLOP/s,
//         576x64x4096 TN 83 -> 96, 400x120x256 TN 90 -> 99 at 1 thread). When the rows of a
//         thread fit one MC block, B is packed a few panels at a time right before their
//         micro-kernel calls (read back from L2, not L3), and the rows run as equal tiles:
//         64x4096x1024 NN 77 -> 80 -> 86, 20x2600x650 NN 81 -> 84; with B pre-packed, the
//         same equal tiles (an LSTM's backward through time, 32 rows x W_hh per step: 1 thread,
//         100x32x512 65.2 -> 64.1 ms, 50x32x256 8.6-8.9 -> 8.3-8.5). When a thread's block
//         has at most kStridedAMaxTiles column tiles, A is not packed at all: the micro-kernel's
//         twin reads op(A) in place (StridedA), e.g. 4096x64x576 NN 96 -> 107 GFLOP/s.
//         Small or thin problems (under 16^3 multiply-adds, M == 1, N < min(NR / 4, 8), or B
//         transposed with M <= 8) skip packing and run as row updates (axpy) or dot products.
//         B transposed with a few more rows (up to two column tiles, N and K large: a Linear
//         layer's input gradient) runs as C^T = op(B)^T op(A)^T, so B is read in place instead
//         of being transposed into panels (gemm_swapped): 64x1024x4096 NT 82 -> 98 GFLOP/s.
//         AVX-512 float with B transposed also runs one row of C, and the 1..4 columns past the
//         last full tile, as 16 dot products at a time (cpu/dot_rows_avx512.h): a Linear layer
//         at batch one, and a 65-way output layer's last column.
// Threads: one OpenMP region splits C into a grid of nearly square blocks (one per thread,
//         aligned to the tile), each run by its own blocked loops and pack buffers; batched GEMMs
//         with many matrices split the batch instead. Problems under 96^3 stay single-threaded,
//         and so does a call made from inside another parallel region.
// Pre-packed B (gemm_pack_b / gemm_packed, for a weight reused across calls): gemm_pack_b packs
//         the whole op(B) once, depth block after depth block (the same equal blocks the driver
//         uses for this K), each block as ceil(N / NR) panels (kc, NR); the panel of depth block
//         pc and column tile jt starts at pc * N_pad + jt * kc * NR (N_pad = N rounded up to NR).
//         gemm_packed runs the blocked loops and thread grid of gemm with pack_b skipped.
// Column blocks (gemm_column_blocks, gemm_parts.h): the blocked loops can also read op(B) from,
//         and write C to, side-by-side column blocks of separate matrices (each block of B in
//         row pieces, or zeros), so one GEMM with op(A) packed once serves several products,
//         e.g. an RNN layer's two weight gradients from d_gates (csrc/cpu/rnn/weight_grads.cpp).
// Tested: tests/kernels/test_gemm_kernels.py (NumPy float64 oracle, K-scaled tolerance,
//         integer-exact case, every size 1..70 in M, N, K, MR/NR +- 1 of every tile, all
//         transposes, alpha/beta, leading dimensions past the width, broadcast batches, each ISA).
//         Timed against NumPy (OpenBLAS) with the script in that file's docstring.
// Bound: one Zen 4 core peaks near 32 float / 16 double flops per cycle (two 256-bit FMA
//         pipes), ~118 / 59 GFLOP/s at 3.7 GHz. Measured on one core (AVX-512 copy, 6x64 tile):
//         float 109-111 GFLOP/s on 256^3..1024^3 (OpenBLAS 102-107), 104 at 2048^3 (104).
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "cpu/dot_rows_avx512.h"
#include "cpu/gemm/gemm_parts.h"
#include "cpu/transpose_parts.h"
#include "cpu/gemm/ukernels.h"
#include "cpu/kernels.h"

namespace dlcore::cpu::DLCORE_ISA {

namespace {

template <class T>
using Tile = GemmTile<T>;

// Cache blocks, in elements (Zen 4: L1d 32 KiB, L2 1 MiB per core, L3 32 MiB shared; see
// README.md for the measurements):
//  KC: depth of one packed panel pair. KC = 256 keeps the A micro-panel (MR x KC, 6 KiB for
//      6 floats) in L1 and the B micro-panel (KC x NR, 16-64 KiB) in L1/L2; the depth is split
//      into equal blocks of at most KC.
//  MC: rows of the packed A block (MC x KC), reused across all NC columns, kept in L2:
//      ~192 rows (rounded to MR) give 192-384 KiB, under the 1 MiB L2 with room for B.
//  NC: columns of the packed B block (KC x NC), reused across all MC blocks, kept in L3:
//      KC * NC * sizeof(T) = 4 MiB per thread, so two threads use a quarter of L3.
template <class T>
struct Blocks {
  static constexpr int64_t KC = 256;
  static constexpr int64_t MC = 192 / Tile<T>::MR * Tile<T>::MR;
  static constexpr int64_t NC = (4 << 20) / (KC * sizeof(T)) / Tile<T>::NR * Tile<T>::NR;
  static_assert(MC % Tile<T>::MR == 0 && NC % Tile<T>::NR == 0, "blocks hold whole tiles");
};

// The depth of the equal blocks of at most KC that K is split into (K = 576 runs as 3 x 192,
// not 256 + 256 + 64: no thin last pass). Blocks start at multiples of it; the last may be
// shorter.
template <class T>
int64_t depth_block(int64_t K) {
  constexpr int64_t KC = Blocks<T>::KC;
  const int64_t blocks = (K + KC - 1) / KC;
  return (K + blocks - 1) / blocks;
}

// N rounded up to whole NR-wide panels: the row length of a pre-packed B.
template <class T>
int64_t padded_cols(int64_t N) {
  constexpr int64_t NR = Tile<T>::NR;
  return (N + NR - 1) / NR * NR;
}

// Below this many multiply-adds per matrix, packing does not pay: unpacked loops instead
// (near 16^3 both paths take ~1.5 us on Zen 4, mostly call overhead; above it packing wins,
// e.g. 31^3 runs 3x faster packed).
constexpr double kSmallWork = 16.0 * 16.0 * 16.0;
// B transposed and at most this many rows of C: dot products instead of packing (packing a
// transposed B gathers all N x K elements, which a handful of rows cannot amortise; e.g.
// conv2d's 6x25x784 per-image calls). Larger M stays packed: 64x1024x4096 NT ran 66 GFLOP/s
// packed vs 52 as dots, LeNet conv2's 16x150x100 NT about 2x slower as dots, and 20x650x2600
// NT measured 63-67 as dots in one session but 45-51 (like packed, 47) in another (it streams
// B from L3, so it is sensitive to the neighbours' cache traffic): no clear win above 8.
constexpr int64_t kDotsMaxRows = 8;
// Below this many multiply-adds in the whole call, threads cost more than they save
// (an OpenMP fork/join is a few microseconds; 96^3 is ~20 us of one core's work).
constexpr double kParallelWork = 96.0 * 96.0 * 96.0;

// How one matrix is computed.
enum class Path {
  scale,    // K == 0: C := beta * C
  axpy,     // unpacked, row of C += a * row of B (B not transposed, small or M == 1)
  dots,     // unpacked, dot products over K (B transposed and small, or N too thin for a tile)
  blocked,  // packed panels and the micro-kernel
};

// A 64-byte aligned scratch buffer per thread, grown on demand and reused across calls
// (OpenMP keeps its worker threads, so steady-state calls allocate nothing).
template <class T>
T* scratch(int which, int64_t count) {
  struct Buffer {
    T* data = nullptr;
    int64_t size = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffers[2];
  Buffer& buf = buffers[which];
  if (buf.size < count) {
    std::free(buf.data);
    const size_t bytes = (static_cast<size_t>(count) * sizeof(T) + 63) / 64 * 64;
    buf.data = static_cast<T*>(std::aligned_alloc(64, bytes));
    buf.size = buf.data ? count : 0;
  }
  return buf.data;
}

// C (m, n) := beta * C, where beta == 0 writes zeros without reading C.
template <class T>
void scale_c(int64_t m, int64_t n, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    T* __restrict c = C + i * ldc;  // (n)
    if (beta == T(0)) {
      for (int64_t j = 0; j < n; ++j) c[j] = T(0);
    } else if (beta != T(1)) {
      for (int64_t j = 0; j < n; ++j) c[j] *= beta;
    }
  }
}

// Whether g asks for the fused epilogue (bias add and/or ReLU on the final C).
template <class T>
bool has_epilogue(const GemmArgs<T>& g) {
  return g.bias != nullptr || g.relu;
}

// The fused epilogue on the block C (m, n) whose first column is column j0 of the matrix:
// C[i, j] += bias[j0 + j], then max(C, 0). Called on tiles while they are still in L1.
template <class T>
void epilogue(const GemmArgs<T>& g, int64_t m, int64_t n, int64_t j0, T* C, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    T* __restrict c = C + i * ldc;  // (n)
    if (g.bias) {
      const T* __restrict b = g.bias + j0;  // (n)
      for (int64_t j = 0; j < n; ++j) c[j] += b[j];
    }
    if (g.relu)
      for (int64_t j = 0; j < n; ++j) c[j] = c[j] <= T(0) ? T(0) : c[j];  // NaN stays NaN
  }
}

// Column tiles up to which a thread's block reads A in place (StridedA) instead of packing it:
// a packed A element is reused by every column tile, so with few tiles the packing (a transpose
// through registers) is not repaid. Measured at 1 thread (GFLOP/s, packed -> in place, two
// interleaved runs): 4096x64x576 NN 95-97 -> 106-109, 256x120x400 NN 100 -> 103.5, 400x120x256
// TN 100 -> 104.5, 1600x128x1024 NN 100-106 -> 106-111, 576x64x4096 TN 90-93 -> 88-98 (no clear
// gain); with 3-6 tiles the runs were too noisy to tell, so the packed path keeps them.
constexpr int64_t kStridedAMaxTiles = 2;

// Whether reading A in place would thrash L1: A transposed is read one cache line per depth,
// lda apart, and a row stride that is a multiple of 512 bytes maps those lines onto at most 8
// of the 64 sets (1024x128x1600 TN, lda 4 KiB: 79-82 GFLOP/s in place, 84-86 packed; lda of
// 2304 or 1600 bytes: 98 and 104.5 in place vs 92 and 100 packed).
template <class T>
bool a_in_place_conflicts(const GemmArgs<T>& g) {
  return g.trans_a && (g.lda * static_cast<int64_t>(sizeof(T))) % 512 == 0;
}

// op(A)[i, p0:] read in place by a micro-kernel: element (i + r, p0 + q) of op(A).
template <class T>
StridedA<T> a_in_place(const GemmArgs<T>& g, const T* A, int64_t i, int64_t p0) {
  if (g.trans_a) return {A + p0 * g.lda + i, 1, g.lda};  // A stored (K, M)
  return {A + i * g.lda + p0, g.lda, 1};
}

// The bias columns from j0 on for the micro-kernel's epilogue: only on the last depth block.
template <class T>
const T* tile_bias(const GemmArgs<T>& g, bool last, int64_t j0) {
  return last && g.bias ? g.bias + j0 : nullptr;
}

// Unpacked rows [i0, i1) of C for small problems, in axpy form: C is scaled once, then row i
// gets alpha * op(A)[i, p] * op(B)[p, :] for each p, a contiguous vector update when B is
// not transposed. Correct for every layout; also the fallback when no panel memory is left.
template <class T>
void gemm_axpy(const GemmArgs<T>& g, const T* A, const T* B, T* C, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) {
    T* __restrict c = C + i * g.ldc;  // (N)
    scale_c<T>(1, g.N, g.beta, c, g.ldc);
    for (int64_t p = 0; p < g.K; ++p) {
      const T a = g.alpha * (g.trans_a ? A[p * g.lda + i] : A[i * g.lda + p]);
      if (!g.trans_b) {
        const T* __restrict b = B + p * g.ldb;  // (N)
        for (int64_t j = 0; j < g.N; ++j) c[j] += a * b[j];
      } else {
        for (int64_t j = 0; j < g.N; ++j) c[j] += a * B[j * g.ldb + p];
      }
    }
    if (has_epilogue(g)) epilogue(g, 1, g.N, 0, c, g.ldc);
  }
}

// Unpacked rows [i0, i1) of C as dot products of contiguous length-K rows of op(A) and
// op(B)^T: C[i, j] := alpha * <op(A)[i, :], op(B)[:, j]> + beta * C[i, j]. Transposed A rows
// or an untransposed B are first copied into contiguous scratch blocks. Four columns x two
// rows of C at a time: 8 independent sums hide the FMA latency and each vector of A and B
// loaded feeds 4 or 2 FMAs. Columns outer, rows inner: the four B rows (4 x K) stay in L1
// while the A rows stream from L2. `omp simd reduction` lets GCC vectorise the sums (it may
// reassociate them, which the K-scaled tolerance allows).
template <class T>
void gemm_dots(const GemmArgs<T>& g, const T* A, const T* B, T* C, int64_t i0, int64_t i1) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    // One row of A (contiguous) against B transposed: 16 columns at a time (dot_rows16). It
    // ran as 4 columns x 2 rows (one of them a copy) below; 1 thread, us, that -> this (NumPy /
    // OpenBLAS sgemv): 1x2048x512 NT 103 -> 57 (58), 1x2048x64 26.2 -> 6.9 (7.5), 1x512x2048
    // 85 -> 56 (57), 1x4096x512 166 -> 120 (109).
    if (g.trans_b && i1 - i0 == 1 && (!g.trans_a || g.lda == 1)) {
      const float* a = g.trans_a ? A + i0 : A + i0 * g.lda;  // (K)
      float* c = C + i0 * g.ldc;                            // (N)
      for (int64_t j = 0; j < g.N; j += 16) {
        const int64_t n = std::min<int64_t>(16, g.N - j);
        const __mmask16 m = static_cast<__mmask16>((1u << n) - 1);
        __m512 r = _mm512_mul_ps(_mm512_set1_ps(g.alpha), dot_rows16(B + j * g.ldb, g.ldb, n, g.K, a));
        if (g.beta != 0.0f) r = _mm512_fmadd_ps(_mm512_set1_ps(g.beta), _mm512_maskz_loadu_ps(m, c + j), r);
        _mm512_mask_storeu_ps(c + j, m, r);
      }
      if (has_epilogue(g)) epilogue(g, 1, g.N, 0, c, g.ldc);
      return;
    }
  }
#endif
  const int64_t K = g.K;
  const T* bt = B;  // op(B)^T (N, K), row stride ldbt
  int64_t ldbt = g.ldb;
  if (!g.trans_b) {
    T* buf = scratch<T>(1, g.N * K);  // (N, K)
    if (!buf) return gemm_axpy(g, A, B, C, i0, i1);
    for (int64_t p = 0; p < K; ++p)
      for (int64_t j = 0; j < g.N; ++j) buf[j * K + p] = B[p * g.ldb + j];
    bt = buf;
    ldbt = K;
  }
  const T* a = A + i0 * g.lda;  // op(A)[i0 : i1, :] (i1 - i0, K), row stride lda_rows
  int64_t lda_rows = g.lda;
  if (g.trans_a) {
    T* buf = scratch<T>(0, (i1 - i0) * K);  // (i1 - i0, K)
    if (!buf) return gemm_axpy(g, A, B, C, i0, i1);
    for (int64_t p = 0; p < K; ++p)
      for (int64_t i = i0; i < i1; ++i) buf[(i - i0) * K + p] = A[p * g.lda + i];
    a = buf;
    lda_rows = K;
  }
  for (int64_t j = 0; j < g.N; j += 4) {
    const int cols = static_cast<int>(std::min<int64_t>(4, g.N - j));
    const T* b0 = bt + j * ldbt;                             // (K)
    const T* b1 = bt + (j + std::min(1, cols - 1)) * ldbt;  // (K), repeats the last column
    const T* b2 = bt + (j + std::min(2, cols - 1)) * ldbt;  // (K)
    const T* b3 = bt + (j + std::min(3, cols - 1)) * ldbt;  // (K)
    for (int64_t i = i0; i < i1; i += 2) {
      const int rows = i + 1 < i1 ? 2 : 1;
      const T* a0 = a + (i - i0) * lda_rows;           // (K)
      const T* a1 = rows == 2 ? a0 + lda_rows : a0;    // (K)
      T s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
#pragma omp simd reduction(+ : s00, s01, s02, s03, s10, s11, s12, s13)
      for (int64_t p = 0; p < K; ++p) {
        const T x0 = a0[p], x1 = a1[p];
        s00 += x0 * b0[p], s01 += x0 * b1[p], s02 += x0 * b2[p], s03 += x0 * b3[p];
        s10 += x1 * b0[p], s11 += x1 * b1[p], s12 += x1 * b2[p], s13 += x1 * b3[p];
      }
      const T sums[2][4] = {{s00, s01, s02, s03}, {s10, s11, s12, s13}};
      for (int r = 0; r < rows; ++r) {
        T* c = C + (i + r) * g.ldc + j;  // (cols)
        for (int q = 0; q < cols; ++q)
          c[q] = g.beta == T(0) ? g.alpha * sums[r][q] : g.alpha * sums[r][q] + g.beta * c[q];
        if (has_epilogue(g)) epilogue(g, 1, cols, j, c, g.ldc);
      }
    }
  }
}

#if defined(__AVX512F__)
// Transposes the 8 x 8 block r (r[i] = row i) in place: afterwards r[q] = column q.
inline void transpose8x8(__m256 r[8]) {
  __m256 t[8], s[8];
  for (int k = 0; k < 4; ++k) {
    t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  for (int h = 0; h < 2; ++h) {
    s[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
    s[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
    s[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
    s[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
  }
  for (int k = 0; k < 4; ++k) {
    r[k] = _mm256_permute2f128_ps(s[k], s[k + 4], 0x20);
    r[k + 4] = _mm256_permute2f128_ps(s[k], s[k + 4], 0x31);
  }
}
#endif

// Depths ahead whose run the depth-major packs prefetch (pack_b_rows for B as is, pack_a for A
// transposed): the runs lie ld apart, each in another page, where the hardware prefetchers
// start late. 1 thread, GFLOP/s, in one process alternating with none (2026-11-27):
// 64x4096x1024 89.5 -> 91.2-94.4 (2 threads 185.7 -> 192.5), 20x2600x650 87.7 -> 88.6-88.8,
// 64x2048x512 102.8 -> 103.5 (8 depths ahead: no better than none); 2048x576x3200 TN (A from
// memory) 103.2-106.0 -> 106.5-106.9, 2 threads 205.0 -> 210.3.
constexpr int64_t kPackPrefetchDepths = 2;

// Packs op(A)[i0 : i0+mc, p0 : p0+kc] into MR-row panels: Ap (ceil(mc/MR), kc, MR), rows past
// mc zero-filled, so the micro-kernel always runs a full tile and never reads past A.
template <class T>
void pack_a(const GemmArgs<T>& g, const T* A, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
            T* __restrict Ap) {
  constexpr int MR = Tile<T>::MR;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float> && MR == 6) {
    if (g.trans_a) {
      // op(A) rows are A's columns: depth p holds the block's mc elements contiguously. Walk
      // the depths once and deal each one's elements to the panels (one masked load and
      // store of 6 per panel; rows past mc load as zero). Panel by panel instead, every
      // panel re-read the depths' lines, and with lda a multiple of 1 KiB (1024x128x1600 TN,
      // an LSTM weight gradient) those lines shared one L1 set: 1 thread, 84.9-86.0 -> 95-103
      // GFLOP/s; 1024x256x1600 TN 96 -> 103-105.
      const float* __restrict a = A + p0 * g.lda + i0;  // (kc, mc), row stride lda
      for (int64_t p = 0; p < kc; ++p, a += g.lda) {
        if (p + kPackPrefetchDepths < kc)
          for (int64_t l = 0; l < mc; l += 16) __builtin_prefetch(a + kPackPrefetchDepths * g.lda + l, 0, 3);
        for (int64_t ir = 0; ir < mc; ir += MR) {
          const __mmask8 rows = static_cast<__mmask8>((1u << std::min<int64_t>(MR, mc - ir)) - 1);
          _mm256_mask_storeu_ps(Ap + ir * kc + p * MR, 0x3f, _mm256_maskz_loadu_ps(rows, a + ir));
        }
      }
      return;
    }
  }
#endif
  for (int64_t ir = 0; ir < mc; ir += MR, Ap += kc * MR) {
    const int64_t m = std::min<int64_t>(MR, mc - ir);
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float> && MR == 6) {
      if (!g.trans_a) {
        // 8 depths of the 6 rows at a time, transposed in registers (two dummy rows, and the
        // rows past m zero); each column of 6 is one masked store.
        const float* __restrict a = A + (i0 + ir) * g.lda + p0;  // (m, kc), row stride lda
        int64_t p = 0;
        for (; p + 8 <= kc; p += 8) {
          __m256 r[8];
          for (int i = 0; i < MR; ++i) r[i] = i < m ? _mm256_loadu_ps(a + i * g.lda + p) : _mm256_setzero_ps();
          r[6] = r[7] = r[5];
          transpose8x8(r);
          for (int q = 0; q < 8; ++q) _mm256_mask_storeu_ps(Ap + (p + q) * MR, 0x3f, r[q]);
        }
        for (; p < kc; ++p)
          for (int i = 0; i < MR; ++i) Ap[p * MR + i] = i < m ? a[i * g.lda + p] : 0.0f;
        continue;
      }
    }
#endif
    if (!g.trans_a && m == MR) {
      const T* __restrict a = A + (i0 + ir) * g.lda + p0;  // (MR, kc), row stride lda
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < MR; ++i) Ap[p * MR + i] = a[i * g.lda + p];
    } else if (!g.trans_a) {
      for (int64_t i = 0; i < m; ++i) {
        const T* __restrict a = A + (i0 + ir + i) * g.lda + p0;  // (kc)
        for (int64_t p = 0; p < kc; ++p) Ap[p * MR + i] = a[p];
      }
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        const T* __restrict a = A + (p0 + p) * g.lda + i0 + ir;  // (m)
        for (int64_t i = 0; i < m; ++i) Ap[p * MR + i] = a[i];
      }
    }
    for (int64_t i = m; i < MR; ++i)
      for (int64_t p = 0; p < kc; ++p) Ap[p * MR + i] = T(0);
  }
}

// Packs op(B)[p0 : p0+kc, j0 : j0+nc] into NR-column panels: Bp (ceil(nc/NR), kc, NR),
// columns past nc zero-filled.
// dst[0 : W) := src[0 : W) in vector registers. GCC turns the plain loop into a call of
// memmove, whose per-call dispatch cost as much as the copy itself for 64 floats (pack_b calls
// it once per row of every panel: 65,536 times for a 64x4096x1024 product).
template <class T, int W>
inline void copy_panel_row(const T* __restrict src, T* __restrict dst) {
#if defined(__AVX512F__)
  if constexpr (W * sizeof(T) % 64 == 0) {
    for (int j = 0; j < W * static_cast<int>(sizeof(T)) / 64; ++j)
      _mm512_storeu_si512(dst + j * 64 / sizeof(T), _mm512_loadu_si512(src + j * 64 / sizeof(T)));
    return;
  }
#elif defined(__AVX2__)
  if constexpr (W * sizeof(T) % 32 == 0) {
    for (int j = 0; j < W * static_cast<int>(sizeof(T)) / 32; ++j)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j * 32 / sizeof(T)),
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + j * 32 / sizeof(T))));
    return;
  }
#endif
  for (int j = 0; j < W; ++j) dst[j] = src[j];
}

template <class T>
void pack_b(const GemmArgs<T>& g, const T* B, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
            T* __restrict Bp) {
  constexpr int NR = Tile<T>::NR;
  for (int64_t jr = 0; jr < nc; jr += NR, Bp += kc * NR) {
    const int64_t n = std::min<int64_t>(NR, nc - jr);
    if (!g.trans_b) {
      for (int64_t p = 0; p < kc; ++p) {
        const T* __restrict b = B + (p0 + p) * g.ldb + j0 + jr;  // (n)
        T* __restrict dst = Bp + p * NR;                          // (NR)
        if (n == NR) {
          copy_panel_row<T, NR>(b, dst);
        } else {
          for (int64_t j = 0; j < n; ++j) dst[j] = b[j];
          for (int64_t j = n; j < NR; ++j) dst[j] = T(0);
        }
      }
    } else {
      // 64 rows of the panel at a time: the slab written (64 x NR) stays in L1 while every
      // source row contributes one contiguous 64-element piece (measured: 16 and 32 are slower
      // on 64x4096x1024, the full depth spills the slab out of L1).
      for (int64_t pb = 0; pb < kc; pb += 64) {
        const int64_t pe = std::min<int64_t>(kc, pb + 64);
        int64_t j0v = 0;  // columns [0, j0v) done in 16 x 16 register transposes
#if defined(__AVX512F__)
        if constexpr (std::is_same_v<T, float>) {
          // 16 columns of op(B) (16 rows of B, ldb apart) at a time; a last group of fewer
          // columns leaves zeros in the rest of its 16, which the zero fill below covers too.
          for (; j0v < n; j0v += 16)
            load_transposed(B + (j0 + jr + j0v) * g.ldb + p0 + pb, pe - pb, std::min<int64_t>(16, n - j0v),
                            Bp + pb * NR + j0v, NR, g.ldb);
        }
#endif
        for (int64_t j = j0v; j < n; ++j) {
          const T* __restrict b = B + (j0 + jr + j) * g.ldb + p0;  // (kc)
          for (int64_t p = pb; p < pe; ++p) Bp[p * NR + j] = b[p];
        }
      }
      for (int64_t j = n; j < NR; ++j)
        for (int64_t p = 0; p < kc; ++p) Bp[p * NR + j] = T(0);
    }
  }
}

// pack_b for B as is, depth-major: each depth's nc elements are read as one contiguous run and
// dealt to the ceil(nc / NR) panels.
template <class T>
void pack_b_rows(const GemmArgs<T>& g, const T* B, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
                 T* __restrict Bp) {
  constexpr int NR = Tile<T>::NR;
  constexpr int64_t kLine = 64 / sizeof(T);  // elements per cache line
  const int64_t full = nc / NR * NR;
  for (int64_t p = 0; p < kc; ++p) {
    const T* __restrict b = B + (p0 + p) * g.ldb + j0;  // (nc)
    if (p + kPackPrefetchDepths < kc)
      for (int64_t l = 0; l < nc; l += kLine) __builtin_prefetch(b + kPackPrefetchDepths * g.ldb + l, 0, 3);
    for (int64_t jr = 0; jr < full; jr += NR) copy_panel_row<T, NR>(b + jr, Bp + jr * kc + p * NR);
    if (full < nc) {
      T* __restrict dst = Bp + full * kc + p * NR;
      for (int64_t j = full; j < nc; ++j) dst[j - full] = b[j];
      for (int64_t j = nc - full; j < NR; ++j) dst[j] = T(0);
    }
  }
}

// ---- column blocks (gemm_column_blocks) ---------------------------------------------------
// op(B) and C as side-by-side column blocks of separate matrices (GemmColumnBlocks, gemm_parts.h).
// The blocked loops below take them in place of one B and one C when every block but the last
// is a whole number of NR-wide panels: a panel, and so a micro-kernel tile, then lies in one
// block. op(A), usually the big operand, is packed once for all blocks.
template <class T>
struct ColumnBlockView {
  const GemmColumnBlocks<T>& cb;
  int64_t start[GemmColumnBlocks<T>::kMaxBlocks] = {};  // first column of each block

  explicit ColumnBlockView(const GemmColumnBlocks<T>& blocks) : cb(blocks) {
    for (int b = 1; b < cb.count; ++b) start[b] = start[b - 1] + cb.block[b - 1].cols;
  }
  int block_of(int64_t col) const {
    int b = 0;
    while (b + 1 < cb.count && col >= start[b + 1]) ++b;
    return b;
  }
  // Row p of block b's op(B) from column 0, or null where its piece is zeros.
  const T* row(int b, int64_t p) const {
    const auto& blk = cb.block[b];
    for (int i = 0; i < blk.pieces; ++i) {
      if (p < blk.piece[i].rows) return blk.piece[i].B ? blk.piece[i].B + p * blk.piece[i].ldb : nullptr;
      p -= blk.piece[i].rows;
    }
    return nullptr;
  }
  // The C tile whose first element is (i, col), and the row stride to write it with.
  T* c_at(int64_t i, int64_t col, int64_t& ldc) const {
    const int b = block_of(col);
    ldc = cb.block[b].ldc;
    return cb.block[b].C + i * ldc + (col - start[b]);
  }
};

// pack_b's panels (ceil(nc / NR), kc, NR) of op(B)[p0 : p0+kc, j0 : j0+nc] read from the blocks,
// zero past the last block's last column and in zero pieces; j0 is a multiple of NR. Depth-major
// like pack_b_rows: each depth's columns of a block are one contiguous run (panel by panel, the
// rows ldb apart had made the char-LSTM's weight gradient ~1 ms slower than packing a copy).
template <class T>
void pack_b_blocks(const ColumnBlockView<T>& v, int64_t p0, int64_t kc, int64_t j0, int64_t nc, T* __restrict Bp) {
  constexpr int NR = Tile<T>::NR;
  constexpr int64_t kLine = 64 / sizeof(T);  // elements per cache line
  const int first = v.block_of(j0), last = v.block_of(j0 + nc - 1);
  for (int64_t p = 0; p < kc; ++p) {
    for (int b = first; b <= last; ++b) {
      const int64_t begin = v.start[b], lo = std::max(j0, begin);  // columns [lo, hi) of the range in block b
      const int64_t hi = std::min(j0 + nc, begin + v.cb.block[b].cols);
      const T* src = v.row(b, p0 + p);  // (cols) from the block's column 0, or null: zeros
      if (p + kPackPrefetchDepths < kc)
        if (const T* ahead = v.row(b, p0 + p + kPackPrefetchDepths))
          for (int64_t l = lo - begin; l < hi - begin; l += kLine) __builtin_prefetch(ahead + l, 0, 3);
      for (int64_t j = lo; j < hi; j += NR) {
        T* __restrict dst = Bp + (j - j0) * kc + p * NR;  // (NR): depth p of the panel at column j
        const int64_t n = std::min<int64_t>(NR, hi - j);
        if (src && n == NR) {
          copy_panel_row<T, NR>(src + (j - begin), dst);
          continue;
        }
        for (int64_t q = 0; q < NR; ++q) dst[q] = src && q < n ? src[j - begin + q] : T(0);
      }
    }
  }
}

// C[m0 : m1, n0 : n1] in axpy form straight from op(A) and a B packed by gemm_pack_b: the
// fallback of the pre-packed path when no memory is left for the A panels.
template <class T>
void gemm_rows_packed_b(const GemmArgs<T>& g, const T* A, T* C, int64_t m0, int64_t m1, int64_t n0,
                        int64_t n1, const T* B_packed) {
  constexpr int64_t NR = Tile<T>::NR;
  const int64_t kc_max = depth_block<T>(g.K), n_pad = padded_cols<T>(g.N);
  for (int64_t i = m0; i < m1; ++i) {
    T* __restrict c = C + i * g.ldc;  // (N)
    scale_c<T>(1, n1 - n0, g.beta, c + n0, g.ldc);
    for (int64_t p = 0; p < g.K; ++p) {
      const T a = g.alpha * (g.trans_a ? A[p * g.lda + i] : A[i * g.lda + p]);
      const int64_t pc = p / kc_max * kc_max, kc = std::min(kc_max, g.K - pc);
      const T* b = B_packed + pc * n_pad + (p - pc) * NR;  // row p of the first panel of its block
      for (int64_t j = n0; j < n1; ++j) c[j] += a * b[j / NR * kc * NR + j % NR];
    }
    if (has_epilogue(g)) epilogue(g, 1, n1 - n0, n0, c + n0, g.ldc);
  }
}

// First row of tile t when `rows` rows run as `tiles` tiles of nearly equal height (each at
// most MR when tiles = ceil(rows / MR)). With the grouped packing below, 1 thread, GFLOP/s,
// median of 6 runs alternating with the build before (2026-11-27): 20x2600x650 80.6 -> 84.1,
// 20x650x2600 NT 78.5 -> 80.1, 64x4096x1024 82.3 -> 86.3, 64x1024x4096 NT 81.4 -> 82.4;
// 64x2048x512, 256x120x400 and 512^3 unchanged. The balanced rows alone (in-process A/B):
// 20x2600x650 82.8 -> 84.7, 20x650x2600 NT 80.9 -> 82.4.
inline int64_t balanced_row_start(int64_t rows, int64_t tiles, int64_t t) { return rows * t / tiles; }

// B panels packed at a time by the one-row-block loop: as many as fill kPackGroupBytes (at least
// one). With B as is, pack_b_rows then reads each depth's columns of the group as one run of
// (group * NR) elements instead of NR-element pieces ldb apart, which the hardware prefetchers
// follow; the group's panels (<= 384 KiB) stay in L2 for their micro-kernel calls. B transposed
// keeps one panel at a time (its rows are contiguous in depth already).
constexpr int64_t kPackGroupBytes = 384 * 1024;
template <class T>
int64_t panels_per_pack(const GemmArgs<T>& g, int64_t kc) {
  if (g.trans_b) return 1;
  return std::max<int64_t>(1, kPackGroupBytes / (kc * Tile<T>::NR * static_cast<int64_t>(sizeof(T))));
}

// The blocked loops over C[m0 : m1, n0 : n1] of one matrix, on the calling thread. B_packed,
// when not null, is the whole op(B) packed by gemm_pack_b (B is then unused, n0 a multiple of
// NR) and the B panels are read from it instead of being packed here.
// blocks, when not null, replaces C, and B too unless B_packed is given (gemm_column_blocks,
// gemm_packed_columns).
template <class T>
void gemm_blocked(const GemmArgs<T>& g, const T* A, const T* B, T* C, int64_t m0, int64_t m1,
                  int64_t n0, int64_t n1, const T* B_packed, const ColumnBlockView<T>* blocks = nullptr) {
  constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR;
  constexpr int64_t MC = Blocks<T>::MC, NC = Blocks<T>::NC;
  if (m0 >= m1 || n0 >= n1) return;
  const int64_t kc_max = depth_block<T>(g.K);
  const int64_t mc_max = std::min(MC, (m1 - m0 + MR - 1) / MR * MR);
  const int64_t nc_max = std::min(NC, (n1 - n0 + NR - 1) / NR * NR);
  const int64_t n_pad = padded_cols<T>(g.N);
  bool strided_a = false;  // A read in place by the micro-kernel: no A panels
  if constexpr (Tile<T>::kernel_strided_a != nullptr)
    strided_a = (n1 - n0 + NR - 1) / NR <= kStridedAMaxTiles && !a_in_place_conflicts(g);
  // B as is, with one block of rows: its whole NR-wide panels are read where they lie (row p of
  // a panel ldb after row p - 1; the narrower last one is still packed). Few row tiles reuse a
  // packed B element there, so its pack had cost 10-25 % of the GEMM; read in place, the first
  // row tile streams the panel into L2 while it computes. 1 thread, % of peak, packed -> in
  // place (alternating in one process, medians): 65x512x3200 TN 76 -> 86,
  // 32x512x3200 TN 75 -> 87, 20x2600x650 NN 75 -> 91, 64x4096x1024 NN 71 -> 77, 64x2048x512 NN
  // 89 -> 95; 2 threads: 76 -> 85, 76 -> 87, 64 -> 77, 70 -> 77, 87 -> 94.
  bool b_in_place = false;
  if constexpr (Tile<T>::kernel_strided_b != nullptr)
    b_in_place = !B_packed && !blocks && !g.trans_b && !strided_a && m1 - m0 <= MC;
  // The C tile at (i, col) of the matrix, and its row stride.
  const auto c_tile = [&](int64_t i, int64_t col, int64_t& ldc) {
    if (blocks) return blocks->c_at(i, col, ldc);
    ldc = g.ldc;
    return C + i * g.ldc + col;
  };
  // One micro-kernel call: rows [i, i + m) of op(A) from depth pc, packed at ap or in place;
  // columns [col, col + n) of op(B) from the panel packed at bp, or in place when bp is null.
  const auto tile = [&](int64_t i, int64_t pc, int64_t kc, const T* ap, const T* bp, int64_t m, int64_t n,
                        T beta, bool last, int64_t col) {
    int64_t ldc = 0;
    T* c = c_tile(i, col, ldc);  // (m, n) tile, row stride ldc
    if constexpr (Tile<T>::kernel_strided_b != nullptr) {
      if (!bp) {
        Tile<T>::kernel_strided_b(kc, ap, StridedB<T>{B + pc * g.ldb + col, g.ldb}, c, ldc, m, n, g.alpha, beta,
                                  tile_bias(g, last, col), last && g.relu);
        return;
      }
    }
    if constexpr (Tile<T>::kernel_strided_a != nullptr) {
      if (strided_a) {
        Tile<T>::kernel_strided_a(kc, a_in_place(g, A, i, pc), bp, c, ldc, m, n, g.alpha, beta,
                                  tile_bias(g, last, col), last && g.relu);
        return;
      }
    }
    Tile<T>::kernel(kc, ap, bp, c, ldc, m, n, g.alpha, beta, tile_bias(g, last, col), last && g.relu);
  };
  T* Ap = strided_a ? nullptr : scratch<T>(0, mc_max * kc_max);       // (MC / MR, KC, MR)
  T* Bp = B_packed ? nullptr : scratch<T>(1, nc_max * kc_max);        // (NC / NR, KC, NR)
  if ((!strided_a && !Ap) || (!B_packed && !Bp)) {  // no memory for the panels: still correct, just slower
    if (blocks) throw std::bad_alloc();  // gemm_column_blocks catches it and runs block by block
    if (B_packed) {                 // nothing to fall back on but the packed panels themselves
      gemm_rows_packed_b(g, A, C, m0, m1, n0, n1, B_packed);
      return;
    }
    GemmArgs<T> sub = g;
    sub.N = n1 - n0;
    gemm_axpy(sub, A, g.trans_b ? B + n0 * g.ldb : B + n0, C + n0, m0, m1);
    return;
  }
  for (int64_t jc = n0; jc < n1; jc += NC) {
    const int64_t nc = std::min(NC, n1 - jc);
    for (int64_t pc = 0; pc < g.K; pc += kc_max) {
      const int64_t kc = std::min(kc_max, g.K - pc);
      const T beta = pc == 0 ? g.beta : T(1);  // later depth blocks accumulate
      const bool last = pc + kc >= g.K;        // the epilogue runs on the final C only
      // The panels of op(B)[pc : pc+kc, jc : jc+nc]: packed earlier, or packed now.
      const T* Bb = B_packed ? B_packed + pc * n_pad + jc * kc : Bp;  // (nc / NR, kc, NR)
      if (m1 - m0 <= MC) {
        // One row block: each B panel is used by this block only, so it is packed right
        // before its micro-kernel calls and read back from L1/L2 instead of after a trip
        // through L3 (the whole KC x NC block is 4 MiB). Its rows run as equal tiles (M = 20:
        // 5 5 5 5, not 6 6 6 2): every call streams the whole B panel from L2, and a thin
        // last tile does so for few FMAs (see balanced_row_start). Pre-packed B panels are
        // read in place, with the same equal tiles (an LSTM's backward carry, 32 rows x W_hh
        // per step: 6 6 5 5 5 5, not 6 6 6 6 6 2).
        const int64_t rows = m1 - m0, row_tiles = (rows + MR - 1) / MR;
        if (!strided_a)
          for (int64_t t = 0; t < row_tiles; ++t) {
            const int64_t r0 = balanced_row_start(rows, row_tiles, t);
            pack_a(g, A, m0 + r0, balanced_row_start(rows, row_tiles, t + 1) - r0, pc, kc, Ap + t * kc * MR);
          }
        // Columns packed at a time (or, with b_in_place, one panel, packed only when narrower).
        const int64_t group = B_packed ? nc : b_in_place ? NR : panels_per_pack(g, kc) * NR;
        for (int64_t jg = 0; jg < nc; jg += group) {
          const int64_t ng = std::min<int64_t>(group, nc - jg);
          const bool in_place = b_in_place && ng == NR;  // a whole panel read from B as is
          if (!B_packed && !in_place) {  // else its panels are read in place
            if (blocks)
              pack_b_blocks(*blocks, pc, kc, jc + jg, ng, Bp);
            else if (g.trans_b)
              pack_b(g, B, pc, kc, jc + jg, ng, Bp);
            else
              pack_b_rows(g, B, pc, kc, jc + jg, ng, Bp);
          }
          for (int64_t jr = jg; jr < jg + ng; jr += NR) {
            const int64_t n = std::min<int64_t>(NR, jg + ng - jr);
            const T* bp = in_place ? nullptr : B_packed ? Bb + jr * kc : Bp + (jr - jg) * kc;  // (kc, NR)
            for (int64_t t = 0; t < row_tiles; ++t) {
              const int64_t r0 = balanced_row_start(rows, row_tiles, t);
              const int64_t m = balanced_row_start(rows, row_tiles, t + 1) - r0;
              tile(m0 + r0, pc, kc, strided_a ? nullptr : Ap + t * kc * MR, bp, m, n, beta, last, jc + jr);
            }
          }
        }
        continue;
      }
      if (blocks && !B_packed)
        pack_b_blocks(*blocks, pc, kc, jc, nc, Bp);
      else if (!B_packed)
        pack_b(g, B, pc, kc, jc, nc, Bp);
      for (int64_t ic = m0; ic < m1; ic += MC) {
        const int64_t mc = std::min(MC, m1 - ic);
        if (!strided_a) pack_a(g, A, ic, mc, pc, kc, Ap);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t m = std::min<int64_t>(MR, mc - ir), n = std::min<int64_t>(NR, nc - jr);
            tile(ic + ir, pc, kc, strided_a ? nullptr : Ap + ir * kc, Bb + jr * kc, m, n, beta, last, jc + jr);
          }
        }
      }
    }
  }
}

template <class T>
Path choose_path(const GemmArgs<T>& g) {
  if (g.K == 0) return Path::scale;
  // A tile NR wide wastes more than 3/4 of its work on N < NR / 4 columns; dot products win.
  if (g.N < std::min(Tile<T>::NR / 4, 8)) return Path::dots;
  if (g.M == 1 || static_cast<double>(g.M) * g.N * g.K < kSmallWork)
    return g.trans_b ? Path::dots : Path::axpy;
  // With B transposed and few rows of C, packing B (a transpose of all N x K elements) costs
  // more than the GEMM reuses it; dot products read both operands contiguously instead.
  if (g.trans_b && g.M <= kDotsMaxRows) return Path::dots;
  return Path::blocked;
}

// Part `tid` of `nt` of one matrix: rows split evenly for the unpacked paths; for the blocked
// path the tiles are split as a tm x tn grid (tm * tn = nt) that keeps blocks closest to
// square (least packing per flop). B_packed (blocked path only): op(B) from gemm_pack_b.
template <class T>
void gemm_part(const GemmArgs<T>& g, Path path, const T* A, const T* B, T* C, int tid, int nt,
               const T* B_packed = nullptr, const ColumnBlockView<T>* blocks = nullptr) {
  constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR;
  if (path != Path::blocked) {
    const int64_t i0 = g.M * tid / nt, i1 = g.M * (tid + 1) / nt;
    if (path == Path::scale) {
      scale_c(i1 - i0, g.N, g.beta, C + i0 * g.ldc, g.ldc);
      if (has_epilogue(g)) epilogue(g, i1 - i0, g.N, 0, C + i0 * g.ldc, g.ldc);
    }
    if (path == Path::axpy) gemm_axpy(g, A, B, C, i0, i1);
    if (path == Path::dots) gemm_dots(g, A, B, C, i0, i1);
    return;
  }
  const int64_t m_tiles = (g.M + MR - 1) / MR, n_tiles = (g.N + NR - 1) / NR;
  int tm = 1;
  double best = 1e300;
  for (int d = 1; d <= nt; ++d) {
    if (nt % d) continue;
    const double rows = static_cast<double>((m_tiles + d - 1) / d) * MR;
    const double cols = static_cast<double>((n_tiles + nt / d - 1) / (nt / d)) * NR;
    if (rows + cols < best) best = rows + cols, tm = d;
  }
  const int tn = nt / tm, ti = tid / tn, tj = tid % tn;
  const int64_t m0 = std::min(g.M, m_tiles * ti / tm * MR), m1 = std::min(g.M, m_tiles * (ti + 1) / tm * MR);
  const int64_t n0 = std::min(g.N, n_tiles * tj / tn * NR), n1 = std::min(g.N, n_tiles * (tj + 1) / tn * NR);
  gemm_blocked(g, A, B, C, m0, m1, n0, n1, B_packed, blocks);
}

// One GEMM (any batch) on the paths above, on the threads of the call.
template <class T>
void gemm_direct(const GemmArgs<T>& g) {
  const Path path = choose_path(g);
  const double work = static_cast<double>(g.M) * g.N * std::max<int64_t>(g.K, 1);
  const int max_threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  auto matrix = [&](int64_t b, int tid, int nt) {
    gemm_part(g, path, g.A + b * g.stride_a,  // (M, K) or (K, M)
              g.B + b * g.stride_b,           // (K, N) or (N, K)
              g.C + b * g.stride_c,           // (M, N)
              tid, nt);
  };
  if (max_threads == 1 || work * g.batch < kParallelWork) {
    for (int64_t b = 0; b < g.batch; ++b) matrix(b, 0, 1);
    return;
  }
  // Whole matrices per thread when they are small or numerous enough to balance; a shared C
  // (stride_c == 0) must be accumulated in batch order, so it is split inside each matrix.
  const bool split_batch = g.batch > 1 && g.stride_c != 0 &&
                           (work < kParallelWork || g.batch >= 4 * max_threads || g.batch % max_threads == 0);
  if (split_batch) {
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < g.batch; ++b) matrix(b, 0, 1);
    return;
  }
  for (int64_t b = 0; b < g.batch; ++b) {
#pragma omp parallel
    matrix(b, omp_get_thread_num(), omp_get_num_threads());
  }
}

// B transposed and few rows of C, B large: the rows fit the width up to which the micro-kernel
// reads its A operand in place, and B has at least kSwapMinCols rows of at least kSwapMinDepth
// (a Linear layer's input gradient, 64x1024x4096 NT). Then C^T = op(B)^T op(A)^T is computed
// instead: its A operand is B itself, read in place by rows, so the big matrix is never
// transposed into panels, and its B operand, op(A)^T, is M columns wide (packed, small); a
// last pass transposes C^T into C. M must fill the vectors of C^T's rows (>= 90 % of their
// lanes, a last half vector counting 8 lanes): 20 rows in 16 + 8 lanes ran slower so. 1 thread,
// GFLOP/s, alternating builds (2026-11-27): 64x1024x4096 NT 82.4 -> 97.7, 64x512x2048 NT 92.4
// -> 107.3, 32x256x2048 NT 81.1 -> 103.0, 64x4096x1024 TT 82.2 -> 94.5; not taken: 20x650x2600
// NT (80.7 vs 72.0 swapped), 100x300x200 NT (104.2 vs 94.0: the transposing pass is a tenth
// of so short a depth).
constexpr int64_t kSwapMinCols = 256;
constexpr int64_t kSwapMinDepth = 512;

template <class T>
bool swap_pays(const GemmArgs<T>& g) {
  constexpr int64_t L = 64 / sizeof(T);                        // lanes of a vector
  const int64_t rem = g.M % L;
  const int64_t lanes = g.M - rem + (rem == 0 ? 0 : rem <= L / 2 ? L / 2 : L);  // of C^T's rows
  return Tile<T>::kernel_strided_a != nullptr && g.batch == 1 && g.trans_b && g.M > kDotsMaxRows &&
         g.M <= kStridedAMaxTiles * Tile<T>::NR && g.N >= kSwapMinCols && g.K >= kSwapMinDepth &&
         10 * g.M >= 9 * lanes;
}

// C := alpha op(A) op(B) + beta C (+ epilogue) through ct (N, M) := alpha op(B)^T op(A)^T.
// Returns false (nothing written) when the scratch for ct cannot be had.
template <class T>
bool gemm_swapped(const GemmArgs<T>& g) {
  std::unique_ptr<T[]> ct(new (std::nothrow) T[g.N * g.M]);  // (N, M)
  if (!ct) return false;
  GemmArgs<T> s;
  s.M = g.N; s.N = g.M; s.K = g.K;
  s.A = g.B; s.lda = g.ldb; s.trans_a = false;     // op(B)^T: B stored (N, K), as is
  s.B = g.A; s.ldb = g.lda; s.trans_b = !g.trans_a;  // op(A)^T: A (M, K) read transposed, or A (K, M) as is
  s.C = ct.get(); s.ldc = g.M;
  s.alpha = g.alpha; s.beta = T(0);
  gemm_direct(s);
  // C (M, N) := ct^T + beta C, then the epilogue (bias per column, ReLU), in 16 x 16 blocks
  // (both sides stay in L1); beta == 0 never reads C.
  const T* __restrict src = ct.get();
  const bool threads = static_cast<double>(g.M) * g.N >= 65536 && !omp_in_parallel();
#pragma omp parallel for schedule(static) if (threads)
  for (int64_t i0 = 0; i0 < g.M; i0 += 16) {
    const int64_t i1 = std::min<int64_t>(g.M, i0 + 16);
    for (int64_t j0 = 0; j0 < g.N; j0 += 16) {
      const int64_t j1 = std::min<int64_t>(g.N, j0 + 16);
      for (int64_t i = i0; i < i1; ++i) {
        T* __restrict c = g.C + i * g.ldc;  // (N)
        for (int64_t j = j0; j < j1; ++j) {
          const T v = src[j * g.M + i];
          c[j] = g.beta != T(0) ? v + g.beta * c[j] : v;
        }
      }
      if (has_epilogue(g)) epilogue(g, i1 - i0, j1 - j0, j0, g.C + i0 * g.ldc + j0, g.ldc);
    }
  }
  return true;
}

}  // namespace

// Columns past the last full tile up to which, with B transposed and A as is, they are dot
// products of A's rows with B's rows (16 rows of A at a time, dot_rows16) after the full tiles
// instead of an edge tile: a one-vector edge tile is bound by its A broadcasts, one per row and
// depth for 1..4 useful columns (see gemm_ukernel_avx512). ms, edge tile -> dots, 1 / 2 threads:
// 3200x65x512 NT (a char model's 65-way output layer) 2.36 -> 1.96 / 1.18 -> 0.98 (64 columns
// alone: 1.86 / 0.93), 3200x129x256 2.16 -> 1.91, 1000x66x1000 1.45 -> 1.23.
constexpr int64_t kEdgeDotsMaxCols = 4;

#if defined(__AVX512F__)
// C[:, N - e : N], the e <= kEdgeDotsMaxCols last columns, as dot products (B transposed, A as
// is): 16 rows of A at a time against each of B's last e rows.
inline void gemm_edge_columns(const GemmArgs<float>& g, int64_t e) {
  const int64_t j0 = g.N - e;
  const bool threads = static_cast<double>(g.M) * e * g.K >= kParallelWork && !omp_in_parallel();
#pragma omp parallel for schedule(static) if (threads)
  for (int64_t i0 = 0; i0 < g.M; i0 += 16) {
    const int64_t rows = std::min<int64_t>(16, g.M - i0);
    for (int64_t j = j0; j < g.N; ++j) {
      alignas(64) float sums[16];  // C[i0 .. i0 + rows, j] before alpha, beta and the epilogue
      _mm512_store_ps(sums, dot_rows16(g.A + i0 * g.lda, g.lda, rows, g.K, g.B + j * g.ldb));
      float* c = g.C + i0 * g.ldc + j;  // (rows, 1), row stride ldc
      for (int64_t r = 0; r < rows; ++r)
        c[r * g.ldc] = g.beta == 0.0f ? g.alpha * sums[r] : g.alpha * sums[r] + g.beta * c[r * g.ldc];
      if (has_epilogue(g)) epilogue(g, rows, 1, j, c, g.ldc);
    }
  }
}
#endif

template <class T>
void gemm(const GemmArgs<T>& g) {
  if (g.M <= 0 || g.N <= 0 || g.batch <= 0) return;
  if (swap_pays(g) && gemm_swapped(g)) return;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    const int64_t edge = g.N % Tile<T>::NR;
    if (g.trans_b && !g.trans_a && g.batch == 1 && g.N > Tile<T>::NR && edge > 0 && edge <= kEdgeDotsMaxCols &&
        choose_path(g) == Path::blocked) {
      GemmArgs<T> full = g;
      full.N = g.N - edge;
      gemm_direct(full);
      gemm_edge_columns(g, edge);
      return;
    }
  }
#endif
  gemm_direct(g);
}
DLCORE_INSTANTIATE(gemm, GemmSig)

template <class T>
int64_t gemm_packed_size(int64_t K, int64_t N) {
  return K * padded_cols<T>(N);
}
DLCORE_INSTANTIATE(gemm_packed_size, GemmPackedSizeSig)

// Every panel of a whole (K, N) op(B) in gemm_pack_b's layout: pack_panel(pc, kc, j0, n, dst)
// packs depth block [pc, pc + kc) of columns [j0, j0 + n) into dst (kc, NR).
template <class T, class PackPanel>
void pack_whole_b(int64_t K, int64_t N, T* Bp, const PackPanel& pack_panel) {
  constexpr int64_t NR = Tile<T>::NR;
  if (K <= 0 || N <= 0) return;
  const int64_t kc_max = depth_block<T>(K), n_pad = padded_cols<T>(N);
  const int64_t depth_blocks = (K + kc_max - 1) / kc_max, col_tiles = n_pad / NR;
  // One (depth block, column tile) panel per iteration: each writes its own kc x NR panel.
  const bool threads = static_cast<double>(K) * N >= kParallelWork && !omp_in_parallel();
#pragma omp parallel for collapse(2) schedule(static) if (threads)
  for (int64_t db = 0; db < depth_blocks; ++db) {
    for (int64_t jt = 0; jt < col_tiles; ++jt) {
      const int64_t pc = db * kc_max, kc = std::min(kc_max, K - pc);
      pack_panel(pc, kc, jt * NR, std::min(NR, N - jt * NR), Bp + pc * n_pad + jt * kc * NR);
    }
  }
}

template <class T>
void gemm_pack_b(bool trans_b, int64_t K, int64_t N, const T* B, int64_t ldb, T* Bp) {
  GemmArgs<T> g;  // only the fields pack_b reads
  g.trans_b = trans_b;
  g.ldb = ldb;
  pack_whole_b(K, N, Bp, [&](int64_t pc, int64_t kc, int64_t j0, int64_t n, T* dst) {
    pack_b(g, B, pc, kc, j0, n, dst);
  });
}
DLCORE_INSTANTIATE(gemm_pack_b, GemmPackBSig)

template <class T>
void gemm_packed(const GemmArgs<T>& g, const T* Bp) {
  if (g.M <= 0 || g.N <= 0) return;
  // Every shape takes the blocked path: the B panels are already paid for.
  const Path path = g.K == 0 ? Path::scale : Path::blocked;
  const double work = static_cast<double>(g.M) * g.N * std::max<int64_t>(g.K, 1);
  const int max_threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (max_threads == 1 || work < kParallelWork) {
    gemm_part(g, path, g.A, static_cast<const T*>(nullptr), g.C, 0, 1, Bp);
    return;
  }
#pragma omp parallel
  gemm_part(g, path, g.A, static_cast<const T*>(nullptr), g.C, omp_get_thread_num(), omp_get_num_threads(), Bp);
}
DLCORE_INSTANTIATE(gemm_packed, GemmPackedSig)

template <class T>
void gemm_column_blocks(const GemmArgs<T>& ga, const GemmColumnBlocks<T>& cb) {
  GemmArgs<T> g;  // the whole GEMM: op(A) (M, K) times the blocks side by side (K, N)
  g.trans_a = ga.trans_a;
  g.M = ga.M;
  g.K = ga.K;
  g.A = ga.A;
  g.lda = ga.lda;
  bool panels_align = true;  // every block but the last a whole number of panels
  for (int b = 0; b < cb.count; ++b) {
    g.N += cb.block[b].cols;
    panels_align = panels_align && (b + 1 == cb.count || cb.block[b].cols % Tile<T>::NR == 0);
  }
  if (g.M <= 0 || g.N <= 0) return;
  if (g.K > 0 && panels_align && choose_path(g) == Path::blocked) {
    const ColumnBlockView<T> view(cb);
    const double work = static_cast<double>(g.M) * g.N * g.K;
    const int max_threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    bool done = true;  // false: a thread found no memory for its panels
    if (max_threads == 1 || work < kParallelWork) {
      try {
        gemm_part(g, Path::blocked, g.A, static_cast<const T*>(nullptr), static_cast<T*>(nullptr), 0, 1,
                  static_cast<const T*>(nullptr), &view);
      } catch (const std::bad_alloc&) {
        done = false;
      }
    } else {
#pragma omp parallel
      {
        try {
          gemm_part(g, Path::blocked, g.A, static_cast<const T*>(nullptr), static_cast<T*>(nullptr),
                    omp_get_thread_num(), omp_get_num_threads(), static_cast<const T*>(nullptr), &view);
        } catch (const std::bad_alloc&) {
#pragma omp atomic write
          done = false;
        }
      }
    }
    if (done) return;
  }
  // Otherwise block by block, each C_j summed over its pieces (the depths each piece holds),
  // zero pieces skipped: op(A) is then read once per block.
  for (int b = 0; b < cb.count; ++b) {
    const auto& blk = cb.block[b];
    GemmArgs<T> s = g;
    s.N = blk.cols;
    s.C = blk.C;
    s.ldc = blk.ldc;
    s.beta = T(0);  // the first nonzero piece writes C_j, the next adds to it
    int64_t first_depth = 0;
    for (int i = 0; i < blk.pieces; ++i) {
      const auto& piece = blk.piece[i];
      if (piece.B && piece.rows > 0) {
        s.K = piece.rows;
        s.A = g.trans_a ? g.A + first_depth * g.lda : g.A + first_depth;
        s.B = piece.B;
        s.ldb = piece.ldb;
        gemm(s);
        s.beta = T(1);
      }
      first_depth += piece.rows;
    }
    if (s.beta == T(0)) scale_c(g.M, blk.cols, T(0), blk.C, blk.ldc);  // only zero pieces: C_j = 0
  }
}
template void gemm_column_blocks<float>(const GemmArgs<float>&, const GemmColumnBlocks<float>&);
template void gemm_column_blocks<double>(const GemmArgs<double>&, const GemmColumnBlocks<double>&);

template <class T>
void gemm_pack_b_column_blocks(const GemmColumnBlocks<T>& blocks, int64_t K, T* Bp) {
  int64_t N = 0;
  for (int b = 0; b < blocks.count; ++b) N += blocks.block[b].cols;
  const ColumnBlockView<T> view(blocks);
  pack_whole_b(K, N, Bp, [&](int64_t pc, int64_t kc, int64_t j0, int64_t n, T* dst) {
    pack_b_blocks(view, pc, kc, j0, n, dst);
  });
}
template void gemm_pack_b_column_blocks<float>(const GemmColumnBlocks<float>&, int64_t, float*);
template void gemm_pack_b_column_blocks<double>(const GemmColumnBlocks<double>&, int64_t, double*);

template <class T>
void gemm_packed_columns(const GemmArgs<T>& g, const T* Bp, int64_t n0, int64_t n1,
                         const GemmColumnBlocks<T>* c_blocks) {
  if (g.M <= 0 || n0 >= n1) return;
  if (c_blocks) {
    const ColumnBlockView<T> view(*c_blocks);
    if (g.K == 0) {  // C := beta * C on these columns, block by block (no epilogue with blocks)
      for (int b = 0; b < c_blocks->count; ++b) {
        const int64_t lo = std::max(n0, view.start[b]), hi = std::min(n1, view.start[b] + c_blocks->block[b].cols);
        if (lo < hi) scale_c(g.M, hi - lo, g.beta, c_blocks->block[b].C + (lo - view.start[b]), c_blocks->block[b].ldc);
      }
      return;
    }
    gemm_blocked(g, g.A, static_cast<const T*>(nullptr), static_cast<T*>(nullptr), 0, g.M, n0, n1, Bp, &view);
    return;
  }
  if (g.K == 0) {  // C := beta * C, then the epilogue, on these columns
    scale_c(g.M, n1 - n0, g.beta, g.C + n0, g.ldc);
    if (has_epilogue(g)) epilogue(g, g.M, n1 - n0, n0, g.C + n0, g.ldc);
    return;
  }
  gemm_blocked(g, g.A, static_cast<const T*>(nullptr), g.C, 0, g.M, n0, n1, Bp);
}
template void gemm_packed_columns<float>(const GemmArgs<float>&, const float*, int64_t, int64_t,
                                         const GemmColumnBlocks<float>*);
template void gemm_packed_columns<double>(const GemmArgs<double>&, const double*, int64_t, int64_t,
                                          const GemmColumnBlocks<double>*);

}  // namespace dlcore::cpu::DLCORE_ISA
