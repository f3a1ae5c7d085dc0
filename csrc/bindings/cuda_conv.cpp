// _C.cuda bindings for the CUDA conv and pool kernels (csrc/cuda/conv.h, csrc/cuda/pool.h);
// registers nothing without CUDA. Device pointers come as Python ints (0 = none), dtype as the
// DType code, geometry as one list of ints in the field order of Conv2dShape / Pool2dShape
// (core/kernel_args.h). The Python mirrors (dlcore/cuda/kernels/conv.py, pool.py) validate
// shapes and allocate the outputs; the kernel entry points check the geometry again (ValueError
// naming the op) before anything is launched. Each call makes `device` current and runs with
// the GIL released.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

#ifdef DLCORE_WITH_CUDA
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/conv.h"
#include "cuda/pool.h"
#include "cuda/runtime.h"
#endif

namespace dlcore::bind {

#ifdef DLCORE_WITH_CUDA
namespace {

using dlcore::cuda::DType;
using Geometry = std::vector<int64_t>;

template <class T = void> T* ptr(uintptr_t address) { return reinterpret_cast<T*>(address); }

void check_geometry_length(const char* op, const Geometry& g, size_t want) {
  if (g.size() != want)
    throw std::invalid_argument(std::string(op) + ": geometry must hold " + std::to_string(want) +
                                " ints, got " + std::to_string(g.size()));
}

// geometry: N, C, H, W, C_out, KH, KW, OH, OW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups
Conv2dShape conv_shape(const char* op, const Geometry& g) {
  check_geometry_length(op, g, 16);
  Conv2dShape s{};
  s.N = g[0]; s.C = g[1]; s.H = g[2]; s.W = g[3];
  s.C_out = g[4]; s.KH = g[5]; s.KW = g[6];
  s.OH = g[7]; s.OW = g[8];
  s.stride_h = g[9]; s.stride_w = g[10];
  s.pad_h = g[11]; s.pad_w = g[12];
  s.dil_h = g[13]; s.dil_w = g[14];
  s.groups = g[15];
  return s;
}

// geometry: N, C, H, W, OH, OW, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w
Pool2dShape pool_shape(const char* op, const Geometry& g, bool ceil_mode, bool count_include_pad, bool avg) {
  check_geometry_length(op, g, 14);
  Pool2dShape s{};
  s.N = g[0]; s.C = g[1]; s.H = g[2]; s.W = g[3];
  s.OH = g[4]; s.OW = g[5];
  s.KH = g[6]; s.KW = g[7];
  s.stride_h = g[8]; s.stride_w = g[9];
  s.pad_h = g[10]; s.pad_w = g[11];
  s.dil_h = g[12]; s.dil_w = g[13];
  s.count_include_pad = count_include_pad;
  dlcore::cuda::check_pool2d_shape(op, s, ceil_mode, avg);
  return s;
}

void conv2d_forward(uintptr_t x, uintptr_t w, uintptr_t bias, uintptr_t y, int dtype, const Geometry& geometry,
                    int device) {
  const Conv2dShape s = conv_shape("conv2d_forward", geometry);
  dlcore::cuda::set_device(device);
  dlcore::cuda::conv2d_forward(static_cast<DType>(dtype), s, ptr(x), ptr(w), ptr(bias), ptr(y));
}

void conv2d_backward_input(uintptr_t w, uintptr_t grad_y, uintptr_t grad_x, int dtype, const Geometry& geometry,
                           int device) {
  const Conv2dShape s = conv_shape("conv2d_backward_input", geometry);
  dlcore::cuda::set_device(device);
  dlcore::cuda::conv2d_backward_input(static_cast<DType>(dtype), s, ptr(w), ptr(grad_y), ptr(grad_x));
}

void conv2d_backward_weight(uintptr_t x, uintptr_t grad_y, uintptr_t grad_w, uintptr_t grad_bias, int dtype,
                            const Geometry& geometry, int device) {
  const Conv2dShape s = conv_shape("conv2d_backward_weight", geometry);
  dlcore::cuda::set_device(device);
  dlcore::cuda::conv2d_backward_weight(static_cast<DType>(dtype), s, ptr(x), ptr(grad_y), ptr(grad_w),
                                       ptr(grad_bias));
}

void max_pool2d_forward(uintptr_t x, uintptr_t y, uintptr_t index, int dtype, const Geometry& geometry,
                        bool ceil_mode, int device) {
  const Pool2dShape s = pool_shape("max_pool2d_forward", geometry, ceil_mode, false, false);
  dlcore::cuda::set_device(device);
  dlcore::cuda::max_pool2d_forward(static_cast<DType>(dtype), s, ptr(x), ptr(y), ptr<int64_t>(index));
}

void max_pool2d_backward(uintptr_t index, uintptr_t grad_y, uintptr_t grad_x, int dtype, const Geometry& geometry,
                         bool ceil_mode, int device) {
  const Pool2dShape s = pool_shape("max_pool2d_backward", geometry, ceil_mode, false, false);
  dlcore::cuda::set_device(device);
  dlcore::cuda::max_pool2d_backward(static_cast<DType>(dtype), s, ptr<const int64_t>(index), ptr(grad_y),
                                    ptr(grad_x));
}

void avg_pool2d_forward(uintptr_t x, uintptr_t y, int dtype, const Geometry& geometry, bool ceil_mode,
                        bool count_include_pad, int device) {
  const Pool2dShape s = pool_shape("avg_pool2d_forward", geometry, ceil_mode, count_include_pad, true);
  dlcore::cuda::set_device(device);
  dlcore::cuda::avg_pool2d_forward(static_cast<DType>(dtype), s, ptr(x), ptr(y));
}

void avg_pool2d_backward(uintptr_t grad_y, uintptr_t grad_x, int dtype, const Geometry& geometry, bool ceil_mode,
                         bool count_include_pad, int device) {
  const Pool2dShape s = pool_shape("avg_pool2d_backward", geometry, ceil_mode, count_include_pad, true);
  dlcore::cuda::set_device(device);
  dlcore::cuda::avg_pool2d_backward(static_cast<DType>(dtype), s, ptr(grad_y), ptr(grad_x));
}

}  // namespace
#endif

void bind_cuda_conv(py::module_& cuda) {
#ifdef DLCORE_WITH_CUDA
  const auto nogil = py::call_guard<py::gil_scoped_release>();
  cuda.def("conv2d_forward", &conv2d_forward, py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("y"),
           py::arg("dtype"), py::arg("geometry"), py::arg("device"), nogil,
           "y (N, C_out, OH, OW) := conv2d(x (N, C, H, W), w (C_out, C/groups, KH, KW)) + bias (C_out,) "
           "(bias 0: none). geometry: N, C, H, W, C_out, KH, KW, OH, OW, stride_h, stride_w, pad_h, "
           "pad_w, dil_h, dil_w, groups.");
  cuda.def("conv2d_backward_input", &conv2d_backward_input, py::arg("w"), py::arg("grad_y"), py::arg("grad_x"),
           py::arg("dtype"), py::arg("geometry"), py::arg("device"), nogil,
           "grad_x (N, C, H, W) of conv2d from w and grad_y (N, C_out, OH, OW); geometry as conv2d_forward.");
  cuda.def("conv2d_backward_weight", &conv2d_backward_weight, py::arg("x"), py::arg("grad_y"), py::arg("grad_w"),
           py::arg("grad_bias"), py::arg("dtype"), py::arg("geometry"), py::arg("device"), nogil,
           "grad_w (C_out, C/groups, KH, KW) and, unless grad_bias is 0, grad_bias (C_out,) of conv2d from x "
           "and grad_y; deterministic. geometry as conv2d_forward.");
  cuda.def("max_pool2d_forward", &max_pool2d_forward, py::arg("x"), py::arg("y"), py::arg("index"),
           py::arg("dtype"), py::arg("geometry"), py::arg("ceil_mode"), py::arg("device"), nogil,
           "y, index (N, C, OH, OW) := max and int64 argmax h*W + w of each window of x (N, C, H, W). "
           "geometry: N, C, H, W, OH, OW, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w.");
  cuda.def("max_pool2d_backward", &max_pool2d_backward, py::arg("index"), py::arg("grad_y"), py::arg("grad_x"),
           py::arg("dtype"), py::arg("geometry"), py::arg("ceil_mode"), py::arg("device"), nogil,
           "grad_x (N, C, H, W) := grad_y gathered at the index positions (deterministic).");
  cuda.def("avg_pool2d_forward", &avg_pool2d_forward, py::arg("x"), py::arg("y"), py::arg("dtype"),
           py::arg("geometry"), py::arg("ceil_mode"), py::arg("count_include_pad"), py::arg("device"), nogil,
           "y (N, C, OH, OW) := mean of each window, divisor as PyTorch's avg_pool2d (dil_h = dil_w = 1).");
  cuda.def("avg_pool2d_backward", &avg_pool2d_backward, py::arg("grad_y"), py::arg("grad_x"), py::arg("dtype"),
           py::arg("geometry"), py::arg("ceil_mode"), py::arg("count_include_pad"), py::arg("device"), nogil,
           "grad_x (N, C, H, W) := each grad_y spread evenly over its window (deterministic gather).");
#else
  (void)cuda;
#endif
}

}  // namespace dlcore::bind
