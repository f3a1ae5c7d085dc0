// Shared CUDA helpers: error checks that throw std::runtime_error with the call or kernel
// name (never exit/abort: the caller is a Python process).
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace dlcore::cuda {

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err));
}

// After a launch: configuration errors (sync-free) for `kernel`.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

}  // namespace dlcore::cuda
