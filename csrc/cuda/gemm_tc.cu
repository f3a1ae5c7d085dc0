// gemm_tc on the GPU: C[b] := alpha * op(A[b]) @ op(B[b]) + beta * C[b], then C += bias (per
// column) and C = max(C, 0), for float32 tensors with the products on the tensor cores (sm_80+)
// and FP32 sums. gemm_tc.h has the contract (gemm.h's GemmDesc plus a MathMode):
//   tf32: mma.sync.m16n8k8 .tf32; FP32 tiles are copied as they are and every fragment is rounded
//         to TF32 (cvt.rna) in registers just before its mma.
//   bf16: mma.sync.m16n8k16 .bf16; a conversion pass first writes op(A) as (M, Kp) and op(B)^T as
//         (N, Kp) BF16 into scratch buffers (Kp = K rounded up to 8, so rows start 16-byte
//         aligned; the padding columns are zero), then the same kernel runs on them as "A not
//         transposed, B transposed".
//
// Algorithm: one block of 8 warps (4 for the 64-tile) owns a BM x BN tile of one C[b] and walks
// K in slices of BK = 32 through a kStages-deep ring of shared-memory slices:
//   - cp.async (16-byte copies; 4-byte ones for FP32 operands that are not 16-byte aligned) fills
//     the slice kStages - 1 ahead while the warps compute on the current one; out-of-range rows,
//     columns and depths are zero-filled by the copy itself (src-size < cp-size), so the
//     K, M and N edges need no other case;
//   - each warp owns a WM x WN sub-tile: MT x NT mma tiles of 16 x 8, fragments from ldmatrix
//     (or, for FP32 slices whose contiguous index is M or N, from 32-bit shared loads, because
//     ldmatrix can only transpose 16-bit elements), then MT * NT mma per depth step.
//   - epilogue straight from the accumulators: alpha, beta (C read only when beta != 0), bias,
//     ReLU, each element stored once by the thread that holds it, bounds-checked.
// Shared-memory layout, per operand and stage (no bank conflicts; counted in the emulation):
//   depth-contiguous (A not transposed, B transposed, all of BF16): S[i][k], rows of BK
//     elements (128 bytes FP32, 64 bytes BF16) made of 16-byte chunks, chunk c of row i stored
//     at c ^ swizzle(i) (SliceLayout): ldmatrix phases (one chunk column of 8 rows) and 16-byte
//     cp.async quarter-warps (one 128-byte line) both touch 8 distinct bank groups;
//   row-contiguous (FP32 A transposed, B not transposed): S[k][i], rows of R + 8 floats, so the
//     32 lanes of a fragment load (4 depths x 8 rows) hit 32 different banks.
// Tiles are walked in groups of kGroupM row tiles (one column tile after another inside a
// group), so blocks that run together share A and B panels in L2. Batches run over blockIdx.z,
// tiles over blockIdx.x (both grid-stride loops).
//
// Which kernel runs (gemm_tc_with_tile, tile 0; THE RULE at auto_tile below):
//   tile: on sm_90 (H100/H200, a build with sm_90a code) the wgmma + TMA kernel of
//         gemm_wgmma.cu (tile 256) once its 128 x 256 tiles number at least half the SMs;
//         otherwise 128 x 128 once there are at least as many 128-tiles (over the batch) as
//         SMs, else 64 x 64 (four times the blocks; the same rule as gemm's SIMT tiles);
//   copy width (tf32): 16 bytes when A and B start 16-byte aligned and lda, ldb and both batch
//         strides are multiples of 4 elements, else 4 bytes (the same kernel with 4x the copy
//         instructions; slower, never wrong), always at the 64-tile. bf16 always copies 16
//         bytes (its scratch buffers are laid out for it).
// Determinism: every C element is one thread's chain of mma over k slices 0, 1, ... in order,
// no split-K, no atomics: the same bits every run on a given GPU and build.
//
// Resources (nvcc 13, -Xptxas -v, sm_80 and sm_90; no spills, no stack frame):
//   128-tile: 256 threads, <= 128 registers; shared memory 96-102 KiB (tf32, 3 stages; by
//     transposes) or 64 KiB (bf16, 4 stages) a block: two blocks an H100 SM (one on an A100),
//     and cudaFuncSetAttribute lifts the 48 KiB default;
//   64-tile: 128 threads, <= 128 registers (16-byte copies) or <= 168 (4-byte copies);
//     shared memory <= 54 KiB (tf32) or 32 KiB (bf16).
// Tested by tests/cuda/test_cuda_gemm_tc.py (float64 NumPy reference with the precision-aware
// bound, integer-exact case, every tile and copy width, 4096^3, run-twice bitwise equality);
// a host emulation of this file (every CUDA thread a std::thread, ldmatrix / mma / cp.async as
// the PTX ISA defines them) checked indexing, pipelining and bank conflicts before the first
// GPU run. Timed by bench/bench_cuda_gemm.py (TF32 and BF16 rows beside cuBLAS).
// Bound (H100 SXM, ~1.8 GHz): dense TF32 ~495 TFLOP/s (1024 MACs a clock an SM) and BF16 ~990
// (2048). Per mma depth step a warp of the 128-tile does 16 K MACs (tf32) or 32 K (bf16), 16
// clocks of its SM's tensor cores either way, and reads 3 KiB of fragments from shared memory,
// 24 clocks at 128 bytes a clock: this tiling is shared-memory bound at ~2/3 of the tensor peak
// before any other loss, and mma.sync is not Hopper's fast path (wgmma is), so expect (not yet
// measured) well under cuBLAS on 4096^3; the next steps are 64 x 64 warp tiles (half the
// shared traffic per MAC) and wgmma + TMA on sm_90a. BF16 pays one extra pass over A and B
// (6 bytes an element: ~35 us per 4096^2 operand against ~0.15-0.3 ms of math at 4096^3).
#include "cuda/gemm_tc.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "cuda/common.cuh"
#include "cuda/gemm_wgmma.h"

#include <cuda_bf16.h>

namespace dlcore::cuda {
namespace {

// ---- device primitives: the PTX this file uses, each a small wrapper ----------------------
// (the host emulation of this file swaps this block, up to the end marker, for host versions)

// Shared-memory address (the .shared window) of a generic pointer into shared memory.
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Asynchronous copy of kBytes (16 or 4) from global to shared memory: the first src_bytes come
// from src, the rest are zero-filled (src_bytes == 0 reads nothing). Both addresses must be
// kBytes-aligned. The 16-byte form bypasses L1 (.cg); .ca is the only form for 4 bytes.
template <int kBytes>
__device__ __forceinline__ void cp_async(void* dst, const void* src, int src_bytes) {
  static_assert(kBytes == 16 || kBytes == 4, "cp.async copies 4, 8 or 16 bytes; this file uses 4 and 16");
  if constexpr (kBytes == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(src_bytes)
                 : "memory");
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(src_bytes)
                 : "memory");
  }
}

// Closes this thread's group of cp.async copies issued since the last commit.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// Waits until at most kPending of this thread's committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// Four 8 x 8 matrices of 16-bit elements (8 rows of 16 bytes each) from shared memory: lanes
// 8j .. 8j+7 give the row addresses of matrix j (16-byte aligned); lane l receives in r[j] the
// 32 bits at row l / 4, bytes 4 (l % 4) .. +3 of matrix j.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(row))
               : "memory");
}

// One 32-bit shared-memory load (fragments ldmatrix cannot gather: FP32 with M or N contiguous).
__device__ __forceinline__ uint32_t lds_u32(const void* p) { return *static_cast<const uint32_t*>(p); }

// FP32 bits -> TF32 bits: round to nearest, ties away from zero (as cuBLAS and PyTorch do).
__device__ __forceinline__ uint32_t to_tf32(uint32_t x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(__uint_as_float(x)));
  return r;
}

// FP32 -> BF16 bits, round to nearest even (NaN stays NaN).
__device__ __forceinline__ uint16_t to_bf16(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }

// d += A (16 x 8, row-major) @ B (8 x 8, column-major), TF32 inputs, FP32 accumulation.
// Fragments (PTX ISA, mma.m16n8k8 .tf32), g = lane / 4, t = lane % 4, as (row, col):
//   a[0] (g, t)   a[1] (g+8, t)   a[2] (g, t+4)   a[3] (g+8, t+4)
//   b[0] (k = t, n = g)   b[1] (k = t+4, n = g)
//   d[0] (g, 2t)  d[1] (g, 2t+1)  d[2] (g+8, 2t)  d[3] (g+8, 2t+1)
__device__ __forceinline__ void mma_tf32_16x8x8(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// d += A (16 x 16) @ B (16 x 8), BF16 inputs, FP32 accumulation. Each register holds two BF16,
// the lower 16 bits the lower index (PTX ISA, mma.m16n8k16 .bf16):
//   a[0] (g, 2t..2t+1)   a[1] (g+8, 2t..2t+1)   a[2] (g, 2t+8..2t+9)   a[3] (g+8, 2t+8..2t+9)
//   b[0] (k = 2t..2t+1, n = g)   b[1] (k = 2t+8..2t+9, n = g);   d as for tf32
__device__ __forceinline__ void mma_bf16_16x8x16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// The block's dynamic shared memory (sized at launch).
__device__ __forceinline__ unsigned char* dynamic_smem() {
  extern __shared__ __align__(16) unsigned char tc_smem[];
  return tc_smem;
}

// ---- end of device primitives -----------------------------------------------------------

// What the two math modes change: the element kept in shared memory, the mma depth, the
// rounding of fragments and the instruction. Both have 4 A and 2 B registers per mma.
// Stages: 3 for FP32 slices (32-34 KiB a stage at the 128-tile: <= 102 KiB, two blocks an H100
// SM), 4 for BF16 (16 KiB a stage: 64 KiB); the deeper ring hides more latency where it is cheap.
struct Tf32Math {
  using Elem = float;
  static constexpr int kK = 8;
  static constexpr int kStages = 3;
  static constexpr const char* kName = "tf32";
  template <int N>
  __device__ static void round(uint32_t (&r)[N]) {
#pragma unroll
    for (int i = 0; i < N; ++i) r[i] = to_tf32(r[i]);
  }
  __device__ static void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    mma_tf32_16x8x8(d, a, b);
  }
};

struct Bf16Math {
  using Elem = uint16_t;  // BF16 bits, written by the conversion pass
  static constexpr int kK = 16;
  static constexpr int kStages = 4;
  static constexpr const char* kName = "bf16";
  template <int N>
  __device__ static void round(uint32_t (&)[N]) {}
  __device__ static void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    mma_bf16_16x8x16(d, a, b);
  }
};

// A block tile: BM x BN outputs, BK depths a slice, WARPS_M x kWarpsN warps each owning a
// WM x WN sub-tile of MT x NT mma tiles (16 x 8). 128-tile: 8 warps of 64 x 32 (64 FP32
// accumulators a thread); 64-tile: 4 warps of 32 x 32. kMinBlocks (blocks an SM) caps the
// registers: 128 for the 128-tile (two blocks of 256 threads), 168 for the 64-tile, whose
// 4-byte-copy kernels need up to 168 (they spilled at 128; the 16-byte ones stay under 128).
template <int BM_, int BN_, int WARPS_M, int WARPS_N, int MIN_BLOCKS>
struct TcTile {
  static constexpr int BM = BM_, BN = BN_, BK = 32;
  static constexpr int kWarpsN = WARPS_N, kThreads = 32 * WARPS_M * WARPS_N;
  static constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N;
  static constexpr int MT = WM / 16, NT = WN / 8;
  static constexpr int kMinBlocks = MIN_BLOCKS;
  static_assert(WM % 16 == 0 && WN % 16 == 0, "a warp tile is whole 16 x 16 pairs of mma tiles");
};
using TcTile128 = TcTile<128, 128, 2, 4, 2>;
using TcTile64 = TcTile<64, 64, 2, 2, 3>;

// Row tiles per raster group (see the header): 8 row tiles of A stay hot in L2 while the group
// sweeps the column tiles.
constexpr int64_t kGroupM = 8;

// One operand's BK-deep slice in shared memory; R = BM (op(A), rows m) or BN (op(B), columns n).
// K_CONTIG: S[i][k], rows of BK elements (128 bytes FP32, 64 bytes BF16) in 16-byte chunks, chunk
//   c of row i stored at chunk c ^ swizzle(i), swizzle(i) = (i % 8) / (rows a 128-byte line).
//   ldmatrix reads one chunk column of 8 consecutive rows: the XOR spreads them over the 8
//   chunk slots (bank groups) of a 128-byte line; a cp.async quarter-warp writes one 128-byte
//   line (one FP32 row, or two BF16 rows side by side), also conflict-free. Padding cannot do
//   both for 64-byte rows.
// Else (FP32 only): S[k][i] with rows of R + 8 floats: the 32 lanes of a fragment load read 4
//   depths x 8 rows, and (R + 8) % 32 == 8 puts them on 32 different banks.
template <class Elem, int R, int BK, bool K_CONTIG>
struct SliceLayout {
  static constexpr int kVec = 16 / static_cast<int>(sizeof(Elem));  // elements in a 16-byte chunk
  static constexpr int kLd = K_CONTIG ? BK : R + 8;                  // elements between rows
  static constexpr int kRows = K_CONTIG ? R : BK;                    // rows of the slice
  static constexpr int kRowElems = K_CONTIG ? BK : R;                // data elements a row
  static constexpr int kElems = kRows * kLd;
  static constexpr int kRowBytes = BK * static_cast<int>(sizeof(Elem));
  static_assert(kVec == 4 || kVec == 8, "FP32 or BF16 elements");
  static_assert(!K_CONTIG || kRowBytes == 128 || kRowBytes == 64, "swizzle written for 64- and 128-byte rows");
  static_assert(K_CONTIG || sizeof(Elem) == 4, "row-contiguous slices are FP32 only");
  static_assert(R % 16 == 0 && kLd * sizeof(Elem) % 16 == 0, "rows must start 16-byte aligned");

  // Offset of element (row, e) of the slice (row: i when K_CONTIG, else k). Depends on row
  // only through row * kLd and row % 8, so callers may split row into a multiple of 8 and a rest.
  __device__ static int offset(int row, int e) {
    if constexpr (K_CONTIG) {
      const int swizzle = (row & 7) / (128 / kRowBytes);
      return row * kLd + (((e / kVec) ^ swizzle) * kVec) + e % kVec;
    } else {
      return row * kLd + e;
    }
  }
};

// Queues the cp.async copies of one operand's slices, one slice a call, k = 0, BK, 2 BK, ...
// A chunk is VEC elements along the operand's contiguous index (k when K_CONTIG, else i); a
// thread copies kPer chunks at the same contiguous position, kOuterStep rows of x apart (so
// its source addresses are src + j * step and one pointer serves them all), and the threads of
// a warp cover runs of consecutive chunks (coalesced reads, conflict-free stores).
template <class Elem, class Layout, int BK, int VEC, int THREADS, bool K_CONTIG>
struct SliceCopier {
  static constexpr int kRowChunks = Layout::kRowElems / VEC;  // chunks along a row
  static constexpr int kOuterStep = THREADS / kRowChunks;
  static constexpr int kPer = Layout::kRows / kOuterStep;
  static constexpr int kCopyBytes = VEC * static_cast<int>(sizeof(Elem));
  static_assert(THREADS % kRowChunks == 0 && Layout::kRows % kOuterStep == 0, "chunks must split evenly");

  int outer_t, inner_t;  // this thread's first chunk: row of the slice, element in the row
  const Elem* src;       // its source in the current slice (x row i0 + outer_t or depth outer_t)
  int64_t step;          // kOuterStep rows of x
  int64_t advance;       // one slice further in k

  // x: the batch item (stored (rows, ld)); i0: the tile's first m (op(A)) or n (op(B)).
  __device__ SliceCopier(const Elem* x, int64_t ld, int64_t i0, int tid) {
    outer_t = tid / kRowChunks;
    inner_t = (tid % kRowChunks) * VEC;
    src = K_CONTIG ? x + (i0 + outer_t) * ld + inner_t : x + outer_t * ld + i0 + inner_t;
    step = kOuterStep * ld;
    advance = K_CONTIG ? BK : BK * ld;
  }

  // Copies the next slice into S; k_left = depths left from the slice's first (capped at BK),
  // i_left = rows (m or n) left from the tile's first (capped at R). x: any valid address of
  // the operand, the source of copies that read nothing.
  __device__ void copy(Elem* S, int k_left, int i_left, const Elem* x) {
    const int outer_left = K_CONTIG ? i_left : k_left;
    const int contig_left = K_CONTIG ? k_left : i_left;
    const int n = min(max(contig_left - inner_t, 0), VEC);  // elements of each chunk inside
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int outer = outer_t + j * kOuterStep;
      const int bytes = outer < outer_left ? n * static_cast<int>(sizeof(Elem)) : 0;
      cp_async<kCopyBytes>(S + Layout::offset(outer, inner_t), bytes ? src + j * step : x, bytes);
    }
    src += advance;
  }
};

// A warp's op(A) fragments for the mma at depth k0 of a slice: af[mt] for rows
// row0 + 16 mt .. +15.
template <class Math, class Layout, int MT, bool K_CONTIG>
__device__ __forceinline__ void load_a(uint32_t (&af)[MT][4], const typename Math::Elem* S, int row0, int k0,
                                       int lane) {
  if constexpr (K_CONTIG) {
    // Matrix j = lane / 8 of the x4: rows (j & 1) * 8 .. +7, 16-byte chunk j >> 1 of the depth
    // step; so lane l addresses row l & 15, chunk l >> 4. Registers come out as a[0..3].
    // (row0 + 16 mt is a multiple of 8: the swizzle depends on l & 15 alone.)
    const int col = Layout::offset(lane & 15, k0 + (lane >> 4) * Layout::kVec) - (lane & 15) * Layout::kLd;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) ldmatrix_x4(af[mt], S + (row0 + mt * 16 + (lane & 15)) * Layout::kLd + col);
  } else {
    const auto* base = S + (k0 + (lane & 3)) * Layout::kLd + row0 + (lane >> 2);  // S[k0 + t][row0 + g]
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      af[mt][0] = lds_u32(base + mt * 16);
      af[mt][1] = lds_u32(base + mt * 16 + 8);
      af[mt][2] = lds_u32(base + 4 * Layout::kLd + mt * 16);
      af[mt][3] = lds_u32(base + 4 * Layout::kLd + mt * 16 + 8);
    }
  }
}

// A warp's op(B) fragments at depth k0: bf[nt] for columns col0 + 8 nt .. +7.
template <class Math, class Layout, int NT, bool K_CONTIG>
__device__ __forceinline__ void load_b(uint32_t (&bf)[NT][2], const typename Math::Elem* S, int col0, int k0,
                                       int lane) {
  if constexpr (K_CONTIG) {
    // One x4 serves two n-tiles: matrix j holds columns (j >> 1) * 8 .. +7, depth chunk j & 1,
    // so lane l addresses column (l >> 4) * 8 + (l & 7), chunk (l >> 3) & 1.
    const int n_l = (lane >> 4) * 8 + (lane & 7);  // col0 + 8 nt is a multiple of 16 (nt even)
    const int col = Layout::offset(n_l, k0 + ((lane >> 3) & 1) * Layout::kVec) - n_l * Layout::kLd;
#pragma unroll
    for (int nt = 0; nt < NT; nt += 2) {
      uint32_t r[4];
      ldmatrix_x4(r, S + (col0 + nt * 8 + n_l) * Layout::kLd + col);
      bf[nt][0] = r[0];
      bf[nt][1] = r[1];
      bf[nt + 1][0] = r[2];
      bf[nt + 1][1] = r[3];
    }
  } else {
    const auto* base = S + (k0 + (lane & 3)) * Layout::kLd + col0 + (lane >> 2);  // S[k0 + t][col0 + g]
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      bf[nt][0] = lds_u32(base + nt * 8);
      bf[nt][1] = lds_u32(base + 4 * Layout::kLd + nt * 8);
    }
  }
}

template <class Elem>
struct TcParams {
  int64_t M, N, K;
  float alpha, beta;
  const Elem* A; int64_t lda, stride_a;  // (batch | 1, M, K) or (.., K, M) when trans_a
  const Elem* B; int64_t ldb, stride_b;  // (batch | 1, K, N) or (.., N, K) when trans_b
  float* C; int64_t ldc, stride_c;       // (batch, M, N)
  int64_t batch;
  const float* bias;                     // (N,) or nullptr
  bool relu;
};

// The kernel's shared-memory plan, for the kernel and its launch.
template <class Math, class Tile, bool TRANS_A, bool TRANS_B>
struct Plan {
  using Elem = typename Math::Elem;
  using LayoutA = SliceLayout<Elem, Tile::BM, Tile::BK, !TRANS_A>;
  using LayoutB = SliceLayout<Elem, Tile::BN, Tile::BK, TRANS_B>;
  static constexpr int kStageElems = LayoutA::kElems + LayoutB::kElems;  // A slice, then B slice
  static constexpr int kSmemBytes = Math::kStages * kStageElems * static_cast<int>(sizeof(Elem));
};

// min(a, cap) as an int, for a remaining extent compared against in-tile indices.
__device__ __forceinline__ int clamp_left(int64_t a, int cap) { return static_cast<int>(a < cap ? a : cap); }

template <class Math, class Tile, bool TRANS_A, bool TRANS_B, int VEC>
__global__ void __launch_bounds__(Tile::kThreads, Tile::kMinBlocks)
    gemm_tc_kernel(const TcParams<typename Math::Elem> p) {
  using Elem = typename Math::Elem;
  using P = Plan<Math, Tile, TRANS_A, TRANS_B>;
  constexpr bool kAK = !TRANS_A, kBK = TRANS_B;  // depth contiguous in memory
  constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK, MT = Tile::MT, NT = Tile::NT;
  constexpr int kStages = Math::kStages;
  using CopyA = SliceCopier<Elem, typename P::LayoutA, BK, VEC, Tile::kThreads, kAK>;
  using CopyB = SliceCopier<Elem, typename P::LayoutB, BK, VEC, Tile::kThreads, kBK>;
  Elem* smem = reinterpret_cast<Elem*>(dynamic_smem());  // kStages x (A slice, B slice)

  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31, warp = tid >> 5;
  const int wm0 = (warp / Tile::kWarpsN) * Tile::WM;  // the warp's sub-tile in the block tile
  const int wn0 = (warp % Tile::kWarpsN) * Tile::WN;
  const int64_t tiles_m = (p.M + BM - 1) / BM, tiles_n = (p.N + BN - 1) / BN;
  const int64_t tiles = tiles_m * tiles_n, group_tiles = kGroupM * tiles_n;
  const int64_t k_slices = (p.K + BK - 1) / BK;

  // Every thread of the block runs the same iterations of the batch, tile and slice loops, so
  // the barriers and the warp-collective ldmatrix and mma are reached by all of them (only the
  // epilogue's stores are predicated per thread).
  for (int64_t b = blockIdx.z; b < p.batch; b += gridDim.z) {
    const Elem* A = p.A + b * p.stride_a;  // (M, K) or (K, M), row stride lda
    const Elem* B = p.B + b * p.stride_b;  // (K, N) or (N, K), row stride ldb
    float* C = p.C + b * p.stride_c;       // (M, N), row stride ldc
    for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
      const int64_t group = t / group_tiles, first_m = group * kGroupM;
      const int64_t group_rows = tiles_m - first_m < kGroupM ? tiles_m - first_m : kGroupM;
      const int64_t in_group = t - group * group_tiles;
      const int64_t m0 = (first_m + in_group % group_rows) * BM, n0 = (in_group / group_rows) * BN;
      const int m_left = clamp_left(p.M - m0, BM), n_left = clamp_left(p.N - n0, BN);

      float acc[MT][NT][4];
#pragma unroll
      for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
          for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.f;

      CopyA copy_a(A, p.lda, m0, tid);
      CopyB copy_b(B, p.ldb, n0, tid);
      // Prologue: slices 0 .. kStages-2 in flight, one commit group each (empty past K).
#pragma unroll
      for (int s = 0; s < kStages - 1; ++s) {
        if (s < k_slices) {
          Elem* S = smem + s * P::kStageElems;
          const int k_left = clamp_left(p.K - s * BK, BK);
          copy_a.copy(S, k_left, m_left, A);
          copy_b.copy(S + P::LayoutA::kElems, k_left, n_left, B);
        }
        cp_async_commit();
      }
      int read_stage = 0, write_stage = kStages - 1;
      for (int64_t ks = 0; ks < k_slices; ++ks) {
        // Slice ks has landed (at most kStages-2 younger groups pending) for this thread; the
        // barrier makes every thread's copies visible and ends all reads of the stage that
        // the next copy overwrites (read in iteration ks - 1).
        cp_async_wait<kStages - 2>();
        __syncthreads();
        const int64_t next = ks + kStages - 1;
        if (next < k_slices) {
          Elem* S = smem + write_stage * P::kStageElems;
          const int k_left = clamp_left(p.K - next * BK, BK);
          copy_a.copy(S, k_left, m_left, A);
          copy_b.copy(S + P::LayoutA::kElems, k_left, n_left, B);
        }
        cp_async_commit();

        const Elem* Sa = smem + read_stage * P::kStageElems;
        const Elem* Sb = Sa + P::LayoutA::kElems;
#pragma unroll
        for (int k0 = 0; k0 < BK; k0 += Math::kK) {
          uint32_t af[MT][4], bf[NT][2];
          load_a<Math, typename P::LayoutA, MT, kAK>(af, Sa, wm0, k0, lane);
          load_b<Math, typename P::LayoutB, NT, kBK>(bf, Sb, wn0, k0, lane);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) Math::round(af[mt]);
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) Math::round(bf[nt]);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) Math::mma(acc[mt][nt], af[mt], bf[nt]);
        }
        read_stage = read_stage + 1 == kStages ? 0 : read_stage + 1;
        write_stage = write_stage + 1 == kStages ? 0 : write_stage + 1;
      }
      // All copies (the last groups are empty) and all reads done before the next tile's
      // prologue refills the ring.
      cp_async_wait<0>();
      __syncthreads();

      // Epilogue: alpha, beta (C read only when beta != 0), bias, ReLU (NaN stays NaN).
      // acc[mt][nt][2h + e] is C[m0 + wm0 + 16 mt + g + 8h, n0 + wn0 + 8 nt + 2t + e].
      const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = wm0 + mt * 16 + g + 8 * h;
          if (r >= m_left) continue;
          float* c_row = C + (m0 + r) * p.ldc + n0;
#pragma unroll
          for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const int c = wn0 + nt * 8 + 2 * t4 + e;
              if (c >= n_left) continue;
              float v = p.alpha * acc[mt][nt][2 * h + e];
              if (p.beta != 0.f) v += p.beta * c_row[c];
              if (p.bias) v += p.bias[n0 + c];
              if (p.relu && v < 0.f) v = 0.f;
              c_row[c] = v;
            }
        }
    }
  }
}

// The conversion pass: dst (rows, ld_dst) = op(src) (rows, cols) in the tensor cores' format,
// for each batch item, columns [cols, ld_dst) zero; op(src)(r, c) = src[r * ld + c], or
// src[c * ld + r] when transposed. Out is uint16_t (BF16 bits, round to nearest even) or float
// (a plain copy: the wgmma kernel's tensor cores truncate FP32 to TF32 as they read it).
template <class Out>
struct KMajorCopy {
  const float* src; int64_t ld, stride;  // stride: elements between batch items
  int64_t rows, cols;
  Out* dst; int64_t ld_dst, stride_dst;
  int64_t batch;
};

constexpr int kConvertThreads = 256;

__device__ __forceinline__ uint16_t rounded(float x, uint16_t*) { return to_bf16(x); }
__device__ __forceinline__ float rounded(float x, float*) { return x; }  // wgmma truncates as it reads

// The transposed pass. A block of 256 threads (8 warps) moves 64 x 64 tiles through shared
// memory: warp w reads src rows c0 + w + 8 i (i < 8), each lane two elements 32 apart, so a warp
// load is one 128-byte line along src's contiguous index, and writes dst rows r0 + w + 8 i the
// same way along dst's; each thread has 16 loads in flight before the barrier. The +1 column
// keeps the column-wise shared accesses on distinct banks. Tiles are visited diagonally (x
// shifted by y) so that the blocks running together do not all hit the same DRAM channels
// through src's large power-of-two row pitch.
constexpr int kTransTile = 64;

template <class Out>
__global__ void __launch_bounds__(kConvertThreads) to_kmajor_transposed_kernel(const KMajorCopy<Out> p) {
  __shared__ float tile[kTransTile][kTransTile + 1];  // tile[cl][rl] = op(src)(r0 + rl, c0 + cl)
  const int lane = static_cast<int>(threadIdx.x) & 31, warp = static_cast<int>(threadIdx.x) >> 5;
  const int64_t tiles_c = (p.ld_dst + kTransTile - 1) / kTransTile;
  // Grid-stride loops over batch items (z), row tiles (y) and column tiles (x); every thread
  // runs the same iterations, so the barriers are reached by all.
  for (int64_t b = blockIdx.z; b < p.batch; b += gridDim.z) {
    const float* s = p.src + b * p.stride;
    Out* d = p.dst + b * p.stride_dst;
    for (int64_t ty = blockIdx.y; ty * kTransTile < p.rows; ty += gridDim.y)
      for (int64_t tx = blockIdx.x; tx < tiles_c; tx += gridDim.x) {
        const int64_t r0 = ty * kTransTile, c0 = (tx + ty) % tiles_c * kTransTile;
        float v[8][2];
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int64_t c = c0 + warp + 8 * i, r = r0 + lane + 32 * h;
            v[i][h] = (c < p.cols && r < p.rows) ? s[c * p.ld + r] : 0.f;
          }
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
          for (int h = 0; h < 2; ++h) tile[warp + 8 * i][lane + 32 * h] = v[i][h];
        __syncthreads();
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int64_t r = r0 + warp + 8 * i, c = c0 + lane + 32 * h;
            if (r < p.rows && c < p.ld_dst) d[r * p.ld_dst + c] = rounded(tile[lane + 32 * h][warp + 8 * i], d);
          }
        __syncthreads();
      }
  }
}

// The conversion pass without a transpose (op(src) rows contiguous in src) as a stream: a thread
// converts 8 consecutive elements of one row, with 16-byte loads when the source rows are 16-byte
// aligned and one 16-byte BF16 store (two for FP32), so both sides move whole sectors. Threads
// run along a row (x), rows over items * rows (y), both grid-stride.
constexpr int kRowThreads = 128;

__device__ __forceinline__ void store8(uint16_t* d, const float (&v)[8]) {
  uint32_t w[4];
#pragma unroll
  for (int e = 0; e < 4; ++e) w[e] = uint32_t{to_bf16(v[2 * e])} | (uint32_t{to_bf16(v[2 * e + 1])} << 16);
  *reinterpret_cast<uint4*>(d) = make_uint4(w[0], w[1], w[2], w[3]);
}

__device__ __forceinline__ void store8(float* d, const float (&v)[8]) {
  reinterpret_cast<float4*>(d)[0] = make_float4(v[0], v[1], v[2], v[3]);
  reinterpret_cast<float4*>(d)[1] = make_float4(v[4], v[5], v[6], v[7]);
}

template <class Out>
__global__ void __launch_bounds__(kRowThreads) to_kmajor_rows_kernel(const KMajorCopy<Out> p, bool src_vec) {
  const int64_t groups = (p.ld_dst + 7) / 8;
  for (int64_t rr = blockIdx.y; rr < p.batch * p.rows; rr += gridDim.y) {
    const int64_t b = rr / p.rows, r = rr - b * p.rows;
    const float* s = p.src + b * p.stride + r * p.ld;
    Out* d = p.dst + b * p.stride_dst + r * p.ld_dst;
    for (int64_t g = static_cast<int64_t>(blockIdx.x) * kRowThreads + threadIdx.x; g < groups;
         g += static_cast<int64_t>(gridDim.x) * kRowThreads) {
      const int64_t c0 = 8 * g;
      float v[8];
      if (src_vec && c0 + 8 <= p.cols) {
        const float4 x = __ldg(reinterpret_cast<const float4*>(s + c0)), y = __ldg(reinterpret_cast<const float4*>(s + c0 + 4));
        v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w, v[4] = y.x, v[5] = y.y, v[6] = y.z, v[7] = y.w;
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] = c0 + e < p.cols ? s[c0 + e] : 0.f;  // 0 past cols
      }
      if (c0 + 8 <= p.ld_dst) {
        store8(d + c0, v);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e)
          if (c0 + e < p.ld_dst) d[c0 + e] = rounded(v[e], d);
      }
    }
  }
}

[[noreturn]] void bad(const std::string& msg) { throw std::invalid_argument("gemm_tc: " + msg); }

std::string str(int64_t v) { return std::to_string(v); }

void validate(const GemmDesc& d) {
  if (d.dtype != DType::f32)
    bad(std::string("dtype must be float32 (TF32/BF16 tensor cores on FP32 tensors), got ") + dtype_name(d.dtype));
  check_gemm_desc(d, "gemm_tc");
}

// Grid-dimension limits: x up to 2^31 - 1, y and z up to 65535 (the kernels loop over the rest).
constexpr int64_t kMaxGridX = 2147483647, kMaxGridYZ = 65535;

int device_attribute(cudaDeviceAttr attr, int device) {
  int value = 0;
  check(cudaDeviceGetAttribute(&value, attr, device), "cudaDeviceGetAttribute");
  return value;
}

template <class Elem>
TcParams<Elem> params_of(const GemmDesc& d, const Elem* A, int64_t lda, int64_t stride_a, const Elem* B,
                         int64_t ldb, int64_t stride_b) {
  TcParams<Elem> p;
  p.M = d.M;
  p.N = d.N;
  p.K = d.K;
  p.alpha = static_cast<float>(d.alpha);
  p.beta = static_cast<float>(d.beta);
  p.A = A;
  p.lda = lda;
  p.stride_a = stride_a;
  p.B = B;
  p.ldb = ldb;
  p.stride_b = stride_b;
  p.C = static_cast<float*>(d.C);
  p.ldc = d.ldc;
  p.stride_c = d.stride_c;
  p.batch = d.batch;
  p.bias = static_cast<const float*>(d.bias);
  p.relu = d.relu;
  return p;
}

template <class Math, class Tile, bool TRANS_A, bool TRANS_B, int VEC>
void launch_mma(const TcParams<typename Math::Elem>& p) {
  using P = Plan<Math, Tile, TRANS_A, TRANS_B>;
  const auto kernel = gemm_tc_kernel<Math, Tile, TRANS_A, TRANS_B, VEC>;
  // Over 48 KiB of dynamic shared memory needs the opt-in, per kernel and device; done once per
  // device (bit d of opted_in; devices past 63 simply ask every time).
  static std::atomic<uint64_t> opted_in{0};
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  const uint64_t bit = device < 64 ? uint64_t{1} << device : 0;
  if (!(opted_in.load(std::memory_order_relaxed) & bit)) {
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, P::kSmemBytes),
          "cudaFuncSetAttribute (gemm_tc shared memory)");
    opted_in.fetch_or(bit, std::memory_order_relaxed);
  }
  const int64_t tiles = ((p.M + Tile::BM - 1) / Tile::BM) * ((p.N + Tile::BN - 1) / Tile::BN);
  const dim3 grid(static_cast<unsigned>(std::min(tiles, kMaxGridX)), 1,
                  static_cast<unsigned>(std::min(p.batch, kMaxGridYZ)));
  kernel<<<grid, Tile::kThreads, P::kSmemBytes, current_stream()>>>(p);
  const std::string name = std::string("gemm_") + Math::kName + "_mma_" + str(Tile::BM) + "x" + str(Tile::BN) +
                           "x" + str(Tile::BK) + "_cuda (trans_a = " + str(TRANS_A) + ", trans_b = " +
                           str(TRANS_B) + ", copy = " + str(VEC * static_cast<int>(sizeof(typename Math::Elem))) +
                           " B)";
  check_launch(name.c_str());
}

template <class Math, class Tile, int VEC>
void launch_any_trans(const GemmDesc& d, const TcParams<typename Math::Elem>& p) {
  if (d.trans_a) {
    if (d.trans_b)
      launch_mma<Math, Tile, true, true, VEC>(p);
    else
      launch_mma<Math, Tile, true, false, VEC>(p);
  } else {
    if (d.trans_b)
      launch_mma<Math, Tile, false, true, VEC>(p);
    else
      launch_mma<Math, Tile, false, false, VEC>(p);
  }
}

// Whether an FP32 operand takes 16-byte copies: its start, rows and batch items 16-byte aligned.
bool aligned16(const void* x, int64_t ld, int64_t stride) {
  return reinterpret_cast<uintptr_t>(x) % 16 == 0 && ld % 4 == 0 && stride % 4 == 0;
}

void run_tf32(const GemmDesc& d, int tile) {
  const auto p = params_of<float>(d, static_cast<const float*>(d.A), d.lda, d.stride_a,
                                  static_cast<const float*>(d.B), d.ldb, d.stride_b);
  // 4-byte copies always take the 64-tile: in the 128-tile their 16 predicated copies an
  // operand do not fit the 128 registers (ptxas spilled).
  if (!(aligned16(d.A, d.lda, d.stride_a) && aligned16(d.B, d.ldb, d.stride_b)))
    launch_any_trans<Tf32Math, TcTile64, 1>(d, p);
  else if (tile == 128)
    launch_any_trans<Tf32Math, TcTile128, 4>(d, p);
  else
    launch_any_trans<Tf32Math, TcTile64, 4>(d, p);
}

// A scratch block from the caching allocator, returned when it goes out of scope (the release
// is stream-ordered: kernels queued before it still read the block safely).
struct Scratch {
  void* ptr = nullptr;
  int device = 0;
  Scratch(size_t nbytes, int dev) : ptr(allocate(nbytes, dev)), device(dev) {}
  ~Scratch() {
    if (ptr) release(ptr, device);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

// dst (items, rows, ld_dst) <- op(src) (rows, cols) per item, rounded to Out's format (trans: op(src)
// is src's transpose).
template <class Out>
void convert_kmajor(const float* src, int64_t ld, int64_t stride, bool trans, int64_t rows, int64_t cols,
                    int64_t items, Out* dst, int64_t ld_dst) {
  KMajorCopy<Out> c{src, ld, stride, rows, cols, dst, ld_dst, rows * ld_dst, items};
  if (trans) {
    const dim3 grid(static_cast<unsigned>(std::min((ld_dst + kTransTile - 1) / kTransTile, kMaxGridX)),
                    static_cast<unsigned>(std::min((rows + kTransTile - 1) / kTransTile, kMaxGridYZ)),
                    static_cast<unsigned>(std::min(items, kMaxGridYZ)));
    to_kmajor_transposed_kernel<Out><<<grid, kConvertThreads, 0, current_stream()>>>(c);
  } else {
    // dst rows are 16-byte aligned by construction (ld_dst a multiple of 8 BF16 or 4 FP32, and
    // scratch blocks are); src rows are when its start, ld and item stride are.
    const bool src_vec = reinterpret_cast<uintptr_t>(src) % 16 == 0 && ld % 4 == 0 && stride % 4 == 0;
    const int64_t groups = (ld_dst + 7) / 8;
    const dim3 grid(static_cast<unsigned>(std::min<int64_t>((groups + kRowThreads - 1) / kRowThreads, 64)),
                    static_cast<unsigned>(std::min(items * rows, kMaxGridYZ)));
    to_kmajor_rows_kernel<Out><<<grid, kRowThreads, 0, current_stream()>>>(c, src_vec);
  }
  const bool bf16 = sizeof(Out) == 2;
  check_launch(bf16 ? (trans ? "to_bf16_cuda (transposed)" : "to_bf16_cuda")
                    : (trans ? "to_tf32_cuda (transposed)" : "to_tf32_cuda"));
}

void run_bf16(const GemmDesc& d, int tile) {
  // op(A) as (items_a, M, Kp) and op(B)^T as (items_b, N, Kp): both depth-contiguous, rows
  // 16-byte aligned. A stride of 0 (one matrix for every batch item) converts once.
  const int64_t Kp = (d.K + 7) / 8 * 8;
  const int64_t items_a = d.stride_a == 0 ? 1 : d.batch, items_b = d.stride_b == 0 ? 1 : d.batch;
  const int device = current_device();
  Scratch a16(static_cast<size_t>(items_a * d.M * Kp) * 2, device);  // empty when K == 0
  Scratch b16(static_cast<size_t>(items_b * d.N * Kp) * 2, device);
  if (d.K > 0) {
    convert_kmajor(static_cast<const float*>(d.A), d.lda, d.stride_a, d.trans_a, d.M, d.K, items_a,
                 static_cast<uint16_t*>(a16.ptr), Kp);
    convert_kmajor(static_cast<const float*>(d.B), d.ldb, d.stride_b, !d.trans_b, d.N, d.K, items_b,
                 static_cast<uint16_t*>(b16.ptr), Kp);
  }
  const auto p = params_of<uint16_t>(d, static_cast<const uint16_t*>(a16.ptr), std::max<int64_t>(Kp, 1),
                                     items_a == 1 ? 0 : d.M * Kp, static_cast<const uint16_t*>(b16.ptr),
                                     std::max<int64_t>(Kp, 1), items_b == 1 ? 0 : d.N * Kp);
  if (tile == 128)
    launch_mma<Bf16Math, TcTile128, false, true, 8>(p);
  else
    launch_mma<Bf16Math, TcTile64, false, true, 8>(p);
}

// On Hopper: gemm_wgmma, with each operand that is not already K-contiguous and 16-byte aligned
// FP32 first converted into K-major scratch (Kp = K rounded up to 16 bytes, the TMA's row
// alignment). TF32: both operands may stay as they are (op(A) = A not transposed, op(B) = B
// transposed); the copies are exact, since the tensor cores truncate every FP32 to TF32 as they
// read it. BF16: op(A) may stay FP32 when N <= kBf16InPlaceMaxN (the kernel then rounds it to
// BF16 in registers and waits for each slice's wgmma: ~12 % slower in the GEMM, which the saved
// pass over A (6 bytes an element of A, ~ 1/N of the GEMM's time) outweighs only for narrow C;
// H100, ms, conversion first vs A in place: 2048^3 0.055 vs 0.047, 4096^3 0.289-0.294 vs
// 0.278-0.285, 8192^3 1.75-1.84 vs 2.01-2.03, 8192x2048x512 0.066 vs 0.058); B is always
// converted to BF16. K > 0.
constexpr int64_t kBf16InPlaceMaxN = 4096;

template <class Out>
void run_wgmma(const GemmDesc& d) {
#ifndef DLCORE_WITH_WGMMA
  (void)d;
  bad("this build has no sm_90a code (the wgmma kernel)");
#else
  constexpr int es = static_cast<int>(sizeof(Out));
  constexpr int64_t kAlign = 16 / es;
  const int64_t Kp = (d.K + kAlign - 1) / kAlign * kAlign;
  const int device = current_device();
  // op(X) (rows, K) per item: in place (FP32) when allowed and possible, else converted into
  // `scratch` (allocated here); `in_place` says which.
  auto operand = [&](const void* x, int64_t ld, int64_t stride, bool k_major, int64_t rows, bool may_stay,
                     std::unique_ptr<Scratch>& scratch, bool& in_place) {
    const int64_t items = stride == 0 ? 1 : d.batch;
    in_place = may_stay && k_major && wgmma_operand_aligned(x, ld, items == 1 ? 0 : stride, 4);
    if (in_place) return WgmmaOperand{x, ld, stride, items, d.K};
    scratch = std::make_unique<Scratch>(static_cast<size_t>(items * rows * Kp) * es, device);
    convert_kmajor(static_cast<const float*>(x), ld, stride, !k_major, rows, d.K, items,
                   static_cast<Out*>(scratch->ptr), Kp);
    return WgmmaOperand{scratch->ptr, Kp, rows * Kp, items, Kp};
  };
  std::unique_ptr<Scratch> a_scratch, b_scratch;
  bool a_in_place = false, b_in_place = false;
  WgmmaGemm g;
  g.bf16 = es == 2;
  g.M = d.M;
  g.N = d.N;
  g.K = d.K;
  g.A = operand(d.A, d.lda, d.stride_a, !d.trans_a, d.M, !g.bf16 || d.N <= kBf16InPlaceMaxN, a_scratch, a_in_place);
  g.B = operand(d.B, d.ldb, d.stride_b, d.trans_b, d.N, !g.bf16, b_scratch, b_in_place);
  g.a_f32 = g.bf16 && a_in_place;
  g.C = static_cast<float*>(d.C);
  g.ldc = d.ldc;
  g.stride_c = d.stride_c;
  g.batch = d.batch;
  g.alpha = static_cast<float>(d.alpha);
  g.beta = static_cast<float>(d.beta);
  g.bias = static_cast<const float*>(d.bias);
  g.relu = d.relu;
  gemm_wgmma(g);
#endif
}

// Whether this build and device run gemm_wgmma (tile 256).
bool wgmma_here(int device) {
#ifdef DLCORE_WITH_WGMMA
  return gemm_wgmma_available(device);
#else
  (void)device;
  return false;
#endif
}

// THE RULE (tile 0), with S = the device's SMs and tiles(BM x BN) = ceil(M / BM) ceil(N / BN) batch:
//   1. Hopper (wgmma_here), K > 0 and tiles(128 x 256) >= S / 2: the wgmma kernel (256);
//   2. else 128 x 128 mma.sync once tiles(128 x 128) >= S (every SM gets a block);
//   3. else the 64 x 64 mma.sync tile: four times the blocks beat the larger tile's reuse.
int auto_tile(const GemmDesc& d, int device) {
  const int sms = device_attribute(cudaDevAttrMultiProcessorCount, device);
  auto tiles = [&](int bm, int bn) {
    return static_cast<double>((d.M + bm - 1) / bm) * static_cast<double>((d.N + bn - 1) / bn) *
           static_cast<double>(d.batch);
  };
  if (d.K > 0 && wgmma_here(device) && 2 * tiles(kWgmmaBM, kWgmmaBN) >= sms) return 256;
  return tiles(128, 128) >= sms ? 128 : 64;
}

}  // namespace

const char* math_mode_name(MathMode mode) { return mode == MathMode::tf32 ? "tf32" : "bf16"; }

bool gemm_tc_supported(int device) {
  return device_attribute(cudaDevAttrComputeCapabilityMajor, device) >= 8;
}

void gemm_tc_with_tile(const GemmDesc& d, MathMode mode, int tile) {
  validate(d);
  if (mode != MathMode::tf32 && mode != MathMode::bf16) bad("unknown math mode " + str(static_cast<int>(mode)));
  if (tile != 0 && tile != 64 && tile != 128 && tile != 256)
    bad("tile = " + str(tile) + " is not one of 0 (auto), 64, 128 (mma.sync), 256 (wgmma, sm_90)");
  if (d.M == 0 || d.N == 0 || d.batch == 0) return;
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  if (!gemm_tc_supported(device))
    bad(std::string(math_mode_name(mode)) + " needs a GPU of compute capability 8.0 or newer (sm_80+); cuda:" +
        str(device) + " is older (use matmul precision \"highest\")");
  if (tile == 0) tile = auto_tile(d, device);
  if (tile == 256) {
    if (!wgmma_here(device))
      bad("tile = 256 (the wgmma kernel) needs an sm_90 GPU (H100/H200) and a build for sm_90a; cuda:" +
          str(device) + " has compute capability " +
          str(device_attribute(cudaDevAttrComputeCapabilityMajor, device)) + "." +
          str(device_attribute(cudaDevAttrComputeCapabilityMinor, device)));
    if (d.K == 0) {
      tile = 64;  // nothing to multiply: the mma.sync kernel's K == 0 path writes beta C + bias
    } else {
      if (mode == MathMode::tf32)
        run_wgmma<float>(d);
      else
        run_wgmma<uint16_t>(d);
      return;
    }
  }
  if (mode == MathMode::tf32)
    run_tf32(d, tile);
  else
    run_bf16(d, tile);
}

void gemm_tc(const GemmDesc& d, MathMode mode) { gemm_tc_with_tile(d, mode, 0); }

}  // namespace dlcore::cuda
