// _C.cuda bindings for the CUDA nn kernels (csrc/cuda/nn.h: take, index_add, dropout, the LSTM
// cell) and the fused optimizer steps (csrc/cuda/optim.h). Device pointers arrive as Python ints,
// sizes as int64, dtypes as DType codes. Shapes, dtypes and index ranges are validated by the
// Python mirrors (python/dlcore/cuda/kernels/{nn,optim}.py); these check what a wrong call from
// Python could still get wrong (dtype codes, list lengths). Registers nothing without CUDA.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

#ifdef DLCORE_WITH_CUDA
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/dtype.h"
#include "cuda/nn.h"
#include "cuda/optim.h"
#endif

namespace dlcore::bind {

#ifdef DLCORE_WITH_CUDA
namespace {

using dlcore::cuda::DType;

DType dtype_of(const char* op, int code) {
  if (code < 0 || code > 3)
    throw py::value_error(std::string(op) + ": unknown dtype code " + std::to_string(code));
  return static_cast<DType>(code);
}

template <class Ptr>
Ptr* ptr(uintptr_t address) {
  return reinterpret_cast<Ptr*>(address);
}

void check_length(const char* op, const char* arg, size_t got, size_t want) {
  if (got != want)
    throw py::value_error(std::string(op) + ": " + arg + " has " + std::to_string(got) +
                          " entries, expected one per parameter (" + std::to_string(want) + ")");
}

void sgd_step(int dtype, int device, const std::vector<uintptr_t>& params,
              const std::vector<uintptr_t>& grads, const std::vector<uintptr_t>& bufs,
              const std::vector<int64_t>& sizes, const std::vector<bool>& init_buffer, double lr,
              double momentum, double one_minus_dampening, double weight_decay, bool nesterov,
              bool maximize) {
  const char* op = "sgd_step";
  const size_t count = params.size();
  check_length(op, "grads", grads.size(), count);
  check_length(op, "bufs", bufs.size(), count);
  check_length(op, "sizes", sizes.size(), count);
  check_length(op, "init_buffer", init_buffer.size(), count);
  std::vector<cuda::SgdTensor> tensors(count);
  for (size_t t = 0; t < count; ++t) {
    if (momentum != 0.0 && bufs[t] == 0)
      throw py::value_error("sgd_step: parameter " + std::to_string(t) + " has no momentum buffer");
    tensors[t] = {ptr<void>(params[t]), ptr<const void>(grads[t]), ptr<void>(bufs[t]), sizes[t],
                  init_buffer[t] ? 1 : 0};
  }
  const cuda::SgdOptions options{lr, momentum, one_minus_dampening, weight_decay, nesterov, maximize};
  cuda::sgd_step(dtype_of(op, dtype), device, tensors, options);
}

void adam_step(int dtype, int device, const std::vector<uintptr_t>& params,
               const std::vector<uintptr_t>& grads, const std::vector<uintptr_t>& exp_avgs,
               const std::vector<uintptr_t>& exp_avg_sqs, const std::vector<uintptr_t>& max_exp_avg_sqs,
               const std::vector<int64_t>& sizes, const std::vector<double>& step_sizes,
               const std::vector<double>& bias_correction2_sqrts, double one_minus_beta1, double beta2,
               double one_minus_beta2, double eps, double weight_decay, double decay, bool amsgrad,
               bool maximize, bool decoupled) {
  const char* op = "adam_step";
  const size_t count = params.size();
  check_length(op, "grads", grads.size(), count);
  check_length(op, "exp_avgs", exp_avgs.size(), count);
  check_length(op, "exp_avg_sqs", exp_avg_sqs.size(), count);
  check_length(op, "max_exp_avg_sqs", max_exp_avg_sqs.size(), count);
  check_length(op, "sizes", sizes.size(), count);
  check_length(op, "step_sizes", step_sizes.size(), count);
  check_length(op, "bias_correction2_sqrts", bias_correction2_sqrts.size(), count);
  std::vector<cuda::AdamTensor> tensors(count);
  for (size_t t = 0; t < count; ++t) {
    if (amsgrad && max_exp_avg_sqs[t] == 0)
      throw py::value_error("adam_step: parameter " + std::to_string(t) + " has no max_exp_avg_sq (amsgrad)");
    tensors[t] = {ptr<void>(params[t]), ptr<const void>(grads[t]), ptr<void>(exp_avgs[t]),
                  ptr<void>(exp_avg_sqs[t]), ptr<void>(max_exp_avg_sqs[t]), sizes[t],
                  step_sizes[t], bias_correction2_sqrts[t]};
  }
  const cuda::AdamOptions options{one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, decay,
                                  amsgrad, maximize, decoupled};
  cuda::adam_step(dtype_of(op, dtype), device, tensors, options);
}

}  // namespace
#endif

void bind_cuda_nn(py::module_& cuda) {
#ifdef DLCORE_WITH_CUDA
  using py::arg;
  const auto nogil = py::call_guard<py::gil_scoped_release>();
  cuda.def(
      "take",
      [](int dtype, int64_t P, int64_t N, int64_t Q, uintptr_t x, int64_t n, uintptr_t index, uintptr_t out) {
        cuda::take(dtype_of("take", dtype), P, N, Q, ptr<const void>(x), n, ptr<const int64_t>(index),
                   ptr<void>(out));
      },
      arg("dtype"), arg("P"), arg("N"), arg("Q"), arg("x"), arg("n"), arg("index"), arg("out"), nogil,
      "out (P, n, Q)[p, j, q] = x (P, N, Q)[p, index[j] (negative wraps), q]; any dtype.");
  cuda.def(
      "index_add",
      [](int dtype, int64_t P, int64_t R, int64_t Q, uintptr_t offsets, uintptr_t order, int64_t n,
         uintptr_t grad, int64_t skip_row, uintptr_t out) {
        cuda::index_add(dtype_of("index_add", dtype), P, R, Q, ptr<const int64_t>(offsets),
                        ptr<const int64_t>(order), n, ptr<const void>(grad), skip_row, ptr<void>(out));
      },
      arg("dtype"), arg("P"), arg("R"), arg("Q"), arg("offsets"), arg("order"), arg("n"), arg("grad"),
      arg("skip_row"), arg("out"), nogil,
      "out (P, R, Q)[p, r, q] = sum over k in [offsets[r], offsets[r+1]) of grad (P, n, Q)[p, order[k], q] "
      "(0 for r == skip_row); deterministic, no atomics.");
  cuda.def(
      "dropout_forward",
      [](int dtype, int64_t n, double p, uint64_t seed, uintptr_t x, uintptr_t y, uintptr_t keep) {
        cuda::dropout_forward(dtype_of("dropout_forward", dtype), n, p, seed, ptr<const void>(x),
                              ptr<void>(y), ptr<bool>(keep));
      },
      arg("dtype"), arg("n"), arg("p"), arg("seed"), arg("x"), arg("y"), arg("keep"), nogil,
      "keep[i] = philox4x32_10(counter (i / 4, 0, 0), key seed) word i % 4 >= ceil(p 2^32); "
      "y = keep ? x / (1 - p) : 0.");
  cuda.def(
      "dropout_backward",
      [](int dtype, int64_t n, double scale, uintptr_t keep, uintptr_t grad_y, uintptr_t grad_x) {
        cuda::dropout_backward(dtype_of("dropout_backward", dtype), n, scale, ptr<const bool>(keep),
                               ptr<const void>(grad_y), ptr<void>(grad_x));
      },
      arg("dtype"), arg("n"), arg("scale"), arg("keep"), arg("grad_y"), arg("grad_x"), nogil,
      "grad_x = keep ? grad_y * scale : 0.");
  cuda.def(
      "lstm_cell_forward",
      [](int dtype, int64_t B, int64_t H, uintptr_t gates_pre, uintptr_t c_prev, uintptr_t h, uintptr_t c,
         uintptr_t gates) {
        cuda::lstm_cell_forward(dtype_of("lstm_cell_forward", dtype), B, H, ptr<const void>(gates_pre),
                                ptr<const void>(c_prev), ptr<void>(h), ptr<void>(c), ptr<void>(gates));
      },
      arg("dtype"), arg("B"), arg("H"), arg("gates_pre"), arg("c_prev"), arg("h"), arg("c"), arg("gates"),
      nogil, "LSTM cell pointwise forward, gate order (i, f, g, o).");
  cuda.def(
      "lstm_cell_backward",
      [](int dtype, int64_t B, int64_t H, uintptr_t gates, uintptr_t c_prev, uintptr_t c, uintptr_t grad_h,
         uintptr_t grad_c, uintptr_t grad_gates_pre, uintptr_t grad_c_prev) {
        cuda::lstm_cell_backward(dtype_of("lstm_cell_backward", dtype), B, H, ptr<const void>(gates),
                                 ptr<const void>(c_prev), ptr<const void>(c), ptr<const void>(grad_h),
                                 ptr<const void>(grad_c), ptr<void>(grad_gates_pre), ptr<void>(grad_c_prev));
      },
      arg("dtype"), arg("B"), arg("H"), arg("gates"), arg("c_prev"), arg("c"), arg("grad_h"), arg("grad_c"),
      arg("grad_gates_pre"), arg("grad_c_prev"), nogil,
      "LSTM cell pointwise backward; grad_h / grad_c may be 0 (absent: zeros).");
  cuda.def("sgd_step", &sgd_step, arg("dtype"), arg("device"), arg("params"), arg("grads"), arg("bufs"),
           arg("sizes"), arg("init_buffer"), arg("lr"), arg("momentum"), arg("one_minus_dampening"),
           arg("weight_decay"), arg("nesterov"), arg("maximize"), nogil,
           "Fused SGD step over every listed parameter (device pointers; bufs 0 when momentum == 0).");
  cuda.def("adam_step", &adam_step, arg("dtype"), arg("device"), arg("params"), arg("grads"),
           arg("exp_avgs"), arg("exp_avg_sqs"), arg("max_exp_avg_sqs"), arg("sizes"), arg("step_sizes"),
           arg("bias_correction2_sqrts"), arg("one_minus_beta1"), arg("beta2"), arg("one_minus_beta2"),
           arg("eps"), arg("weight_decay"), arg("decay"), arg("amsgrad"), arg("maximize"), arg("decoupled"),
           nogil, "Fused Adam / AdamW step over every listed parameter (device pointers).");
#else
  (void)cuda;
#endif
}

}  // namespace dlcore::bind
