// gemm on the GPU: C[b] := alpha * op(A[b]) @ op(B[b]) + beta * C[b], then the fused
// epilogue C += bias (per column) and C = max(C, 0), for float32 and float64 (gemm.h has
// the contract: layouts, leading dimensions, batch strides, beta == 0 never reads C).
//
// Algorithm: classic shared-memory tiling. One block of 256 threads (a 16 x 16 grid) owns a
// BM x BN tile of one C[b] and walks K in steps of BK:
//   1. each thread fetches its share of the next op(A) (BM x BK) and op(B) (BK x BN) slices
//      from global memory into registers (zero outside M, N, K, so edges need no other case),
//   2. stores them to shared memory k-major, As[k][m] and Bs[k][n], barrier,
//   3. prefetches the following slices into registers while it computes the current one,
//   4. accumulates a TM x TN register tile, barrier (the slices may then be overwritten).
// A thread's outputs are rows ty + 16 i and columns tx + 16 j (strided, not a contiguous
// block): the 16 threads of a half-warp then read 16 consecutive As/Bs entries (no bank
// conflicts) and store 16 consecutive C elements (coalesced).
// Transposes need no copy: op(X) element (k, i) is read from x[i * ld + k] or
// x[k * ld + i], with the thread -> element map chosen so that consecutive threads read
// consecutive addresses either way. Batches run over blockIdx.z, row tiles over blockIdx.y
// (both grid-stride loops, so no grid limit is hit), column tiles over blockIdx.x.
// Determinism: every C element is one thread's sum over k = 0, 1, ..., K-1 in order (FMA per
// step), no split-K, no atomics: the same bits every run on a given GPU and build.
//
// Tiles (256 threads; sizes are powers of two so the index math is shifts and masks):
//   float32 128 x 128 x 8, 8 x 8 outputs a thread: 64 FMAs per 16 shared loads; used once
//           there are at least as many 128-tiles as SMs (every SM gets a block);
//   float32/float64 64 x 64 x 16, 4 x 4 outputs a thread: four times the blocks for small
//           or thin problems, and float64's only tile (16 doubles of accumulators).
// Shared memory: 8.25 KiB (float32) or 16.25 KiB (float64) a block. Registers (nvcc 13,
// sm_80/sm_90): <= 128 for the 128-tile (two blocks an SM), <= 64 / 80 for the 64-tile
// float32 / float64, no spills.
//
// Tested by tests/cuda/test_gemm.py (float64 NumPy reference with the K-scaled tolerance,
// integer-exact case, every tile forced); resource report: nvcc -Xptxas -v (no spills).
// Timed (GFLOP/s = 2 n^3 / t) on a GPU with, e.g. n = 4096:
//   PYTHONPATH=python python3 -m timeit -s "import numpy as np, dlcore.cuda as cu; from
//   dlcore.cuda.array import from_numpy; from dlcore.cuda.kernels.gemm import gemm;
//   a = from_numpy(np.random.rand(4096, 4096).astype(np.float32), 0)" "gemm(a, a); cu.synchronize()"
// Bound: an H100 SXM peaks near 67 TFLOP/s float32 (34 float64) without tensor cores; this
// plain tiling is expected (not yet measured) to reach a third of that or less on 1024^3 and
// up, being shared-load bound (speed is a later issue).
#include "cuda/common.cuh"
#include "cuda/gemm.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace dlcore::cuda {

namespace {

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

[[noreturn]] void bad(const std::string& msg) { throw std::invalid_argument("gemm: " + msg); }

std::string str(int64_t v) { return std::to_string(v); }

void validate(const GemmDesc& d) {
  if (d.dtype != DType::f32 && d.dtype != DType::f64)
    bad(std::string("dtype must be float32 or float64, got ") + dtype_name(d.dtype));
  if (d.M < 0 || d.N < 0 || d.K < 0 || d.batch < 0)
    bad("M, N, K and batch must be >= 0, got M = " + str(d.M) + ", N = " + str(d.N) + ", K = " + str(d.K) +
        ", batch = " + str(d.batch));
  const int64_t a_cols = d.trans_a ? d.M : d.K;  // A stored (M, K), or (K, M) when trans_a
  const int64_t b_cols = d.trans_b ? d.K : d.N;  // B stored (K, N), or (N, K) when trans_b
  auto check_ld = [](const char* name, int64_t ld, int64_t cols, const char* what) {
    if (ld < std::max<int64_t>(cols, 1))
      bad(std::string(name) + " = " + str(ld) + " must be >= max(1, " + what + ") = " +
          str(std::max<int64_t>(cols, 1)));
  };
  check_ld("lda", d.lda, a_cols, d.trans_a ? "M (trans_a)" : "K");
  check_ld("ldb", d.ldb, b_cols, d.trans_b ? "K (trans_b)" : "N");
  check_ld("ldc", d.ldc, d.N, "N");
  if (d.stride_a < 0 || d.stride_b < 0 || d.stride_c < 0)
    bad("batch strides must be >= 0, got stride_a = " + str(d.stride_a) + ", stride_b = " + str(d.stride_b) +
        ", stride_c = " + str(d.stride_c));
  if (d.batch > 1 && d.stride_c == 0) bad("stride_c = 0 with batch = " + str(d.batch) + " (C items would overlap)");
  if (d.M == 0 || d.N == 0 || d.batch == 0) return;
  const uintptr_t size = static_cast<uintptr_t>(dtype_size(d.dtype));
  auto check_ptr = [&](const char* name, const void* ptr) {
    if (!ptr) bad(std::string(name) + " is a null pointer");
    if (reinterpret_cast<uintptr_t>(ptr) % size != 0)
      bad(std::string(name) + " is not aligned to its " + str(static_cast<int64_t>(size)) + "-byte elements");
  };
  check_ptr("C", d.C);
  if (d.K > 0) {
    check_ptr("A", d.A);
    check_ptr("B", d.B);
  }
  if (d.bias) check_ptr("bias", d.bias);
}

// Grid-dimension limits: x up to 2^31 - 1, y and z up to 65535 (the kernel loops over the rest).
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

}  // namespace

void gemm_with_tile(const GemmDesc& d, int tile) {
  validate(d);
  if (tile != 0 && tile != 64 && !(tile == 128 && d.dtype == DType::f32))
    bad("tile = " + str(tile) + " is not one of 0 (auto), 64" + (d.dtype == DType::f32 ? ", 128" : "") +
        " for " + dtype_name(d.dtype));
  if (d.M == 0 || d.N == 0 || d.batch == 0) return;
  if (tile == 0) tile = auto_tile(d);
  if (d.dtype == DType::f64) {
    launch<double, Tile64>(d);
  } else if (tile == 128) {
    launch<float, Tile128>(d);
  } else {
    launch<float, Tile64>(d);
  }
}

void gemm(const GemmDesc& d) { gemm_with_tile(d, 0); }

}  // namespace dlcore::cuda
