// Tile probe: how close the AVX-512 float register tile of the GEMM and the fused LSTM step
// (6 rows x 64 columns, 24 zmm accumulators) comes to the FMA peak when its B panel sits in L1,
// L2 or L3, with nothing else in the loop (no epilogue, no packing, no edges).
//
// What: per depth k, 4 aligned loads of the panel row B[k][0:64), then for each of 6 rows one
// broadcast of A[r][k] and 4 FMAs (the inner loop of csrc/cpu/rnn/lstm_fused_avx512.cpp's
// fused_tile and of the 6x64 GEMM micro-kernel), over K depths, repeated. The panel is K x 64
// floats (256 * K bytes), so K = 64 keeps it in L1 (16 KiB), K = 1024 in L2 (256 KiB), and
// K = 16384 streams it from L3 (4 MiB). The reference is the same 24 FMAs per depth with A and
// B held in registers: the core's FMA peak as this loop shape can reach it.
// Prints per K the panel's KiB, GFLOP/s of the tile and of the reference, and their ratio (best
// of 5 runs each).
// Build and run (no dlcore needed; one thread):
//     g++ -O3 -march=native bench/tile_probe.cpp -o /tmp/tile_probe && /tmp/tile_probe
// Measured (2-core Zen 4 VM, 2026-11-27, two runs; bench/RESULTS.md "Session of 2026-11-27
// (12:42-)"): the tile at 0.98-1.00 of the reference for every K, panel in L1, L2 or L3 alike
// (115-117 GFLOP/s from K = 512 up, against the 117.3 of bench/peak_probe.py); at K = 64 both
// read 108-109, the call and the accumulators' loads and stores then weighing ~7 %. So the
// broadcasts and the panel's loads cost the loop nothing here: what the LSTM step and the GEMM
// lose against the peak is outside this loop (epilogue, packing, edges, per-call work).
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

constexpr int kRows = 6, kVecs = 4, kWidth = 16 * kVecs;  // the tile: 6 x 64 floats
constexpr long kFmasPerRun = 400'000'000;                // zmm FMAs per timed run (~0.1 s)
constexpr int kRuns = 5;

float sink;  // the accumulators' sum, so the compiler keeps the loops

// acc (6 x 4 zmm) += A[:, 0:K) B[0:K, 0:64), B row-major (K, 64), A's rows K floats apart.
[[gnu::noinline]] void tile(long K, const float* A, const float* B, __m512 (&out)[kRows][kVecs]) {
  __m512 acc[kRows][kVecs];  // a local copy, so that the accumulators live in registers
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVecs; ++v) acc[r][v] = out[r][v];
  const float* a[kRows];
  for (int r = 0; r < kRows; ++r) a[r] = A + r * K;
  for (long k = 0; k < K; ++k, B += kWidth) {
    __m512 b[kVecs];
    for (int v = 0; v < kVecs; ++v) b[v] = _mm512_load_ps(B + 16 * v);
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r][k]);
      for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm512_fmadd_ps(ar, b[v], acc[r][v]);
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVecs; ++v) out[r][v] = acc[r][v];
}

// The same 24 FMAs per depth on registers only (the peak this loop shape reaches).
[[gnu::noinline]] void registers_only(long K, __m512 (&out)[kRows][kVecs]) {
  __m512 acc[kRows][kVecs];
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVecs; ++v) acc[r][v] = out[r][v];
  __m512 a = _mm512_set1_ps(1.0f - 1e-7f), b = _mm512_set1_ps(1e-7f);
  for (long k = 0; k < K; ++k) {
    asm volatile("" : "+v"(a), "+v"(b));  // a and b stay "unknown", so every FMA is issued
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r)
      for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm512_fmadd_ps(a, b, acc[r][v]);
  }
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVecs; ++v) out[r][v] = acc[r][v];
}

template <class Body>
double best_gflops(long K, Body body) {
  const long reps = std::max(1L, kFmasPerRun / (K * kRows * kVecs));
  double best = 0.0;
  for (int run = 0; run < kRuns; ++run) {
    __m512 acc[kRows][kVecs];
    for (auto& row : acc)
      for (auto& v : row) v = _mm512_setzero_ps();
    const auto t0 = std::chrono::steady_clock::now();
    for (long r = 0; r < reps; ++r) body(acc);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    alignas(64) float lanes[16];
    for (auto& row : acc)
      for (auto& v : row) {
        _mm512_store_ps(lanes, v);
        for (float f : lanes) sink += f;
      }
    best = std::max(best, 32.0 * K * kRows * kVecs * reps / s / 1e9);
  }
  return best;
}

}  // namespace

int main() {
  std::printf("%8s %10s %14s %18s %8s\n", "K", "panel KiB", "tile GFLOP/s", "registers GFLOP/s", "ratio");
  for (long K : {64L, 128L, 512L, 1024L, 2048L, 4096L, 16384L}) {
    std::vector<float> a(kRows * K, 1e-3f);
    float* b = static_cast<float*>(std::aligned_alloc(64, K * kWidth * sizeof(float)));
    std::fill(b, b + K * kWidth, 1e-3f);
    const double t = best_gflops(K, [&](__m512 (&acc)[kRows][kVecs]) { tile(K, a.data(), b, acc); });
    const double r = best_gflops(K, [&](__m512 (&acc)[kRows][kVecs]) { registers_only(K, acc); });
    std::printf("%8ld %10ld %14.1f %18.1f %8.3f\n", K, K * kWidth * 4 / 1024, t, r, t / r);
    std::free(b);
  }
  std::printf("(sink %g)\n", sink);
}
