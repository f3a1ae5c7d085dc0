// _C.cuda bindings for the CUDA reduce kernels (csrc/cuda/reduce.h); registers nothing without CUDA.
//
// Raw entry points over device addresses (Python ints), sizes and dtype codes
// (dlcore/cuda/array.py: DTYPE_CODE). They are called by python/dlcore/cuda/kernels/reduce.py,
// which validates shapes, dtypes and target ranges, views arrays as (outer, R, inner) or
// (N, C) and allocates the contiguous outputs. The op code is int(_C.ReduceOp). Unknown
// codes, negative sizes, a null address for a non-empty array and unsupported dtypes raise
// ValueError naming the op. Every call releases the GIL (the work is queued on the device's
// stream; nothing here waits for it).
#include <pybind11/pybind11.h>

#ifdef DLCORE_WITH_CUDA
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/reduce.h"
#endif

namespace py = pybind11;

namespace dlcore::bind {

#ifdef DLCORE_WITH_CUDA
namespace {

using cuda::DType;

DType dtype_arg(const char* op, int code) {
  if (code < 0 || code > static_cast<int>(DType::b8))
    throw std::invalid_argument(std::string(op) + ": dtype is not a dtype code (0..3), got " + std::to_string(code));
  return static_cast<DType>(code);
}

ReduceOp op_arg(int code) {
  if (code != static_cast<int>(ReduceOp::sum) && code != static_cast<int>(ReduceOp::max))
    throw std::invalid_argument("reduce_forward: op must be int(ReduceOp.sum) or int(ReduceOp.max), got " +
                                std::to_string(code));
  return static_cast<ReduceOp>(code);
}

// The device address `address` of argument `arg`; ValueError if it is null while the array
// has elements (a null address is fine for an empty array or an unused output).
template <class T = void>
T* ptr(const char* op, const char* arg, uintptr_t address, bool needed) {
  if (needed && address == 0) throw std::invalid_argument(std::string(op) + ": " + arg + " is a null device address");
  return reinterpret_cast<T*>(address);
}

}  // namespace

void bind_cuda_reduce(py::module_& cuda) {
  using Release = py::call_guard<py::gil_scoped_release>;
  using py::arg;

  cuda.def(
      "reduce_forward",
      [](int op, int dtype, int64_t outer, int64_t R, int64_t inner, uintptr_t x, uintptr_t out, uintptr_t index) {
        const char* name = "reduce_forward";
        const ReduceOp rop = op_arg(op);
        const bool any = outer * inner > 0;
        cuda::reduce_forward(rop, dtype_arg(name, dtype), outer, R, inner, ptr(name, "x", x, any && R > 0),
                             ptr(name, "out", out, any), ptr<int64_t>(name, "index", index, any && rop == ReduceOp::max));
      },
      arg("op"), arg("dtype"), arg("outer"), arg("R"), arg("inner"), arg("x"), arg("out"), arg("index"), Release(),
      "Reduce x (outer, R, inner) over R into out (outer, inner): sum (out float -> same dtype, int64/bool -> "
      "int64; index unused, may be 0) or max (out of x's dtype, index int64 = first argmax).");
  cuda.def(
      "reduce_max_backward",
      [](int dtype, int64_t outer, int64_t R, int64_t inner, uintptr_t index, uintptr_t grad_out, uintptr_t grad_x) {
        const char* name = "reduce_max_backward";
        const bool any = outer * R * inner > 0;
        cuda::reduce_max_backward(dtype_arg(name, dtype), outer, R, inner, ptr<int64_t>(name, "index", index, any),
                                  ptr(name, "grad_out", grad_out, any), ptr(name, "grad_x", grad_x, any));
      },
      arg("dtype"), arg("outer"), arg("R"), arg("inner"), arg("index"), arg("grad_out"), arg("grad_x"), Release(),
      "grad_x (outer, R, inner) = grad_out (outer, inner) at r == index, else 0.");
  cuda.def(
      "softmax_forward",
      [](int dtype, bool log, int64_t outer, int64_t R, int64_t inner, uintptr_t x, uintptr_t y) {
        const char* name = "softmax_forward";
        const bool any = outer * R * inner > 0;
        cuda::softmax_forward(dtype_arg(name, dtype), log, outer, R, inner, ptr(name, "x", x, any),
                              ptr(name, "y", y, any));
      },
      arg("dtype"), arg("log"), arg("outer"), arg("R"), arg("inner"), arg("x"), arg("y"), Release(),
      "y (outer, R, inner) = softmax (log=False) or log_softmax (log=True) of x over R.");
  cuda.def(
      "softmax_backward",
      [](int dtype, bool log, int64_t outer, int64_t R, int64_t inner, uintptr_t y, uintptr_t grad_y,
         uintptr_t grad_x) {
        const char* name = "softmax_backward";
        const bool any = outer * R * inner > 0;
        cuda::softmax_backward(dtype_arg(name, dtype), log, outer, R, inner, ptr(name, "y", y, any),
                               ptr(name, "grad_y", grad_y, any), ptr(name, "grad_x", grad_x, any));
      },
      arg("dtype"), arg("log"), arg("outer"), arg("R"), arg("inner"), arg("y"), arg("grad_y"), arg("grad_x"),
      Release(), "grad_x (outer, R, inner) of softmax / log_softmax from the output y and grad_y.");
  cuda.def(
      "cross_entropy_forward",
      [](int dtype, int64_t N, int64_t C, uintptr_t logits, uintptr_t target, int64_t ignore_index, uintptr_t loss,
         uintptr_t lse) {
        const char* name = "cross_entropy_forward";
        const bool any = N > 0;
        cuda::cross_entropy_forward(dtype_arg(name, dtype), N, C, ptr(name, "logits", logits, any),
                                    ptr<int64_t>(name, "target", target, any), ignore_index,
                                    ptr(name, "loss", loss, any), ptr(name, "lse", lse, any));
      },
      arg("dtype"), arg("N"), arg("C"), arg("logits"), arg("target"), arg("ignore_index"), arg("loss"), arg("lse"),
      Release(), "Per-row loss (N) and lse (N) of logits (N, C) and int64 target (N); ignored rows get loss 0.");
  cuda.def(
      "cross_entropy_backward",
      [](int dtype, int64_t N, int64_t C, uintptr_t logits, uintptr_t target, int64_t ignore_index, uintptr_t lse,
         uintptr_t grad_loss, uintptr_t grad_logits) {
        const char* name = "cross_entropy_backward";
        const bool any = N * C > 0;
        cuda::cross_entropy_backward(dtype_arg(name, dtype), N, C, ptr(name, "logits", logits, any),
                                     ptr<int64_t>(name, "target", target, any), ignore_index,
                                     ptr(name, "lse", lse, any), ptr(name, "grad_loss", grad_loss, any),
                                     ptr(name, "grad_logits", grad_logits, any));
      },
      arg("dtype"), arg("N"), arg("C"), arg("logits"), arg("target"), arg("ignore_index"), arg("lse"),
      arg("grad_loss"), arg("grad_logits"), Release(),
      "grad_logits (N, C) = grad_loss[n] * (softmax(logits)[n] - onehot(target[n])); 0 for ignored rows.");
  cuda.def(
      "nll_loss_forward",
      [](int dtype, int64_t N, int64_t C, uintptr_t logp, uintptr_t target, int64_t ignore_index, uintptr_t loss) {
        const char* name = "nll_loss_forward";
        const bool any = N > 0;
        cuda::nll_loss_forward(dtype_arg(name, dtype), N, C, ptr(name, "logp", logp, any),
                               ptr<int64_t>(name, "target", target, any), ignore_index, ptr(name, "loss", loss, any));
      },
      arg("dtype"), arg("N"), arg("C"), arg("logp"), arg("target"), arg("ignore_index"), arg("loss"), Release(),
      "Per-row loss (N) = -logp[n, target[n]]; 0 for ignored rows.");
  cuda.def(
      "nll_loss_backward",
      [](int dtype, int64_t N, int64_t C, uintptr_t target, int64_t ignore_index, uintptr_t grad_loss,
         uintptr_t grad_logp) {
        const char* name = "nll_loss_backward";
        const bool any = N * C > 0;
        cuda::nll_loss_backward(dtype_arg(name, dtype), N, C, ptr<int64_t>(name, "target", target, any), ignore_index,
                                ptr(name, "grad_loss", grad_loss, any), ptr(name, "grad_logp", grad_logp, any));
      },
      arg("dtype"), arg("N"), arg("C"), arg("target"), arg("ignore_index"), arg("grad_loss"), arg("grad_logp"),
      Release(), "grad_logp (N, C): -grad_loss[n] at (n, target[n]) for non-ignored rows, 0 elsewhere.");
}

#else

void bind_cuda_reduce(py::module_& cuda) { (void)cuda; }

#endif

}  // namespace dlcore::bind
