// gemm_wgmma on Hopper (sm_90a): the tensor-core GEMM of gemm_wgmma.h (A (M, K) and B (N, K)
// K-contiguous, BF16 or TF32, FP32 sums, C row-major FP32 with alpha, beta, bias and ReLU).
// Compiled for sm_90a alone (its own CMake target, cmake/cuda.cmake); on anything else the
// kernel body is empty and the host never launches it (gemm_wgmma_available).
//
// Algorithm: a persistent grid (one block per SM) walks the 128 x 256 output tiles in groups of
// kGroupM row tiles (blocks running together share A and B panels in L2). A block is three
// warpgroups of 128 threads with separate roles:
//   warpgroup 0, the producer: one thread streams the K slices of a tile's A (128 rows) and B
//     (256 rows) into a kStages-deep ring of shared-memory stages with the TMA engine
//     (cp.async.bulk.tensor, tensor maps built on the host), and runs on into the next tile's
//     slices while the consumers finish the last one; it gives its registers away (setmaxnreg).
//   warpgroups 1 and 2, the consumers: each owns 64 rows x 256 columns of the tile in 128 FP32
//     accumulators a thread; per slice, 4 wgmma.mma_async of 64 x 256 x (32 bytes of K) read A
//     and B straight from shared memory. The wgmma of one slice run while the warps wait for the
//     next; a slice is handed back to the producer as soon as the wgmma after it were issued and
//     those before it finished (wgmma.wait_group 1). The epilogue stores from the accumulators.
//     In the BF16-from-FP32 configuration (Bf16F32AMma) A stays FP32: the consumers load their A
//     fragments from shared memory, round them to BF16 and pass them in registers, waiting for
//     each slice's wgmma before the next (a second register set with wait_group 1 measured
//     slower: with three 64 KiB stages the producer then runs only one slice ahead).
// A slice row is 128 bytes of K (32 TF32, 64 BF16): exactly the 128-byte swizzle, which the TMA
// writes and the wgmma descriptor names, so shared memory has no bank conflicts. Handshakes are
// mbarriers: full[s] (the producer's expect_tx + the TMA's completed bytes) and empty[s] (one
// arrival from each consumer warp). Edges: the TMA zero-fills rows and depths past the tensor's
// extent, so M, N and K tails need no code in the main loop; the epilogue checks bounds.
//
// Determinism: every C element is one warpgroup's chain of wgmma over the K slices in order, no
// split-K, no atomics: the same bits every run on a given GPU and build.
//
// Resources (nvcc 13, -Xptxas -v, sm_90a): 384 threads, 168 registers at entry (producer 40,
// consumers 232 after setmaxnreg), no spills, no stack; shared memory 4 x 48 KiB stages (3 x 64
// KiB for Bf16F32AMma) + 1 KiB of alignment slack (the 128-byte swizzle needs 1024-byte aligned
// stages): one block an SM.
// Bound (H100 SXM): dense TF32 ~495 TFLOP/s, BF16 ~990. Per slice the two consumers do
// 128 x 256 x K_slice MACs while reading 48 KiB of shared memory, within its bandwidth.
// Tested through gemm_tc (tests/cuda/test_cuda_gemm_tc.py forces this kernel as tile 256);
// timed by bench/bench_cuda_gemm.py beside cuBLAS.
#include "cuda/gemm_wgmma.h"

#include <cuda.h>
#include <cuda_bf16.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/common.cuh"

namespace dlcore::cuda {
namespace {

constexpr int kBM = kWgmmaBM, kBN = kWgmmaBN;
constexpr int kRowBytes = 128;            // one TMA box row: 128 bytes of K (the swizzle's width)
constexpr int kBoxBytesA = kBM * kRowBytes;  // 16 KiB: one box of A (128 rows)
constexpr int kThreads = 384;             // producer + two consumer warpgroups
constexpr int kGroupM = 8;                // row tiles per L2 group
constexpr int kConsumerWarps = 8;         // arrivals on an empty barrier
constexpr int kBBytes = kBN * kRowBytes;  // 32 KiB: B's part of a stage
constexpr int kAcc = kBN / 2;             // accumulators a consumer thread: 64 x 256 / 128

struct WgParams {
  int M, N, k_tiles, tiles_m, tiles_n;
  int a_items, b_items;  // 1: broadcast over the batch (coordinate 0), else one per item
  int64_t batch;
  float* C;
  int64_t ldc, stride_c;
  float alpha, beta;
  const float* bias;
  int relu;
};

// ---- device primitives (PTX, sm_90a) --------------------------------------------------------

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void mbar_init(uint64_t* bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count) : "memory");
}

// The producer announces the bytes the TMA will deliver for this phase (and arrives once).
__device__ __forceinline__ void mbar_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(bytes)
               : "memory");
}

__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(bar)) : "memory");
}

// Spins until the phase of parity `parity` of the barrier has completed.
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(smem_u32(bar)), "r"(parity)
        : "memory");
  } while (!done);
}

// One TMA box (K slice x rows x 1 item) from the tensor `map` into shared memory at dst; the
// bytes complete on `bar`. Coordinates: depth, row, batch item (elements).
__device__ __forceinline__ void tma_load(void* dst, const CUtensorMap* map, uint64_t* bar, int k, int row, int item) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], "
      "[%5];\n" ::"r"(smem_u32(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(k), "r"(row), "r"(item), "r"(smem_u32(bar))
      : "memory");
}

// A wgmma shared-memory matrix descriptor for a K-major operand in the 128-byte swizzle: rows of
// 128 bytes, 8-row (1024-byte) atoms stacked along M or N (stride 1024 B; the leading offset is
// unused by this layout). Adding 2 to the descriptor moves its start 32 bytes along K.
__device__ __forceinline__ uint64_t smem_desc(const void* p) {
  const uint64_t addr = smem_u32(p);
  return ((addr & 0x3FFFF) >> 4) | (uint64_t{1} << 16) | (uint64_t{1024 >> 4} << 32) | (uint64_t{1} << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}

// Keeps the compiler from moving accumulator reads or writes across a wgmma fence or wait (the
// asynchronous wgmma writes them behind its back).
__device__ __forceinline__ void fence_accumulators(float (&d)[kAcc]) {
#pragma unroll
  for (int i = 0; i < kAcc; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

#define DLCORE_WGMMA_D128                                                                           \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "                           \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "                  \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "                   \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "                   \
  "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "                   \
  "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "                   \
  "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "       \
  "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}"
#define DLCORE_F8(i) \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])
#define DLCORE_F128                                                                                        \
  DLCORE_F8(0), DLCORE_F8(8), DLCORE_F8(16), DLCORE_F8(24), DLCORE_F8(32), DLCORE_F8(40), DLCORE_F8(48),     \
      DLCORE_F8(56), DLCORE_F8(64), DLCORE_F8(72), DLCORE_F8(80), DLCORE_F8(88), DLCORE_F8(96), DLCORE_F8(104), \
      DLCORE_F8(112), DLCORE_F8(120)

// The three kernel configurations. Each names its operands' element types, how many 128-byte TMA
// boxes of A a stage holds, the stages, and the warpgroup's part of one K slice (`slice`, or
// shared_a_slice below for A in shared memory):
// d (64 x 256) += A (64 x slice) @ B (256 x slice)^T (d := on the tile's first slice), issued as
// 4 wgmma.mma_async of 64 x 256 x 32 bytes of B's K. B always comes from shared memory through
// descriptors. Accumulator layout (PTX ISA, wgmma .f32 D fragments), warp w of the warpgroup,
// lane l = 4 g + t: d[4 j + 2 i + c] is row 16 w + g + 8 i, column 8 j + 2 t + c.
//   Bf16Mma, Tf32Mma: A from shared memory too (descriptors), 4 stages of 48 KiB; a slice is 64
//     BF16 or 32 TF32 depths.
//   Bf16F32AMma: A stays FP32 in global and shared memory (two boxes a stage: depths 0-31 and
//     32-63 of the slice, 64 KiB stages, 3 of them); each consumer thread loads its A fragments
//     (the mma.m16n8k16 A layout of its warp's 16 rows) with 8-byte shared loads, rounds them to
//     BF16 (nearest even, as the conversion pass does) and passes them in registers. This saves
//     gemm_tc the BF16 conversion pass over A. The registers are rewritten every slice, so its
//     wgmma are waited for before the next slice (the two consumers still overlap each other).
struct Bf16Mma {
  static constexpr int kBytesA = 2, kBytesB = 2, kBoxesA = 1, kStages = 4;
  static constexpr bool kRegisterA = false;
  static constexpr CUtensorMapDataType kTmaA = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, kTmaB = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  __device__ static void mma(float (&d)[kAcc], uint64_t a, uint64_t b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 " DLCORE_WGMMA_D128 ", %128, %129, p, 1, 1, 0, 0;\n}\n"
        : DLCORE_F128
        : "l"(a), "l"(b), "r"(accumulate));
  }
};

struct Tf32Mma {
  static constexpr int kBytesA = 4, kBytesB = 4, kBoxesA = 1, kStages = 4;
  static constexpr bool kRegisterA = false;
  static constexpr CUtensorMapDataType kTmaA = CU_TENSOR_MAP_DATA_TYPE_FLOAT32, kTmaB = CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
  __device__ static void mma(float (&d)[kAcc], uint64_t a, uint64_t b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k8.f32.tf32.tf32 " DLCORE_WGMMA_D128 ", %128, %129, p, 1, 1;\n}\n"
        : DLCORE_F128
        : "l"(a), "l"(b), "r"(accumulate));
  }
};

// One slice of a configuration with A in shared memory (Bf16Mma, Tf32Mma): 4 wgmma, both operands
// through descriptors, each step 32 bytes further along K.
template <class Cfg>
__device__ __forceinline__ void shared_a_slice(float (&d)[kAcc], const unsigned char* a_stage,
                                               const unsigned char* b_stage, int consumer, bool first) {
  const uint64_t da = smem_desc(a_stage + consumer * 64 * kRowBytes), db = smem_desc(b_stage);
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) Cfg::mma(d, da + 2 * kk, db + 2 * kk, (first && kk == 0) ? 0 : 1);
}

// Two FP32 at shared address `addr` -> one BF16 pair (round to nearest even), the lower depth in
// the low half. volatile: it stays after the barrier wait that made the stage readable.
__device__ __forceinline__ uint32_t bf16_pair(uint32_t addr) {
  float x, y;
  asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];\n" : "=f"(x), "=f"(y) : "r"(addr) : "memory");
  const __nv_bfloat162 h = __floats2bfloat162_rn(x, y);
  return *reinterpret_cast<const uint32_t*>(&h);
}

struct Bf16F32AMma {
  static constexpr int kBytesA = 4, kBytesB = 2, kBoxesA = 2, kStages = 3;
  static constexpr bool kRegisterA = true;
  static constexpr CUtensorMapDataType kTmaA = CU_TENSOR_MAP_DATA_TYPE_FLOAT32, kTmaB = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  __device__ static void mma(float (&d)[kAcc], const uint32_t (&a)[4], uint64_t b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %133, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 " DLCORE_WGMMA_D128
        ", {%128, %129, %130, %131}, %132, p, 1, 1, 0;\n}\n"
        : DLCORE_F128
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));
  }
  // Depth step kk (16 depths) of the slice: box kk / 2, depths 16 (kk % 2) + 2 t (+1, +8, +9) of
  // it, rows g and g + 8 of the warp's 16; the 16-byte chunk c of row r sits at chunk c ^ (r % 8)
  // (the TMA's 128-byte swizzle), and r % 8 == g here.
  __device__ static void slice(float (&d)[kAcc], const unsigned char* a_stage, const unsigned char* b_stage,
                               int consumer, bool first) {
    const int lane = static_cast<int>(threadIdx.x) & 31, warp = (static_cast<int>(threadIdx.x) >> 5) & 3;
    const int g = lane >> 2, t = lane & 3;
    const uint32_t rows = smem_u32(a_stage) + (consumer * 64 + 16 * warp + g) * kRowBytes + 8 * (t & 1);
    uint32_t a[4][4];
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      const uint32_t box = rows + (kk / 2) * kBoxBytesA;
      const int c = 4 * (kk % 2) + (t >> 1);
      a[kk][0] = bf16_pair(box + ((c ^ g) << 4));
      a[kk][1] = bf16_pair(box + 8 * kRowBytes + ((c ^ g) << 4));
      a[kk][2] = bf16_pair(box + (((c + 2) ^ g) << 4));
      a[kk][3] = bf16_pair(box + 8 * kRowBytes + (((c + 2) ^ g) << 4));
    }
    const uint64_t db = smem_desc(b_stage);
    wgmma_fence();  // after the fragment registers are written, before the wgmma read them
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) mma(d, a[kk], db + 2 * kk, (first && kk == 0) ? 0 : 1);
  }
};

template <class Cfg>
struct Layout {
  static constexpr int kABytes = Cfg::kBoxesA * kBoxBytesA;
  static constexpr int kStageBytes = kABytes + kBBytes;
  static constexpr int kSmemBytes = Cfg::kStages * kStageBytes + 1024;  // + slack to align stages to 1024 B
  static constexpr int kSliceK = kRowBytes / Cfg::kBytesB;              // depths a slice (32 TF32, 64 BF16)
  static constexpr int kBoxK = kRowBytes / Cfg::kBytesA;                // depths a box of A
};

// Tile t of the persistent walk -> (batch item, row tile, column tile): items one after another;
// inside one, groups of kGroupM row tiles, column-major inside a group.
__device__ __forceinline__ void tile_coords(int64_t t, const WgParams& p, int64_t& b, int& tm, int& tn) {
  const int64_t per_item = static_cast<int64_t>(p.tiles_m) * p.tiles_n;
  b = t / per_item;
  const int64_t r = t - b * per_item;
  const int64_t group = static_cast<int64_t>(kGroupM) * p.tiles_n;
  const int first_m = static_cast<int>(r / group) * kGroupM;
  const int rows = min(p.tiles_m - first_m, kGroupM);
  const int in = static_cast<int>(r - (r / group) * group);
  tm = first_m + in % rows;
  tn = in / rows;
}

// The consumer's epilogue: its 64 x 256 accumulators (rows m0.., columns n0..) to C.
__device__ __forceinline__ void store_tile(const float (&d)[kAcc], const WgParams& p, int64_t b, int m0, int n0) {
  const int lane = static_cast<int>(threadIdx.x) & 31, warp = (static_cast<int>(threadIdx.x) >> 5) & 3;
  const int g = lane >> 2, t = lane & 3;
  float* Cb = p.C + b * p.stride_c;
  const bool pairs = (p.ldc % 2 == 0) && (reinterpret_cast<uintptr_t>(p.C) % 8 == 0) && (p.stride_c % 2 == 0);
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int row = m0 + 16 * warp + g + 8 * i;
    if (row >= p.M) continue;
    float* c_row = Cb + static_cast<int64_t>(row) * p.ldc;
#pragma unroll
    for (int j = 0; j < kBN / 8; ++j) {
      const int col = n0 + 8 * j + 2 * t;
      if (col >= p.N) continue;
      float v0 = p.alpha * d[4 * j + 2 * i], v1 = p.alpha * d[4 * j + 2 * i + 1];
      const bool both = col + 1 < p.N;
      if (p.beta != 0.f) {
        v0 += p.beta * c_row[col];
        if (both) v1 += p.beta * c_row[col + 1];
      }
      if (p.bias) {
        v0 += p.bias[col];
        if (both) v1 += p.bias[col + 1];
      }
      if (p.relu) {
        v0 = fmaxf(v0, 0.f);
        v1 = fmaxf(v1, 0.f);
      }
      if (both && pairs) {
        *reinterpret_cast<float2*>(c_row + col) = make_float2(v0, v1);
      } else {
        c_row[col] = v0;
        if (both) c_row[col + 1] = v1;
      }
    }
  }
}

template <class Cfg>
__global__ void __launch_bounds__(kThreads, 1)
    gemm_wgmma_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_b,
                      const WgParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using L = Layout<Cfg>;
  constexpr int kStages = Cfg::kStages;
  __shared__ __align__(8) uint64_t full[kStages], empty[kStages];
  extern __shared__ unsigned char wgmma_smem_raw[];
  unsigned char* smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(wgmma_smem_raw) + 1023) & ~static_cast<uintptr_t>(1023));

  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(&full[s], 1);
      mbar_init(&empty[s], kConsumerWarps);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  const int64_t tiles = static_cast<int64_t>(p.tiles_m) * p.tiles_n * p.batch;
  const int warpgroup = static_cast<int>(threadIdx.x) / 128;
  if (warpgroup == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    if (threadIdx.x != 0) return;
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&map_a)) : "memory");
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&map_b)) : "memory");
    uint32_t it = 0;
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      int64_t b;
      int tm, tn;
      tile_coords(tile, p, b, tm, tn);
      const int item_a = p.a_items == 1 ? 0 : static_cast<int>(b), item_b = p.b_items == 1 ? 0 : static_cast<int>(b);
      for (int kt = 0; kt < p.k_tiles; ++kt, ++it) {
        const uint32_t s = it % kStages, phase = (it / kStages) & 1;
        mbar_wait(&empty[s], phase ^ 1);  // a fresh barrier passes parity 1 at once
        unsigned char* stage = smem + s * L::kStageBytes;
        mbar_expect_tx(&full[s], L::kStageBytes);
#pragma unroll
        for (int box = 0; box < Cfg::kBoxesA; ++box)
          tma_load(stage + box * kBoxBytesA, &map_a, &full[s], kt * L::kSliceK + box * L::kBoxK, tm * kBM, item_a);
        tma_load(stage + L::kABytes, &map_b, &full[s], kt * L::kSliceK, tn * kBN, item_b);
      }
    }
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
  const int consumer = warpgroup - 1;  // rows 64 consumer .. of the tile
  const bool arriving = (threadIdx.x & 31) == 0;
  float d[kAcc];
#pragma unroll
  for (int i = 0; i < kAcc; ++i) d[i] = 0.f;
  uint32_t it = 0;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    int64_t b;
    int tm, tn;
    tile_coords(tile, p, b, tm, tn);
    for (int kt = 0; kt < p.k_tiles; ++kt, ++it) {
      const uint32_t s = it % kStages, phase = (it / kStages) & 1;
      mbar_wait(&full[s], phase);
      const unsigned char* stage = smem + s * L::kStageBytes;
      fence_accumulators(d);
      if constexpr (Cfg::kRegisterA)
        Cfg::slice(d, stage, stage + L::kABytes, consumer, kt == 0);
      else
        shared_a_slice<Cfg>(d, stage, stage + L::kABytes, consumer, kt == 0);
      wgmma_commit();
      if constexpr (Cfg::kRegisterA) {
        wgmma_wait<0>();  // the A registers are rewritten next slice
        if (arriving) mbar_arrive(&empty[s]);
      } else {
        wgmma_wait<1>();  // the slice before this one is read: hand it back
        if (kt > 0 && arriving) mbar_arrive(&empty[(it - 1) % kStages]);
      }
    }
    if constexpr (!Cfg::kRegisterA) {
      wgmma_wait<0>();
      if (arriving) mbar_arrive(&empty[(it - 1) % kStages]);
    }
    fence_accumulators(d);
    store_tile(d, p, b, tm * kBM + consumer * 64, tn * kBN);
  }
#endif
}

// ---- host ------------------------------------------------------------------------------------

[[noreturn]] void bad(const std::string& msg) { throw std::invalid_argument("gemm_tc: " + msg); }

std::string str(int64_t v) { return std::to_string(v); }

// cuTensorMapEncodeTiled from the driver (found once; the runtime is linked statically, the
// driver library is not linked at all).
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found{};
    check(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &found),
          "cudaGetDriverEntryPointByVersion (cuTensorMapEncodeTiled)");
    if (found != cudaDriverEntryPointSuccess || !f)
      throw std::runtime_error("gemm_tc: the CUDA driver has no cuTensorMapEncodeTiled (needs a 12.0+ driver)");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

// The TMA's view of one operand: (items, rows, depth) of es-byte elements, boxes of one 128-byte
// row by box_rows rows, written to shared memory in the 128-byte swizzle; out-of-range reads give 0.
CUtensorMap operand_map(const WgmmaOperand& x, int64_t rows, int box_rows, int64_t es, CUtensorMapDataType type) {
  const int64_t item_bytes = x.items == 1 ? rows * x.ld * es : x.stride * es;
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(x.depth), static_cast<cuuint64_t>(rows),
                              static_cast<cuuint64_t>(x.items)};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(x.ld * es), static_cast<cuuint64_t>(item_bytes)};
  const cuuint32_t box[3] = {static_cast<cuuint32_t>(kRowBytes / es), static_cast<cuuint32_t>(box_rows), 1};
  const cuuint32_t element_strides[3] = {1, 1, 1};
  CUtensorMap map;
  const CUresult r = tensor_map_encoder()(&map, type, 3, const_cast<void*>(x.ptr), dims, strides, box,
                                          element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                          CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw std::runtime_error("gemm_tc: cuTensorMapEncodeTiled failed (error " + str(static_cast<int>(r)) +
                             ") for an operand of " + str(x.items) + " x " + str(rows) + " x " + str(x.depth) +
                             ", ld " + str(x.ld) + ", stride " + str(x.stride));
  return map;
}

template <class Cfg>
void launch(const WgmmaGemm& g, const char* name) {
  using L = Layout<Cfg>;
  const auto kernel = gemm_wgmma_kernel<Cfg>;
  static std::atomic<uint64_t> opted_in{0};  // bit d: the shared-memory opt-in done on device d
  const int device = current_device();
  const uint64_t bit = device < 64 ? uint64_t{1} << device : 0;
  if (!(opted_in.load(std::memory_order_relaxed) & bit)) {
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, L::kSmemBytes),
          "cudaFuncSetAttribute (gemm_wgmma shared memory)");
    opted_in.fetch_or(bit, std::memory_order_relaxed);
  }
  const CUtensorMap map_a = operand_map(g.A, g.M, kBM, Cfg::kBytesA, Cfg::kTmaA);
  const CUtensorMap map_b = operand_map(g.B, g.N, kBN, Cfg::kBytesB, Cfg::kTmaB);
  WgParams p;
  p.M = static_cast<int>(g.M);
  p.N = static_cast<int>(g.N);
  p.k_tiles = static_cast<int>((g.K + L::kSliceK - 1) / L::kSliceK);  // depths past K read as 0
  p.tiles_m = static_cast<int>((g.M + kBM - 1) / kBM);
  p.tiles_n = static_cast<int>((g.N + kBN - 1) / kBN);
  p.a_items = static_cast<int>(g.A.items);
  p.b_items = static_cast<int>(g.B.items);
  p.batch = g.batch;
  p.C = g.C;
  p.ldc = g.ldc;
  p.stride_c = g.stride_c;
  p.alpha = g.alpha;
  p.beta = g.beta;
  p.bias = g.bias;
  p.relu = g.relu ? 1 : 0;
  const int64_t tiles = static_cast<int64_t>(p.tiles_m) * p.tiles_n * g.batch;
  int sms = 0;
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(tiles, std::max(sms, 1)));
  kernel<<<blocks, kThreads, L::kSmemBytes, current_stream()>>>(map_a, map_b, p);
  check_launch(name);
}

}  // namespace

bool gemm_wgmma_available(int device) {
  int major = 0, minor = 0;
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute");
  check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), "cudaDeviceGetAttribute");
  return major == 9 && minor == 0;
}

bool wgmma_operand_aligned(const void* ptr, int64_t ld, int64_t stride, int es) {
  return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && (ld * es) % 16 == 0 && (stride * es) % 16 == 0;
}

void gemm_wgmma(const WgmmaGemm& g) {
  const int es_b = g.bf16 ? 2 : 4, es_a = g.bf16 && !g.a_f32 ? 2 : 4;
  if (g.M <= 0 || g.N <= 0 || g.K <= 0 || g.batch <= 0)
    bad("gemm_wgmma needs M, N, K, batch > 0, got " + str(g.M) + ", " + str(g.N) + ", " + str(g.K) + ", " +
        str(g.batch));
  constexpr int64_t kLimit = int64_t{1} << 31;
  if (g.M >= kLimit || g.N >= kLimit || g.K >= kLimit || g.batch >= kLimit)
    bad("gemm_wgmma takes dimensions below 2^31, got M = " + str(g.M) + ", N = " + str(g.N) + ", K = " + str(g.K) +
        ", batch = " + str(g.batch));
  if (g.a_f32 && !g.bf16) bad("gemm_wgmma: a_f32 (FP32 A rounded in registers) is a BF16 mode");
  for (const WgmmaOperand* x : {&g.A, &g.B}) {
    const char* name = x == &g.A ? "A" : "B";
    const int es = x == &g.A ? es_a : es_b;
    if (!wgmma_operand_aligned(x->ptr, x->ld, x->items == 1 ? 0 : x->stride, es) || x->ld < x->depth ||
        x->depth < g.K || x->depth >= kLimit)
      bad(std::string("gemm_wgmma: operand ") + name + " breaks the TMA layout (16-byte aligned rows and items, " +
          "ld >= depth >= K): ld = " + str(x->ld) + ", stride = " + str(x->stride) + ", depth = " + str(x->depth) +
          ", K = " + str(g.K));
    if (!(x->items == 1 || x->items == g.batch))
      bad(std::string("gemm_wgmma: operand ") + name + " items must be 1 or the batch " + str(g.batch) + ", got " +
          str(x->items));
  }
  if (!gemm_wgmma_available(current_device()))
    throw std::runtime_error("gemm_tc: the wgmma kernel needs an sm_90 GPU (H100/H200)");
  if (g.a_f32)
    launch<Bf16F32AMma>(g, "gemm_bf16_wgmma_128x256_f32a_cuda");
  else if (g.bf16)
    launch<Bf16Mma>(g, "gemm_bf16_wgmma_128x256_cuda");
  else
    launch<Tf32Mma>(g, "gemm_tf32_wgmma_128x256_cuda");
}

}  // namespace dlcore::cuda
