// _C.cuda bindings for the CUDA elementwise kernels (csrc/cuda/elementwise.h); registers nothing without CUDA.
//
// Raw entry points over device addresses (Python ints), element strides and dtype codes
// (dlcore/cuda/array.py: DTYPE_CODE). CudaArray.copy / astype / fill call strided_copy and
// fill directly; the math functions are called by python/dlcore/cuda/kernels/elementwise.py,
// which validates shapes and dtypes, broadcasts, and allocates the contiguous outputs.
// Op codes are int(_C.UnaryOp / BinaryOp / CompareOp). Unknown codes, wrong stride counts
// and unsupported dtypes raise ValueError naming the op. Every call releases the GIL (the
// work is queued on the device's stream; nothing here waits for it).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#ifdef DLCORE_WITH_CUDA
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/elementwise.h"
#endif

namespace py = pybind11;

namespace dlcore::bind {

#ifdef DLCORE_WITH_CUDA
namespace {

using cuda::DType;
using cuda::Dims;

DType dtype_arg(const char* op, const char* arg, int code) {
  if (code < 0 || code > static_cast<int>(DType::b8))
    throw std::invalid_argument(std::string(op) + ": " + arg + " is not a dtype code (0..3), got " +
                                std::to_string(code));
  return static_cast<DType>(code);
}

void* ptr(uintptr_t address) { return reinterpret_cast<void*>(address); }

}  // namespace

void bind_cuda_elementwise(py::module_& cuda) {
  using Release = py::call_guard<py::gil_scoped_release>;

  cuda.def(
      "strided_copy",
      [](uintptr_t dst, int dst_dtype, const Dims& dst_strides, uintptr_t src, int src_dtype, const Dims& src_strides,
         const Dims& shape) {
        cuda::strided_copy(ptr(dst), dtype_arg("strided_copy", "dst_dtype", dst_dtype), dst_strides, ptr(src),
                           dtype_arg("strided_copy", "src_dtype", src_dtype), src_strides, shape);
      },
      py::arg("dst"), py::arg("dst_dtype"), py::arg("dst_strides"), py::arg("src"), py::arg("src_dtype"),
      py::arg("src_strides"), py::arg("shape"), Release(),
      "dst[i . dst_strides] = cast(src[i . src_strides]) for every index i of shape (strides in elements, "
      "any sign; NumPy astype casts).");
  cuda.def(
      "fill",
      [](uintptr_t dst, int dtype, const Dims& dst_strides, const Dims& shape, double value) {
        cuda::fill(ptr(dst), dtype_arg("fill", "dtype", dtype), dst_strides, shape, value);
      },
      py::arg("dst"), py::arg("dtype"), py::arg("dst_strides"), py::arg("shape"), py::arg("value"), Release(),
      "dst[i . dst_strides] = cast(value) for every index i of shape.");
  cuda.def(
      "unary_forward",
      [](int op, int dtype, int64_t n, uintptr_t x, uintptr_t y, double alpha, double beta) {
        cuda::unary_forward(static_cast<UnaryOp>(op), dtype_arg("unary_forward", "dtype", dtype), n, ptr(x), ptr(y),
                            alpha, beta);
      },
      py::arg("op"), py::arg("dtype"), py::arg("n"), py::arg("x"), py::arg("y"), py::arg("alpha") = 0.0,
      py::arg("beta") = 0.0, Release(), "y (n) = f(x) (n), contiguous float32/float64.");
  cuda.def(
      "unary_backward",
      [](int op, int dtype, int64_t n, uintptr_t x, uintptr_t y, uintptr_t grad_y, uintptr_t grad_x, double alpha,
         double beta) {
        cuda::unary_backward(static_cast<UnaryOp>(op), dtype_arg("unary_backward", "dtype", dtype), n, ptr(x), ptr(y),
                             ptr(grad_y), ptr(grad_x), alpha, beta);
      },
      py::arg("op"), py::arg("dtype"), py::arg("n"), py::arg("x"), py::arg("y"), py::arg("grad_y"),
      py::arg("grad_x"), py::arg("alpha") = 0.0, py::arg("beta") = 0.0, Release(),
      "grad_x (n) = grad_y * f'(.), contiguous; exp/tanh/sigmoid/sqrt read y, neg neither, the rest x "
      "(pass 0 for the one not read).");
  cuda.def(
      "binary_forward",
      [](int op, int dtype, const Dims& shape, uintptr_t a, const Dims& a_strides, uintptr_t b, const Dims& b_strides,
         uintptr_t out) {
        cuda::binary_forward(static_cast<BinaryOp>(op), dtype_arg("binary_forward", "dtype", dtype), shape, ptr(a),
                             a_strides, ptr(b), b_strides, ptr(out));
      },
      py::arg("op"), py::arg("dtype"), py::arg("shape"), py::arg("a"), py::arg("a_strides"), py::arg("b"),
      py::arg("b_strides"), py::arg("out"), Release(),
      "out (shape, contiguous) = a (op) b over strided operands (0 strides broadcast).");
  cuda.def(
      "compare_forward",
      [](int op, int dtype, const Dims& shape, uintptr_t a, const Dims& a_strides, uintptr_t b, const Dims& b_strides,
         uintptr_t out) {
        cuda::compare_forward(static_cast<CompareOp>(op), dtype_arg("compare_forward", "dtype", dtype), shape, ptr(a),
                              a_strides, ptr(b), b_strides, ptr(out));
      },
      py::arg("op"), py::arg("dtype"), py::arg("shape"), py::arg("a"), py::arg("a_strides"), py::arg("b"),
      py::arg("b_strides"), py::arg("out"), Release(),
      "out (shape, contiguous bool) = a (cmp) b over strided operands of one dtype.");
  cuda.def(
      "where_forward",
      [](int dtype, const Dims& shape, uintptr_t cond, const Dims& cond_strides, uintptr_t a, const Dims& a_strides,
         uintptr_t b, const Dims& b_strides, uintptr_t out) {
        cuda::where_forward(dtype_arg("where_forward", "dtype", dtype), shape, ptr(cond), cond_strides, ptr(a),
                            a_strides, ptr(b), b_strides, ptr(out));
      },
      py::arg("dtype"), py::arg("shape"), py::arg("cond"), py::arg("cond_strides"), py::arg("a"),
      py::arg("a_strides"), py::arg("b"), py::arg("b_strides"), py::arg("out"), Release(),
      "out (shape, contiguous) = cond ? a : b over strided operands; cond bool.");
}

#else

void bind_cuda_elementwise(py::module_& cuda) { (void)cuda; }

#endif

}  // namespace dlcore::bind
