// A caching allocator for the host arrays the kernels' bindings return (csrc/bindings/checks.h's
// empty<T>()).
//
// Why: glibc serves blocks of 128 KiB and more (its mmap threshold, adjusted at run time) with
// fresh mmap()ed pages, and a training step frees and re-creates the same large activations
// every iteration, so each one comes back as new pages the kernel must fault in and zero:
// LeNet-5 at batch 64 took ~1,360 minor page faults per step, 7.4 -> 4.8 ms per step once they
// were gone (bench/RESULTS.md). Like PyTorch's CUDA caching allocator, freed blocks of at least
// kMinCachedBytes go to a free list per size class and are handed out again; smaller arrays
// stay with NumPy's allocator (glibc reuses those from its heap without faults).
//
// Size classes: a request rounds up to the next multiple of a quarter of its power of two
// (e.g. 1.0, 1.25, 1.5, 1.75 MiB), so a block is at most 25 % larger than asked. Blocks are
// 64-byte aligned. At most `limit` bytes stay cached (default 1 GiB, DLCORE_HOST_CACHE_MB
// overrides; 0 turns the cache off and
// empty<T>() allocates through NumPy again); a block freed beyond it goes back to the system.
// Thread-safe (one mutex). release_all() returns every cached block to the system.
#pragma once
#include <cstddef>

namespace dlcore::host_cache {

inline constexpr std::size_t kMinCachedBytes = std::size_t{64} << 10;

// Whether caching is on (the limit is above 0); when off, callers allocate as before.
bool enabled();

// A 64-byte aligned block of at least `bytes` (>= kMinCachedBytes); throws std::bad_alloc.
void* allocate(std::size_t bytes);

// Returns a block from allocate() to the cache (or to the system past the limit).
void release(void* block) noexcept;

// Frees every cached block; returns the bytes freed.
std::size_t release_all();

struct Stats {
  std::size_t cached_bytes;  // in free lists
  std::size_t in_use_bytes;  // handed out, not yet released
  std::size_t limit_bytes;
  std::size_t hits, misses;  // allocate() served from the cache / from the system
};
Stats stats();

}  // namespace dlcore::host_cache
