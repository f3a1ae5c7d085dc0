// Peak probe: the FMA throughput and memory bandwidth this machine can reach, so every
// "% of peak" a benchmark prints is measured on the machine that runs it.
//
// What: float32 FMA GFLOP/s per ISA (AVX2 256-bit FMA, AVX-512 512-bit FMA), the core clock
// (from a chain of dependent 1-cycle integer adds), and STREAM-style copy and triad GB/s,
// each on `threads` OpenMP threads. Prints one JSON object on stdout.
// Math: an FMA on a W-lane float32 vector is 2*W FLOP; triad a = b + s*c moves 12 bytes per
//   element, copy a = b moves 8 (STREAM counting: write-allocate traffic is not counted).
// Built and run by bench/peak_probe.py (g++ -O2 -fopenmp; ISA code is selected per function
//   with target attributes, and only ISAs the CPU reports are run):
//     python bench/peak_probe.py [--threads 1,2] [--refresh]
// Napkin math: Zen 4 has two 256-bit FMA pipes (4-cycle latency), so 8 independent chains
//   keep them busy: 2 pipes x 8 lanes x 2 FLOP = 32 FLOP/cycle/core; a 512-bit FMA issues as
//   two 256-bit halves, so AVX-512 reaches the same per-core peak. Skylake-SP class Xeons with
//   two 512-bit FMA units reach 64 FLOP/cycle with AVX-512.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// 12 accumulator chains: enough to cover 2 pipes x 4-cycle latency (8) with slack, and few
// enough that all 12 + 2 operands stay in the 16 ymm registers AVX2 has.
constexpr int kChains = 12;
constexpr int64_t kInnerIters = 1 << 14;  // FMAs per chain between clock reads

__attribute__((target("avx2,fma"))) float fma_loop_avx2(int64_t outer) {
  __m256 acc[kChains];
#pragma GCC unroll 16
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(0.001f * c);
  // acc = acc * a + b converges to b / (1 - a): no overflow, no denormals.
  const __m256 a = _mm256_set1_ps(0.9999f), b = _mm256_set1_ps(1e-4f);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < kInnerIters; ++i) {
#pragma GCC unroll 16
      for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    }
    // Keeps the compiler from collapsing the loop.
    __asm__ volatile("" : "+x"(acc[0]));
  }
  __m256 s = acc[0];
#pragma GCC unroll 16
  for (int c = 1; c < kChains; ++c) s = _mm256_add_ps(s, acc[c]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0] + out[7];
}

__attribute__((target("avx512f"))) float fma_loop_avx512(int64_t outer) {
  __m512 acc[kChains];
#pragma GCC unroll 16
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(0.001f * c);
  const __m512 a = _mm512_set1_ps(0.9999f), b = _mm512_set1_ps(1e-4f);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < kInnerIters; ++i) {
#pragma GCC unroll 16
      for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    }
    __asm__ volatile("" : "+v"(acc[0]));
  }
  __m512 s = acc[0];
#pragma GCC unroll 16
  for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
  return _mm512_reduce_add_ps(s);
}

// 64 dependent 1-cycle adds per iteration: the loop runs at one add per core cycle.
double clock_ghz() {
  const int64_t iters = 1 << 22;
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    uint64_t x = 0;
    const double t0 = omp_get_wtime();
    for (int64_t i = 0; i < iters; ++i) {
      __asm__ volatile(
          ".rept 64\n\t"
          "add $1, %0\n\t"
          ".endr"
          : "+r"(x));
    }
    const double dt = omp_get_wtime() - t0;
    best = std::max(best, 64.0 * iters / dt / 1e9);
  }
  return best;
}

// GFLOP/s of `threads` threads each running the FMA loop, best of 5 timed runs of ~0.2 s.
template <typename Loop>
double fma_gflops(Loop loop, int lanes, int threads) {
  volatile float sink = 0;
  // Calibrate: one thread, until a run lasts >= 20 ms.
  int64_t outer = 1;
  for (;;) {
    const double t0 = omp_get_wtime();
    sink = loop(outer);
    if (omp_get_wtime() - t0 > 0.02) break;
    outer *= 2;
  }
  outer *= 10;  // ~0.2 s per timed run
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads)
    { sink = loop(outer); }
    const double dt = omp_get_wtime() - t0;
    const double flop = 2.0 * lanes * kChains * kInnerIters * static_cast<double>(outer) * threads;
    best = std::max(best, flop / dt / 1e9);
  }
  (void)sink;
  return best;
}

// STREAM-style copy and triad over arrays far larger than the last-level cache.
struct Bandwidth {
  double copy_gbs = 0, triad_gbs = 0;
};

Bandwidth stream(int64_t n, int threads) {
  float* a = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));  // (n,)
  float* b = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));  // (n,)
  float* c = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));  // (n,)
  // First touch on the threads that will stream the pages.
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    a[i] = 0.0f;
    b[i] = 1.0f;
    c[i] = 2.0f;
  }
  Bandwidth bw;
  const float s = 3.0f;
  for (int rep = 0; rep < 6; ++rep) {
    double t0 = omp_get_wtime();
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) a[i] = b[i];
    double dt = omp_get_wtime() - t0;
    if (rep > 0) bw.copy_gbs = std::max(bw.copy_gbs, 8.0 * n / dt / 1e9);
    t0 = omp_get_wtime();
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
    dt = omp_get_wtime() - t0;
    if (rep > 0) bw.triad_gbs = std::max(bw.triad_gbs, 12.0 * n / dt / 1e9);
  }
  volatile float sink = a[n / 2];
  (void)sink;
  std::free(a);
  std::free(b);
  std::free(c);
  return bw;
}

}  // namespace

// Usage: peak_probe THREADS [MIB_PER_ARRAY]
int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const int64_t mib = argc > 2 ? std::atoll(argv[2]) : 256;
  const int64_t n = mib * (1 << 20) / static_cast<int64_t>(sizeof(float));
  __builtin_cpu_init();
  const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool has_avx512 = __builtin_cpu_supports("avx512f");
  std::string out = "{\"threads\": " + std::to_string(threads);
  char buf[128];
  std::snprintf(buf, sizeof buf, ", \"clock_ghz\": %.3f", clock_ghz());
  out += buf;
  out += ", \"fma_gflops\": {";
  bool first = true;
  if (has_avx2) {
    std::snprintf(buf, sizeof buf, "\"avx2\": %.2f", fma_gflops(fma_loop_avx2, 8, threads));
    out += buf;
    first = false;
  }
  if (has_avx512) {
    std::snprintf(buf, sizeof buf, "%s\"avx512\": %.2f", first ? "" : ", ",
                  fma_gflops(fma_loop_avx512, 16, threads));
    out += buf;
  }
  const Bandwidth bw = stream(n, threads);
  std::snprintf(buf, sizeof buf, "}, \"array_mib\": %lld, \"copy_gbs\": %.2f, \"triad_gbs\": %.2f}",
                static_cast<long long>(mib), bw.copy_gbs, bw.triad_gbs);
  out += buf;
  std::puts(out.c_str());
  return 0;
}
