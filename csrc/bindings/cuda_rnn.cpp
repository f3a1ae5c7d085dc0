// _C.cuda bindings for the CUDA recurrence step kernels (csrc/cuda/rnn.h): the pointwise part
// of one time step of an LSTM, GRU or Elman RNN, forward and backward. The step walk and the
// recurrent GEMMs are in the Python mirrors (python/dlcore/cuda/kernels/rnn.py), which also
// validate shapes, dtypes and devices. Device pointers arrive as Python ints (0 = absent),
// sizes as int64, the dtype as a DType code; each call makes `device` current. The kernels
// check the step geometry and the pointers it needs. Registers nothing without CUDA.
//
//   lstm_step_forward(dtype, device, rows, H, carried, finishing, gates, c_prev, c0, h, c, h_n, c_n)
//   lstm_step_backward(dtype, device, rows, H, carried, gates, c, c_prev, c0, grad_y, carry_h,
//                      carry_c, grad_gates)
//   gru_step_forward(dtype, device, rows, H, carried, finishing, gates, hidden, h_prev, h0, h, h_n)
//   gru_step_backward(dtype, device, rows, H, carried, gates, hidden, h_prev, h0, grad_y, carry_h,
//                     grad_x, grad_h)
//   rnn_step_forward(dtype, device, rows, H, finishing, relu, y, h_n)
//   rnn_step_backward(dtype, device, rows, H, relu, y, grad_y, carry_h, grad_pre)
#include <pybind11/pybind11.h>

namespace py = pybind11;

#ifdef DLCORE_WITH_CUDA
#include <cstdint>
#include <string>

#include "cuda/dtype.h"
#include "cuda/rnn.h"
#include "cuda/runtime.h"
#endif

namespace dlcore::bind {

#ifdef DLCORE_WITH_CUDA
namespace {

using cuda::DType;
using cuda::RnnStep;

DType float_dtype(const char* op, int code) {
  if (code != static_cast<int>(DType::f32) && code != static_cast<int>(DType::f64))
    throw py::value_error(std::string(op) + ": expected a float32 or float64 dtype code, got " + std::to_string(code));
  return static_cast<DType>(code);
}

template <class Ptr>
Ptr* ptr(uintptr_t address) {
  return reinterpret_cast<Ptr*>(address);
}

// Makes `device` current for the launch (the kernels run on the current device's stream).
void use_device(const char* op, int device) {
  cuda::check_device(device, op);
  cuda::set_device(device);
}

void lstm_step_forward(int dtype, int device, int64_t rows, int64_t H, int64_t carried, int64_t finishing,
                       uintptr_t gates, uintptr_t c_prev, uintptr_t c0, uintptr_t h, uintptr_t c, uintptr_t h_n,
                       uintptr_t c_n) {
  const char* op = "lstm_step_forward";
  const DType dt = float_dtype(op, dtype);
  use_device(op, device);
  cuda::lstm_step_forward(dt, RnnStep{rows, H, carried, finishing}, ptr<void>(gates), ptr<const void>(c_prev),
                          ptr<const void>(c0), ptr<void>(h), ptr<void>(c), ptr<void>(h_n), ptr<void>(c_n));
}

void lstm_step_backward(int dtype, int device, int64_t rows, int64_t H, int64_t carried, uintptr_t gates,
                        uintptr_t c, uintptr_t c_prev, uintptr_t c0, uintptr_t grad_y, uintptr_t carry_h,
                        uintptr_t carry_c, uintptr_t grad_gates) {
  const char* op = "lstm_step_backward";
  const DType dt = float_dtype(op, dtype);
  use_device(op, device);
  cuda::lstm_step_backward(dt, RnnStep{rows, H, carried, rows}, ptr<const void>(gates), ptr<const void>(c),
                           ptr<const void>(c_prev), ptr<const void>(c0), ptr<const void>(grad_y),
                           ptr<const void>(carry_h), ptr<void>(carry_c), ptr<void>(grad_gates));
}

void gru_step_forward(int dtype, int device, int64_t rows, int64_t H, int64_t carried, int64_t finishing,
                      uintptr_t gates, uintptr_t hidden, uintptr_t h_prev, uintptr_t h0, uintptr_t h, uintptr_t h_n) {
  const char* op = "gru_step_forward";
  const DType dt = float_dtype(op, dtype);
  use_device(op, device);
  cuda::gru_step_forward(dt, RnnStep{rows, H, carried, finishing}, ptr<void>(gates), ptr<const void>(hidden),
                         ptr<const void>(h_prev), ptr<const void>(h0), ptr<void>(h), ptr<void>(h_n));
}

void gru_step_backward(int dtype, int device, int64_t rows, int64_t H, int64_t carried, uintptr_t gates,
                       uintptr_t hidden, uintptr_t h_prev, uintptr_t h0, uintptr_t grad_y, uintptr_t carry_h,
                       uintptr_t grad_x, uintptr_t grad_h) {
  const char* op = "gru_step_backward";
  const DType dt = float_dtype(op, dtype);
  use_device(op, device);
  cuda::gru_step_backward(dt, RnnStep{rows, H, carried, rows}, ptr<const void>(gates), ptr<const void>(hidden),
                          ptr<const void>(h_prev), ptr<const void>(h0), ptr<const void>(grad_y), ptr<void>(carry_h),
                          ptr<void>(grad_x), ptr<void>(grad_h));
}

void rnn_step_forward(int dtype, int device, int64_t rows, int64_t H, int64_t finishing, bool relu, uintptr_t y,
                      uintptr_t h_n) {
  const char* op = "rnn_step_forward";
  const DType dt = float_dtype(op, dtype);
  use_device(op, device);
  cuda::rnn_step_forward(dt, RnnStep{rows, H, rows, finishing}, relu, ptr<void>(y), ptr<void>(h_n));
}

void rnn_step_backward(int dtype, int device, int64_t rows, int64_t H, bool relu, uintptr_t y, uintptr_t grad_y,
                       uintptr_t carry_h, uintptr_t grad_pre) {
  const char* op = "rnn_step_backward";
  const DType dt = float_dtype(op, dtype);
  use_device(op, device);
  cuda::rnn_step_backward(dt, RnnStep{rows, H, rows, rows}, relu, ptr<const void>(y), ptr<const void>(grad_y),
                          ptr<const void>(carry_h), ptr<void>(grad_pre));
}

}  // namespace
#endif

void bind_cuda_rnn(py::module_& cuda) {
#ifdef DLCORE_WITH_CUDA
  using py::arg;
  const auto nogil = py::call_guard<py::gil_scoped_release>();
  cuda.def("lstm_step_forward", &lstm_step_forward, arg("dtype"), arg("device"), arg("rows"), arg("H"),
           arg("carried"), arg("finishing"), arg("gates"), arg("c_prev"), arg("c0"), arg("h"), arg("c"), arg("h_n"),
           arg("c_n"), nogil,
           "One LSTM step's pointwise part over a packed sequence: gates (rows, 4H) pre-activations -> "
           "activated in place; h, c (rows, H); rows >= finishing also into h_n, c_n.");
  cuda.def("lstm_step_backward", &lstm_step_backward, arg("dtype"), arg("device"), arg("rows"), arg("H"),
           arg("carried"), arg("gates"), arg("c"), arg("c_prev"), arg("c0"), arg("grad_y"), arg("carry_h"),
           arg("carry_c"), arg("grad_gates"), nogil,
           "One LSTM step backward: grad_gates (rows, 4H), carry_c := dL/dc_prev; grad_y may be 0 (absent).");
  cuda.def("gru_step_forward", &gru_step_forward, arg("dtype"), arg("device"), arg("rows"), arg("H"),
           arg("carried"), arg("finishing"), arg("gates"), arg("hidden"), arg("h_prev"), arg("h0"), arg("h"),
           arg("h_n"), nogil,
           "One GRU step's pointwise part: gates (rows, 3H) x side -> (r, z, n) in place, hidden (rows, 3H) "
           "the h side; h (rows, H); rows >= finishing also into h_n.");
  cuda.def("gru_step_backward", &gru_step_backward, arg("dtype"), arg("device"), arg("rows"), arg("H"),
           arg("carried"), arg("gates"), arg("hidden"), arg("h_prev"), arg("h0"), arg("grad_y"), arg("carry_h"),
           arg("grad_x"), arg("grad_h"), nogil,
           "One GRU step backward: grad_x, grad_h (rows, 3H); carry_h := dh * z; grad_y may be 0 (absent).");
  cuda.def("rnn_step_forward", &rnn_step_forward, arg("dtype"), arg("device"), arg("rows"), arg("H"),
           arg("finishing"), arg("relu"), arg("y"), arg("h_n"), nogil,
           "One Elman RNN step's activation: y (rows, H) in place; rows >= finishing also into h_n.");
  cuda.def("rnn_step_backward", &rnn_step_backward, arg("dtype"), arg("device"), arg("rows"), arg("H"),
           arg("relu"), arg("y"), arg("grad_y"), arg("carry_h"), arg("grad_pre"), nogil,
           "One Elman RNN step backward: grad_pre (rows, H); grad_y may be 0 (absent).");
#else
  (void)cuda;
#endif
}

}  // namespace dlcore::bind
