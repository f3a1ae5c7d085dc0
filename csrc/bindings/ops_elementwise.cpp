// Bindings of the elementwise family: _C.UnaryOp / BinaryOp / CompareOp and
// unary_forward, unary_backward, binary_forward, compare_forward, where_forward.
//
// Unary ops take C-contiguous float32/float64 arrays of any shape (0-D and empty too).
// Binary, compare and where take arrays of ANY non-negative strides (views, transposes,
// np.broadcast_to) and broadcast them by NumPy's rules; the result is a new C-contiguous
// array of the broadcast shape. The strides are handed to the kernel through a
// BroadcastIter after dropping size-1 dims and merging adjacent dims that are contiguous
// for every operand, so most calls reach the kernel as 1-D or 2-D.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <utility>

#include "bindings/checks.h"
#include "core/kernel_args.h"
#include "core/registry.h"

namespace dlcore::bind {
namespace {

// Releasing the GIL costs ~0.1 µs; below this many elements the op is cheaper than that.
constexpr int64_t kReleaseGilMin = 16384;

const char* op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg: return "neg";
    case UnaryOp::exp: return "exp";
    case UnaryOp::log: return "log";
    case UnaryOp::sqrt: return "sqrt";
    case UnaryOp::abs: return "abs";
    case UnaryOp::relu: return "relu";
    case UnaryOp::tanh: return "tanh";
    case UnaryOp::sigmoid: return "sigmoid";
    case UnaryOp::clamp: return "clamp";
    case UnaryOp::pow_scalar: return "pow_scalar";
  }
  return "?";
}

const char* op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
    case BinaryOp::pow: return "pow";
    case BinaryOp::maximum: return "maximum";
    case BinaryOp::minimum: return "minimum";
  }
  return "?";
}

const char* op_name(CompareOp op) {
  switch (op) {
    case CompareOp::eq: return "eq";
    case CompareOp::ne: return "ne";
    case CompareOp::lt: return "lt";
    case CompareOp::le: return "le";
    case CompareOp::gt: return "gt";
    case CompareOp::ge: return "ge";
  }
  return "?";
}

// Which saved tensor unary_backward reads: y = f(x) for exp, tanh, sigmoid, sqrt; nothing
// for neg; x for the rest.
bool backward_needs_y(UnaryOp op) {
  return op == UnaryOp::exp || op == UnaryOp::tanh || op == UnaryOp::sigmoid || op == UnaryOp::sqrt;
}
bool backward_needs_x(UnaryOp op) { return op != UnaryOp::neg && !backward_needs_y(op); }

// The broadcast of N operands: the output shape and the collapsed iteration space.
struct Broadcast {
  Shape out_shape;
  BroadcastIter it;
};

// NumPy broadcasting of `arrays` (names for messages), their element strides, and the dim
// collapse. `what` names the op in errors, e.g. "binary_forward(add)".
template <size_t N>
Broadcast broadcast(const std::string& what, const std::array<const py::array*, N>& arrays,
                       const std::array<const char*, N>& names) {
  constexpr int kMax = BroadcastIter::kMaxDims;
  int ndim = 0;
  for (size_t k = 0; k < N; ++k) {
    const py::array& a = *arrays[k];
    if (a.ndim() > kMax)
      value_error(what, ": ", names[k], " has ", a.ndim(), " dims (shape ", shape_str(a),
                  "), at most ", kMax, " are supported");
    ndim = std::max(ndim, static_cast<int>(a.ndim()));
  }

  // Output shape, right-aligned NumPy rules.
  Broadcast b;
  b.out_shape.assign(ndim, 1);
  for (size_t k = 0; k < N; ++k) {
    const py::array& a = *arrays[k];
    const int lead = ndim - static_cast<int>(a.ndim());
    for (int d = 0; d < a.ndim(); ++d) {
      const int64_t s = a.shape(d);
      int64_t& o = b.out_shape[lead + d];
      if (s == o || s == 1) continue;
      if (o == 1) {
        o = s;
        continue;
      }
      std::string shapes;
      for (size_t j = 0; j < N; ++j) shapes += (j ? (j + 1 == N ? " and " : ", ") : "") + shape_str(*arrays[j]);
      value_error(what, ": operands could not be broadcast together with shapes ", shapes);
    }
  }

  // Element strides per operand over the output dims; 0 where broadcast.
  int64_t strides[N][kMax] = {};
  for (size_t k = 0; k < N; ++k) {
    const py::array& a = *arrays[k];
    const int lead = ndim - static_cast<int>(a.ndim());
    const int64_t item = a.itemsize();
    for (int d = 0; d < a.ndim(); ++d) {
      if (a.shape(d) <= 1) continue;  // a size-1 dim's stride is never used
      const int64_t st = a.strides(d);
      if (st < 0)
        value_error(what, ": ", names[k], " has a negative stride (", st, " bytes in dim ", d,
                    " of shape ", shape_str(a), "); pass a copy");
      if (st % item != 0)
        value_error(what, ": ", names[k], " has a stride of ", st,
                    " bytes, not a multiple of its item size ", item, "; pass a copy");
      strides[k][lead + d] = st / item;
    }
  }

  // Drop size-1 dims, then merge dim d into the kept inner dim when every operand steps
  // over the inner dim exactly: stride[d] == stride[inner] * shape[inner].
  BroadcastIter& it = b.it;
  int nd = 0;
  for (int d = ndim - 1; d >= 0; --d) {  // innermost first; reversed below
    const int64_t s = b.out_shape[d];
    if (s == 1) continue;
    if (nd > 0) {
      bool merge = true;
      for (size_t k = 0; k < N; ++k)
        merge = merge && strides[k][d] == it.strides[k][nd - 1] * it.shape[nd - 1];
      if (merge) {
        it.shape[nd - 1] *= s;
        continue;
      }
    }
    it.shape[nd] = s;
    for (size_t k = 0; k < N; ++k) it.strides[k][nd] = strides[k][d];
    ++nd;
  }
  it.ndim = nd;
  for (int i = 0, j = nd - 1; i < j; ++i, --j) {
    std::swap(it.shape[i], it.shape[j]);
    for (size_t k = 0; k < N; ++k) std::swap(it.strides[k][i], it.strides[k][j]);
  }
  return b;
}

py::array unary_forward(UnaryOp op, const py::array& x, double alpha, double beta) {
  const char* name = "unary_forward";
  const FloatType ft = float_type(name, "x", x);
  check_contiguous(name, "x", x);
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array y = empty<T>(shape_of(x));
    const int64_t n = x.size();
    if (n == 0) return y;
    const T* px = cdata<T>(x);
    T* py_ = mdata<T>(y);
    auto* kernel = slot::unary_forward<T>();
    if (n >= kReleaseGilMin) {
      py::gil_scoped_release release;
      kernel(op, n, px, py_, static_cast<T>(alpha), static_cast<T>(beta));
    } else {
      kernel(op, n, px, py_, static_cast<T>(alpha), static_cast<T>(beta));
    }
    return y;
  });
}

py::array unary_backward(UnaryOp op, const std::optional<py::array>& x,
                         const std::optional<py::array>& y, const py::array& grad_y, double alpha,
                         double beta) {
  const std::string what = std::string("unary_backward(") + op_name(op) + ")";
  const char* name = what.c_str();
  const FloatType ft = float_type(name, "grad_y", grad_y);
  check_contiguous(name, "grad_y", grad_y);
  const Shape shape = shape_of(grad_y);
  // Validates the saved tensor the op's derivative reads; returns null for the other one.
  auto saved = [&](const std::optional<py::array>& a, const char* arg, bool needed) -> const py::array* {
    if (!needed) return nullptr;
    if (!a) value_error(name, ": ", arg, " is required for this op's gradient, got None");
    check_same_dtype(name, "grad_y", grad_y, arg, *a);
    check_contiguous(name, arg, *a);
    check_shape(name, arg, *a, shape);
    return &*a;
  };
  const py::array* px = saved(x, "x", backward_needs_x(op));
  const py::array* py_ = saved(y, "y", backward_needs_y(op));
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array grad_x = empty<T>(shape);
    const int64_t n = grad_y.size();
    if (n == 0) return grad_x;
    const T* xd = px ? cdata<T>(*px) : nullptr;
    const T* yd = py_ ? cdata<T>(*py_) : nullptr;
    const T* gy = cdata<T>(grad_y);
    T* gx = mdata<T>(grad_x);
    auto* kernel = slot::unary_backward<T>();
    if (n >= kReleaseGilMin) {
      py::gil_scoped_release release;
      kernel(op, n, xd, yd, gy, gx, static_cast<T>(alpha), static_cast<T>(beta));
    } else {
      kernel(op, n, xd, yd, gy, gx, static_cast<T>(alpha), static_cast<T>(beta));
    }
    return grad_x;
  });
}

py::array binary_forward(BinaryOp op, const py::array& a, const py::array& b) {
  const std::string what = std::string("binary_forward(") + op_name(op) + ")";
  const FloatType ft = float_type(what.c_str(), "a", a);
  check_same_dtype(what.c_str(), "a", a, "b", b);
  const Broadcast bc = broadcast<2>(what, {&a, &b}, {"a", "b"});
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array out = empty<T>(bc.out_shape);
    const int64_t n = bc.it.numel();
    if (n == 0) return out;
    const T* pa = cdata<T>(a);
    const T* pb = cdata<T>(b);
    T* po = mdata<T>(out);
    auto* kernel = slot::binary_forward<T>();
    if (n >= kReleaseGilMin) {
      py::gil_scoped_release release;
      kernel(op, bc.it, pa, pb, po);
    } else {
      kernel(op, bc.it, pa, pb, po);
    }
    return out;
  });
}

py::array compare_forward(CompareOp op, const py::array& a, const py::array& b) {
  const std::string what = std::string("compare_forward(") + op_name(op) + ")";
  const FloatType ft = float_type(what.c_str(), "a", a);
  check_same_dtype(what.c_str(), "a", a, "b", b);
  const Broadcast bc = broadcast<2>(what, {&a, &b}, {"a", "b"});
  py::array out = empty<bool>(bc.out_shape);
  const int64_t n = bc.it.numel();
  if (n == 0) return out;
  bool* po = mdata<bool>(out);
  dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    const T* pa = cdata<T>(a);
    const T* pb = cdata<T>(b);
    auto* kernel = slot::compare_forward<T>();
    if (n >= kReleaseGilMin) {
      py::gil_scoped_release release;
      kernel(op, bc.it, pa, pb, po);
    } else {
      kernel(op, bc.it, pa, pb, po);
    }
  });
  return out;
}

py::array where_forward(const py::array& cond, const py::array& a, const py::array& b) {
  const char* name = "where_forward";
  check_bool(name, "cond", cond);
  const FloatType ft = float_type(name, "a", a);
  check_same_dtype(name, "a", a, "b", b);
  const Broadcast bc = broadcast<3>(name, {&cond, &a, &b}, {"cond", "a", "b"});
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array out = empty<T>(bc.out_shape);
    const int64_t n = bc.it.numel();
    if (n == 0) return out;
    const bool* pc = cdata<bool>(cond);
    const T* pa = cdata<T>(a);
    const T* pb = cdata<T>(b);
    T* po = mdata<T>(out);
    auto* kernel = slot::where_forward<T>();
    if (n >= kReleaseGilMin) {
      py::gil_scoped_release release;
      kernel(bc.it, pc, pa, pb, po);
    } else {
      kernel(bc.it, pc, pa, pb, po);
    }
    return out;
  });
}

}  // namespace

void bind_elementwise(py::module_& m) {
  py::enum_<UnaryOp>(m, "UnaryOp", "Elementwise unary op codes (alpha/beta: clamp min/max, pow exponent).")
      .value("neg", UnaryOp::neg)
      .value("exp", UnaryOp::exp)
      .value("log", UnaryOp::log)
      .value("sqrt", UnaryOp::sqrt)
      .value("abs", UnaryOp::abs)
      .value("relu", UnaryOp::relu)
      .value("tanh", UnaryOp::tanh)
      .value("sigmoid", UnaryOp::sigmoid)
      .value("clamp", UnaryOp::clamp)
      .value("pow_scalar", UnaryOp::pow_scalar);
  py::enum_<BinaryOp>(m, "BinaryOp", "Elementwise binary op codes.")
      .value("add", BinaryOp::add)
      .value("sub", BinaryOp::sub)
      .value("mul", BinaryOp::mul)
      .value("div", BinaryOp::div)
      .value("pow", BinaryOp::pow)
      .value("maximum", BinaryOp::maximum)
      .value("minimum", BinaryOp::minimum);
  py::enum_<CompareOp>(m, "CompareOp", "Elementwise comparison op codes.")
      .value("eq", CompareOp::eq)
      .value("ne", CompareOp::ne)
      .value("lt", CompareOp::lt)
      .value("le", CompareOp::le)
      .value("gt", CompareOp::gt)
      .value("ge", CompareOp::ge);

  m.def("unary_forward", &unary_forward, py::arg("op"), py::arg("x"), py::arg("alpha") = 0.0,
        py::arg("beta") = 0.0,
        "y = f(x) elementwise; x C-contiguous float32/float64 of any shape.");
  m.def("unary_backward", &unary_backward, py::arg("op"), py::arg("x").none(true),
        py::arg("y").none(true), py::arg("grad_y"), py::arg("alpha") = 0.0, py::arg("beta") = 0.0,
        "grad_x = grad_y * f'(x). exp, tanh, sigmoid, sqrt read y; neg reads neither; the "
        "others read x. The one not read may be None.");
  m.def("binary_forward", &binary_forward, py::arg("op"), py::arg("a"), py::arg("b"),
        "out = a (op) b with NumPy broadcasting; any non-negative strides; out C-contiguous.");
  m.def("compare_forward", &compare_forward, py::arg("op"), py::arg("a"), py::arg("b"),
        "bool out = a (cmp) b with NumPy broadcasting.");
  m.def("where_forward", &where_forward, py::arg("cond"), py::arg("a"), py::arg("b"),
        "out = cond ? a : b with NumPy broadcasting over all three.");
}

}  // namespace dlcore::bind
