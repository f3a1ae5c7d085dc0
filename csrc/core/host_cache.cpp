#include "core/host_cache.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

namespace dlcore::host_cache {
namespace {

constexpr std::size_t kAlign = 64;

// The size class of `bytes`: rounded up to a multiple of a quarter of its power of two.
std::size_t size_class(std::size_t bytes) {
  std::size_t pow2 = kMinCachedBytes;
  while (pow2 * 2 <= bytes) pow2 *= 2;
  const std::size_t step = pow2 / 4;
  return (bytes + step - 1) / step * step;
}

std::size_t limit_from_env() {
  const char* env = std::getenv("DLCORE_HOST_CACHE_MB");
  if (!env || !*env) return std::size_t{1} << 30;
  try {
    return static_cast<std::size_t>(std::stoull(env)) << 20;
  } catch (const std::exception&) {
    return std::size_t{1} << 30;
  }
}

struct Cache {
  std::mutex mutex;
  std::map<std::size_t, std::vector<void*>> free_blocks;  // size class -> cached blocks
  std::unordered_map<void*, std::size_t> live;            // handed out -> its size class
  std::size_t cached = 0, in_use = 0, hits = 0, misses = 0;
  const std::size_t limit = limit_from_env();
};

// Never destroyed: arrays may be released by Python during interpreter shutdown, after static
// destructors would have run.
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

}  // namespace

bool enabled() { return cache().limit > 0; }

void* allocate(std::size_t bytes) {
  const std::size_t cls = size_class(bytes < kMinCachedBytes ? kMinCachedBytes : bytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(cls);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* block = it->second.back();
      it->second.pop_back();
      c.cached -= cls;
      c.in_use += cls;
      ++c.hits;
      c.live.emplace(block, cls);
      return block;
    }
  }
  void* block = std::aligned_alloc(kAlign, cls);  // cls is a multiple of 16 KiB, so of kAlign
  if (!block) {
    release_all();  // a cached block of another size may be what the system lacks
    block = std::aligned_alloc(kAlign, cls);
    if (!block) throw std::bad_alloc();
  }
  std::lock_guard<std::mutex> lock(c.mutex);
  c.in_use += cls;
  ++c.misses;
  c.live.emplace(block, cls);
  return block;
}

void release(void* block) noexcept {
  if (!block) return;
  Cache& c = cache();
  bool keep = false;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.live.find(block);
    if (it == c.live.end()) return;  // not ours: never happens; do not free what we did not allocate
    const std::size_t cls = it->second;
    c.live.erase(it);
    c.in_use -= cls;
    if (c.cached + cls <= c.limit) {
      try {
        c.free_blocks[cls].push_back(block);
        c.cached += cls;
        keep = true;
      } catch (const std::bad_alloc&) {
        keep = false;
      }
    }
  }
  if (!keep) std::free(block);
}

std::size_t release_all() {
  Cache& c = cache();
  std::map<std::size_t, std::vector<void*>> blocks;
  std::size_t freed;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    blocks.swap(c.free_blocks);
    freed = c.cached;
    c.cached = 0;
  }
  for (auto& [cls, list] : blocks)
    for (void* b : list) std::free(b);
  return freed;
}

Stats stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return {c.cached, c.in_use, c.limit, c.hits, c.misses};
}

}  // namespace dlcore::host_cache
