// _C.cuda bindings for the CUDA gemm kernels (csrc/cuda/gemm.h); registers nothing without CUDA.
//
// _C.cuda.gemm(dtype, trans_a, trans_b, M, N, K, alpha, beta, A, lda, stride_a, B, ldb,
//              stride_b, C, ldc, stride_c, batch, bias, relu, device, tile=0, splits=0)
// fills in a GemmDesc: pointers are device addresses as Python ints (bias 0 = none), sizes,
// leading dimensions and batch strides in elements, dtype a DType code. It makes `device`
// current and queues the kernels on its stream. tile/splits force a kernel and a split-K
// count (gemm.h: gemm_with_tile); _C.cuda.gemm_variants() lists the kernels as
// (tile, name, float64, split_k) tuples, the one list tests and benchmarks iterate;
// _C.cuda.gemm_choice(dtype, M, N, K, batch, device) says which one gemm picks. The Python
// mirror (dlcore/cuda/kernels/gemm.py) derives all of this from CudaArrays; gemm.h checks
// the numbers again (std::invalid_argument -> ValueError).
#include <pybind11/pybind11.h>

#include <cstdint>

#ifdef DLCORE_WITH_CUDA
#include <stdexcept>
#include <string>

#include "cuda/gemm.h"
#include "cuda/runtime.h"
#include "bindings/cuda_gemm_desc.h"
#endif

namespace py = pybind11;

namespace dlcore::bind {

#ifdef DLCORE_WITH_CUDA
namespace {

cuda::DType dtype_arg(int code) {
  if (code < 0 || code > static_cast<int>(cuda::DType::b8))
    throw std::invalid_argument("gemm: unknown dtype code " + std::to_string(code));
  return static_cast<cuda::DType>(code);
}

void gemm(int dtype, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, double beta,
          uintptr_t A, int64_t lda, int64_t stride_a, uintptr_t B, int64_t ldb, int64_t stride_b, uintptr_t C,
          int64_t ldc, int64_t stride_c, int64_t batch, uintptr_t bias, bool relu, int device, int tile,
          int splits) {
  const cuda::GemmDesc d = gemm_desc(dtype_arg(dtype), trans_a, trans_b, M, N, K, alpha, beta, A, lda, stride_a, B,
                                     ldb, stride_b, C, ldc, stride_c, batch, bias, relu);
  cuda::check_device(device, "gemm");
  cuda::set_device(device);
  cuda::gemm_with_tile(d, tile, splits);
}

// (tile, name, splits) of the kernel gemm runs for this dtype and shape on `device`.
py::tuple gemm_choice(int dtype, int64_t M, int64_t N, int64_t K, int64_t batch, int device) {
  cuda::check_device(device, "gemm");
  cuda::set_device(device);
  const cuda::GemmChoice c = cuda::gemm_choice(dtype_arg(dtype), M, N, K, batch);
  const char* name = "?";
  for (const cuda::GemmVariant& v : cuda::gemm_variants())
    if (v.tile == c.tile) name = v.name;
  return py::make_tuple(c.tile, name, c.splits);
}

py::list gemm_variants() {
  py::list out;
  for (const cuda::GemmVariant& v : cuda::gemm_variants())
    out.append(py::make_tuple(v.tile, v.name, v.float64, v.split_k));
  return out;
}

}  // namespace
#endif

void bind_cuda_gemm(py::module_& cuda) {
#ifdef DLCORE_WITH_CUDA
  cuda.def("gemm", &gemm, py::arg("dtype"), py::arg("trans_a"), py::arg("trans_b"), py::arg("M"), py::arg("N"),
           py::arg("K"), py::arg("alpha"), py::arg("beta"), py::arg("A"), py::arg("lda"), py::arg("stride_a"),
           py::arg("B"), py::arg("ldb"), py::arg("stride_b"), py::arg("C"), py::arg("ldc"), py::arg("stride_c"),
           py::arg("batch"), py::arg("bias"), py::arg("relu"), py::arg("device"), py::arg("tile") = 0,
           py::arg("splits") = 0, py::call_guard<py::gil_scoped_release>(),
           "C[b] := alpha * op(A[b]) @ op(B[b]) + beta * C[b], then C += bias (N,) per column and "
           "C = max(C, 0) if relu, for b < batch, on device pointers (elements for ld and strides; "
           "bias 0 = none); tile 0 lets gemm choose the kernel, a code of gemm_variants() forces "
           "one; splits 0 = the rule's split-K count, 1 = none, s = s K ranges (cp_async kernels). "
           "Queued on the device's stream.");
  cuda.def("gemm_choice", &gemm_choice, py::arg("dtype"), py::arg("M"), py::arg("N"), py::arg("K"),
           py::arg("batch"), py::arg("device"),
           "(tile, name, splits): the kernel gemm runs for this dtype code and shape on `device` "
           "(its selection rule) and its K ranges (1 = no split-K).");
  cuda.def("gemm_variants", &gemm_variants,
           "The gemm kernels as (tile, name, float64, split_k) tuples: tile is the code gemm's "
           "`tile` argument takes, float64 whether it runs float64 (all run float32), split_k "
           "whether it takes splits > 1.");
#else
  (void)cuda;
#endif
}

}  // namespace dlcore::bind
