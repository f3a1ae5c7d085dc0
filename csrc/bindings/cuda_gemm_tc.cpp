// _C.cuda bindings for the tensor-core gemm (csrc/cuda/gemm_tc.h); registers nothing without CUDA.
//
// _C.cuda.gemm_tc(mode, trans_a, trans_b, M, N, K, alpha, beta, A, lda, stride_a, B, ldb,
//                 stride_b, C, ldc, stride_c, batch, bias, relu, device, tile=0)
// is _C.cuda.gemm (cuda_gemm.cpp) for float32 with mode "tf32" or "bf16" in place of the dtype:
// pointers are device addresses as Python ints (bias 0 = none), sizes, leading dimensions and
// batch strides in elements. It makes `device` current and queues the kernels on its stream.
// _C.cuda.gemm_tc_supported(device) says whether the device has the tensor-core instructions
// (sm_80+); _C.cuda.gemm_wgmma_available(device) whether tile 256 (the Hopper wgmma kernel) runs
// there (an sm_90 device and a build holding sm_90a code). The Python mirror is dlcore/cuda/kernels/gemm_tc.py; gemm_tc.h checks the numbers
// again (std::invalid_argument -> ValueError).
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#ifdef DLCORE_WITH_CUDA
#include <stdexcept>

#include "cuda/gemm_tc.h"
#include "cuda/gemm_wgmma.h"
#include "cuda/runtime.h"
#include "bindings/cuda_gemm_desc.h"
#endif

namespace py = pybind11;

namespace dlcore::bind {

#ifdef DLCORE_WITH_CUDA
namespace {

cuda::MathMode mode_arg(const std::string& mode) {
  if (mode == "tf32") return cuda::MathMode::tf32;
  if (mode == "bf16") return cuda::MathMode::bf16;
  throw std::invalid_argument("gemm_tc: mode must be \"tf32\" or \"bf16\", got \"" + mode + "\"");
}

void gemm_tc(const std::string& mode, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
             double beta, uintptr_t A, int64_t lda, int64_t stride_a, uintptr_t B, int64_t ldb, int64_t stride_b,
             uintptr_t C, int64_t ldc, int64_t stride_c, int64_t batch, uintptr_t bias, bool relu, int device,
             int tile) {
  const cuda::MathMode math = mode_arg(mode);
  const cuda::GemmDesc d = gemm_desc(cuda::DType::f32, trans_a, trans_b, M, N, K, alpha, beta, A, lda, stride_a, B,
                                     ldb, stride_b, C, ldc, stride_c, batch, bias, relu);
  cuda::check_device(device, "gemm_tc");
  cuda::set_device(device);
  cuda::gemm_tc_with_tile(d, math, tile);
}

bool gemm_tc_supported(int device) {
  cuda::check_device(device, "gemm_tc_supported");
  return cuda::gemm_tc_supported(device);
}

bool gemm_wgmma_available(int device) {
  cuda::check_device(device, "gemm_wgmma_available");
#ifdef DLCORE_WITH_WGMMA
  return cuda::gemm_wgmma_available(device);
#else
  return false;
#endif
}

}  // namespace
#endif

void bind_cuda_gemm_tc(py::module_& cuda) {
#ifdef DLCORE_WITH_CUDA
  cuda.def("gemm_tc", &gemm_tc, py::arg("mode"), py::arg("trans_a"), py::arg("trans_b"), py::arg("M"), py::arg("N"),
           py::arg("K"), py::arg("alpha"), py::arg("beta"), py::arg("A"), py::arg("lda"), py::arg("stride_a"),
           py::arg("B"), py::arg("ldb"), py::arg("stride_b"), py::arg("C"), py::arg("ldc"), py::arg("stride_c"),
           py::arg("batch"), py::arg("bias"), py::arg("relu"), py::arg("device"), py::arg("tile") = 0,
           py::call_guard<py::gil_scoped_release>(),
           "float32 C[b] := alpha * op(A[b]) @ op(B[b]) + beta * C[b], then C += bias (N,) per column and "
           "C = max(C, 0) if relu, for b < batch, with the products on the tensor cores: mode \"tf32\" or "
           "\"bf16\" (inputs rounded to that format, FP32 sums). Device pointers, elements for ld and "
           "strides, bias 0 = none; tile 0 picks the kernel, 64 or 128 forces an mma.sync block tile, 256 "
           "the Hopper wgmma kernel (128 x 256). Queued on the device's stream.");
  cuda.def("gemm_tc_supported", &gemm_tc_supported, py::arg("device"),
           "Whether the device has the tensor-core instructions gemm_tc uses (compute capability >= 8.0).");
  cuda.def("gemm_wgmma_available", &gemm_wgmma_available, py::arg("device"),
           "Whether gemm_tc's tile 256 (the wgmma kernel) runs on the device: compute capability 9.0 and "
           "a build with sm_90a code.");
#else
  (void)cuda;
#endif
}

}  // namespace dlcore::bind
