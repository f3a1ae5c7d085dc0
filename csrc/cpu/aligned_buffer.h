// A 64-byte aligned buffer of count elements owned by one kernel call and freed with it
// (packed weights, per-thread scratch), zero-filled when asked. Throws std::bad_alloc when
// there is no memory, so a binding raises MemoryError instead of the process aborting.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#ifndef DLCORE_ISA
#error "csrc/cpu sources must be compiled with -DDLCORE_ISA=<generic|avx2|avx512>"
#endif

namespace dlcore::cpu::DLCORE_ISA {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

template <class T>
using AlignedBuffer = std::unique_ptr<T, FreeDeleter>;

template <class T>
AlignedBuffer<T> aligned_buffer(int64_t count, bool zero = false) {
  const int64_t n = std::max<int64_t>(count, 1);
  const size_t bytes = (static_cast<size_t>(n) * sizeof(T) + 63) / 64 * 64;
  AlignedBuffer<T> buffer(static_cast<T*>(std::aligned_alloc(64, bytes)));
  if (!buffer) throw std::bad_alloc();
  if (zero) std::fill(buffer.get(), buffer.get() + n, T(0));
  return buffer;
}

}  // namespace dlcore::cpu::DLCORE_ISA
