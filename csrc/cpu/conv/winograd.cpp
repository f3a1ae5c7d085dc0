// Winograd F(2x2, 3x3) convolution, float32: conv2d forward, backward_input and backward_weight
// for the shapes dlcore::winograd_fits accepts (3x3, stride 1, dilation 1, padding <= 2,
// groups 1). Called from csrc/cpu/ref/conv2d.cpp when algo='winograd' or when algo='auto' and
// winograd_preferred() says so.
//
// Math (Lavin & Gray 2016). Each output tile of 2x2 reads a 4x4 input tile d (tiles overlap by
// 2; reads outside x are zero):
//   V = B^T d B,  U = G g G^T,  M[xi] = sum_c U[xi](co, c) V[xi](c, tile),  Y = A^T M A (+ bias)
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1];  xi = 4 * row + column of the 4x4 transformed tile.
// 16 independent GEMMs of (C_out x C) x (C x tiles) replace the 9 taps: 16/36 of the multiplies.
// backward_input: at stride 1 it is this forward conv of grad_y with w'[c, co] = w[co, c]
// flipped in (kh, kw) and padding 2 - pad. backward_weight is the adjoint: for each tile,
// Z = A grad_y_tile A^T (4x4), dU[xi](co, c) = sum_tiles Z[xi](co, t) V[xi](c, t), and
// grad_w = G^T dU G.
//
// Layout. Tiles are numbered over (n, tile row, tile column) and taken in blocks of kBlock = 64
// per thread (the last block shorter). For one block, the input transform writes V straight
// into the GEMM micro-kernel's packed B layout (csrc/cpu/gemm/README.md): V (16, kPanels, C, NR),
// 64-byte aligned, so V[xi] columns [p*NR, p*NR+NR) are one (C, NR) panel (kPanels = 64 / NR:
// 1 on AVX-512, 4 on AVX2, 8 in the generic copy). U is packed once per call into A panels:
// U (16, C, Copad) with, per depth block [c0, c1) (C split into equal blocks of at most 256),
// ceil(C_out / MR) panels (c1 - c0, MR) starting at c0 * Copad. The micro-kernel is called
// directly, C_out in passes of kRowBlock = 8 * MR = 48 rows: it writes M (16, 48, 64) and the
// output transform reads it back from L1/L2 right away. V (16 x C x 64 floats: 256 KiB at
// C = 64, 512 KiB at 128) and M (192 KiB) stay in the 1 MiB L2; U (16 x C x C_out, 1 MiB at
// 128) streams from L3 once per block, 3 KiB per 6 x 64 x C micro-kernel call.
// The transforms are portable C++ that GCC vectorises in each ISA copy (only the micro-kernel
// differs per ISA). Per channel and run of tiles in one tile row, each of the 4 input rows is
// copied zero-padded (the padding and the partial right tile need no other case), h = d B is
// taken with stride-2 reads over the run rounded up to 16 tiles, and V = B^T h over whole
// panels; the output transform computes all 64 columns into two interleaved output rows and
// copies each run out. Every loop but the copies has a trip count that is a multiple of the
// vector width: the first version's scalar remainder loops (runs of 28 or 14 tiles) and
// memcpy/memset calls on a few dozen floats had made the transforms as slow as the GEMMs.
// backward_weight transforms blocks of kBlockW = 128 tiles into plain V (16, C, 128) and
// Z (16, C_out, 128 + 16) and accumulates dU[xi] += Z[xi] V[xi]^T with one batched call of this
// ISA's gemm<float> per block (it packs both; measured fast enough, see Speed).
//
// Threads: one OpenMP region over the blocks of tiles; each thread has its own V, M, Z
// buffers (allocated before the region, so a failed allocation raises). Forward and
// backward_input take blocks dynamically, so a thread whose core another process shares takes
// fewer (statically split, bench_conv's 2-thread 56x56 forward read 51-58 ms instead of 24
// with other processes on ~30-50 % of the CPUs; dynamic: 24-30 ms at 30-36 %); every output is
// computed by one thread in a fixed order, so results do not depend on the thread count or the
// schedule. backward_weight: blocks split statically, per-thread dU, zeroed, summed in thread
// order (bitwise reproducible for a given thread count). Blocks shrink (block_tiles) when
// there are fewer than threads.
//
// Preconditions (checked by the bindings): float32, C-contiguous, every size >= 1, OH, OW >= 1.
// Outputs are overwritten; bias may be null. inf/NaN inputs spread over the whole tile(s) they
// fall in (each output of a tile mixes all 16 inputs), unlike the direct definition.
//
// Auto rule (winograd_preferred), measured at 1 thread on this Zen 4 (AVX-512) against the
// faster of the gemm and direct paths, forced (ms ratio Winograd / best; a busy machine, so
// +-10 %). cin, cout, side, tiles: channels in and out, min(OH, OW) and N * ceil(OH / 2) *
// ceil(OW / 2) of the conv the tiles run over (backward_input: C_out, C and H, W).
//   forward, backward_input: min(cin, cout) >= 16, tiles >= 96 and (cin*cout >= 32*32 and
//     side >= 28, or cin*cout >= 64*64 and side >= 12). E.g. N x C x side -> C_out:
//     32x32x28->32 0.90, 8x32x56->32 0.70, 4x32x16->32 0.92 and 8x32x16->32 1.00 (AVX2
//     1.25; no), 8x32x14->32 1.06 (no), 16x32x12->32 1.12 (no),
//     8x64x12->64 0.87, 8x64x10->64 0.98 (no), 8x64x7->64 1.15 (no), 16x16x32->64 0.73
//     (backward_input 0.99), 32x24x28->24 0.92 (no: marginal), 32x16x56->16 0.96 (no),
//     64x16x14->16 1.49 (no), LeNet-size 64x{1,3,6,8}x{14..32}->{8,16} 1.07-3.5 (no);
//     8x128x14->128 0.60, 32x256x14->256 0.49, 1x64x56->64 0.56, 2x64x16->64 0.71. One small
//     image pays the weight transform and setup: 1x64x12->64 (36 tiles) 1.09, 1x32x16->32
//     (64 tiles) 1.05 (both no), 1x128x14->128 (49 tiles) 0.89 (no: conservative).
//   backward_weight (the GEMM is a reduction over tiles through gemm<float>, plus a private
//     16 x C x C_out dU per thread to zero and sum): the same with tiles >= 256 and
//     (cin*cout >= 48*48 and side >= 28, or cin*cout >= 128*128 and side >= 14).
//     8x48x28->48 0.79, 16x64x28->64 0.82, 1x64x56->64 0.75, 8x128x14->128 0.77,
//     32x256x14->256 0.67; 16x64x14->64 0.99 (no), 32x32x28->32 1.14 (no), 8x32x56->32 0.97
//     (no), 8x64x12->64 1.13 (no), 1x128x14->128 1.61 (no: 49 tiles), 1x64x28->64 0.89 (no).
//   At 2 threads the rows above could not be timed (other engineers' builds on the 2 cores);
//   the benchmark shapes scale ~2x (see Speed). The AVX2 and generic copies (same rule) on
//   4x64x56->64 / 4x128x28->128: forward 0.67 / 0.55 (AVX2), 0.55 / 0.54 (generic);
//   backward_weight 0.91 / 0.78, 0.59 / 0.56.
//
// Error, max |err| / (K eps max_tensor sum|x||w|), K = 9 C (forward), 9 C_out (backward_input),
// N OH OW (backward_weight), eps = 2^-24, random normal inputs, Winograd vs the gemm path:
//   2x64x28x28->64: forward 0.0028 vs 0.0026, backward_input 0.0023 vs 0.0016,
//   backward_weight 0.0008 vs 0.0005; 1x64x56x56->64: 0.0024 vs 0.0028, 0.0026 vs 0.0014,
//   0.0003 vs 0.0002. Elementwise (sum|x||w| of that output) the benchmark shapes stay under
//   0.004 in all directions, but on tiny images an output whose own sum is small (mostly
//   padding) carries the rounding of its tile's larger inputs: up to 8x that bound for
//   backward_weight on 2x3x2x2 (gemm 0.17), hence the test bound 2 K eps max(sum|x||w|)
//   (worst measured over the test cases: 0.48 of it).
//
// Tested: pytest tests/kernels/test_conv_winograd.py (float64 oracle on every ISA at 1 and 2
// threads: partial tiles, H, W = 1..5, pad 0/1/2 and pad_h != pad_w, C 1..300, C_out 1..70,
// runs longer than a block; integer-exact cases (bitwise); determinism; the auto rule).
// Timed: bench/bench_conv.py --cases conv3x3_56,conv3x3_28 (against torch), and per direction
// _C.conv2d_forward(..., algo='winograd') vs algo='gemm', interleaved.
// Speed (ms, N = 32, Winograd / gemm path, AVX-512, min of 5-7 interleaved calls):
//   1 thread:  56x56 C = C_out = 64: forward 46 / 85, backward_input 46 / 80, backward_weight
//              55 / 88; 28x28 C = C_out = 128: 41 / 77, 42 / 75, 47 / 77.
//   2 threads: 56x56: 24 / 45, 24 / 41, 30 / 49; 28x28: 21 / 40, 20 / 37, 26 / 42.
// bench/bench_conv.py (ms, dlcore / torch's faster layout, torch/dlcore; 2026-11-26, rows with
// other processes under ~35 % of the CPUs; the 2-thread rows swing 2-3x for both libraries
// when they are not):
//   conv3x3_56  1 thr fwd 46.2 / 64.7 (1.40x), fwd+bwd 151.6 / 234.0 (1.54x);
//               2 thr fwd 24.4 / 32.9 (1.35x, torch from the previous run), fwd+bwd 78.4 / 121.8
//               (1.55x).
//   conv3x3_28  1 thr fwd 41.6 / 64.1 (1.54x), fwd+bwd 131.0 / 209.6 (1.60x);
//               2 thr fwd 21.9 / 32.2 (1.47x), fwd+bwd 72.5 / 120.4 (1.66x).
// (before: the gemm path, 83.8 / 265 / 44 / 148 and 76.9 / 230 / 39.1 / 118.5.)
// Bound: GEMM phase 16 * 2 * C * C_out * tiles flops (4/9 of the direct 2 * 9 * C * C_out * P
// when OH, OW are even): 56x56, C = C_out = 64, N = 32 is 3.29 GFLOP, 28 ms at 117 GFLOP/s;
// timers around the phases (1 thread, busy machine) gave the GEMMs ~62 % of the forward
// (~110 GFLOP/s), the input transform ~27 %, the output transform ~11 %.
#include "cpu/conv/winograd.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "cpu/aligned_buffer.h"
#include "cpu/gemm/ukernels.h"
#include "cpu/kernels.h"

namespace dlcore::cpu::DLCORE_ISA {
namespace {

constexpr int MR = GemmTile<float>::MR;
constexpr int NR = GemmTile<float>::NR;
constexpr int64_t kPanels = NR >= 64 ? 1 : 64 / NR;  // B panels per block of tiles
constexpr int64_t kBlock = kPanels * NR;             // tiles per forward block: 64
constexpr int64_t kBlockW = 128;                     // tiles per backward_weight block
constexpr int64_t kMaxKc = 256;                      // depth block of the micro-kernel
constexpr int64_t kRowBlock = 8 * MR;                // output channels per M pass

// One forward conv: x (N, C, H, W) -> y (N, K, OH, OW) with padding (ph, pw).
struct Geo {
  int64_t N, C, H, W, K, OH, OW, ph, pw;
  int64_t TH, TW, tiles;  // tile rows / columns per image, tiles over all images
  bool relu = false;      // the output transform stores max(Y, 0) (forward's fused epilogue)
};

Geo make_geo(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t OH, int64_t OW,
             int64_t ph, int64_t pw) {
  Geo g{N, C, H, W, K, OH, OW, ph, pw, (OH + 1) / 2, (OW + 1) / 2, 0};
  g.tiles = N * g.TH * g.TW;
  return g;
}

// Calls f(n, th, tw, j, len) for the runs of tiles [t0, t0 + nb) that share a tile row:
// tiles (n, th, tw .. tw + len - 1) are block columns j .. j + len - 1.
template <class F>
void for_tile_runs(const Geo& g, int64_t t0, int64_t nb, F f) {
  const int64_t per_image = g.TH * g.TW;
  for (int64_t j = 0; j < nb;) {
    const int64_t t = t0 + j, n = t / per_image, r = t % per_image;
    const int64_t th = r / g.TW, tw = r % g.TW;
    const int64_t len = std::min(nb - j, g.TW - tw);
    f(n, th, tw, j, len);
    j += len;
  }
}

constexpr int64_t kLanes = 16;  // run lengths are rounded up to this (one zmm of floats)

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// dst[m] = row[c0 + m] for m < n, zero outside [0, W) or for a null row (a padding row).
// Plain loops, not memcpy / memset: a few dozen floats per call, where the library calls'
// overhead measured as a third of the input transform.
inline void padded_copy(const float* row, int64_t W, int64_t c0, int64_t n, float* __restrict dst) {
  const int64_t lo = std::min(n, std::max<int64_t>(0, -c0));
  const int64_t hi = row ? std::max(lo, std::min(n, W - c0)) : lo;
  for (int64_t m = 0; m < lo; ++m) dst[m] = 0.f;
  for (int64_t m = lo; m < hi; ++m) dst[m] = row[c0 + m];
  for (int64_t m = hi; m < n; ++m) dst[m] = 0.f;
}

// Input transform of tiles [t0, t0 + nb) of x: V(xi, c, j) at
// dst[((xi * npan + j / PW) * C + c) * PW + j % PW] (PW = NR, npan = kPanels: the packed B
// panels of the micro-kernel; PW = kBlockW, npan = 1: plain rows for gemm); the
// ceil(nb / PW) panels that hold tiles are written, whole.
// Per channel, each run of tiles in one tile row takes its 4 input rows into a zero-padded
// copy P, then h = d B (4 values per row and tile, stride-2 reads of P) over the run rounded up
// to kLanes (the excess lands in the next run's columns, rewritten next, or past nb); then
// V = B^T h over whole panels. Every loop but the copies has a trip count that is a multiple
// of the vector width, so nothing runs in scalar remainder loops.
// scratch: input_scratch(PW, nb) floats.
template <int64_t PW>
void input_transform(const Geo& g, const float* x, int64_t t0, int64_t nb, int64_t npan,
                     float* dst, float* scratch) {
  const int64_t used = (nb + PW - 1) / PW;      // panels holding tiles
  const int64_t hs = used * PW + kLanes;        // row stride of h
  float* h = scratch;                           // (4 rows i, 4 columns q, hs)
  float* P = scratch + 16 * hs;                 // (4, ps)
  const int64_t ps = 2 * (nb + kLanes) + 2;
  const int64_t xs = npan * g.C * PW;           // stride of xi in dst
  for (int64_t c = 0; c < g.C; ++c) {
    for_tile_runs(g, t0, nb, [&](int64_t n, int64_t th, int64_t tw, int64_t j, int64_t len) {
      const float* plane = x + (n * g.C + c) * g.H * g.W;  // (H, W)
      const int64_t lr = round_up(len, kLanes);
      for (int i = 0; i < 4; ++i) {
        const int64_t ih = 2 * th - g.ph + i;
        float* __restrict p = P + i * ps;  // (2 * lr + 2): columns 2 tw - pw ..
        padded_copy(ih >= 0 && ih < g.H ? plane + ih * g.W : nullptr, g.W, 2 * tw - g.pw,
                    2 * lr + 2, p);
        float* __restrict h0 = h + (4 * i) * hs + j;
        float* __restrict h1 = h0 + hs;
        float* __restrict h2 = h1 + hs;
        float* __restrict h3 = h2 + hs;
#pragma omp simd
        for (int64_t k = 0; k < lr; ++k) {
          const float d0 = p[2 * k], d1 = p[2 * k + 1], d2 = p[2 * k + 2], d3 = p[2 * k + 3];
          h0[k] = d0 - d2;
          h1[k] = d1 + d2;
          h2[k] = d2 - d1;
          h3[k] = d1 - d3;
        }
      }
    });
    for (int64_t pan = 0; pan < used; ++pan) {
      const float* __restrict hp = h + pan * PW;
      float* __restrict out = dst + (pan * g.C + c) * PW;
      for (int q = 0; q < 4; ++q) {
        const float* __restrict r0 = hp + q * hs;  // h[i = 0][q]
        const float* __restrict r1 = r0 + 4 * hs;
        const float* __restrict r2 = r1 + 4 * hs;
        const float* __restrict r3 = r2 + 4 * hs;
        float* __restrict v0 = out + q * xs;  // V[xi = q], [4 + q], [8 + q], [12 + q]
        float* __restrict v1 = v0 + 4 * xs;
        float* __restrict v2 = v1 + 4 * xs;
        float* __restrict v3 = v2 + 4 * xs;
#pragma omp simd
        for (int64_t k = 0; k < PW; ++k) {
          v0[k] = r0[k] - r2[k];
          v1[k] = r1[k] + r2[k];
          v2[k] = r2[k] - r1[k];
          v3[k] = r1[k] - r3[k];
        }
      }
    }
  }
}

constexpr int64_t input_scratch(int64_t PW, int64_t nb) {
  return 16 * ((nb + PW - 1) / PW * PW + kLanes) + 4 * (2 * (nb + kLanes) + 2);
}

// U (16, C, Copad) packed as A panels (see the header) from w: forward w (K, C, 3, 3); with
// `flip`, w (C, K, 3, 3) read as w'[k, c] = w[c, k] flipped (backward_input).
void pack_weights(const Geo& g, const float* w, bool flip, float* U) {
  const int64_t Copad = (g.K + MR - 1) / MR * MR;
  const int64_t kblocks = (g.C + kMaxKc - 1) / kMaxKc;
#pragma omp parallel for schedule(static) if (g.K * g.C >= 4096)
  for (int64_t co = 0; co < g.K; ++co)
    for (int64_t kb = 0; kb < kblocks; ++kb) {
      const int64_t c0 = kb * g.C / kblocks, c1 = (kb + 1) * g.C / kblocks, kc = c1 - c0;
      for (int64_t c = c0; c < c1; ++c) {
        float f[3][3];  // g[co, c]
        for (int kh = 0; kh < 3; ++kh)
          for (int kw = 0; kw < 3; ++kw)
            f[kh][kw] = flip ? w[((c * g.K + co) * 3 + 2 - kh) * 3 + 2 - kw]
                             : w[((co * g.C + c) * 3 + kh) * 3 + kw];
        float t[4][3];  // G g
        for (int j = 0; j < 3; ++j) {
          t[0][j] = f[0][j];
          t[1][j] = 0.5f * (f[0][j] + f[1][j] + f[2][j]);
          t[2][j] = 0.5f * (f[0][j] - f[1][j] + f[2][j]);
          t[3][j] = f[2][j];
        }
        float* dst = U + c0 * Copad + (co / MR) * kc * MR + (c - c0) * MR + co % MR;
        const int64_t xs = g.C * Copad;
        for (int i = 0; i < 4; ++i) {
          dst[(4 * i + 0) * xs] = t[i][0];
          dst[(4 * i + 1) * xs] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
          dst[(4 * i + 2) * xs] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
          dst[(4 * i + 3) * xs] = t[i][2];
        }
      }
  }
}

// Y = A^T M A + bias (then max(Y, 0) when g.relu) for output channels [co0, co0 + rows) of
// tiles [t0, t0 + nb):
// M (16, kRowBlock, kBlock). Per channel, all kBlock columns (a fixed trip count) are
// transformed into two interleaved output rows Y0, Y1 (2 * kBlock each), then each run of
// tiles is one memcpy per output row. scratch: 4 * kBlock floats.
void output_transform(const Geo& g, const float* M, int64_t co0, int64_t rows, int64_t t0,
                      int64_t nb, const float* bias, float* y, float* scratch) {
  constexpr int64_t xs = kRowBlock * kBlock;
  float* __restrict Y0 = scratch;  // (kBlock, 2): output row 2 th, columns 2 tw, 2 tw + 1
  float* __restrict Y1 = scratch + 2 * kBlock;  // output row 2 th + 1
  for (int64_t r = 0; r < rows; ++r) {
    const float* __restrict m = M + r * kBlock;
    const float b = bias ? bias[co0 + r] : 0.f;
#pragma omp simd
    for (int64_t k = 0; k < kBlock; ++k) {
      float a[4], s[4];
      for (int i = 0; i < 4; ++i) {
        const float m0 = m[(4 * i) * xs + k], m1 = m[(4 * i + 1) * xs + k],
                    m2 = m[(4 * i + 2) * xs + k], m3 = m[(4 * i + 3) * xs + k];
        a[i] = m0 + m1 + m2;
        s[i] = m1 - m2 - m3;
      }
      Y0[2 * k] = a[0] + a[1] + a[2] + b;
      Y0[2 * k + 1] = s[0] + s[1] + s[2] + b;
      Y1[2 * k] = a[1] - a[2] - a[3] + b;
      Y1[2 * k + 1] = s[1] - s[2] - s[3] + b;
    }
    if (g.relu) {
#pragma omp simd
      for (int64_t k = 0; k < 4 * kBlock; ++k) scratch[k] = scratch[k] <= 0.f ? 0.f : scratch[k];
    }
    for_tile_runs(g, t0, nb, [&](int64_t n, int64_t th, int64_t tw, int64_t j, int64_t len) {
      const int64_t oh = 2 * th, ow = 2 * tw;
      const int64_t cols = std::min(2 * len, g.OW - ow);
      float* row0 = y + ((n * g.K + co0 + r) * g.OH + oh) * g.OW + ow;  // (cols)
      std::memcpy(row0, Y0 + 2 * j, cols * sizeof(float));
      if (oh + 1 < g.OH) std::memcpy(row0 + g.OW, Y1 + 2 * j, cols * sizeof(float));
    });
  }
}

// Tiles per block: `cap`, or fewer (a multiple of kLanes) when that leaves a thread idle, e.g.
// one small image at inference (blocks only partition the tiles; forward results do not
// depend on them).
int64_t block_tiles(int64_t tiles, int64_t cap) {
  const int64_t threads = omp_get_max_threads();
  return std::min(cap, std::max(kLanes, round_up((tiles + threads - 1) / threads, kLanes)));
}

// y (N, K, OH, OW) := conv(x, U) + bias, U packed by pack_weights.
void forward_tiles(const Geo& g, const float* x, const float* U, const float* bias, float* y) {
  constexpr GemmUkernel<float>* ukernel = GemmTile<float>::kernel;
  const int64_t Copad = (g.K + MR - 1) / MR * MR;
  const int64_t kblocks = (g.C + kMaxKc - 1) / kMaxKc;
  const int64_t tpb = block_tiles(g.tiles, kBlock);
  const int64_t blocks = (g.tiles + tpb - 1) / tpb;
  const int team = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), blocks));
  const int64_t v_size = 16 * kPanels * g.C * NR;
  const int64_t m_size = 16 * kRowBlock * kBlock;
  const int64_t s_size = std::max(input_scratch(NR, kBlock), 4 * kBlock);
  const int64_t per_thread = (v_size + m_size + s_size + 15) / 16 * 16;
  const auto scratch = aligned_buffer<float>(team * per_thread, /*zero=*/true);
#pragma omp parallel num_threads(team)
  {
    float* V = scratch.get() + omp_get_thread_num() * per_thread;  // (16, kPanels, C, NR)
    float* M = V + v_size;                                         // (16, kRowBlock, kBlock)
    float* tmp = M + m_size;                                       // (s_size)
    // Dynamic: a thread that shares its core with another process (a busy 2-core machine)
    // takes fewer blocks instead of holding up the other; outputs do not depend on which
    // thread computes a block.
#pragma omp for schedule(dynamic)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t t0 = blk * tpb, nb = std::min(tpb, g.tiles - t0);
      input_transform<NR>(g, x, t0, nb, kPanels, V, tmp);
      for (int64_t co0 = 0; co0 < g.K; co0 += kRowBlock) {
        const int64_t rows = std::min(kRowBlock, g.K - co0);
        for (int xi = 0; xi < 16; ++xi)
          for (int64_t kb = 0; kb < kblocks; ++kb) {
            const int64_t c0 = kb * g.C / kblocks, kc = (kb + 1) * g.C / kblocks - c0;
            const float* Ub = U + (xi * g.C + c0) * Copad;  // panels (kc, MR)
            for (int64_t p = 0; p * NR < nb; ++p) {
              const float* Vp = V + ((xi * kPanels + p) * g.C + c0) * NR;  // (kc, NR)
              const int64_t n = std::min<int64_t>(NR, nb - p * NR);
              for (int64_t i = 0; i < rows; i += MR)
                ukernel(kc, Ub + (co0 + i) / MR * kc * MR, Vp,
                        M + (xi * kRowBlock + i) * kBlock + p * NR, kBlock,
                        std::min<int64_t>(MR, rows - i), n, 1.f, kb ? 1.f : 0.f, nullptr, false);
            }
          }
        output_transform(g, M, co0, rows, t0, nb, bias, y, tmp);
      }
    }
  }
}

// Z = A dy A^T of tiles [t0, t0 + nb) of grad_y (N, K, OH, OW) (zero past OH, OW):
// Z(xi, co, j) at dst[(xi * K + co) * ldz + j], ldz >= nb + kLanes (runs are rounded up to
// kLanes; the excess lands in the next run's columns or past nb). Per channel and run, the
// two grad_y rows are copied zero-padded (R0, R1) and read with stride 2.
// scratch: 4 * (nb + kLanes) floats.
void grad_output_transform(const Geo& g, const float* grad_y, int64_t t0, int64_t nb,
                           float* dst, int64_t ldz, float* scratch) {
  const int64_t xs = g.K * ldz;
  float* R0 = scratch;                       // (2 * (nb + kLanes)): output row 2 th
  float* R1 = scratch + 2 * (nb + kLanes);   // output row 2 th + 1
  for (int64_t co = 0; co < g.K; ++co) {
    for_tile_runs(g, t0, nb, [&](int64_t n, int64_t th, int64_t tw, int64_t j, int64_t len) {
      const int64_t lr = round_up(len, kLanes), oh = 2 * th;
      const float* row0 = grad_y + ((n * g.K + co) * g.OH + oh) * g.OW;  // (OW)
      padded_copy(row0, g.OW, 2 * tw, 2 * lr, R0);
      padded_copy(oh + 1 < g.OH ? row0 + g.OW : nullptr, g.OW, 2 * tw, 2 * lr, R1);
      const float* __restrict r0 = R0;
      const float* __restrict r1 = R1;
      float* __restrict out = dst + co * ldz + j;
#pragma omp simd
      for (int64_t k = 0; k < lr; ++k) {
        const float g00 = r0[2 * k], g01 = r0[2 * k + 1], g10 = r1[2 * k], g11 = r1[2 * k + 1];
        // c[r] = dy[r] A^T: (g_r0, g_r0 + g_r1, g_r0 - g_r1, -g_r1); Z = A c.
        const float c0[4] = {g00, g00 + g01, g00 - g01, -g01};
        const float c1[4] = {g10, g10 + g11, g10 - g11, -g11};
        for (int q = 0; q < 4; ++q) {
          out[(0 + q) * xs + k] = c0[q];
          out[(4 + q) * xs + k] = c0[q] + c1[q];
          out[(8 + q) * xs + k] = c0[q] - c1[q];
          out[(12 + q) * xs + k] = -c1[q];
        }
      }
    });
  }
}

}  // namespace

void winograd_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                      float* y) {
  // x (N, C, H, W), w (C_out, C, 3, 3), bias (C_out) or null, y (N, C_out, OH, OW)
  Geo g = make_geo(s.N, s.C, s.H, s.W, s.C_out, s.OH, s.OW, s.pad_h, s.pad_w);
  g.relu = s.relu;
  const auto U = aligned_buffer<float>(16 * g.C * ((g.K + MR - 1) / MR * MR), /*zero=*/true);
  pack_weights(g, w, false, U.get());
  forward_tiles(g, x, U.get(), bias, y);
}

void winograd_backward_input(const Conv2dShape& s, const float* w, const float* grad_y,
                             float* grad_x) {
  // w (C_out, C, 3, 3), grad_y (N, C_out, OH, OW), grad_x (N, C, H, W): the forward conv of
  // grad_y with w' (C, C_out, 3, 3) = w transposed and flipped, padding 2 - pad.
  const Geo g = make_geo(s.N, s.C_out, s.OH, s.OW, s.C, s.H, s.W, 2 - s.pad_h, 2 - s.pad_w);
  const auto U = aligned_buffer<float>(16 * g.C * ((g.K + MR - 1) / MR * MR), /*zero=*/true);
  pack_weights(g, w, true, U.get());
  forward_tiles(g, grad_y, U.get(), nullptr, grad_x);
}

void winograd_backward_weight(const Conv2dShape& s, const float* x, const float* grad_y,
                              float* grad_w) {
  // x (N, C, H, W), grad_y (N, C_out, OH, OW), grad_w (C_out, C, 3, 3)
  const Geo g = make_geo(s.N, s.C, s.H, s.W, s.C_out, s.OH, s.OW, s.pad_h, s.pad_w);
  const int64_t tpb = block_tiles(g.tiles, kBlockW);
  const int64_t blocks = (g.tiles + tpb - 1) / tpb;
  const int team = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), blocks));
  const int64_t du_size = 16 * g.K * g.C;
  constexpr int64_t ldz = kBlockW + kLanes;
  const int64_t v_size = 16 * g.C * kBlockW, z_size = 16 * g.K * ldz;
  const int64_t s_size = std::max(input_scratch(kBlockW, kBlockW), 4 * (kBlockW + kLanes));
  const int64_t per_thread = round_up(du_size + v_size + z_size + s_size, 16);
  // zeroed: every dU starts at 0
  const auto scratch = aligned_buffer<float>(team * per_thread, /*zero=*/true);
#pragma omp parallel num_threads(team)
  {
    float* dU = scratch.get() + omp_get_thread_num() * per_thread;  // (16, K, C)
    float* V = dU + du_size;                                        // (16, C, kBlockW)
    float* Z = V + v_size;                                          // (16, K, ldz)
    float* tmp = Z + z_size;                                        // (s_size)
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t t0 = blk * tpb, nb = std::min(tpb, g.tiles - t0);
      input_transform<kBlockW>(g, x, t0, nb, 1, V, tmp);
      grad_output_transform(g, grad_y, t0, nb, Z, ldz, tmp);
      GemmArgs<float> a;
      a.trans_b = true;
      a.M = g.K, a.N = g.C, a.K = nb;
      a.alpha = 1.f, a.beta = 1.f;
      a.A = Z, a.lda = ldz, a.B = V, a.ldb = kBlockW, a.C = dU, a.ldc = g.C;
      a.batch = 16, a.stride_a = g.K * ldz, a.stride_b = g.C * kBlockW;
      a.stride_c = g.K * g.C;
      gemm<float>(a);
    }
  }
  // grad_w[co, c] = G^T (sum over threads of dU[:, co, c]) G, threads in order.
#pragma omp parallel for schedule(static) if (g.K * g.C >= 4096)
  for (int64_t i = 0; i < g.K * g.C; ++i) {
    float u[16];
    for (int xi = 0; xi < 16; ++xi) {
      float acc = 0.f;
      for (int t = 0; t < team; ++t) acc += scratch.get()[t * per_thread + xi * g.K * g.C + i];
      u[xi] = acc;
    }
    float t[3][4];  // G^T dU
    for (int q = 0; q < 4; ++q) {
      t[0][q] = u[q] + 0.5f * (u[4 + q] + u[8 + q]);
      t[1][q] = 0.5f * (u[4 + q] - u[8 + q]);
      t[2][q] = 0.5f * (u[4 + q] + u[8 + q]) + u[12 + q];
    }
    float* out = grad_w + i * 9;  // (3, 3)
    for (int r = 0; r < 3; ++r) {
      out[r * 3 + 0] = t[r][0] + 0.5f * (t[r][1] + t[r][2]);
      out[r * 3 + 1] = 0.5f * (t[r][1] - t[r][2]);
      out[r * 3 + 2] = 0.5f * (t[r][1] + t[r][2]) + t[r][3];
    }
  }
}

bool winograd_preferred(const Conv2dShape& s, ConvDirection dir) {
  // The rule and its measurements: see "Auto rule" in the header. cin, cout, (oh, ow): the
  // channels in and out and the output size of the conv the tiles run over.
  const bool bwi = dir == ConvDirection::kBackwardInput;
  const int64_t cin = bwi ? s.C_out : s.C, cout = bwi ? s.C : s.C_out;
  const int64_t oh = bwi ? s.H : s.OH, ow = bwi ? s.W : s.OW;
  const int64_t side = std::min(oh, ow), channels = cin * cout;
  const int64_t tiles = s.N * ((oh + 1) / 2) * ((ow + 1) / 2);
  if (std::min(cin, cout) < 16) return false;
  if (dir == ConvDirection::kBackwardWeight)
    return tiles >= 256 &&
           ((channels >= 48 * 48 && side >= 28) || (channels >= 128 * 128 && side >= 14));
  return tiles >= 96 &&
         ((channels >= 32 * 32 && side >= 28) || (channels >= 64 * 64 && side >= 12));
}

}  // namespace dlcore::cpu::DLCORE_ISA
