// Bindings for the nn family: dropout, embedding and the LSTM cell (forward and backward of
// each). Dtypes (TypeError), ranks, shapes, contiguity, p and index ranges (ValueError) are
// checked once here; the kernels in csrc/cpu/ref/{dropout,embedding,lstm_cell}.cpp assume it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <utility>

#include "bindings/checks.h"
#include "core/registry.h"

namespace dlcore::bind {

namespace {

namespace py = pybind11;

// ---- dropout ------------------------------------------------------------------------------

py::tuple dropout_forward(const py::array& x, double p, uint64_t seed) {
  const char* op = "dropout_forward";
  const FloatType ft = float_type(op, "x", x);
  check_contiguous(op, "x", x);
  if (!(p >= 0.0 && p <= 1.0)) value_error(op, ": p must be in [0, 1], got ", p);
  const Shape shape = shape_of(x);
  const int64_t n = x.size();
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array y = empty<T>(shape), keep = empty<bool>(shape);
    {
      py::gil_scoped_release release;
      slot::dropout_forward<T>()(n, p, seed, cdata<T>(x), mdata<T>(y), mdata<bool>(keep));
    }
    return py::make_tuple(y, keep);
  });
}

py::array dropout_backward(const py::array& keep, const py::array& grad_y, double scale) {
  const char* op = "dropout_backward";
  const FloatType ft = float_type(op, "grad_y", grad_y);
  check_bool(op, "keep", keep);
  check_contiguous(op, "keep", keep);
  check_contiguous(op, "grad_y", grad_y);
  check_shape(op, "grad_y", grad_y, shape_of(keep));
  const int64_t n = grad_y.size();
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array grad_x = empty<T>(shape_of(grad_y));
    {
      py::gil_scoped_release release;
      slot::dropout_backward<T>()(n, static_cast<T>(scale), cdata<bool>(keep), cdata<T>(grad_y),
                                  mdata<T>(grad_x));
    }
    return grad_x;
  });
}

// ---- embedding ----------------------------------------------------------------------------

// "(1, 3)" for the flat position `flat` in `shape` ("3" for a 1-D index, "()" for 0-D).
std::string position_str(const Shape& shape, int64_t flat) {
  if (shape.size() == 1) return std::to_string(flat);
  Shape pos(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    pos[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(pos);
}

// ValueError unless every index is in [0, num), naming the first bad value and its position.
void check_indices(const char* op, const py::array& index, int64_t num) {
  const int64_t* idx = cdata<int64_t>(index);
  const int64_t n = index.size();
  for (int64_t i = 0; i < n; ++i)
    if (idx[i] < 0 || idx[i] >= num)
      value_error(op, ": index ", idx[i], " at position ", position_str(shape_of(index), i),
                  " is out of range [0, ", num, ")");
}

py::array embedding_forward(const py::array& weight, const py::array& index) {
  const char* op = "embedding_forward";
  const FloatType ft = float_type(op, "weight", weight);
  check_contiguous(op, "weight", weight);
  check_ndim(op, "weight", weight, 2, "(num, D)");
  check_int64(op, "index", index);
  check_contiguous(op, "index", index);
  const int64_t num = weight.shape(0), D = weight.shape(1);
  check_indices(op, index, num);
  Shape out_shape = shape_of(index);
  out_shape.push_back(D);
  const int64_t n = index.size();
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array out = empty<T>(out_shape);
    {
      py::gil_scoped_release release;
      slot::embedding_forward<T>()(num, D, cdata<T>(weight), n, cdata<int64_t>(index), mdata<T>(out));
    }
    return out;
  });
}

py::array embedding_backward(const py::array& index, const py::array& grad_out, int64_t num,
                             int64_t padding_idx) {
  const char* op = "embedding_backward";
  const FloatType ft = float_type(op, "grad_out", grad_out);
  check_int64(op, "index", index);
  check_contiguous(op, "index", index);
  check_contiguous(op, "grad_out", grad_out);
  if (num < 0) value_error(op, ": num must be >= 0, got ", num);
  if (padding_idx >= num)
    value_error(op, ": padding_idx must be < num (", num, ") or negative for none, got ", padding_idx);
  if (grad_out.ndim() != index.ndim() + 1)
    value_error(op, ": grad_out must have shape index.shape + (D,) = ", shape_str(index),
                " + (D,), got ", shape_str(grad_out));
  const int64_t D = grad_out.shape(grad_out.ndim() - 1);
  Shape want = shape_of(index);
  want.push_back(D);
  check_shape(op, "grad_out", grad_out, want);
  check_indices(op, index, num);
  const int64_t n = index.size();
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array grad_weight = empty<T>({num, D});
    {
      py::gil_scoped_release release;
      slot::embedding_backward<T>()(num, D, n, cdata<int64_t>(index), padding_idx,
                                    cdata<T>(grad_out), mdata<T>(grad_weight));
    }
    return grad_weight;
  });
}

// ---- lstm_cell ----------------------------------------------------------------------------

// Checks a (B, H) operand with the dtype of gates_pre / gates.
void check_state(const char* op, const char* ref_arg, const py::array& ref, const char* arg,
                 const py::array& a, int64_t B, int64_t H) {
  check_same_dtype(op, ref_arg, ref, arg, a);
  check_contiguous(op, arg, a);
  check_ndim(op, arg, a, 2, "(B, H)");
  check_shape(op, arg, a, {B, H});
}

// Checks a (B, 4H) gate array and returns (B, H).
std::pair<int64_t, int64_t> check_gates(const char* op, const char* arg, const py::array& a) {
  check_contiguous(op, arg, a);
  check_ndim(op, arg, a, 2, "(B, 4H)");
  if (a.shape(1) % 4 != 0)
    value_error(op, ": ", arg, " must be (B, 4H) with a second dim divisible by 4, got shape ", shape_str(a));
  return {a.shape(0), a.shape(1) / 4};
}

py::tuple lstm_cell_forward(const py::array& gates_pre, const py::array& c_prev) {
  const char* op = "lstm_cell_forward";
  const FloatType ft = float_type(op, "gates_pre", gates_pre);
  const auto [B, H] = check_gates(op, "gates_pre", gates_pre);
  check_state(op, "gates_pre", gates_pre, "c_prev", c_prev, B, H);
  return dispatch_float(ft, [&, B = B, H = H](auto tag) {
    using T = decltype(tag);
    py::array h = empty<T>({B, H}), c = empty<T>({B, H}), gates = empty<T>({B, 4 * H});
    {
      py::gil_scoped_release release;
      slot::lstm_cell_forward<T>()(B, H, cdata<T>(gates_pre), cdata<T>(c_prev), mdata<T>(h),
                                   mdata<T>(c), mdata<T>(gates));
    }
    return py::make_tuple(h, c, gates);
  });
}

py::tuple lstm_cell_backward(const py::array& gates, const py::array& c_prev, const py::array& c,
                             const py::object& grad_h, const py::object& grad_c) {
  const char* op = "lstm_cell_backward";
  const FloatType ft = float_type(op, "gates", gates);
  const auto [B, H] = check_gates(op, "gates", gates);
  check_state(op, "gates", gates, "c_prev", c_prev, B, H);
  check_state(op, "gates", gates, "c", c, B, H);
  // A default py::array is a real (0,) array, not null: presence is tracked separately.
  const bool has_h = !grad_h.is_none(), has_c = !grad_c.is_none();
  py::array gh, gc;  // (B, H) when present
  if (has_h) {
    gh = py::array::ensure(grad_h);
    if (!gh) type_error(op, ": grad_h must be an array or None");
    check_state(op, "gates", gates, "grad_h", gh, B, H);
  }
  if (has_c) {
    gc = py::array::ensure(grad_c);
    if (!gc) type_error(op, ": grad_c must be an array or None");
    check_state(op, "gates", gates, "grad_c", gc, B, H);
  }
  return dispatch_float(ft, [&, B = B, H = H](auto tag) {
    using T = decltype(tag);
    const T* grad_h_ptr = has_h ? cdata<T>(gh) : nullptr;  // (B, H) | null
    const T* grad_c_ptr = has_c ? cdata<T>(gc) : nullptr;  // (B, H) | null
    py::array grad_gates_pre = empty<T>({B, 4 * H}), grad_c_prev = empty<T>({B, H});
    {
      py::gil_scoped_release release;
      slot::lstm_cell_backward<T>()(B, H, cdata<T>(gates), cdata<T>(c_prev), cdata<T>(c),
                                    grad_h_ptr, grad_c_ptr, mdata<T>(grad_gates_pre),
                                    mdata<T>(grad_c_prev));
    }
    return py::make_tuple(grad_gates_pre, grad_c_prev);
  });
}

}  // namespace

void bind_nn(py::module_& m) {
  using py::arg;
  m.def("dropout_forward", &dropout_forward, arg("x"), arg("p"), arg("seed"),
        "Inverted dropout: returns (y, keep); keep[i] = u(seed, i) >= p, y = keep ? x / (1 - p) : 0. "
        "The mask depends only on (seed, i), never on the thread count.");
  m.def("dropout_backward", &dropout_backward, arg("keep"), arg("grad_y"), arg("scale"),
        "grad_x = keep ? grad_y * scale : 0.");
  m.def("embedding_forward", &embedding_forward, arg("weight"), arg("index"),
        "out[..., :] = weight[index[...], :]; out has shape index.shape + (D,).");
  m.def("embedding_backward", &embedding_backward, arg("index"), arg("grad_out"), arg("num"),
        arg("padding_idx") = -1,
        "grad_weight (num, D): rows accumulate grad_out over repeated indices (deterministic); "
        "row padding_idx (if >= 0) stays zero.");
  m.def("lstm_cell_forward", &lstm_cell_forward, arg("gates_pre"), arg("c_prev"),
        "LSTM cell pointwise part, gate order (i, f, g, o): returns (h, c, gates) with gates the "
        "activated gates (B, 4H).");
  m.def("lstm_cell_backward", &lstm_cell_backward, arg("gates"), arg("c_prev"), arg("c"),
        arg("grad_h").none(true) = py::none(), arg("grad_c").none(true) = py::none(),
        "Returns (grad_gates_pre (B, 4H), grad_c_prev (B, H)); grad_h / grad_c may be None (zeros).");
}

}  // namespace dlcore::bind
