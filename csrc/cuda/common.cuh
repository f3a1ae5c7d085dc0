// Shared CUDA helpers for kernel files: error checks that throw std::runtime_error with the
// call or kernel name (never exit/abort: the caller is a Python process), the stream every
// kernel runs on, and grid sizing for grid-stride loops.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/dtype.h"
#include "cuda/runtime.h"

namespace dlcore::cuda {

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err));
}

// After a launch: configuration errors (sync-free) for `kernel`.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// The stream of the current device: the one stream all dlcore kernels and copies use, so
// work is ordered without events. Created (non-blocking) on first use.
cudaStream_t current_stream();

// Blocks for a grid-stride loop over n items: enough to fill the device, never over the
// grid limit. n == 0 gives 0 (callers skip the launch).
inline unsigned grid_for(int64_t n, int threads) {
  const int64_t want = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::min<int64_t>(want, int64_t{1} << 20));
}

}  // namespace dlcore::cuda
