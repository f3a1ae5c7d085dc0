// Element types the CUDA kernels take, as the host code (and Python) name them. No CUDA
// types here, so g++-compiled bindings can include it.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace dlcore::cuda {

// The codes Python passes (dlcore/cuda/array.py: DTYPE_CODE); keep the two in step.
enum class DType : int { f32 = 0, f64 = 1, i64 = 2, b8 = 3 };

inline int64_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i64: return 8;
    case DType::b8: return 1;
  }
  throw std::invalid_argument("cuda: unknown dtype code " + std::to_string(static_cast<int>(t)));
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i64: return "int64";
    case DType::b8: return "bool";
  }
  return "unknown";
}

}  // namespace dlcore::cuda
