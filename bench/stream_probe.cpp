// Stream probe: how fast one core reads a matrix it multiplies by a single vector, the bound of
// a batch-1 LSTM step (each weight of W_hh feeds one FMA per step, so the step is as fast as
// W_hh streams from cache), as the matrix outgrows L1, L2 and L3.
//
// What: a packed matrix of H/16 panels (H depths x 64 floats, 256 * H bytes each: the layout of
// the fused LSTM tile, csrc/cpu/rnn/lstm_fused_avx512.cpp) times a vector of H floats, repeated
// as "steps"; the panels split evenly over `threads` OpenMP threads with a barrier per step (the
// hidden-unit split of a batch-1 recurrence). Prints per H the bytes per thread, the best
// microseconds per step over 5 runs of 2000 steps, and GB/s per thread; the walk over the panels
// is reversed on odd steps (serpentine), as the LSTM does, and then also run forwards only.
// Math: per step 4 * H * H floats = 16 H^2 bytes are read (1 MiB at H = 256, the L2 of a Zen 4
//   core) and 4 H^2 FMAs issued (one per 16 floats), so at 32 float FLOP/cycle the FMAs take an
//   eighth of the cycles an L2 stream of 64 bytes/cycle would: the step is a pure stream.
// Build and run (no dlcore needed):
//     g++ -O3 -march=native -fopenmp bench/stream_probe.cpp -o /tmp/stream_probe && /tmp/stream_probe
// Measured (2-core Zen 4 VM, 2026-11-27; bench/RESULTS.md "Session of 2026-11-27 (04:13-)"):
//   95-105 GB/s per thread whether the matrix sits in L2 or L3 (H = 128..512): at H = 256, 10.4
//   us a step on 1 thread (serpentine; 11.4 forwards only) and 5.0 us on 2.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

constexpr int kSteps = 2000, kRuns = 5;

// out[0:64) := sum_k x[k] * panel[k][0:64), the panel (H, 64) row-major: two depths per
// iteration into 8 accumulators, so the FMA latency never limits the stream.
void panel_times_vector(const float* panel, int H, const float* x, float* out) {
  __m512 a[8];
  for (auto& v : a) v = _mm512_setzero_ps();
  for (int k = 0; k < H; k += 2, panel += 128) {
    const __m512 x0 = _mm512_set1_ps(x[k]), x1 = _mm512_set1_ps(x[k + 1]);
    for (int v = 0; v < 4; ++v) {
      a[v] = _mm512_fmadd_ps(x0, _mm512_load_ps(panel + 16 * v), a[v]);
      a[4 + v] = _mm512_fmadd_ps(x1, _mm512_load_ps(panel + 64 + 16 * v), a[4 + v]);
    }
  }
  for (int v = 0; v < 4; ++v) _mm512_storeu_ps(out + 16 * v, _mm512_add_ps(a[v], a[4 + v]));
}

// Best microseconds per step over kRuns runs of kSteps steps.
double time_steps(const float* w, int H, int threads, bool serpentine, const float* x, float* out) {
  const int panels = H / 16;
  double best = 1e30;
  for (int run = 0; run < kRuns; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
    {
      const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
      const int lo = panels * tid / nt, hi = panels * (tid + 1) / nt;
      for (int s = 0; s < kSteps; ++s) {
        const bool back = serpentine && s % 2 == 1;
        for (int n = lo; n < hi; ++n) {
          const int p = back ? hi - 1 - (n - lo) : n;
          panel_times_vector(w + static_cast<int64_t>(p) * H * 64, H, x, out + 64 * p);
        }
#pragma omp barrier
      }
    }
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, us / kSteps);
  }
  return best;
}

}  // namespace

int main() {
  std::printf("threads     H  KiB/thread  serpentine us/step  GB/s/thread  forwards us/step  GB/s/thread\n");
  for (int threads : {1, 2}) {
    for (int H : {64, 128, 192, 256, 320, 512}) {
      const int64_t n = static_cast<int64_t>(H) * H * 4;  // floats: (H/16) panels of (H, 64)
      float* w = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
      std::vector<float> x(H, 0.01f), out(4 * H);
      for (int64_t i = 0; i < n; ++i) w[i] = 0.001f * static_cast<float>(i % 7);
      const double per_thread = 4.0 * static_cast<double>(n) / threads;  // bytes
      const double serp = time_steps(w, H, threads, true, x.data(), out.data());
      const double fwd = time_steps(w, H, threads, false, x.data(), out.data());
      std::printf("%7d %5d %11.0f %19.2f %12.1f %17.2f %12.1f\n", threads, H, per_thread / 1024, serp,
                  per_thread / serp / 1e3, fwd, per_thread / fwd / 1e3);
      std::free(w);
    }
  }
  return 0;
}
