// The CUDA runtime as host C++ sees it (no CUDA types, so g++-compiled bindings include it):
// devices, the one stream per device every kernel runs on, the caching allocator, and
// host <-> device copies through pinned staging buffers. Built only with DLCORE_WITH_CUDA.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace dlcore::cuda {

// ---- devices --------------------------------------------------------------------------------
// Number of usable devices; 0 when there is no driver or no device (never throws).
int device_count();
// "<name> (sm_XY, N MiB)" for a device; throws std::invalid_argument if it does not exist.
std::string device_name(int device);
// Throws std::invalid_argument naming `op` unless 0 <= device < device_count().
void check_device(int device, const char* op);
// Makes `device` current for this host thread (kernels launch on the current device).
void set_device(int device);
int current_device();
// Waits for all work queued on the device's stream (releases no lock: callers drop the GIL).
void synchronize(int device);

// A timing event on a device's stream (cudaEvent_t behind an opaque handle): record() marks
// the stream's current position; elapsed_ms(start, end) waits for `end` and returns the GPU
// time between the two marks. For benchmarks.
class Event {
 public:
  explicit Event(int device);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record();
  void synchronize();
  static float elapsed_ms(const Event& start, const Event& end);

 private:
  void* event_ = nullptr;  // cudaEvent_t
  int device_ = 0;
};

// ---- caching allocator -------------------------------------------------------------------
// Thrown when the device has no room even after the cache was returned to the driver; the
// message states the requested bytes and the device's free and total bytes.
struct OutOfMemory : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A device block of at least `nbytes` from the cache (exact size class) or cudaMalloc.
// nbytes 0 gives nullptr. Blocks are stream-ordered: every kernel runs on the device's one
// stream, so a block freed while kernels still read it is safe to hand out again.
void* allocate(size_t nbytes, int device);
// Returns a block from allocate() to the cache (never cudaFree on this path).
void release(void* ptr, int device);
// Frees every cached (unused) block back to the driver.
void empty_cache();

struct MemoryStats {
  int64_t allocated;      // bytes in live blocks (size-class rounded)
  int64_t max_allocated;  // peak of `allocated` since start or reset_peak
  int64_t reserved;       // bytes obtained from cudaMalloc and not yet freed (live + cached)
};
MemoryStats memory_stats(int device);
void reset_peak_memory(int device);

// ---- copies (queued on the device's stream; the host ones wait for their part) --------------
void copy_host_to_device(void* dst, const void* src, size_t nbytes, int device);
void copy_device_to_host(void* dst, const void* src, size_t nbytes, int device);
void copy_device_to_device(void* dst, const void* src, size_t nbytes, int device);

// Fills n floats with `value` with a kernel, copies them back and returns their sum: a
// launch check for the build (tests/test_package.py).
double fill_check(int64_t n, float value);

}  // namespace dlcore::cuda
