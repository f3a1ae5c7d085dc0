// The CUDA runtime: devices, one stream per device, the caching allocator, pinned-staged
// host copies, and the fill kernel the build check launches.
//
// Allocator: sizes round up to a size class (512 B steps below 1 MiB, 2 MiB steps above), and
// freed blocks wait in a per-device free list keyed by size class, so the training loop's
// repeating shapes are served without cudaMalloc/cudaFree. Every kernel and copy runs on the
// device's one stream, so a block released while queued kernels still use it can be handed
// out again at once: the next user's work is queued behind them. When cudaMalloc fails the
// cache is returned to the driver and the call retried once; then OutOfMemory is thrown.
#include "cuda/common.cuh"

#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace dlcore::cuda {

namespace {

constexpr size_t kSmallStep = 512;             // size-class step below kLargeFrom
constexpr size_t kLargeFrom = size_t{1} << 20;  // 1 MiB
constexpr size_t kLargeStep = size_t{2} << 20;  // 2 MiB
constexpr size_t kStagingBytes = size_t{8} << 20;  // each of the two pinned staging buffers

size_t size_class(size_t nbytes) {
  const size_t step = nbytes < kLargeFrom ? kSmallStep : kLargeStep;
  return (nbytes + step - 1) / step * step;
}

struct DeviceState {
  cudaStream_t stream = nullptr;
  std::multimap<size_t, void*> free_blocks;    // size class -> cached block
  std::unordered_map<void*, size_t> live;      // block -> size class
  int64_t allocated = 0, max_allocated = 0, reserved = 0;
  // Pinned staging for host copies: two buffers so the host fills one while the DMA reads
  // the other; each buffer's event says when its last copy finished.
  void* staging[2] = {nullptr, nullptr};
  cudaEvent_t staged[2] = {nullptr, nullptr};
};

std::mutex g_mutex;  // guards g_devices (bindings run with the GIL released)
std::vector<DeviceState> g_devices;

DeviceState& state(int device) {
  if (g_devices.empty()) g_devices.resize(static_cast<size_t>(std::max(device_count(), 1)));
  return g_devices.at(static_cast<size_t>(device));
}

// Makes `device` current for the calling thread and returns its state (lock held by caller).
DeviceState& enter(int device) {
  check(cudaSetDevice(device), "cudaSetDevice");
  DeviceState& s = state(device);
  if (!s.stream) check(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  return s;
}

void free_cached(DeviceState& s) {
  for (auto& [size, ptr] : s.free_blocks) {
    cudaFree(ptr);
    s.reserved -= static_cast<int64_t>(size);
  }
  s.free_blocks.clear();
}

void ensure_staging(DeviceState& s) {
  for (int i = 0; i < 2; ++i) {
    if (s.staging[i]) continue;
    check(cudaHostAlloc(&s.staging[i], kStagingBytes, cudaHostAllocDefault), "cudaHostAlloc(staging)");
    check(cudaEventCreateWithFlags(&s.staged[i], cudaEventDisableTiming), "cudaEventCreate(staging)");
  }
}

__global__ void fill_kernel(float* y, int64_t n, float value) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    y[i] = value;
}

}  // namespace

// ---- devices --------------------------------------------------------------------------------
int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

void check_device(int device, const char* op) {
  const int n = device_count();
  if (device < 0 || device >= n)
    throw std::invalid_argument(std::string(op) + ": no CUDA device " + std::to_string(device) + " (" +
                                std::to_string(n) + " visible)");
}

std::string device_name(int device) {
  check_device(device, "cuda.device_name");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
         std::to_string(prop.totalGlobalMem >> 20) + " MiB)";
}

void set_device(int device) {
  check_device(device, "cuda.set_device");
  std::lock_guard<std::mutex> lock(g_mutex);
  enter(device);
}

int current_device() {
  int d = 0;
  check(cudaGetDevice(&d), "cudaGetDevice");
  return d;
}

cudaStream_t current_stream() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return enter(current_device()).stream;
}

void synchronize(int device) {
  cudaStream_t stream;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    stream = enter(device).stream;
  }
  check(cudaStreamSynchronize(stream), "cuda.synchronize (an earlier kernel failed)");
}

Event::Event(int device) : device_(device) {
  check_device(device, "cuda.Event");
  cudaEvent_t e = nullptr;
  check(cudaSetDevice(device), "cudaSetDevice");
  check(cudaEventCreate(&e), "cudaEventCreate");
  event_ = e;
}

Event::~Event() { cudaEventDestroy(static_cast<cudaEvent_t>(event_)); }

void Event::record() {
  cudaStream_t stream;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    stream = enter(device_).stream;
  }
  check(cudaEventRecord(static_cast<cudaEvent_t>(event_), stream), "cudaEventRecord");
}

void Event::synchronize() { check(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)), "cudaEventSynchronize"); }

float Event::elapsed_ms(const Event& start, const Event& end) {
  check(cudaEventSynchronize(static_cast<cudaEvent_t>(end.event_)), "cudaEventSynchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start.event_), static_cast<cudaEvent_t>(end.event_)),
        "cudaEventElapsedTime (were both events recorded?)");
  return ms;
}

// ---- allocator ------------------------------------------------------------------------------
void* allocate(size_t nbytes, int device) {
  if (nbytes == 0) return nullptr;
  const size_t size = size_class(nbytes);
  std::lock_guard<std::mutex> lock(g_mutex);
  DeviceState& s = enter(device);
  void* ptr = nullptr;
  auto it = s.free_blocks.find(size);
  if (it != s.free_blocks.end()) {
    ptr = it->second;
    s.free_blocks.erase(it);
  } else {
    cudaError_t err = cudaMalloc(&ptr, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      free_cached(s);
      err = cudaMalloc(&ptr, size);
    }
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      throw OutOfMemory("CUDA out of memory: tried to allocate " + std::to_string(nbytes) + " bytes (" +
                        std::to_string(nbytes >> 20) + " MiB) on device " + std::to_string(device) + "; " +
                        std::to_string(free_b) + " bytes free of " + std::to_string(total_b) +
                        " total; dlcore holds " + std::to_string(s.allocated) + " bytes in tensors");
    }
    check(err, "cudaMalloc");
    s.reserved += static_cast<int64_t>(size);
  }
  s.live.emplace(ptr, size);
  s.allocated += static_cast<int64_t>(size);
  s.max_allocated = std::max(s.max_allocated, s.allocated);
  return ptr;
}

void release(void* ptr, int device) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  DeviceState& s = state(device);
  auto it = s.live.find(ptr);
  if (it == s.live.end()) return;  // not ours: never free what we did not allocate
  s.allocated -= static_cast<int64_t>(it->second);
  s.free_blocks.emplace(it->second, ptr);
  s.live.erase(it);
}

void empty_cache() {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (size_t d = 0; d < g_devices.size(); ++d) {
    if (!g_devices[d].stream) continue;
    check(cudaSetDevice(static_cast<int>(d)), "cudaSetDevice");
    check(cudaStreamSynchronize(g_devices[d].stream), "cuda.empty_cache");
    free_cached(g_devices[d]);
  }
}

MemoryStats memory_stats(int device) {
  check_device(device, "cuda.memory_stats");
  std::lock_guard<std::mutex> lock(g_mutex);
  const DeviceState& s = state(device);
  return {s.allocated, s.max_allocated, s.reserved};
}

void reset_peak_memory(int device) {
  check_device(device, "cuda.reset_peak_memory_stats");
  std::lock_guard<std::mutex> lock(g_mutex);
  DeviceState& s = state(device);
  s.max_allocated = s.allocated;
}

// ---- copies ---------------------------------------------------------------------------------
void copy_host_to_device(void* dst, const void* src, size_t nbytes, int device) {
  std::lock_guard<std::mutex> lock(g_mutex);
  DeviceState& s = enter(device);
  ensure_staging(s);
  const char* from = static_cast<const char*>(src);
  char* to = static_cast<char*>(dst);
  for (size_t done = 0, k = 0; done < nbytes; ++k) {
    const int b = static_cast<int>(k & 1);
    const size_t n = std::min(kStagingBytes, nbytes - done);
    check(cudaEventSynchronize(s.staged[b]), "cuda copy to device (staging)");  // the DMA left it
    std::memcpy(s.staging[b], from + done, n);
    check(cudaMemcpyAsync(to + done, s.staging[b], n, cudaMemcpyHostToDevice, s.stream), "cudaMemcpyAsync(H2D)");
    check(cudaEventRecord(s.staged[b], s.stream), "cudaEventRecord");
    done += n;
  }
  // The source may be freed as soon as we return, but it was copied into staging already.
}

void copy_device_to_host(void* dst, const void* src, size_t nbytes, int device) {
  std::lock_guard<std::mutex> lock(g_mutex);
  DeviceState& s = enter(device);
  ensure_staging(s);
  const char* from = static_cast<const char*>(src);
  char* to = static_cast<char*>(dst);
  for (size_t done = 0; done < nbytes;) {
    const size_t n = std::min(kStagingBytes, nbytes - done);
    check(cudaMemcpyAsync(s.staging[0], from + done, n, cudaMemcpyDeviceToHost, s.stream), "cudaMemcpyAsync(D2H)");
    check(cudaStreamSynchronize(s.stream), "cuda copy to host (an earlier kernel may have failed)");
    std::memcpy(to + done, s.staging[0], n);
    done += n;
  }
}

void copy_device_to_device(void* dst, const void* src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  DeviceState& s = enter(device);
  check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, s.stream), "cudaMemcpyAsync(D2D)");
}

double fill_check(int64_t n, float value) {
  if (n <= 0) throw std::invalid_argument("fill_check: n must be positive, got " + std::to_string(n));
  const int device = current_device();
  auto* y = static_cast<float*>(allocate(n * sizeof(float), device));  // (n,)
  const int threads = 256;
  fill_kernel<<<grid_for(n, threads), threads, 0, current_stream()>>>(y, n, value);
  std::vector<float> host(n);
  try {
    check_launch("fill_kernel");
    copy_device_to_host(host.data(), y, n * sizeof(float), device);
  } catch (...) {
    release(y, device);
    throw;
  }
  release(y, device);
  double sum = 0;
  for (float v : host) sum += v;
  return sum;
}

}  // namespace dlcore::cuda
