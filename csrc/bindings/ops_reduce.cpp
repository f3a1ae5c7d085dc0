// Bindings of the reduce family: _C.ReduceOp and reduce_forward, reduce_max_backward,
// softmax_forward, softmax_backward.
//
// Every op views its C-contiguous input as (outer, R, inner): reductions reduce one run of
// adjacent dims [start, end) (the Python layer calls once per run for non-adjacent dims),
// softmax one dim. Outputs are new C-contiguous arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <tuple>

#include "bindings/checks.h"
#include "core/kernel_args.h"
#include "core/registry.h"

namespace dlcore::bind {
namespace {

// Releasing the GIL costs ~0.1 µs; below this many elements the op is cheaper than that.
constexpr int64_t kReleaseGilMin = 16384;

int64_t prod(const Shape& s, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t d = begin; d < end; ++d) p *= s[d];
  return p;
}

// ValueError unless 0 <= start < end <= ndim.
void check_dim_range(const char* op, const Shape& shape, int64_t start, int64_t end) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  if (!(0 <= start && start < end && end <= nd))
    value_error(op, ": dims [start, end) = [", start, ", ", end, ") must satisfy 0 <= start < end <= ndim = ",
                nd, " (shape ", shape_str(shape), ")");
}

// shape[:start] + shape[end:]
Shape reduced_shape(const Shape& shape, int64_t start, int64_t end) {
  Shape out(shape.begin(), shape.begin() + start);
  out.insert(out.end(), shape.begin() + end, shape.end());
  return out;
}

// ValueError unless 0 <= dim < ndim.
void check_dim(const char* op, const py::array& a, int64_t dim) {
  if (!(0 <= dim && dim < a.ndim()))
    value_error(op, ": dim must satisfy 0 <= dim < ndim = ", a.ndim(), ", got ", dim, " (shape ",
                shape_str(a), ")");
}

py::tuple reduce_forward(ReduceOp op, const py::array& x, int64_t start, int64_t end) {
  const std::string what = std::string("reduce_forward(") + (op == ReduceOp::sum ? "sum" : "max") + ")";
  const char* name = what.c_str();
  const FloatType ft = float_type(name, "x", x);
  check_contiguous(name, "x", x);
  const Shape shape = shape_of(x);
  check_dim_range(name, shape, start, end);
  const int64_t outer = prod(shape, 0, start);
  const int64_t R = prod(shape, start, end);
  const int64_t inner = prod(shape, end, shape.size());
  if (op == ReduceOp::max && R == 0)
    value_error(name, ": cannot reduce over an empty dimension (x shape ", shape_str(shape),
                ", dims [", start, ", ", end, "))");
  const Shape out_shape = reduced_shape(shape, start, end);
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array out = empty<T>(out_shape);
    py::object index = py::none();
    int64_t* pi = nullptr;
    if (op == ReduceOp::max) {
      py::array idx = empty<int64_t>(out_shape);
      pi = mdata<int64_t>(idx);
      index = idx;
    }
    if (outer * inner > 0) {
      const T* px = cdata<T>(x);
      T* po = mdata<T>(out);
      auto* kernel = slot::reduce_forward<T>();
      if (outer * R * inner >= kReleaseGilMin) {
        py::gil_scoped_release release;
        kernel(op, outer, R, inner, px, po, pi);
      } else {
        kernel(op, outer, R, inner, px, po, pi);
      }
    }
    return py::make_tuple(out, index);
  });
}

py::array reduce_max_backward(const py::array& index, const py::array& grad_out, const Shape& x_shape,
                              int64_t start, int64_t end) {
  const char* name = "reduce_max_backward";
  check_int64(name, "index", index);
  const FloatType ft = float_type(name, "grad_out", grad_out);
  check_contiguous(name, "index", index);
  check_contiguous(name, "grad_out", grad_out);
  for (int64_t s : x_shape)
    if (s < 0) value_error(name, ": x_shape must be non-negative, got ", shape_str(x_shape));
  check_dim_range(name, x_shape, start, end);
  const Shape out_shape = reduced_shape(x_shape, start, end);
  check_shape(name, "index", index, out_shape);
  check_shape(name, "grad_out", grad_out, out_shape);
  const int64_t outer = prod(x_shape, 0, start);
  const int64_t R = prod(x_shape, start, end);
  const int64_t inner = prod(x_shape, end, x_shape.size());
  // Out-of-range indices would write outside grad_x: check them all (one cheap pass).
  const int64_t* pi = cdata<int64_t>(index);
  for (int64_t i = 0; i < outer * inner; ++i)
    if (pi[i] < 0 || pi[i] >= R)
      value_error(name, ": index values must lie in [0, ", R, "), got ", pi[i], " at flat position ", i);
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array grad_x = empty<T>(x_shape);
    const int64_t n = outer * R * inner;
    if (n == 0) return grad_x;
    const T* go = cdata<T>(grad_out);
    T* gx = mdata<T>(grad_x);
    auto* kernel = slot::reduce_max_backward<T>();
    if (n >= kReleaseGilMin) {
      py::gil_scoped_release release;
      kernel(outer, R, inner, pi, go, gx);
    } else {
      kernel(outer, R, inner, pi, go, gx);
    }
    return grad_x;
  });
}

py::array softmax_forward(const py::array& x, int64_t dim, bool log) {
  const char* name = log ? "softmax_forward(log)" : "softmax_forward";
  const FloatType ft = float_type(name, "x", x);
  check_contiguous(name, "x", x);
  check_dim(name, x, dim);
  const Shape shape = shape_of(x);
  const int64_t outer = prod(shape, 0, dim);
  const int64_t R = shape[dim];
  const int64_t inner = prod(shape, dim + 1, shape.size());
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array y = empty<T>(shape);
    const int64_t n = outer * R * inner;
    if (n == 0) return y;
    const T* px = cdata<T>(x);
    T* pyd = mdata<T>(y);
    auto* kernel = slot::softmax_forward<T>();
    if (n >= kReleaseGilMin) {
      py::gil_scoped_release release;
      kernel(log, outer, R, inner, px, pyd);
    } else {
      kernel(log, outer, R, inner, px, pyd);
    }
    return y;
  });
}

py::array softmax_backward(const py::array& y, const py::array& grad_y, int64_t dim, bool log) {
  const char* name = log ? "softmax_backward(log)" : "softmax_backward";
  const FloatType ft = float_type(name, "y", y);
  check_same_dtype(name, "y", y, "grad_y", grad_y);
  check_contiguous(name, "y", y);
  check_contiguous(name, "grad_y", grad_y);
  check_dim(name, y, dim);
  const Shape shape = shape_of(y);
  check_shape(name, "grad_y", grad_y, shape);
  const int64_t outer = prod(shape, 0, dim);
  const int64_t R = shape[dim];
  const int64_t inner = prod(shape, dim + 1, shape.size());
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array grad_x = empty<T>(shape);
    const int64_t n = outer * R * inner;
    if (n == 0) return grad_x;
    const T* pyd = cdata<T>(y);
    const T* gy = cdata<T>(grad_y);
    T* gx = mdata<T>(grad_x);
    auto* kernel = slot::softmax_backward<T>();
    if (n >= kReleaseGilMin) {
      py::gil_scoped_release release;
      kernel(log, outer, R, inner, pyd, gy, gx);
    } else {
      kernel(log, outer, R, inner, pyd, gy, gx);
    }
    return grad_x;
  });
}

}  // namespace

void bind_reduce(py::module_& m) {
  py::enum_<ReduceOp>(m, "ReduceOp", "Reduction op codes.")
      .value("sum", ReduceOp::sum)
      .value("max", ReduceOp::max);

  m.def("reduce_forward", &reduce_forward, py::arg("op"), py::arg("x"), py::arg("start"), py::arg("end"),
        "(out, index): reduce the adjacent dims [start, end) of C-contiguous x; out has shape "
        "x.shape[:start] + x.shape[end:]. index (int64, same shape) is the first max's position "
        "in the flattened reduced block for ReduceOp.max, None for sum.");
  m.def("reduce_max_backward", &reduce_max_backward, py::arg("index"), py::arg("grad_out"),
        py::arg("x_shape"), py::arg("start"), py::arg("end"),
        "grad_x of shape x_shape: zeros except grad_out at the argmax positions.");
  m.def("softmax_forward", &softmax_forward, py::arg("x"), py::arg("dim"), py::arg("log"),
        "softmax (log=False) or log_softmax (log=True) of C-contiguous x over dim (0 <= dim < ndim).");
  m.def("softmax_backward", &softmax_backward, py::arg("y"), py::arg("grad_y"), py::arg("dim"),
        py::arg("log"), "grad_x of softmax / log_softmax from the forward output y and grad_y.");
}

}  // namespace dlcore::bind
