// Validation at the Python boundary: every binding checks its arguments here once and
// raises a readable ValueError / TypeError naming the op, the argument and the values.
// Kernels behind the bindings assume these checks passed.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include "core/host_cache.h"

namespace dlcore::bind {

namespace py = pybind11;

using Shape = std::vector<int64_t>;

inline Shape shape_of(const py::array& a) {
  return Shape(a.shape(), a.shape() + a.ndim());
}

// Messages are built with std::string and std::to_string, never iostreams: a libstdc++
// linked statically into an extension beside the shared one (seen on a GPU machine's
// toolchain) crashes in ostream's number formatting, and an error path must never crash.
inline std::string text(const std::string& s) { return s; }
inline std::string text(const char* s) { return s; }
inline std::string text(char c) { return std::string(1, c); }
template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, char>, int> = 0>
std::string text(T v) {
  return std::to_string(v);
}
template <class T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
std::string text(T v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(v));  // what ostream's default prints
  return buf;
}

template <class... Parts>
std::string concat(const Parts&... parts) {
  std::string out;
  ((out += text(parts)), ...);
  return out;
}

inline std::string shape_str(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}
inline std::string shape_str(const py::array& a) { return shape_str(shape_of(a)); }

inline std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

template <class... Parts>
[[noreturn]] inline void value_error(const Parts&... parts) {
  throw py::value_error(concat(parts...));
}

template <class... Parts>
[[noreturn]] inline void type_error(const Parts&... parts) {
  throw py::type_error(concat(parts...));
}

enum class FloatType { f32, f64 };

// The float dtype of `a`, or TypeError: "<op>: <arg> must be float32 or float64, got int64".
inline FloatType float_type(const char* op, const char* arg, const py::array& a) {
  if (a.dtype().equal(py::dtype::of<float>())) return FloatType::f32;
  if (a.dtype().equal(py::dtype::of<double>())) return FloatType::f64;
  type_error(op, ": ", arg, " must be float32 or float64, got ", dtype_str(a));
}

// TypeError unless `b` has the same dtype as `a`.
inline void check_same_dtype(const char* op, const char* arg_a, const py::array& a, const char* arg_b,
                             const py::array& b) {
  if (!a.dtype().equal(b.dtype()))
    type_error(op, ": ", arg_b, " must have the dtype of ", arg_a, " (", dtype_str(a), "), got ",
               dtype_str(b));
}

// TypeError unless `a` holds int64 indices.
inline void check_int64(const char* op, const char* arg, const py::array& a) {
  if (!a.dtype().equal(py::dtype::of<int64_t>()))
    type_error(op, ": ", arg, " must be int64, got ", dtype_str(a));
}

// TypeError unless `a` holds bool.
inline void check_bool(const char* op, const char* arg, const py::array& a) {
  if (!a.dtype().equal(py::dtype::of<bool>())) type_error(op, ": ", arg, " must be bool, got ", dtype_str(a));
}

// ValueError unless `a` is C-contiguous.
inline void check_contiguous(const char* op, const char* arg, const py::array& a) {
  if (!(a.flags() & py::array::c_style))
    value_error(op, ": ", arg, " must be C-contiguous (call .contiguous()), got strides that are not");
}

// ValueError: "<op>: <arg> must be <ndim>-D <layout>, got shape (...)".
inline void check_ndim(const char* op, const char* arg, const py::array& a, int ndim, const char* layout) {
  if (a.ndim() != ndim)
    value_error(op, ": ", arg, " must be ", ndim, "-D ", layout, ", got shape ", shape_str(a));
}

// ValueError unless `a` has exactly `want`.
inline void check_shape(const char* op, const char* arg, const py::array& a, const Shape& want) {
  if (shape_of(a) != want)
    value_error(op, ": ", arg, " must have shape ", shape_str(want), ", got ", shape_str(a));
}

// ValueError for a tensor with no elements where an op needs at least one.
inline void check_nonempty(const char* op, const char* arg, const py::array& a) {
  if (a.size() == 0) value_error(op, ": ", arg, " is empty (shape ", shape_str(a), ")");
}

// [lo, hi) byte range an array's elements span (the array is non-empty).
struct ByteRange { const char* lo; const char* hi; };
inline ByteRange byte_range(const py::array& a) {
  const char* base = static_cast<const char*>(a.data());
  const char* lo = base;
  const char* hi = base + a.itemsize();
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    const py::ssize_t span = (a.shape(d) - 1) * a.strides(d);
    (span < 0 ? lo : hi) += span;
  }
  return {lo, hi};
}

// Whether two arrays' element spans share a byte (empty arrays overlap nothing).
inline bool overlaps(const py::array& a, const py::array& b) {
  if (a.size() == 0 || b.size() == 0) return false;
  const ByteRange ra = byte_range(a), rb = byte_range(b);
  return ra.lo < rb.hi && rb.lo < ra.hi;
}

// Raw pointers (the array must already be checked for dtype).
template <class T> inline const T* cdata(const py::array& a) { return static_cast<const T*>(a.data()); }
template <class T> inline T* mdata(py::array& a) { return static_cast<T*>(a.mutable_data()); }

// A new C-contiguous array of element type T. Arrays of at least host_cache::kMinCachedBytes
// take their memory from the host cache (core/host_cache.h) and give it back when freed.
template <class T> inline py::array empty(const Shape& shape) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  std::size_t count = 1;
  for (int64_t s : shape) count *= static_cast<std::size_t>(s);
  if (count * sizeof(T) < host_cache::kMinCachedBytes || !host_cache::enabled())
    return py::array_t<T>(dims);
  void* block = host_cache::allocate(count * sizeof(T));
  py::capsule owner(block, [](void* p) { host_cache::release(p); });
  return py::array_t<T>(dims, static_cast<T*>(block), owner);
}

// Calls f(T{}) with T = float or double according to `ft`.
template <class F> inline decltype(auto) dispatch_float(FloatType ft, F&& f) {
  if (ft == FloatType::f32) return f(float{});
  return f(double{});
}

}  // namespace dlcore::bind
