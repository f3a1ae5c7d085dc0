// Device query and the fill kernel: the CUDA scaffolding the build and the import need.
// fill: y[i] = value for i < n; one thread per element, 256 threads a block (a multiple of
// the 32-wide warp that keeps occupancy high on every arch we build for).
// Tested by tests/test_package.py::test_cuda_fill_kernel_runs_on_a_device (skips without a device).
#include "cuda/common.cuh"
#include "cuda/cuda_api.h"

#include <vector>

namespace dlcore::cuda {

namespace {

__global__ void fill_kernel(float* y, int64_t n, float value) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = value;
}

}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

std::string device_name(int device) {
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
         ", " + std::to_string(prop.totalGlobalMem >> 20) + " MiB)";
}

double fill_check(int64_t n, float value) {
  if (n <= 0) throw std::invalid_argument("fill_check: n must be positive, got " + std::to_string(n));
  float* y = nullptr;  // (n,) on the device
  check(cudaMalloc(&y, n * sizeof(float)), "cudaMalloc");
  const int threads = 256;
  const int64_t blocks = (n + threads - 1) / threads;
  fill_kernel<<<static_cast<unsigned>(blocks), threads>>>(y, n, value);
  std::vector<float> host(n);
  cudaError_t launch = cudaGetLastError();
  cudaError_t copy = cudaMemcpy(host.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(y);
  check(launch, "fill_kernel");
  check(copy, "cudaMemcpy(fill_kernel result)");
  double sum = 0;
  for (float v : host) sum += v;
  return sum;
}

}  // namespace dlcore::cuda
