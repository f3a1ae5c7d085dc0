// Bindings for the conv family: conv2d_forward, conv2d_backward_input, conv2d_backward_weight.
// Each validates its arguments once (dtype -> TypeError; ranks, shapes, contiguity, geometry ->
// ValueError naming the op and the values), builds a Conv2dShape and calls the active ISA's
// kernel with the GIL released. Size arguments are (h, w) tuples of ints.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "bindings/checks.h"
#include "core/conv_algo.h"
#include "core/registry.h"

namespace dlcore::bind {

namespace {

using Pair = std::array<int64_t, 2>;  // (h, w)
using Quad = std::array<int64_t, 4>;  // a 4-D shape

// Column matrices and outputs beyond this many elements are refused up front, so no size
// product inside a kernel can overflow int64 (2^50 elements is far past any real memory).
constexpr __int128 kMaxElems = __int128{1} << 50;

// The product of `sizes`, saturated at kMaxElems + 1 (no factor may push it past 128 bits).
__int128 elems(std::initializer_list<__int128> sizes) {
  __int128 n = 1;
  for (__int128 v : sizes) n = std::min(n * std::min(v, kMaxElems + 1), kMaxElems + 1);
  return n;
}

std::string pair_str(const Pair& p) { return shape_str(Shape{p[0], p[1]}); }

// The Conv2dShape of input x_shape (N, C, H, W) and weight w_shape (C_out, C/groups, KH, KW),
// or ValueError naming `op` and the offending values.
Conv2dShape conv_shape(const char* op, const Shape& x_shape, const Shape& w_shape, const Pair& stride,
                       const Pair& padding, const Pair& dilation, int64_t groups) {
  for (int i = 0; i < 4; ++i)
    if (x_shape[i] < 1)
      value_error(op, ": input is empty or has a negative size (shape ", shape_str(x_shape), ")");
  for (int i = 0; i < 4; ++i)
    if (w_shape[i] < 1)
      value_error(op, ": weight is empty or has a negative size (shape ", shape_str(w_shape), ")");
  if (stride[0] < 1 || stride[1] < 1)
    value_error(op, ": stride must be >= 1, got ", pair_str(stride));
  if (dilation[0] < 1 || dilation[1] < 1)
    value_error(op, ": dilation must be >= 1, got ", pair_str(dilation));
  if (padding[0] < 0 || padding[1] < 0)
    value_error(op, ": padding must be >= 0, got ", pair_str(padding));
  if (groups < 1) value_error(op, ": groups must be >= 1, got ", groups);

  Conv2dShape s{};
  s.N = x_shape[0]; s.C = x_shape[1]; s.H = x_shape[2]; s.W = x_shape[3];
  s.C_out = w_shape[0]; s.KH = w_shape[2]; s.KW = w_shape[3];
  s.stride_h = stride[0]; s.stride_w = stride[1];
  s.pad_h = padding[0]; s.pad_w = padding[1];
  s.dil_h = dilation[0]; s.dil_w = dilation[1];
  s.groups = groups;
  if (s.C % groups != 0)
    value_error(op, ": input channels C = ", s.C, " must be divisible by groups = ", groups);
  if (s.C_out % groups != 0)
    value_error(op, ": output channels C_out = ", s.C_out, " must be divisible by groups = ", groups);
  if (w_shape[1] != s.C / groups)
    value_error(op, ": weight must have C/groups = ", s.C / groups, " input channels (C = ", s.C,
                ", groups = ", groups, "), got weight shape ", shape_str(w_shape));

  // Output size in 128-bit arithmetic: padding and dilation may be any int64.
  const __int128 padded_h = __int128{s.H} + 2 * __int128{s.pad_h};
  const __int128 padded_w = __int128{s.W} + 2 * __int128{s.pad_w};
  const __int128 span_h = __int128{s.dil_h} * (s.KH - 1) + 1;
  const __int128 span_w = __int128{s.dil_w} * (s.KW - 1) + 1;
  if (span_h > padded_h || span_w > padded_w)
    value_error(op, ": kernel ", pair_str({s.KH, s.KW}), " with dilation ", pair_str(dilation),
                " is larger than the padded input (", static_cast<long long>(padded_h), ", ",
                static_cast<long long>(padded_w), ")");
  const __int128 OH = (padded_h - span_h) / s.stride_h + 1;
  const __int128 OW = (padded_w - span_w) / s.stride_w + 1;
  const __int128 in_elems = elems({s.N, s.C, s.H, s.W});
  const __int128 w_elems = elems({s.C_out, w_shape[1], s.KH, s.KW});
  const __int128 out_elems = elems({s.N, s.C_out, OH, OW});
  const __int128 col_elems = elems({s.C, s.KH, s.KW, OH, OW});
  if (in_elems > kMaxElems || w_elems > kMaxElems || out_elems > kMaxElems || col_elems > kMaxElems)
    value_error(op, ": sizes too large: input ", shape_str(x_shape), ", weight ", shape_str(w_shape),
                ", output size (", static_cast<long long>(std::min(OH, kMaxElems)), ", ",
                static_cast<long long>(std::min(OW, kMaxElems)), ")");
  s.OH = static_cast<int64_t>(OH);
  s.OW = static_cast<int64_t>(OW);
  return s;
}

// s.algo := the algorithm named `algo`, or ValueError naming op, algo and why it cannot run s.
void set_algo(const char* op, const std::string& algo, ConvDirection dir, FloatType ft, Conv2dShape& s) {
  if (!parse_conv_algo(algo, s.algo))
    value_error(op, ": algo must be 'auto', 'gemm', 'direct' or 'winograd', got '", algo, "'");
  const std::string why = conv_algo_refusal(s.algo, dir, s, ft == FloatType::f32);
  if (!why.empty())
    value_error(op, ": algo '", algo, "' cannot run this convolution: ", why, " (kernel ",
                pair_str({s.KH, s.KW}), ", stride ", pair_str({s.stride_h, s.stride_w}), ", padding ",
                pair_str({s.pad_h, s.pad_w}), ", dilation ", pair_str({s.dil_h, s.dil_w}), ", groups ",
                s.groups, ", ", ft == FloatType::f32 ? "float32" : "float64", ")");
}

Shape checked_4d(const char* op, const char* arg, const py::array& a, const char* layout) {
  check_ndim(op, arg, a, 4, layout);
  check_contiguous(op, arg, a);
  return shape_of(a);
}

void check_grad_y(const char* op, const py::array& grad_y, const Conv2dShape& s) {
  check_ndim(op, "grad_y", grad_y, 4, "(N, C_out, OH, OW)");
  check_shape(op, "grad_y", grad_y, {s.N, s.C_out, s.OH, s.OW});
  check_contiguous(op, "grad_y", grad_y);
}

py::array conv2d_forward(const py::array& x, const py::array& w, const py::object& bias, const Pair& stride,
                         const Pair& padding, const Pair& dilation, int64_t groups,
                         const std::string& algo, bool relu) {
  constexpr const char* op = "conv2d_forward";
  const FloatType ft = float_type(op, "x", x);
  check_same_dtype(op, "x", x, "w", w);
  const Shape xs = checked_4d(op, "x", x, "(N, C, H, W)");
  const Shape ws = checked_4d(op, "w", w, "(C_out, C/groups, KH, KW)");
  Conv2dShape s = conv_shape(op, xs, ws, stride, padding, dilation, groups);
  set_algo(op, algo, ConvDirection::kForward, ft, s);
  s.relu = relu;
  const bool has_bias = !bias.is_none();
  py::array b;  // (C_out,) when has_bias
  if (has_bias) {
    b = py::array::ensure(bias);
    if (!b) type_error(op, ": bias must be an array or None");
    check_same_dtype(op, "x", x, "bias", b);
    check_ndim(op, "bias", b, 1, "(C_out,)");
    check_shape(op, "bias", b, {s.C_out});
    check_contiguous(op, "bias", b);
  }
  return dispatch_float(ft, [&](auto t) {
    using T = decltype(t);
    py::array y = empty<T>({s.N, s.C_out, s.OH, s.OW});
    const T* bias_ptr = has_bias ? cdata<T>(b) : nullptr;
    const T* x_ptr = cdata<T>(x);
    const T* w_ptr = cdata<T>(w);
    T* y_ptr = mdata<T>(y);
    {
      py::gil_scoped_release release;
      slot::conv2d_forward<T>()(s, x_ptr, w_ptr, bias_ptr, y_ptr);
    }
    return y;
  });
}

py::array conv2d_backward_input(const py::array& w, const py::array& grad_y, const Quad& x_shape,
                                const Pair& stride, const Pair& padding, const Pair& dilation,
                                int64_t groups, const std::string& algo) {
  constexpr const char* op = "conv2d_backward_input";
  const FloatType ft = float_type(op, "w", w);
  check_same_dtype(op, "w", w, "grad_y", grad_y);
  const Shape ws = checked_4d(op, "w", w, "(C_out, C/groups, KH, KW)");
  const Shape xs(x_shape.begin(), x_shape.end());
  Conv2dShape s = conv_shape(op, xs, ws, stride, padding, dilation, groups);
  set_algo(op, algo, ConvDirection::kBackwardInput, ft, s);
  check_grad_y(op, grad_y, s);
  return dispatch_float(ft, [&](auto t) {
    using T = decltype(t);
    py::array grad_x = empty<T>(xs);
    const T* w_ptr = cdata<T>(w);
    const T* gy_ptr = cdata<T>(grad_y);
    T* gx_ptr = mdata<T>(grad_x);
    {
      py::gil_scoped_release release;
      slot::conv2d_backward_input<T>()(s, w_ptr, gy_ptr, gx_ptr);
    }
    return grad_x;
  });
}

py::tuple conv2d_backward_weight(const py::array& x, const py::array& grad_y, const Quad& w_shape,
                                 const Pair& stride, const Pair& padding, const Pair& dilation,
                                 int64_t groups, bool bias, const std::string& algo) {
  constexpr const char* op = "conv2d_backward_weight";
  const FloatType ft = float_type(op, "x", x);
  check_same_dtype(op, "x", x, "grad_y", grad_y);
  const Shape xs = checked_4d(op, "x", x, "(N, C, H, W)");
  const Shape ws(w_shape.begin(), w_shape.end());
  Conv2dShape s = conv_shape(op, xs, ws, stride, padding, dilation, groups);
  set_algo(op, algo, ConvDirection::kBackwardWeight, ft, s);
  check_grad_y(op, grad_y, s);
  return dispatch_float(ft, [&](auto t) {
    using T = decltype(t);
    py::array grad_w = empty<T>(ws);
    py::object grad_bias = py::none();
    T* gb_ptr = nullptr;
    if (bias) {
      py::array gb = empty<T>({s.C_out});
      gb_ptr = mdata<T>(gb);
      grad_bias = gb;
    }
    const T* x_ptr = cdata<T>(x);
    const T* gy_ptr = cdata<T>(grad_y);
    T* gw_ptr = mdata<T>(grad_w);
    {
      py::gil_scoped_release release;
      slot::conv2d_backward_weight<T>()(s, x_ptr, gy_ptr, gw_ptr, gb_ptr);
    }
    return py::make_tuple(grad_w, grad_bias);
  });
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def("conv2d_forward", &conv2d_forward, py::arg("x"), py::arg("w"), py::arg("bias").none(true),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        py::arg("algo") = "auto", py::arg("relu") = false,
        "y (N, C_out, OH, OW) := conv2d(x (N, C, H, W), w (C_out, C/groups, KH, KW)) + bias (C_out,) "
        "or None, then max(y, 0) in the same pass when relu (NaN stays NaN). stride, padding, "
        "dilation are (h, w) tuples. algo: 'auto' (the measured rule) or 'gemm', 'direct', "
        "'winograd' to force one (ValueError where it cannot run).");
  m.def("conv2d_backward_input", &conv2d_backward_input, py::arg("w"), py::arg("grad_y"),
        py::arg("x_shape"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), py::arg("algo") = "auto",
        "grad_x (x_shape) of conv2d from w and grad_y (N, C_out, OH, OW); algo as in conv2d_forward.");
  m.def("conv2d_backward_weight", &conv2d_backward_weight, py::arg("x"), py::arg("grad_y"),
        py::arg("w_shape"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), py::arg("bias"), py::arg("algo") = "auto",
        "(grad_w (w_shape), grad_bias (C_out,) or None when bias is False) of conv2d from x and grad_y; "
        "algo as in conv2d_forward.");
}

}  // namespace dlcore::bind
