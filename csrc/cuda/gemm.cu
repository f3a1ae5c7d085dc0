// gemm on the GPU: C[b] := alpha * op(A[b]) @ op(B[b]) + beta * C[b], then the fused
// epilogue C += bias (per column) and C = max(C, 0), for float32 and float64 (gemm.h has
// the contract: layouts, leading dimensions, batch strides, beta == 0 never reads C).
//
// Two kernel families share the contract and the grid: column tiles over blockIdx.x, row
// tiles over blockIdx.y, batch items (times K ranges with split-K) over blockIdx.z; past the
// y/z limit of 65535 the staged kernels loop (grid-stride) and the cp.async ones take
// several launches. Transposes never copy: op(X) element (k, i) is read from x[i * ld + k]
// or x[k * ld + i], and shared memory always holds the slices k-major,
// As[k][m] = op(A)[m0 + m, k0 + k] and Bs[k][n] = op(B)[k0 + k, n0 + n].
//
// 1. Register-staged (staged_128x128x8, staged_64x64x16; float64 uses the 64 one). 256
//    threads (16 x 16) own a BM x BN tile and walk K in BK steps: fetch the next slices into
//    registers while computing the current one, store them to shared memory, barrier. A
//    thread's outputs are rows ty + 16 i, columns tx + 16 j. Verified on an H100 (issue 6):
//    about 60 % of cuBLAS on squares, 0.29x on 64x4096x1024. gemm's default for now.
//
// 2. cp.async pipeline (cp_async_128x128x16, cp_async_128x256x8, cp_async_64x64x16;
//    float32, sm_80+). 256 threads = 8 warps as 4 (m) x 2 (n); a warp's 32 lanes as 4 x 8;
//    each lane owns TM x TN outputs as (TM/4) x (TN/4) sub-tiles of 4 x 4, rows
//    row_t + 16 g + r and columns col_t + 32 h + c (r, c < 4), so every shared-memory read
//    of a fragment is one float4 (LDS.128): per depth, TM/4 + TN/4 LDS.128 feed TM * TN FMAs.
//    Slices move global -> shared with cp.async (no registers), two stages: while the block
//    computes slice kt from one stage, slice kt + 1 lands in the other; one barrier a slice.
//    How each operand is copied (CopyMode):
//      row16  op(X) rows run along i in memory (A trans, B not) and 16-byte aligned (pointer,
//             ld and batch stride multiples of 4 floats): cp.async.cg 16 B, 4 floats of i;
//      row4   the same layout, unaligned: cp.async.ca 4 B, one float, lanes along i;
//      kcol4  rows run along k (A not trans, B trans): cp.async.ca 4 B into the transposed
//             place As[k][m], a warp writing 8 depths x 4 rows (32 B runs of k in memory).
//    Edges: a copy past M, N or K reads nothing and zero-fills (src-size operand), so the
//    inner loop has no bounds tests. Bank conflicts: rows of the shared slices are padded
//    by 4 floats (row stride 4 mod 32 words), so a kcol4 warp store (8 k x 4 i) hits 32
//    distinct banks while rows stay 16-byte aligned for the float4 reads; a float4 read
//    by a warp touches 4 (A) or 8 (B) consecutive float4 of one row (no conflict).
//    Split-K: the K depths are cut into `splits` ranges (whole slices each); range s of
//    batch item b writes its raw sums to the slab partial[s * batch + b] (M, N) in scratch
//    from allocate(), then splitk_reduce sums the slabs in range order and applies alpha,
//    beta, bias and ReLU. For grids too small to fill the SMs (skinny shapes).
// The rule choosing among them is at gemm_with_tile (bottom of this file).
//
// Determinism: every output (or partial) is one thread's FMA chain over its depths in
// order; split-K adds the partials in range order; no atomics: the same bits every run for
// a given GPU, build and split count.
//
// Tested by tests/cuda/test_cuda_gemm.py (float64 NumPy reference with the K-scaled
// tolerance, integer-exact case, poisoned C, every kernel and several split counts forced);
// resource report: nvcc -Xptxas -v (no spills, no stack). Timed, side by side with cuBLAS:
//   python bench/bench_cuda_gemm.py            (gemm's own choice, every precision built)
//   python bench/bench_cuda_gemm.py --variant  (every kernel forced, to set the rule)
// Bound: an H100 SXM peaks near 67 TFLOP/s float32 without tensor cores (cuBLAS measured
// 51.5 TFLOP/s at 8192^3 and 50.0 at 4096^3, 17.3 on 64x4096x1024). Per depth of a 128 x 128
// tile the block does 16384 FMAs (128 clocks at 128 FMA/clk an SM) and reads 256 x 4 float4
// fragments (16 KB: 128 B/clk, the whole shared-memory bandwidth, were nothing broadcast);
// with 4 and 8 distinct float4 a warp read, 3 KB are distinct (24 B/clk): compute-bound by
// design. Global traffic: 2 x 128 floats (1 KB) a depth for 16384 FMAs, 16 FMAs a byte.
#include "cuda/common.cuh"
#include "cuda/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace dlcore::cuda {

namespace {

// ---- register-staged kernels (staged_128x128x8, staged_64x64x16) ---------------------------

// Threads of a block: a kThreadsX x kThreadsX grid (tx = column, ty = row of the grid).
constexpr int kThreadsX = 16;
constexpr int kThreads = kThreadsX * kThreadsX;

// A block tile: BM x BN outputs, BK depths per shared-memory step, TM x TN outputs a thread.
template <int TM_, int TN_, int BK_>
struct Tile {
  static constexpr int TM = TM_, TN = TN_, BK = BK_;
  static constexpr int BM = kThreadsX * TM, BN = kThreadsX * TN;
};
using Tile128 = Tile<8, 8, 8>;   // 128 x 128 x 8 (float32)
using Tile64 = Tile<4, 4, 16>;   // 64 x 64 x 16

template <class T>
struct Params {
  int64_t M, N, K;
  T alpha, beta;
  const T* A; int64_t lda, stride_a;  // (batch | 1, M, K) or (.., K, M) when trans_a
  const T* B; int64_t ldb, stride_b;  // (batch | 1, K, N) or (.., N, K) when trans_b
  T* C; int64_t ldc, stride_c;        // (batch, M, N)
  int64_t batch;
  const T* bias;                      // (N,) or nullptr
  bool relu;
};

__device__ __forceinline__ float madd(float a, float b, float c) { return __fmaf_rn(a, b, c); }
__device__ __forceinline__ double madd(double a, double b, double c) { return __fma_rn(a, b, c); }

// Moves a BK x W slice of one operand, seen k-major (element (k, i) = op(A)[i, k] for A,
// op(B)[k, i] for B), from global memory through registers into shared memory S[k][i].
// In memory element (k, i) is x[i * ld + k] when K_CONTIG (A not transposed, B transposed),
// else x[k * ld + i]. Thread -> elements: the contiguous index runs fastest over the
// threads, so a warp reads runs of consecutive addresses; a thread's kPer elements are
// kStep apart in the other index (K_CONTIG: (k_t, i_t + r kStep), else (k_t + r kStep, i_t)),
// so element r sits at offset + r * step in x and one edge test covers all of them.
// Bank conflicts: storing a K_CONTIG slice, a warp writes BK depths x 32/BK rows; a row
// padding of kPad elements (128 / BK bytes) makes the row stride 128 / BK bytes mod 128, so
// those 32 stores hit distinct banks (64-bit stores: distinct within each half-warp).
template <class T, int BK, int W, bool K_CONTIG>
struct SliceLoader {
  static constexpr int kPer = BK * W / kThreads;  // elements a thread moves
  static constexpr int kStep = kThreads / (K_CONTIG ? BK : W);
  static constexpr int kPad = (32 / BK) * 4 / static_cast<int>(sizeof(T));
  static_assert(BK * W % kThreads == 0 && kPer >= 1, "slice must split evenly over the threads");
  static_assert(kThreads % (K_CONTIG ? BK : W) == 0, "threads must cover whole runs");
  static_assert(kPad >= 1, "padding must be at least one element");

  int k_t, i_t;    // this thread's first element of the slice
  int64_t offset;  // of element (k_t, i_t) of the current slice in x
  int64_t step;    // between this thread's elements in x
  int64_t advance; // from one slice to the next (BK depths on)
  T regs[kPer];

  // x rows/cols [i0, i0 + W) of a batch item; the first slice is depths [0, BK).
  __device__ SliceLoader(int64_t ld, int64_t i0, int tid) {
    k_t = K_CONTIG ? tid % BK : tid / W;
    i_t = K_CONTIG ? tid / BK : tid % W;
    offset = K_CONTIG ? (i0 + i_t) * ld + k_t : k_t * ld + i0 + i_t;
    step = kStep * ld;  // K_CONTIG: kStep rows (i) on; else kStep depths (k) on
    advance = K_CONTIG ? BK : BK * ld;
  }

  // Reads the current slice into regs: zero where depth >= k_left or row/col >= i_left
  // (what remains of K and of the extent from the slice's first depth and row), x unread there.
  __device__ void load(const T* __restrict__ x, int k_left, int i_left) {
#pragma unroll
    for (int r = 0; r < kPer; ++r) {
      const bool inside = K_CONTIG ? (k_t < k_left && i_t + r * kStep < i_left)
                                   : (k_t + r * kStep < k_left && i_t < i_left);
      regs[r] = inside ? x[offset + r * step] : T(0);
    }
    offset += advance;
  }

  __device__ void store(T (*S)[W + kPad]) const {  // S: (BK, W + kPad)
#pragma unroll
    for (int r = 0; r < kPer; ++r) {
      if (K_CONTIG)
        S[k_t][i_t + r * kStep] = regs[r];
      else
        S[k_t + r * kStep][i_t] = regs[r];
    }
  }
};

// min(a, cap) as an int, for a remaining extent compared against in-tile indices.
__device__ __forceinline__ int clamp_left(int64_t a, int cap) { return static_cast<int>(a < cap ? a : cap); }

template <class T, class TileT, bool TRANS_A, bool TRANS_B>
__global__ void __launch_bounds__(kThreads) gemm_kernel(const Params<T> p) {
  constexpr int BM = TileT::BM, BN = TileT::BN, BK = TileT::BK, TM = TileT::TM, TN = TileT::TN;
  using LoaderA = SliceLoader<T, BK, BM, !TRANS_A>;
  using LoaderB = SliceLoader<T, BK, BN, TRANS_B>;
  __shared__ T As[BK][BM + LoaderA::kPad];  // op(A)[m0 + m, k0 + k] at As[k][m]
  __shared__ T Bs[BK][BN + LoaderB::kPad];  // op(B)[k0 + k, n0 + n] at Bs[k][n]

  const int tid = static_cast<int>(threadIdx.x);
  const int tx = tid % kThreadsX, ty = tid / kThreadsX;
  const int64_t tiles_m = (p.M + BM - 1) / BM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN;
  const int n_left = clamp_left(p.N - n0, BN);

  // Every thread of the block runs the same iterations of both loops, so the barriers
  // inside are reached by all of them.
  for (int64_t b = blockIdx.z; b < p.batch; b += gridDim.z) {
    const T* A = p.A + b * p.stride_a;  // (M, K) or (K, M), row stride lda
    const T* B = p.B + b * p.stride_b;  // (K, N) or (N, K), row stride ldb
    T* C = p.C + b * p.stride_c;        // (M, N), row stride ldc
    for (int64_t tile_m = blockIdx.y; tile_m < tiles_m; tile_m += gridDim.y) {
      const int64_t m0 = tile_m * BM;
      const int m_left = clamp_left(p.M - m0, BM);
      T acc[TM][TN];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

      LoaderA load_a(p.lda, m0, tid);
      LoaderB load_b(p.ldb, n0, tid);
      load_a.load(A, clamp_left(p.K, BK), m_left);
      load_b.load(B, clamp_left(p.K, BK), n_left);
      for (int64_t k0 = 0; k0 < p.K; k0 += BK) {
        load_a.store(As);
        load_b.store(Bs);
        __syncthreads();
        if (k0 + BK < p.K) {  // next slices in flight during the FMAs below
          const int k_left = clamp_left(p.K - (k0 + BK), BK);
          load_a.load(A, k_left, m_left);
          load_b.load(B, k_left, n_left);
        }
        // Unrolled by 4, not fully: a full unroll lets ptxas hoist every shared load of the
        // slice, which pushes the 128-tile past 128 registers (spills, or one block an SM).
#pragma unroll 4
        for (int k = 0; k < BK; ++k) {
          T a[TM], bv[TN];
#pragma unroll
          for (int i = 0; i < TM; ++i) a[i] = As[k][ty + kThreadsX * i];
#pragma unroll
          for (int j = 0; j < TN; ++j) bv[j] = Bs[k][tx + kThreadsX * j];
#pragma unroll
          for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) acc[i][j] = madd(a[i], bv[j], acc[i][j]);
        }
        __syncthreads();
      }

      // Epilogue: alpha, beta (C read only when beta != 0), bias, ReLU (NaN stays NaN).
      const int64_t c0 = (m0 + ty) * p.ldc + n0 + tx;  // this thread's first C[m0 + ty, n0 + tx]
#pragma unroll
      for (int i = 0; i < TM; ++i) {
        if (ty + kThreadsX * i >= m_left) break;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
          if (tx + kThreadsX * j >= n_left) break;
          T v = p.alpha * acc[i][j];
          T& out = C[c0 + kThreadsX * i * p.ldc + kThreadsX * j];
          if (p.beta != T(0)) v += p.beta * out;
          if (p.bias) v += p.bias[n0 + tx + kThreadsX * j];
          if (p.relu && v < T(0)) v = T(0);
          out = v;
        }
      }
    }
  }
}

// ---- cp.async: PTX wrappers ---------------------------------------------------------------
// cp.async (sm_80+) copies global -> shared without passing through registers. A copy of
// `size` bytes reads src_bytes of them (0 <= src_bytes <= size) and zero-fills the rest;
// src_bytes == 0 reads nothing. commit closes this thread's group of copies issued since
// the last commit; wait<N> returns once at most the N newest groups are still in flight,
// and a barrier after it makes every thread's landed copies visible to the whole block.
// src and dst must be aligned to the copy size. Builds for older GPUs get plain copies
// (the same results, synchronous), so the file compiles for any architecture.
__device__ __forceinline__ void cp_async_16(float* dst, const float* src, int src_bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned dst_s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  const size_t src_g = __cvta_generic_to_global(src);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst_s), "l"(src_g), "r"(src_bytes)
               : "memory");
#else
  for (int i = 0; i < 4; ++i) dst[i] = 4 * i < src_bytes ? src[i] : 0.0f;
#endif
}

__device__ __forceinline__ void cp_async_4(float* dst, const float* src, int src_bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned dst_s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  const size_t src_g = __cvta_generic_to_global(src);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst_s), "l"(src_g), "r"(src_bytes)
               : "memory");
#else
  *dst = src_bytes > 0 ? *src : 0.0f;
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// ---- cp.async kernels (cp_async_*) --------------------------------------------------------

// A cp.async kernel's shape. 8 warps as kWarpsM x kWarpsN, a warp's lanes as kLanesM x
// kLanesN; the warp tile WTM x WTN splits into (TM/4) x (TN/4) sub-tiles of kLanesM x kLanesN
// lanes x 4 x 4 outputs. kMinBlocks: blocks an SM must hold (registers <= 65536 / (256 x it)).
template <int BM_, int BN_, int BK_, int MIN_BLOCKS_>
struct CpTile {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, kMinBlocks = MIN_BLOCKS_;
  static constexpr int kStages = 2;  // double buffering: one slice computed while the next lands
  static constexpr int kWarpsM = 4, kWarpsN = 2, kLanesM = 4, kLanesN = 8;
  static constexpr int kThreads = 32 * kWarpsM * kWarpsN;
  static constexpr int WTM = BM / kWarpsM, WTN = BN / kWarpsN;  // warp tile
  static constexpr int TM = WTM / kLanesM, TN = WTN / kLanesN;  // outputs a thread
  // Shared rows padded by 4 floats: row stride = 4 words mod 32 (see CpLoader), rows 16-B aligned.
  static constexpr int SA = BM + 4, SB = BN + 4;
  static constexpr int kStageFloats = BK * (SA + SB);  // As (BK, SA) then Bs (BK, SB)
  static_assert(TM % 4 == 0 && TN % 4 == 0 && TM * kLanesM * kWarpsM == BM && TN * kLanesN * kWarpsN == BN,
                "thread tiles must be whole 4 x 4 sub-tiles covering the block tile");
  static_assert(BK % 8 == 0 && BM % 32 == 0 && BN % 32 == 0, "slice shapes the loaders assume");
  static_assert(kStages * kStageFloats * 4 <= 48 * 1024, "static shared memory limit");
};
// 128 x 128 x 16, 8 x 8 a thread: 64 accumulators, two blocks an SM (<= 128 registers);
// 33 KiB shared. The large-grid kernel.
using Cp128x128x16 = CpTile<128, 128, 16, 2>;
// 128 x 256 x 8, 8 x 16 a thread: 128 accumulators, one block an SM (<= 255 registers); 25 KiB
// shared. 6 LDS.128 for 128 FMAs (3/4 of the 8 x 8 tile's reads a FMA), for grids of many tiles.
using Cp128x256x8 = CpTile<128, 256, 8, 1>;
// 64 x 64 x 16, 4 x 4 a thread: three blocks an SM (<= 80 registers; at 64, four blocks, ptxas
// spilled a few bytes); 17 KiB shared. Four times the blocks of the 128-tile for medium and
// (with split-K) skinny grids.
using Cp64x64x16 = CpTile<64, 64, 16, 3>;

enum class CopyMode { row16, row4, kcol4 };  // see the file header

// Copies a BK x W slice of one operand, seen k-major (element (k, i) = op(A)[i, k] for A,
// op(B)[k, i] for B), from global memory into a stage's S[k][i] (row stride W + 4) with
// cp.async. In memory element (k, i) is x[i * ld + k] for kcol4, else x[k * ld + i].
// Thread -> elements: a thread's kCopies copies are (k_t + r dk, i_t + r di), r < kCopies,
// with one of dk, di zero, so copy r sits at src + r * step in x and at dst + r * kDstStep in S:
//   row16  i_t = 4 (tid % (W/4)), k_t = tid / (W/4): a warp copies whole rows of the slice
//          (runs of 4 W contiguous bytes, 512 in all);
//   row4   i_t = tid % W, k_t = tid / W: a warp copies 128 contiguous bytes;
//   kcol4  a warp copies 8 depths x 4 rows (lane % 8, lane / 8); warps tile the slice.
// Bank conflicts: a kcol4 warp store writes S[k + 0..7][i + 0..3]; with the row stride
// W + 4 = 4 mod 32 words its 32 words fall in banks 4 k + i: all distinct. row16/row4 warp
// stores are runs of consecutive words.
template <int BK, int W, int THREADS, CopyMode MODE>
struct CpLoader {
  static constexpr int kWarps = THREADS / 32;
  static constexpr int kVec = MODE == CopyMode::row16 ? 4 : 1;  // floats a copy
  static constexpr int kCopies = BK * W / (THREADS * kVec);
  static constexpr int kRowCopies = W / kVec;  // row modes: copies along one depth
  static constexpr int kDepthBlocks = BK / 8;  // kcol4: 8-depth blocks in a slice
  static constexpr int dk = MODE == CopyMode::kcol4 ? 0 : THREADS / kRowCopies;
  static constexpr int di = MODE == CopyMode::kcol4 ? 4 * kWarps / kDepthBlocks : 0;
  static constexpr int kDstStep = dk * (W + 4) + di;
  static_assert(kCopies >= 1 && BK * W % (THREADS * kVec) == 0, "slice must split evenly over the threads");
  static_assert(MODE == CopyMode::kcol4 ? (BK % 8 == 0 && kWarps % kDepthBlocks == 0 && kCopies * di == W)
                                        : (THREADS % kRowCopies == 0 && kCopies * dk == BK),
                "thread -> element map must cover the slice once");
  static_assert((W + 4) % 32 == 4, "padding must make the row stride 4 words mod 32");

  const float* src;  // this thread's first element of the next slice in x
  int k_t;           // its depth in the slice
  int inside;        // kcol4: bit r = copy r's row inside the extent; row16: bytes of its
                     // chunk inside (0..16); row4: 1 if its column is inside, else 0

  // x: one batch item, rows/cols [i0, i0 + W) of which the first i_left exist; the first
  // slice starts at depth k0.
  __device__ CpLoader(const float* x, int64_t ld, int64_t i0, int i_left, int64_t k0, int tid) {
    int i_t;
    if (MODE == CopyMode::kcol4) {
      const int warp = tid / 32, lane = tid % 32;
      k_t = (warp % kDepthBlocks) * 8 + lane % 8;
      i_t = (warp / kDepthBlocks) * 4 + lane / 8;
      src = x + (i0 + i_t) * ld + k0 + k_t;
      inside = 0;
#pragma unroll
      for (int r = 0; r < kCopies; ++r) inside |= (i_t + r * di < i_left ? 1 : 0) << r;
    } else {
      k_t = tid / kRowCopies;
      i_t = (tid % kRowCopies) * kVec;
      src = x + (k0 + k_t) * ld + i0 + i_t;
      inside = MODE == CopyMode::row16 ? 4 * max(0, min(4, i_left - i_t)) : (i_t < i_left ? 1 : 0);
    }
    dst_ = k_t * (W + 4) + i_t;
  }

  // Queues the copies of the next slice into S (a stage's (BK, W + 4) array): zeros where the
  // depth is >= k_left (what remains of K from the slice's first depth) or the row/col is
  // outside the extent, x unread there (`any`: a valid aligned address for the copies that
  // read nothing). ld: x's row stride, as at construction (recomputed from the kernel
  // parameter rather than kept: registers are the scarce resource here).
  __device__ void load(float* S, const float* any, int64_t ld, int k_left) {
    const int64_t step = MODE == CopyMode::kcol4 ? di * ld : dk * ld;  // x elements between copies
    float* dst = S + dst_;
#pragma unroll
    for (int r = 0; r < kCopies; ++r) {
      const bool k_in = k_t + r * dk < k_left;
      if (MODE == CopyMode::row16) {
        const int bytes = k_in ? inside : 0;
        cp_async_16(dst + r * kDstStep, bytes > 0 ? src + r * step : any, bytes);
      } else {
        const bool in = k_in && (MODE == CopyMode::kcol4 ? (inside >> r) & 1 : inside);
        cp_async_4(dst + r * kDstStep, in ? src + r * step : any, in ? 4 : 0);
      }
    }
    src += MODE == CopyMode::kcol4 ? BK : BK * ld;  // BK depths on
  }

 private:
  int dst_;  // offset of (k_t, i_t) in a stage's S
};

struct CpParams {
  int64_t M, N, K;
  float alpha, beta;
  const float* A; int64_t lda, stride_a;  // (batch | 1, M, K) or (.., K, M) when trans_a
  const float* B; int64_t ldb, stride_b;  // (batch | 1, K, N) or (.., N, K) when trans_b
  float* C; int64_t ldc, stride_c;        // (batch, M, N)
  int64_t batch;
  const float* bias;                      // (N,) or nullptr
  bool relu;
  bool vec_c;            // C's rows and items start 16-byte aligned: float4 epilogue
  int64_t splits;        // K ranges (1: no split-K)
  int64_t k_per_split;   // depths a range (a multiple of BK; >= K when splits == 1)
  float* partial;        // (splits, batch, M, N) raw sums when splits > 1, else nullptr
  int64_t tile_m0, z0;   // this launch's first tile row and item (launches past the grid limits)
};

// Row slice out[0, cnt) (cnt 1..4) of C := alpha v + beta out (out read only when
// beta != 0) + bias[0, cnt), then ReLU (NaN stays NaN). One float4 load/store when whole
// and aligned.
__device__ __forceinline__ void write_c4(const CpParams& p, float* out, const float* bias, const float (&v)[4],
                                         int cnt) {
  if (cnt == 4 && p.vec_c) {
    float4 old = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (p.beta != 0.0f) old = *reinterpret_cast<const float4*>(out);
    const float olds[4] = {old.x, old.y, old.z, old.w};
    float o[4];
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      o[c] = p.alpha * v[c];
      if (p.beta != 0.0f) o[c] += p.beta * olds[c];
      if (bias) o[c] += bias[c];
      if (p.relu && o[c] < 0.0f) o[c] = 0.0f;
    }
    *reinterpret_cast<float4*>(out) = make_float4(o[0], o[1], o[2], o[3]);
    return;
  }
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    if (c >= cnt) break;
    float o = p.alpha * v[c];
    if (p.beta != 0.0f) o += p.beta * out[c];
    if (bias) o += bias[c];
    if (p.relu && o < 0.0f) o = 0.0f;
    out[c] = o;
  }
}

// Row slice out[0, cnt) of a partial slab := v (raw sums); float4 when whole and aligned.
__device__ __forceinline__ void write_partial4(float* out, const float (&v)[4], int cnt, bool vec) {
  if (cnt == 4 && vec) {
    *reinterpret_cast<float4*>(out) = make_float4(v[0], v[1], v[2], v[3]);
    return;
  }
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    if (c >= cnt) break;
    out[c] = v[c];
  }
}

// One block, one tile: C rows [m0, m0 + BM) x columns [n0, n0 + BN) of item z = split * batch
// + b, with tile column blockIdx.x, tile row p.tile_m0 + blockIdx.y, z = p.z0 + blockIdx.z
// (the host launches in chunks past the grid limits). No loop around the tile: values the
// epilogue needs are re-derived from blockIdx after the main loop instead of held in
// registers through it (the 8 x 8 tile has none to spare under two blocks an SM).
// COPY_A is row16/row4 when trans_a, else kcol4; COPY_B is kcol4 when trans_b, else
// row16/row4 (the host picks).
template <class Cfg, CopyMode COPY_A, CopyMode COPY_B>
__global__ void __launch_bounds__(Cfg::kThreads, Cfg::kMinBlocks) sgemm_cp_async_kernel(const CpParams p) {
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, TM = Cfg::TM, TN = Cfg::TN;
  constexpr int SA = Cfg::SA, SB = Cfg::SB, kStages = Cfg::kStages;
  constexpr int kRowGroup = Cfg::kLanesM * 4, kColGroup = Cfg::kLanesN * 4;  // 16, 32
  using LoaderA = CpLoader<BK, BM, Cfg::kThreads, COPY_A>;
  using LoaderB = CpLoader<BK, BN, Cfg::kThreads, COPY_B>;
  // kStages x [As (BK, SA) | Bs (BK, SB)]: op(A)[m0 + m, k0 + k] at As[k][m], op(B)[k0 + k, n0 + n] at Bs[k][n].
  __shared__ __align__(16) float smem[kStages * Cfg::kStageFloats];

  const int tid = static_cast<int>(threadIdx.x);
  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

  {  // main loop: acc := the sum over this range's depths
    const int64_t z = p.z0 + blockIdx.z, b = z % p.batch;
    const int64_t m0 = (p.tile_m0 + blockIdx.y) * BM, n0 = static_cast<int64_t>(blockIdx.x) * BN;
    const int64_t k0 = z / p.batch * p.k_per_split;  // this range: depths [k0, k0 + k_len)
    const int64_t k_rest = p.K - k0 < p.k_per_split ? p.K - k0 : p.k_per_split;
    const int k_len = static_cast<int>(k_rest > 0 ? k_rest : 0);  // k_per_split < 2^31 (host)
    const int slices = (k_len + BK - 1) / BK;
    // A: (M, K) or (K, M), row stride lda; B: (K, N) or (N, K), row stride ldb.
    LoaderA load_a(p.A + b * p.stride_a, p.lda, m0, clamp_left(p.M - m0, BM), k0, tid);
    LoaderB load_b(p.B + b * p.stride_b, p.ldb, n0, clamp_left(p.N - n0, BN), k0, tid);
    const int warp = tid / 32, lane = tid % 32;
    // This thread's fragments: tile rows row_t + 16 g + 0..3, columns col_t + 32 h + 0..3.
    const int row_t = (warp % Cfg::kWarpsM) * Cfg::WTM + (lane / Cfg::kLanesN) * 4;
    const int col_t = (warp / Cfg::kWarpsM) * Cfg::WTN + (lane % Cfg::kLanesN) * 4;
    auto issue = [&](int slice) {  // queue slice `slice` into its stage
      float* stage = smem + (slice % kStages) * Cfg::kStageFloats;
      const int k_left = clamp_left(k_len - slice * BK, BK);
      load_a.load(stage, p.A, p.lda, k_left);
      load_b.load(stage + BK * SA, p.B, p.ldb, k_left);
    };
    // Pipeline: slices 0 .. kStages - 2 in flight before the loop; iteration kt waits for
    // slice kt (its group, the oldest still pending), barriers (slice kt visible to all;
    // every thread done with slice kt - 1, whose stage the next copies overwrite), queues
    // slice kt + kStages - 1 and computes slice kt. Every thread commits one group an
    // iteration (empty at the end), so "kStages - 2 newest pending" always means "slice kt
    // landed".
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
      if (s < slices) issue(s);
      cp_async_commit();
    }
    for (int kt = 0; kt < slices; ++kt) {
      cp_async_wait<kStages - 2>();
      __syncthreads();
      if (kt + kStages - 1 < slices) issue(kt + kStages - 1);
      cp_async_commit();
      const float* As = smem + (kt % kStages) * Cfg::kStageFloats;  // (BK, SA)
      const float* Bs = As + BK * SA;                                // (BK, SB)
#pragma unroll
      for (int k = 0; k < BK; ++k) {
        float a[TM], bv[TN];
#pragma unroll
        for (int g = 0; g < TM / 4; ++g) {
          const float4 v = *reinterpret_cast<const float4*>(As + k * SA + row_t + g * kRowGroup);
          a[4 * g] = v.x, a[4 * g + 1] = v.y, a[4 * g + 2] = v.z, a[4 * g + 3] = v.w;
        }
#pragma unroll
        for (int h = 0; h < TN / 4; ++h) {
          const float4 v = *reinterpret_cast<const float4*>(Bs + k * SB + col_t + h * kColGroup);
          bv[4 * h] = v.x, bv[4 * h + 1] = v.y, bv[4 * h + 2] = v.z, bv[4 * h + 3] = v.w;
        }
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < TN; ++j) acc[i][j] = __fmaf_rn(a[i], bv[j], acc[i][j]);
      }
    }
  }

  // Epilogue: the final C (alpha, beta, bias, ReLU) or this range's raw sums.
  const int64_t z = p.z0 + blockIdx.z, b = z % p.batch;
  const int64_t m0 = (p.tile_m0 + blockIdx.y) * BM, n0 = static_cast<int64_t>(blockIdx.x) * BN;
  const int m_left = clamp_left(p.M - m0, BM), n_left = clamp_left(p.N - n0, BN);
  const int warp = tid / 32, lane = tid % 32;
  const int row_t = (warp % Cfg::kWarpsM) * Cfg::WTM + (lane / Cfg::kLanesN) * 4;
  const int col_t = (warp / Cfg::kWarpsM) * Cfg::WTN + (lane % Cfg::kLanesN) * 4;
  const bool vec_partial = p.N % 4 == 0;  // slab rows 16-byte aligned (scratch is 256-byte aligned)
#pragma unroll
  for (int g = 0; g < TM / 4; ++g)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int mi = row_t + g * kRowGroup + r;
      if (mi >= m_left) continue;
#pragma unroll
      for (int h = 0; h < TN / 4; ++h) {
        const int ni = col_t + h * kColGroup;
        if (ni >= n_left) continue;
        const float v[4] = {acc[4 * g + r][4 * h], acc[4 * g + r][4 * h + 1], acc[4 * g + r][4 * h + 2],
                            acc[4 * g + r][4 * h + 3]};
        const int cnt = min(4, n_left - ni);
        if (p.partial) {
          float* out = p.partial + (z * p.M + m0 + mi) * p.N + n0 + ni;  // slab z, (M, N)
          write_partial4(out, v, cnt, vec_partial);
        } else {
          float* out = p.C + b * p.stride_c + (m0 + mi) * p.ldc + n0 + ni;
          write_c4(p, out, p.bias ? p.bias + n0 + ni : nullptr, v, cnt);
        }
      }
    }
}

// C[b] := alpha * sum_s partial[s * batch + b] + beta * C[b] (+ bias, ReLU), the slabs
// added in range order s = 0, 1, ..., splits - 1. One thread an output (grid-stride);
// consecutive threads read consecutive slab elements and write consecutive C elements.
__global__ void __launch_bounds__(256) sgemm_splitk_reduce_kernel(const CpParams p) {
  const int64_t mn = p.M * p.N, slab = p.batch * mn;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < slab;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float sum = p.partial[idx];
    for (int64_t s = 1; s < p.splits; ++s) sum += p.partial[s * slab + idx];
    const int64_t b = idx / mn, m = (idx - b * mn) / p.N, n = idx - b * mn - m * p.N;
    float* out = p.C + b * p.stride_c + m * p.ldc + n;
    float o = p.alpha * sum;
    if (p.beta != 0.0f) o += p.beta * *out;
    if (p.bias) o += p.bias[n];
    if (p.relu && o < 0.0f) o = 0.0f;
    *out = o;
  }
}

// ---- plans: split counts and the selection rule (plain C++) -------------------------------

// Variant codes (gemm.h's table).
constexpr int kStaged64 = 64, kStaged128 = 128, kCp128x128 = 1, kCp128x256 = 2, kCp64x64 = 3;

// The cp.async kernels' block tiles, by code.
struct CpShape {
  int tile, BM, BN, BK;
};
constexpr CpShape kCpShapes[] = {{kCp128x128, 128, 128, 16}, {kCp128x256, 128, 256, 8}, {kCp64x64, 64, 64, 16}};

const CpShape* cp_shape(int tile) {
  for (const CpShape& s : kCpShapes)
    if (s.tile == tile) return &s;
  return nullptr;
}

int64_t tiles_of(const CpShape& s, int64_t M, int64_t N, int64_t batch) {
  return (M + s.BM - 1) / s.BM * ((N + s.BN - 1) / s.BN) * batch;
}

// How a cp.async kernel runs one problem.
struct CpPlan {
  int64_t splits;       // K ranges, none empty (1: no split-K)
  int64_t k_per_split;  // depths a range, whole BK-slices (>= K when splits == 1)
};

// At most `want` ranges of ceil(slices / want) slices each (the last may be shorter).
CpPlan split_plan(int64_t K, int BK, int64_t want) {
  const int64_t slices = (K + BK - 1) / BK;
  if (want <= 1 || slices <= 1) return {1, std::max<int64_t>(K, 1)};
  const int64_t per = (slices + want - 1) / want;
  return {(slices + per - 1) / per, per * BK};
}

// split_plan for a launch: the kernel counts a range's depths in an int, so ranges hold at
// most 2^30 depths whatever `want` says.
CpPlan cp_plan(int64_t K, int BK, int64_t want) {
  return split_plan(K, BK, std::max<int64_t>(want, (K + (int64_t{1} << 30) - 1) >> 30));
}

// Split-K constants of the rule (to be tuned from bench/bench_cuda_gemm.py --variant):
constexpr int64_t kSplitBlocksPerSm = 2;    // aim for this many blocks an SM (latency hiding)
constexpr int64_t kMinSlicesPerSplit = 8;   // >= 8 slices (128 depths at BK 16) a range, so a
                                            // range's 2 x 4 bytes of slab traffic an output stay
                                            // small against its >= 128 FMAs an output
constexpr int64_t kMaxAutoSplits = 16;      // bounds the scratch (<= 16 slabs of M x N)
constexpr int64_t kMaxSplits = 64;          // what gemm_with_tile accepts when forced

// The rule's split count for a kernel: 1 when its tiles fill the SMs, else enough ranges for
// kSplitBlocksPerSm blocks an SM, at most kMaxAutoSplits, each of >= kMinSlicesPerSplit slices.
int64_t auto_splits(const CpShape& s, int64_t M, int64_t N, int64_t K, int64_t batch, int sms) {
  const int64_t tiles = tiles_of(s, M, N, batch);
  if (tiles >= sms) return 1;
  const int64_t slices = (K + s.BK - 1) / s.BK;
  const int64_t fill = kSplitBlocksPerSm * sms / tiles;
  return std::max<int64_t>(1, std::min({fill, kMaxAutoSplits, slices / kMinSlicesPerSplit}));
}

struct Choice {
  int tile;
  int64_t splits;
};

// THE RULE (comment at gemm_with_tile, the dispatch) as code.
Choice choose_cp_async(int64_t M, int64_t N, int64_t K, int64_t batch, int sms) {
  const CpShape& big = *cp_shape(kCp128x128);
  if (3 * tiles_of(big, M, N, batch) >= sms) return {kCp128x128, auto_splits(big, M, N, K, batch, sms)};
  return {kCp64x64, auto_splits(*cp_shape(kCp64x64), M, N, K, batch, sms)};
}

// ---- host: validation, launches, dispatch ---------------------------------------------------

[[noreturn]] void bad(const std::string& msg) { throw std::invalid_argument("gemm: " + msg); }

std::string str(int64_t v) { return std::to_string(v); }

void validate(const GemmDesc& d) {
  if (d.dtype != DType::f32 && d.dtype != DType::f64)
    bad(std::string("dtype must be float32 or float64, got ") + dtype_name(d.dtype));
  check_gemm_desc(d, "gemm");
}

// Grid-dimension limits: x up to 2^31 - 1, y and z up to 65535 (the staged kernels loop over
// the rest; the cp.async ones take several launches).
constexpr int64_t kMaxGridX = 2147483647, kMaxGridYZ = 65535;

template <class T, class TileT>
void launch(const GemmDesc& d) {
  Params<T> p;
  p.M = d.M;
  p.N = d.N;
  p.K = d.K;
  p.alpha = static_cast<T>(d.alpha);
  p.beta = static_cast<T>(d.beta);
  p.A = static_cast<const T*>(d.A);
  p.lda = d.lda;
  p.stride_a = d.stride_a;
  p.B = static_cast<const T*>(d.B);
  p.ldb = d.ldb;
  p.stride_b = d.stride_b;
  p.C = static_cast<T*>(d.C);
  p.ldc = d.ldc;
  p.stride_c = d.stride_c;
  p.batch = d.batch;
  p.bias = static_cast<const T*>(d.bias);
  p.relu = d.relu;

  const int64_t tiles_m = (d.M + TileT::BM - 1) / TileT::BM;
  const int64_t tiles_n = (d.N + TileT::BN - 1) / TileT::BN;
  if (tiles_n > kMaxGridX) bad("N = " + str(d.N) + " needs more column tiles than a grid holds");
  const dim3 grid(static_cast<unsigned>(tiles_n), static_cast<unsigned>(std::min(tiles_m, kMaxGridYZ)),
                  static_cast<unsigned>(std::min(d.batch, kMaxGridYZ)));
  const auto kernel = d.trans_a ? (d.trans_b ? gemm_kernel<T, TileT, true, true>
                                             : gemm_kernel<T, TileT, true, false>)
                                : (d.trans_b ? gemm_kernel<T, TileT, false, true>
                                             : gemm_kernel<T, TileT, false, false>);
  kernel<<<grid, kThreads, 0, current_stream()>>>(p);
  const std::string name = std::string(sizeof(T) == 4 ? "sgemm_" : "dgemm_") + str(TileT::BM) + "x" +
                           str(TileT::BN) + "x" + str(TileT::BK) + "_cuda (trans_a = " + str(d.trans_a) +
                           ", trans_b = " + str(d.trans_b) + ")";
  check_launch(name.c_str());
}

// float32 takes 128-tiles once there are at least as many as SMs (each SM gets a block);
// below that, 64-tiles give four times the blocks, which beats the larger tile's reuse.
int auto_tile(const GemmDesc& d) {
  if (d.dtype == DType::f64) return 64;
  int device = 0, sms = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  const double tiles = static_cast<double>((d.M + 127) / 128) * static_cast<double>((d.N + 127) / 128) *
                       static_cast<double>(d.batch);
  return tiles >= sms ? 128 : 64;
}

// SM count of a device, read once (cudaGetDeviceProperties takes milliseconds).
int sm_count(int device) {
  static std::mutex mutex;
  static std::vector<int> counts;  // 0 = not read yet
  std::lock_guard<std::mutex> lock(mutex);
  if (device >= static_cast<int>(counts.size())) counts.resize(device + 1, 0);
  if (counts[device] == 0) {
    cudaDeviceProp prop;
    check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    counts[device] = std::max(prop.multiProcessorCount, 1);
  }
  return counts[device];
}

// Whether every row of an operand starts 16-byte aligned (row16 copies): the pointer, the
// row stride and (with several items) the batch stride.
bool aligned16(const void* ptr, int64_t ld, int64_t stride, int64_t batch) {
  return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && ld % 4 == 0 && (batch == 1 || stride % 4 == 0);
}

using CpKernel = void (*)(CpParams);

template <class Cfg, CopyMode COPY_A>
CpKernel cp_kernel_b(CopyMode copy_b) {
  switch (copy_b) {
    case CopyMode::row16: return sgemm_cp_async_kernel<Cfg, COPY_A, CopyMode::row16>;
    case CopyMode::row4: return sgemm_cp_async_kernel<Cfg, COPY_A, CopyMode::row4>;
    default: return sgemm_cp_async_kernel<Cfg, COPY_A, CopyMode::kcol4>;
  }
}

template <class Cfg>
CpKernel cp_kernel(CopyMode copy_a, CopyMode copy_b) {
  switch (copy_a) {
    case CopyMode::row16: return cp_kernel_b<Cfg, CopyMode::row16>(copy_b);
    case CopyMode::row4: return cp_kernel_b<Cfg, CopyMode::row4>(copy_b);
    default: return cp_kernel_b<Cfg, CopyMode::kcol4>(copy_b);
  }
}

const char* copy_name(CopyMode m) { return m == CopyMode::row16 ? "row16" : m == CopyMode::row4 ? "row4" : "kcol4"; }

// Split-K scratch from the caching allocator, returned when the launches are queued (the
// stream orders its reuse after them) or when a launch check throws.
struct Scratch {
  float* ptr = nullptr;
  int device = 0;
  ~Scratch() {
    if (ptr) release(ptr, device);
  }
};

// Queues a cp.async kernel with `want` K ranges (1: none), then the split-K reduction.
template <class Cfg>
void launch_cp_async(const GemmDesc& d, int64_t want) {
  const CpPlan plan = cp_plan(d.K, Cfg::BK, want);
  CpParams p;
  p.M = d.M;
  p.N = d.N;
  p.K = d.K;
  p.alpha = static_cast<float>(d.alpha);
  p.beta = static_cast<float>(d.beta);
  p.A = static_cast<const float*>(d.A);
  p.lda = d.lda;
  p.stride_a = d.stride_a;
  p.B = static_cast<const float*>(d.B);
  p.ldb = d.ldb;
  p.stride_b = d.stride_b;
  p.C = static_cast<float*>(d.C);
  p.ldc = d.ldc;
  p.stride_c = d.stride_c;
  p.batch = d.batch;
  p.bias = static_cast<const float*>(d.bias);
  p.relu = d.relu;
  p.vec_c = aligned16(d.C, d.ldc, d.stride_c, d.batch);
  p.splits = plan.splits;
  p.k_per_split = plan.k_per_split;
  p.partial = nullptr;
  p.tile_m0 = p.z0 = 0;

  Scratch scratch;
  if (plan.splits > 1) {
    scratch.device = current_device();
    const size_t floats = static_cast<size_t>(plan.splits) * static_cast<size_t>(d.batch) *
                          static_cast<size_t>(d.M) * static_cast<size_t>(d.N);
    scratch.ptr = static_cast<float*>(allocate(floats * sizeof(float), scratch.device));
    p.partial = scratch.ptr;  // (splits, batch, M, N)
  }

  // K-contiguous operands (A not transposed, B transposed) are copied transposing (kcol4).
  const CopyMode copy_a = !d.trans_a ? CopyMode::kcol4
                          : aligned16(d.A, d.lda, d.stride_a, d.batch) ? CopyMode::row16 : CopyMode::row4;
  const CopyMode copy_b = d.trans_b ? CopyMode::kcol4
                          : aligned16(d.B, d.ldb, d.stride_b, d.batch) ? CopyMode::row16 : CopyMode::row4;
  const int64_t tiles_m = (d.M + Cfg::BM - 1) / Cfg::BM;
  const int64_t tiles_n = (d.N + Cfg::BN - 1) / Cfg::BN;
  const int64_t items = d.batch * plan.splits;
  if (tiles_n > kMaxGridX) bad("N = " + str(d.N) + " needs more column tiles than a grid holds");
  const CpKernel kernel = cp_kernel<Cfg>(copy_a, copy_b);
  const std::string name = "sgemm_cp_async_" + str(Cfg::BM) + "x" + str(Cfg::BN) + "x" + str(Cfg::BK) +
                           "_cuda (copy A " + copy_name(copy_a) + ", copy B " + copy_name(copy_b) +
                           ", splits = " + str(plan.splits) + ")";
  // One block a tile: grid y (tile rows) and z (items) hold 65535 each, so larger problems
  // take several launches (one in practice: 8M rows, 65535 items).
  for (p.tile_m0 = 0; p.tile_m0 < tiles_m; p.tile_m0 += kMaxGridYZ)
    for (p.z0 = 0; p.z0 < items; p.z0 += kMaxGridYZ) {
      const dim3 grid(static_cast<unsigned>(tiles_n), static_cast<unsigned>(std::min(tiles_m - p.tile_m0, kMaxGridYZ)),
                      static_cast<unsigned>(std::min(items - p.z0, kMaxGridYZ)));
      kernel<<<grid, Cfg::kThreads, 0, current_stream()>>>(p);
      check_launch(name.c_str());
    }
  if (plan.splits > 1) {
    const int64_t outputs = d.batch * d.M * d.N;
    sgemm_splitk_reduce_kernel<<<grid_for(outputs, 256), 256, 0, current_stream()>>>(p);
    check_launch("sgemm_splitk_reduce_cuda");
  }
}

}  // namespace

const std::vector<GemmVariant>& gemm_variants() {
  static const std::vector<GemmVariant> variants = {
      {kStaged64, "staged_64x64x16", true, false},      {kStaged128, "staged_128x128x8", false, false},
      {kCp128x128, "cp_async_128x128x16", false, true}, {kCp128x256, "cp_async_128x256x8", false, true},
      {kCp64x64, "cp_async_64x64x16", false, true},
  };
  return variants;
}

// Dispatch. float64 always runs staged_64x64x16. float32 runs THE RULE (choose_cp_async) over
// the cp.async kernels; with kCpAsyncVerified false (or DLCORE_GEMM_CP_ASYNC unset while it
// is), the register-staged ones (auto_tile). THE RULE, with S = the SM count (read once a
// device) and tiles(BM x BN) = ceil(M / BM) ceil(N / BN) batch:
//   1. tiles(128 x 128) >= S / 3: cp_async_128x128x16, split-K by auto_splits when the tiles
//      fall short of S (1024^3: 64 tiles -> 4 ranges).
//   2. otherwise: cp_async_64x64x16, split-K by auto_splits (64x4096x1024 -> 4 on 132 SMs,
//      4096x64x576 -> 4); K too short to split (< 2 x 8 slices) runs unsplit.
// cp_async_128x256x8 is never chosen: forced, it ran 1-3 % behind 128x128x16 at every size.
// Measured on an H100 SXM (132 SMs), 2026-11-26, bench/bench_cuda_gemm.py --variant, ratio to
// cuBLAS FP32 (the staged kernels' in brackets): 1024^3 128x128 split 2 / 4 0.90 / 0.89 vs 64x64 0.80
// [0.55]; 2048^3 128x128 0.85, 128x256 0.84 [0.63]; 4096^3 0.84, 0.83 [0.62]; 8192^3 0.87,
// 0.84 [0.64]; 8192x2048x512 0.88, 0.85 [0.67]; 64x4096x1024 (32 128-tiles) 64x64 split 4
// 0.81 vs 128x128 split 4 0.63 [0.30]; 4096x64x576 (32) 64x64 0.65-0.80 vs 128x128 0.69
// [0.58]. Shapes under ~30 us (256x120x400) measure the host's call overhead, not the kernel.
//
// kCpAsyncVerified (true since that session): on the H100, with DLCORE_GEMM_CP_ASYNC=1,
//   python3 -m pytest tests -k cuda              every caller (matmul, conv, rnn) and every
//                                                cp.async kernel forced: all passed
//   compute-sanitizer memcheck / racecheck       over tools/gpu_sanitize_subset.py (every
//                                                kernel forced, split and unsplit): clean
//   python3 bench/bench_cuda_gemm.py --variant   the timings above
constexpr bool kCpAsyncVerified = true;

namespace {

// DLCORE_GEMM_CP_ASYNC=1 in the environment turns the rule on when kCpAsyncVerified is false
// (read once), so a GPU session can time and test a changed rule without rebuilding.
bool cp_async_rule_on() {
  static const bool on = [] {
    const char* v = std::getenv("DLCORE_GEMM_CP_ASYNC");
    return kCpAsyncVerified || (v && std::string(v) == "1");
  }();
  return on;
}

// The kernel and split count gemm_with_tile(d, tile, splits) runs (arguments already checked;
// splits: K ranges asked for, before split_plan drops empty ones; 1 for staged kernels).
Choice resolve(const GemmDesc& d, int tile, int64_t splits) {
  if (tile == 0) {
    if (d.dtype == DType::f64 || !cp_async_rule_on()) return {auto_tile(d), 1};
    return choose_cp_async(d.M, d.N, d.K, d.batch, sm_count(current_device()));
  }
  if (!cp_shape(tile)) return {tile, 1};
  if (splits == 0) return {tile, auto_splits(*cp_shape(tile), d.M, d.N, d.K, d.batch, sm_count(current_device()))};
  return {tile, splits};
}

}  // namespace

void gemm_with_tile(const GemmDesc& d, int tile, int splits) {
  validate(d);
  const bool f64 = d.dtype == DType::f64;
  const GemmVariant* variant = nullptr;
  for (const GemmVariant& v : gemm_variants())
    if (v.tile == tile && (v.float64 || !f64)) variant = &v;
  if (tile != 0 && !variant) {
    std::string codes = "0 (auto)";
    for (const GemmVariant& v : gemm_variants())
      if (v.float64 || !f64) codes += ", " + str(v.tile) + " (" + v.name + ")";
    bad("tile = " + str(tile) + " is not one of " + codes + " for " + dtype_name(d.dtype));
  }
  if (splits < 0 || splits > kMaxSplits)
    bad("splits = " + str(splits) + " must be in [0, " + str(kMaxSplits) + "] (0 = the rule's count)");
  if (splits > 1 && !(variant && variant->split_k))
    bad("splits = " + str(splits) + " needs a split-K kernel forced (a cp_async tile), got tile = " + str(tile));
  if (d.M == 0 || d.N == 0 || d.batch == 0) return;

  const Choice c = resolve(d, tile, splits);
  switch (c.tile) {
    case kCp128x128: launch_cp_async<Cp128x128x16>(d, c.splits); break;
    case kCp128x256: launch_cp_async<Cp128x256x8>(d, c.splits); break;
    case kCp64x64: launch_cp_async<Cp64x64x16>(d, c.splits); break;
    case kStaged128: launch<float, Tile128>(d); break;
    default:
      if (f64)
        launch<double, Tile64>(d);
      else
        launch<float, Tile64>(d);
  }
}

void gemm(const GemmDesc& d) { gemm_with_tile(d, 0); }

GemmChoice gemm_choice(DType dtype, int64_t M, int64_t N, int64_t K, int64_t batch) {
  if (dtype != DType::f32 && dtype != DType::f64)
    bad(std::string("dtype must be float32 or float64, got ") + dtype_name(dtype));
  if (M < 0 || N < 0 || K < 0 || batch < 0)
    bad("M, N, K and batch must be >= 0, got M = " + str(M) + ", N = " + str(N) + ", K = " + str(K) +
        ", batch = " + str(batch));
  GemmDesc d{};
  d.dtype = dtype;
  d.M = M;
  d.N = N;
  d.K = K;
  d.batch = batch;
  const Choice c = resolve(d, 0, 0);
  const CpShape* shape = cp_shape(c.tile);
  return {c.tile, shape ? cp_plan(K, shape->BK, c.splits).splits : 1};
}

void check_gemm_desc(const GemmDesc& d, const char* op) {
  auto fail = [op](const std::string& msg) { throw std::invalid_argument(std::string(op) + ": " + msg); };
  auto str = [](int64_t v) { return std::to_string(v); };
  if (d.M < 0 || d.N < 0 || d.K < 0 || d.batch < 0)
    fail("M, N, K and batch must be >= 0, got M = " + str(d.M) + ", N = " + str(d.N) + ", K = " + str(d.K) +
         ", batch = " + str(d.batch));
  const int64_t a_cols = d.trans_a ? d.M : d.K;  // A stored (M, K), or (K, M) when trans_a
  const int64_t b_cols = d.trans_b ? d.K : d.N;  // B stored (K, N), or (N, K) when trans_b
  auto check_ld = [&](const char* name, int64_t ld, int64_t cols, const char* what) {
    if (ld < std::max<int64_t>(cols, 1))
      fail(std::string(name) + " = " + str(ld) + " must be >= max(1, " + what + ") = " +
           str(std::max<int64_t>(cols, 1)));
  };
  check_ld("lda", d.lda, a_cols, d.trans_a ? "M (trans_a)" : "K");
  check_ld("ldb", d.ldb, b_cols, d.trans_b ? "K (trans_b)" : "N");
  check_ld("ldc", d.ldc, d.N, "N");
  if (d.stride_a < 0 || d.stride_b < 0 || d.stride_c < 0)
    fail("batch strides must be >= 0, got stride_a = " + str(d.stride_a) + ", stride_b = " + str(d.stride_b) +
         ", stride_c = " + str(d.stride_c));
  if (d.batch > 1 && d.stride_c == 0) fail("stride_c = 0 with batch = " + str(d.batch) + " (C items would overlap)");
  if (d.M == 0 || d.N == 0 || d.batch == 0) return;
  const uintptr_t size = static_cast<uintptr_t>(dtype_size(d.dtype));
  auto check_ptr = [&](const char* name, const void* ptr) {
    if (!ptr) fail(std::string(name) + " is a null pointer");
    if (reinterpret_cast<uintptr_t>(ptr) % size != 0)
      fail(std::string(name) + " is not aligned to its " + str(static_cast<int64_t>(size)) + "-byte elements");
  };
  check_ptr("C", d.C);
  if (d.K > 0) {
    check_ptr("A", d.A);
    check_ptr("B", d.B);
  }
  if (d.bias) check_ptr("bias", d.bias);
}

}  // namespace dlcore::cuda
