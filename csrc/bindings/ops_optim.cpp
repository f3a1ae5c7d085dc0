// Bindings for the optimiser steps (csrc/cpu/ref/optim.cpp): sgd_step and adam_step update a
// parameter and its state arrays in place. Checked here once: float dtypes, all alike
// (TypeError); the same shape, C-contiguous, writeable state, no two arrays sharing memory
// (ValueError), so the kernels may assume flat, distinct arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bindings/checks.h"
#include "core/registry.h"

namespace dlcore::bind {

namespace {

namespace py = pybind11;
using py::arg;

// An array argument that may be None (then `present` is false and the array unused).
py::array optional_array(const char* op, const char* name, const py::object& obj, bool& present) {
  present = !obj.is_none();
  if (!present) return py::array();
  if (!py::isinstance<py::array>(obj))
    type_error(op, ": ", name, " must be a numpy array or None, got ", py::str(py::type::of(obj)).cast<std::string>());
  return obj.cast<py::array>();
}

// The checks every step shares. `arrays` lists (name, array) with the parameter first and the
// gradient second; every other one is state the step writes (None entries already dropped).
void check_step_arrays(const char* op, const std::vector<std::pair<const char*, const py::array*>>& arrays) {
  const py::array& param = *arrays[0].second;
  float_type(op, arrays[0].first, param);
  for (const auto& [name, a] : arrays) {
    check_same_dtype(op, arrays[0].first, param, name, *a);
    check_shape(op, name, *a, shape_of(param));
    check_contiguous(op, name, *a);
  }
  for (size_t k = 0; k < arrays.size(); ++k) {
    if (k != 1 && !arrays[k].second->writeable()) value_error(op, ": ", arrays[k].first, " must be writeable");
    for (size_t j = k + 1; j < arrays.size(); ++j)
      if (overlaps(*arrays[k].second, *arrays[j].second))
        value_error(op, ": ", arrays[k].first, " and ", arrays[j].first, " must not share memory");
  }
}

void sgd_step(py::array param, const py::array& grad, const py::object& momentum_buffer, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov, bool maximize, bool first) {
  const char* op = "sgd_step";
  bool has_buf = false;
  py::array buf = optional_array(op, "momentum_buffer", momentum_buffer, has_buf);
  std::vector<std::pair<const char*, const py::array*>> arrays = {{"param", &param}, {"grad", &grad}};
  if (has_buf) arrays.emplace_back("momentum_buffer", &buf);
  check_step_arrays(op, arrays);
  if (momentum != 0 && !has_buf) value_error(op, ": momentum = ", momentum, " needs a momentum_buffer");
  const SgdHyper h{lr, momentum, dampening, weight_decay, nesterov, maximize, first};  // field order
  const int64_t n = param.size();
  dispatch_float(float_type(op, "param", param), [&](auto tag) {
    using T = decltype(tag);
    py::gil_scoped_release release;
    slot::sgd_step<T>()(n, h, mdata<T>(param), cdata<T>(grad), has_buf ? mdata<T>(buf) : nullptr);
    return 0;
  });
}

void adam_step(py::array param, const py::array& grad, py::array exp_avg, py::array exp_avg_sq,
               const py::object& max_exp_avg_sq, double lr, double step_size, double bias_correction2_sqrt,
               double beta1, double beta2, double eps, double weight_decay, bool maximize, bool decoupled) {
  const char* op = "adam_step";
  bool amsgrad = false;
  py::array vmax = optional_array(op, "max_exp_avg_sq", max_exp_avg_sq, amsgrad);
  std::vector<std::pair<const char*, const py::array*>> arrays = {
      {"param", &param}, {"grad", &grad}, {"exp_avg", &exp_avg}, {"exp_avg_sq", &exp_avg_sq}};
  if (amsgrad) arrays.emplace_back("max_exp_avg_sq", &vmax);
  check_step_arrays(op, arrays);
  if (!(bias_correction2_sqrt > 0)) value_error(op, ": bias_correction2_sqrt must be > 0, got ", bias_correction2_sqrt);
  const AdamHyper h{lr, step_size, bias_correction2_sqrt, beta1, beta2, eps, weight_decay, maximize,
                    decoupled};  // field order
  const int64_t n = param.size();
  dispatch_float(float_type(op, "param", param), [&](auto tag) {
    using T = decltype(tag);
    py::gil_scoped_release release;
    slot::adam_step<T>()(n, h, mdata<T>(param), cdata<T>(grad), mdata<T>(exp_avg), mdata<T>(exp_avg_sq),
                         amsgrad ? mdata<T>(vmax) : nullptr);
    return 0;
  });
}

}  // namespace

void bind_optim(py::module_& m) {
  m.def("sgd_step", &sgd_step, arg("param"), arg("grad"), arg("momentum_buffer"), arg("lr"), arg("momentum"),
        arg("dampening"), arg("weight_decay"), arg("nesterov"), arg("maximize"), arg("first"),
        "One SGD step in place (torch.optim.SGD's math): d = (-grad if maximize else grad) + weight_decay * param; "
        "with momentum, momentum_buffer := d on the first step (first=True), else momentum * buf + "
        "(1 - dampening) * d, and d = d + momentum * buf if nesterov else buf; param -= lr * d. "
        "momentum_buffer is None without momentum.");
  m.def("adam_step", &adam_step, arg("param"), arg("grad"), arg("exp_avg"), arg("exp_avg_sq"),
        arg("max_exp_avg_sq"), arg("lr"), arg("step_size"), arg("bias_correction2_sqrt"), arg("beta1"),
        arg("beta2"), arg("eps"), arg("weight_decay"), arg("maximize"), arg("decoupled"),
        "One Adam (AdamW when decoupled) step in place (torch.optim.Adam's math): step_size = lr / (1 - beta1^t), "
        "bias_correction2_sqrt = sqrt(1 - beta2^t); max_exp_avg_sq is the amsgrad state, or None without amsgrad.");
}

}  // namespace dlcore::bind
