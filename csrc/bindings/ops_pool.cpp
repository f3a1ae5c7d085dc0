// Bindings for the pool family (NCHW, C-contiguous, float32 / float64):
//   max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode, index="plane")
//                       -> (y, index or None)
//   max_pool2d_backward(index, grad_y, x_shape, kernel_size, stride, padding, dilation,
//                       ceil_mode) -> grad_x
// max_pool2d's index: "plane" gives int64 h*W + w inside the (H, W) plane (PyTorch's
// return_indices; -1 for an empty window); "window" gives uint8 kh*KW + kw inside the window
// (255 for an empty window), 1 byte per output for autograd's own use, or the int64 plane
// index where KH*KW > 255; "none" writes no index (no backward will follow). Backward takes
// either kind, told apart by dtype, and checks its values.
//   avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad) -> y
//   avg_pool2d_backward(grad_y, x_shape, kernel_size, stride, padding, ceil_mode,
//                       count_include_pad) -> grad_x
// Size arguments are (h, w) pairs. Validation and output size follow PyTorch: kernel,
// stride, dilation >= 1, 0 <= padding <= kernel / 2, output size >= 1; OH = floor or ceil
// of (H + 2*pad - dil*(KH-1) - 1) / stride + 1, and in ceil_mode a last window that would
// start in the right padding is dropped. N may be 0 (empty result); C, H, W must be >= 1.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

#include "bindings/checks.h"
#include "core/registry.h"

namespace dlcore::bind {

namespace {

using Pair = std::array<int64_t, 2>;

std::string pair_str(const Pair& p) { return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")"; }

// PyTorch's pooling_output_shape: floor or ceil division, then drop a ceil-mode window that
// would start in the right padding.
int64_t pool_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil, bool ceil_mode) {
  const int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  const int64_t q = num >= 0 ? num / stride : -((-num + stride - 1) / stride);  // floor
  int64_t out = q + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

// Validates the geometry of `op` and fills a Pool2dShape for an input of shape x_shape.
Pool2dShape pool_shape(const char* op, const Shape& x_shape, const Pair& kernel, const Pair& stride,
                       const Pair& padding, const Pair& dilation, bool ceil_mode, bool count_include_pad) {
  if (x_shape.size() != 4)
    value_error(op, ": input must be 4-D (N, C, H, W), got shape ", shape_str(x_shape));
  if (x_shape[0] < 0 || x_shape[1] < 1 || x_shape[2] < 1 || x_shape[3] < 1)
    value_error(op, ": input must have C, H, W >= 1 (N >= 0), got shape ", shape_str(x_shape));
  for (int d = 0; d < 2; ++d) {
    if (kernel[d] < 1) value_error(op, ": kernel_size must be >= 1, got ", pair_str(kernel));
    if (stride[d] < 1) value_error(op, ": stride must be >= 1, got ", pair_str(stride));
    if (dilation[d] < 1) value_error(op, ": dilation must be >= 1, got ", pair_str(dilation));
    if (padding[d] < 0) value_error(op, ": padding must be >= 0, got ", pair_str(padding));
    if (padding[d] > kernel[d] / 2)
      value_error(op, ": padding must be at most half of kernel_size, got padding ", pair_str(padding),
                  " and kernel_size ", pair_str(kernel));
  }
  Pool2dShape s{};
  s.N = x_shape[0];
  s.C = x_shape[1];
  s.H = x_shape[2];
  s.W = x_shape[3];
  s.KH = kernel[0];
  s.KW = kernel[1];
  s.stride_h = stride[0];
  s.stride_w = stride[1];
  s.pad_h = padding[0];
  s.pad_w = padding[1];
  s.dil_h = dilation[0];
  s.dil_w = dilation[1];
  s.count_include_pad = count_include_pad;
  s.OH = pool_out_size(s.H, s.KH, s.stride_h, s.pad_h, s.dil_h, ceil_mode);
  s.OW = pool_out_size(s.W, s.KW, s.stride_w, s.pad_w, s.dil_w, ceil_mode);
  if (s.OH < 1 || s.OW < 1)
    value_error(op, ": output size (", s.OH, ", ", s.OW, ") is too small for input ", shape_str(x_shape),
                " with kernel_size ", pair_str(kernel), ", stride ", pair_str(stride), ", padding ",
                pair_str(padding), ", dilation ", pair_str(dilation));
  return s;
}

void check_input(const char* op, const py::array& x) {
  check_ndim(op, "input", x, 4, "(N, C, H, W)");
  check_contiguous(op, "input", x);
}

// Releases the GIL around `f` when the pooling does enough work to matter.
template <class F> void run_kernel(const Pool2dShape& s, F&& f) {
  if (s.N * s.C * s.OH * s.OW * s.KH * s.KW >= (1 << 14)) {
    py::gil_scoped_release release;
    f();
  } else {
    f();
  }
}

// The window index (uint8) fits windows of at most this many taps (kNoWindowTap marks an
// empty window).
constexpr int64_t kWindowIndexTaps = kNoWindowTap;

py::tuple max_pool2d_forward(const py::array& x, const Pair& kernel, const Pair& stride, const Pair& padding,
                             const Pair& dilation, bool ceil_mode, const std::string& index_kind) {
  constexpr const char* op = "max_pool2d_forward";
  const FloatType ft = float_type(op, "input", x);
  check_input(op, x);
  if (index_kind != "plane" && index_kind != "window" && index_kind != "none")
    value_error(op, ": index must be \"plane\", \"window\" or \"none\", got \"", index_kind, "\"");
  const Pool2dShape s = pool_shape(op, shape_of(x), kernel, stride, padding, dilation, ceil_mode, false);
  const Shape y_shape{s.N, s.C, s.OH, s.OW};
  const bool window = index_kind == "window" && s.KH * s.KW <= kWindowIndexTaps;
  py::object index = py::none();
  int64_t* plane_index = nullptr;   // (N, C, OH, OW) or null
  uint8_t* window_index = nullptr;  // (N, C, OH, OW) or null
  if (window) {
    py::array a = empty<uint8_t>(y_shape);
    window_index = mdata<uint8_t>(a);
    index = a;
  } else if (index_kind != "none") {
    py::array a = empty<int64_t>(y_shape);
    plane_index = mdata<int64_t>(a);
    index = a;
  }
  py::array y = dispatch_float(ft, [&](auto t) {
    using T = decltype(t);
    py::array out = empty<T>(y_shape);
    if (s.N == 0) return out;
    const T* xp = cdata<T>(x);  // (N, C, H, W)
    T* yp = mdata<T>(out);      // (N, C, OH, OW)
    run_kernel(s, [&] { slot::max_pool2d_forward<T>()(s, xp, yp, plane_index, window_index); });
    return out;
  });
  return py::make_tuple(y, index);
}

py::array max_pool2d_backward(const py::array& index, const py::array& grad_y, const Shape& x_shape,
                              const Pair& kernel, const Pair& stride, const Pair& padding,
                              const Pair& dilation, bool ceil_mode) {
  constexpr const char* op = "max_pool2d_backward";
  const FloatType ft = float_type(op, "grad_y", grad_y);
  const bool window = index.dtype().equal(py::dtype::of<uint8_t>());
  if (!window && !index.dtype().equal(py::dtype::of<int64_t>()))
    type_error(op, ": index must be int64 (plane index) or uint8 (window index), got ", dtype_str(index));
  const Pool2dShape s = pool_shape(op, x_shape, kernel, stride, padding, dilation, ceil_mode, false);
  const Shape y_shape{s.N, s.C, s.OH, s.OW};
  check_shape(op, "grad_y", grad_y, y_shape);
  check_shape(op, "index", index, y_shape);
  check_contiguous(op, "grad_y", grad_y);
  check_contiguous(op, "index", index);
  const int64_t* ip = window ? nullptr : cdata<int64_t>(index);  // (N, C, OH, OW) or null
  const uint8_t* wp = window ? cdata<uint8_t>(index) : nullptr;  // (N, C, OH, OW) or null
  // One branch-free pass that vectorises (the index is read again by the kernel right after);
  // the position of a bad value is looked up only on failure.
  const int64_t count = index.size();
  if (window) {
    const int64_t taps = s.KH * s.KW;
    if (taps > kWindowIndexTaps)
      value_error(op, ": a uint8 window index needs KH*KW <= 255, got kernel_size ", pair_str(kernel));
    // v is bad when taps <= v < 255, i.e. (uint8)(v - taps) < 255 - taps.
    const uint8_t lo = static_cast<uint8_t>(taps), span = static_cast<uint8_t>(kWindowIndexTaps - taps);
    uint8_t least = kNoWindowTap;  // a byte min-reduction: GCC vectorises it (pminub)
    for (int64_t i = 0; i < count; ++i) least = std::min(least, static_cast<uint8_t>(wp[i] - lo));
    if (least < span) {
      int64_t i = 0;
      while (static_cast<uint8_t>(wp[i] - lo) >= span) ++i;
      value_error(op, ": window index values must lie in [0, KH*KW) = [0, ", taps, ") (or be 255), got ",
                  int64_t(wp[i]), " at flat position ", i);
    }
  } else {
    // v is bad unless -1 <= v < H*W, i.e. (uint64)(v + 1) > H*W.
    const uint64_t plane = static_cast<uint64_t>(s.H * s.W);
    bool bad = false;
    for (int64_t i = 0; i < count; ++i) bad |= static_cast<uint64_t>(ip[i] + 1) > plane;
    if (bad) {
      int64_t i = 0;
      while (static_cast<uint64_t>(ip[i] + 1) <= plane) ++i;
      value_error(op, ": index values must lie in [0, H*W) = [0, ", plane, ") (or be -1), got ", ip[i],
                  " at flat position ", i);
    }
  }
  return dispatch_float(ft, [&](auto t) {
    using T = decltype(t);
    py::array grad_x = empty<T>(x_shape);
    if (s.N == 0) return grad_x;
    const T* gy = cdata<T>(grad_y);  // (N, C, OH, OW)
    T* gx = mdata<T>(grad_x);        // (N, C, H, W)
    run_kernel(s, [&] { slot::max_pool2d_backward<T>()(s, ip, wp, gy, gx); });
    return grad_x;
  });
}

py::array avg_pool2d_forward(const py::array& x, const Pair& kernel, const Pair& stride, const Pair& padding,
                             bool ceil_mode, bool count_include_pad) {
  constexpr const char* op = "avg_pool2d_forward";
  const FloatType ft = float_type(op, "input", x);
  check_input(op, x);
  const Pool2dShape s =
      pool_shape(op, shape_of(x), kernel, stride, padding, {1, 1}, ceil_mode, count_include_pad);
  return dispatch_float(ft, [&](auto t) {
    using T = decltype(t);
    py::array y = empty<T>({s.N, s.C, s.OH, s.OW});
    if (s.N == 0) return y;
    const T* xp = cdata<T>(x);  // (N, C, H, W)
    T* yp = mdata<T>(y);        // (N, C, OH, OW)
    run_kernel(s, [&] { slot::avg_pool2d_forward<T>()(s, xp, yp); });
    return y;
  });
}

py::array avg_pool2d_backward(const py::array& grad_y, const Shape& x_shape, const Pair& kernel,
                              const Pair& stride, const Pair& padding, bool ceil_mode,
                              bool count_include_pad) {
  constexpr const char* op = "avg_pool2d_backward";
  const FloatType ft = float_type(op, "grad_y", grad_y);
  const Pool2dShape s =
      pool_shape(op, x_shape, kernel, stride, padding, {1, 1}, ceil_mode, count_include_pad);
  check_shape(op, "grad_y", grad_y, {s.N, s.C, s.OH, s.OW});
  check_contiguous(op, "grad_y", grad_y);
  return dispatch_float(ft, [&](auto t) {
    using T = decltype(t);
    py::array grad_x = empty<T>(x_shape);
    if (s.N == 0) return grad_x;
    const T* gy = cdata<T>(grad_y);  // (N, C, OH, OW)
    T* gx = mdata<T>(grad_x);        // (N, C, H, W)
    run_kernel(s, [&] { slot::avg_pool2d_backward<T>()(s, gy, gx); });
    return grad_x;
  });
}

}  // namespace

void bind_pool(py::module_& m) {
  m.def("max_pool2d_forward", &max_pool2d_forward, py::arg("x"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"), py::arg("index") = "plane",
        "(y, index): max over each window; index \"plane\": int64 h*W + w of the max in its plane; "
        "\"window\": uint8 kh*KW + kw in its window (int64 plane where KH*KW > 255); \"none\": None.");
  m.def("max_pool2d_backward", &max_pool2d_backward, py::arg("index"), py::arg("grad_y"), py::arg("x_shape"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("ceil_mode"), "grad_x: grad_y added at the index positions (int64 plane or uint8 window index).");
  m.def("avg_pool2d_forward", &avg_pool2d_forward, py::arg("x"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"),
        "y: mean over each window, divisor as PyTorch's avg_pool2d.");
  m.def("avg_pool2d_backward", &avg_pool2d_backward, py::arg("grad_y"), py::arg("x_shape"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
        py::arg("count_include_pad"), "grad_x: each grad_y spread evenly over its window.");
}

}  // namespace dlcore::bind
