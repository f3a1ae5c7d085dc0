// Inverted dropout, reference kernels.
//
// Math: keep[i] = (u(seed, i) >= p);  y[i] = keep[i] ? x[i] * 1/(1-p) : 0;
//       grad_x[i] = keep[i] ? grad_y[i] * scale : 0  (the caller passes scale = 1/(1-p)).
//
// Random stream: counter-based, so element i's draw depends only on (seed, i) -- the mask
// is reproducible for a seed and identical for any thread count or chunking. The draw is
// the i-th output of SplitMix64 (Steele, Lea, Flood 2014; passes BigCrush) started from
// state mix(seed):  bits(i) = mix(mix(seed) + (i + 1) * 0x9E3779B97F4A7C15).
// Hashing the seed first spreads nearby seeds (0, 1, 2, ...) to unrelated streams.
// u = top 53 bits * 2^-53 lies in [0, 1); u >= p is tested exactly in integers as
// (bits >> 11) >= ceil(p * 2^53), so p = 0 keeps everything and p = 1 drops everything.
//
// Layout: x, y, keep, grad_y, grad_x are flat (n) contiguous; keep is one byte per element.
// Preconditions (checked in csrc/bindings/ops_nn.cpp): 0 <= p <= 1.
// Saved for backward: keep (n). Every output is OVERWRITTEN.
// Threads: OpenMP over i only above kParallelMin elements (static chunks; any split gives
// the same mask). Tested: pytest tests/kernels/test_nn_kernels.py -k dropout (keep fraction within 5 sigma
// of 1 - p on 1e6 elements, seeds differ, 1 vs 2 threads bitwise equal).
// Bound: memory, n * (2 sizeof(T) + 1) bytes forward; the hash is ~10 integer ops / element.
#include <cmath>
#include <cstdint>

#include "cpu/kernels.h"

namespace dlcore::cpu::DLCORE_ISA {

namespace {

// Elements below which the loop stays on the calling thread (~10 us of hashing at 1 ns each).
constexpr int64_t kParallelMin = 1 << 15;

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;  // 2^64 / golden ratio, SplitMix64's step

// SplitMix64's output function (the MurmurHash3 finaliser variant, constants from the paper).
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The keep test in integers: keep iff (bits >> 11) >= threshold, threshold = ceil(p * 2^53).
// p * 2^53 is exact in double (a power-of-two scale), and 2^53 drops every element.
inline uint64_t keep_threshold(double p) {
  return static_cast<uint64_t>(std::ceil(p * 9007199254740992.0));  // 2^53
}

}  // namespace

template <class T>
void dropout_forward(int64_t n, double p, uint64_t seed, const T* x, T* y, bool* keep) {
  // x, y, keep (n)
  const uint64_t state = mix64(seed);
  const uint64_t threshold = keep_threshold(p);
  // p == 1 drops everything; a zero scale keeps inf * 0 out of the (discarded) products.
  const T scale = p < 1.0 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t bits = mix64(state + static_cast<uint64_t>(i + 1) * kGolden);
    const bool k = (bits >> 11) >= threshold;
    keep[i] = k;
    const T kept = x[i] * scale;  // computed unconditionally so the select vectorises
    y[i] = k ? kept : T(0);
  }
}
DLCORE_INSTANTIATE(dropout_forward, DropoutForwardSig)

template <class T>
void dropout_backward(int64_t n, T scale, const bool* keep, const T* grad_y, T* grad_x) {
  // keep, grad_y, grad_x (n). No hash here, so twice the elements before threads pay.
  // GCC does not vectorise a select on a loaded bool ("no vectype"), but does on its byte
  // (bool is one byte holding 0 or 1; unsigned char may alias anything).
  const uint8_t* keep_bytes = reinterpret_cast<const uint8_t*>(keep);  // (n)
#pragma omp parallel for simd schedule(static) if (n >= 2 * kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T g = grad_y[i] * scale;
    grad_x[i] = keep_bytes[i] != 0 ? g : T(0);
  }
}
DLCORE_INSTANTIATE(dropout_backward, DropoutBackwardSig)

}  // namespace dlcore::cpu::DLCORE_ISA
