// Bindings for the loss family: cross_entropy_forward / _backward, nll_loss_forward /
// _backward. Each validates dtypes (TypeError), ranks, shapes, contiguity and target ranges
// (ValueError) once here; the kernels in csrc/cpu/ref/loss.cpp assume all of it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bindings/checks.h"
#include "core/registry.h"

namespace dlcore::bind {

namespace {

namespace py = pybind11;

// ValueError unless every target is in [0, C) or equals ignore_index, e.g.
// "cross_entropy: target 12 at position 3 is out of range [0, 10)".
void check_targets(const char* op, const py::array& target, int64_t C, int64_t ignore_index) {
  const int64_t* t = cdata<int64_t>(target);
  const int64_t N = target.size();
  for (int64_t n = 0; n < N; ++n)
    if (t[n] != ignore_index && (t[n] < 0 || t[n] >= C))
      value_error(op, ": target ", t[n], " at position ", n, " is out of range [0, ", C, ")");
}

// Checks target (N,) int64 contiguous, in range, against a (N, C) input named `arg`.
void check_target_for(const char* op, const char* check_name, const py::array& target, int64_t N,
                      int64_t C, int64_t ignore_index) {
  check_int64(op, "target", target);
  check_contiguous(op, "target", target);
  check_ndim(op, "target", target, 1, "(N,)");
  check_shape(op, "target", target, {N});
  check_targets(check_name, target, C, ignore_index);
}

// Checks a (N, C) float input and returns its dtype; C must be >= 1 when rows exist.
FloatType check_rows(const char* op, const char* arg, const py::array& a) {
  const FloatType ft = float_type(op, arg, a);
  check_contiguous(op, arg, a);
  check_ndim(op, arg, a, 2, "(N, C)");
  if (a.shape(0) > 0 && a.shape(1) == 0)
    value_error(op, ": ", arg, " has no classes (shape ", shape_str(a), ")");
  return ft;
}

// Checks a (N,) float vector with the dtype of `ref`.
void check_row_vector(const char* op, const char* ref_arg, const py::array& ref, const char* arg,
                      const py::array& a, int64_t N) {
  check_same_dtype(op, ref_arg, ref, arg, a);
  check_contiguous(op, arg, a);
  check_ndim(op, arg, a, 1, "(N,)");
  check_shape(op, arg, a, {N});
}

py::tuple cross_entropy_forward(const py::array& logits, const py::array& target,
                                int64_t ignore_index) {
  const char* op = "cross_entropy_forward";
  const FloatType ft = check_rows(op, "logits", logits);
  const int64_t N = logits.shape(0), C = logits.shape(1);
  check_target_for(op, "cross_entropy", target, N, C, ignore_index);
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array loss = empty<T>({N}), lse = empty<T>({N});
    {
      py::gil_scoped_release release;
      slot::cross_entropy_forward<T>()(N, C, cdata<T>(logits), cdata<int64_t>(target),
                                       ignore_index, mdata<T>(loss), mdata<T>(lse));
    }
    return py::make_tuple(loss, lse);
  });
}

py::array cross_entropy_backward(const py::array& logits, const py::array& target,
                                 const py::array& lse, const py::array& grad_loss,
                                 int64_t ignore_index) {
  const char* op = "cross_entropy_backward";
  const FloatType ft = check_rows(op, "logits", logits);
  const int64_t N = logits.shape(0), C = logits.shape(1);
  check_target_for(op, "cross_entropy", target, N, C, ignore_index);
  check_row_vector(op, "logits", logits, "lse", lse, N);
  check_row_vector(op, "logits", logits, "grad_loss", grad_loss, N);
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array grad_logits = empty<T>({N, C});
    {
      py::gil_scoped_release release;
      slot::cross_entropy_backward<T>()(N, C, cdata<T>(logits), cdata<int64_t>(target),
                                        ignore_index, cdata<T>(lse), cdata<T>(grad_loss),
                                        mdata<T>(grad_logits));
    }
    return grad_logits;
  });
}

py::array nll_loss_forward(const py::array& logp, const py::array& target, int64_t ignore_index) {
  const char* op = "nll_loss_forward";
  const FloatType ft = check_rows(op, "logp", logp);
  const int64_t N = logp.shape(0), C = logp.shape(1);
  check_target_for(op, "nll_loss", target, N, C, ignore_index);
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array loss = empty<T>({N});
    slot::nll_loss_forward<T>()(N, C, cdata<T>(logp), cdata<int64_t>(target), ignore_index,
                                mdata<T>(loss));
    return loss;
  });
}

py::array nll_loss_backward(const py::array& target, const py::array& grad_loss, int64_t C,
                            int64_t ignore_index) {
  const char* op = "nll_loss_backward";
  const FloatType ft = float_type(op, "grad_loss", grad_loss);
  check_contiguous(op, "grad_loss", grad_loss);
  check_ndim(op, "grad_loss", grad_loss, 1, "(N,)");
  const int64_t N = grad_loss.shape(0);
  if (C < 0 || (N > 0 && C == 0)) value_error(op, ": C must be >= 1, got ", C);
  check_target_for(op, "nll_loss", target, N, C, ignore_index);
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array grad_logp = empty<T>({N, C});
    {
      py::gil_scoped_release release;
      slot::nll_loss_backward<T>()(N, C, cdata<int64_t>(target), ignore_index,
                                   cdata<T>(grad_loss), mdata<T>(grad_logp));
    }
    return grad_logp;
  });
}

}  // namespace

void bind_loss(py::module_& m) {
  using py::arg;
  m.def("cross_entropy_forward", &cross_entropy_forward, arg("logits"), arg("target"),
        arg("ignore_index") = -100,
        "Per-row cross entropy of logits (N, C) and int64 target (N,): returns (loss (N,), lse (N,)); "
        "rows with target == ignore_index get loss 0.");
  m.def("cross_entropy_backward", &cross_entropy_backward, arg("logits"), arg("target"), arg("lse"),
        arg("grad_loss"), arg("ignore_index") = -100,
        "grad_logits (N, C) = grad_loss[n] * (softmax(logits)[n] - onehot(target[n])); 0 for ignored rows.");
  m.def("nll_loss_forward", &nll_loss_forward, arg("logp"), arg("target"), arg("ignore_index") = -100,
        "Per-row loss (N,) = -logp[n, target[n]]; 0 for ignored rows.");
  m.def("nll_loss_backward", &nll_loss_backward, arg("target"), arg("grad_loss"), arg("C"),
        arg("ignore_index") = -100,
        "grad_logp (N, C): zero except -grad_loss[n] at (n, target[n]) for non-ignored rows.");
}

}  // namespace dlcore::bind
