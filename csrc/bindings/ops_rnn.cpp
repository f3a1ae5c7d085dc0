// Bindings for the recurrences over a packed sequence (csrc/cpu/rnn/): LSTM, GRU and Elman RNN,
// forward and backward through time, one layer and direction per call.
//
//   lstm_sequence_forward(gates, w_hh, h0, c0, batch_sizes, reverse=False, x=None, w_ih=None, bias=None)
//                         -> (y, c_all, h_n, c_n); with x, gates is output only
//   lstm_sequence_backward(w_hh, gates, c_all, c0, batch_sizes, reverse, grad_y, grad_h_n, grad_c_n,
//                          need_grad_h0=True, w_ih=None, grad_x_out=None)
//                          -> (grad_gates, grad_h0 | None, grad_c0, grad_bias); with w_ih, also
//                          grad_x_out (total, I) := grad_gates w_ih, made during the walk
//   gru_sequence_forward(gates, w_hh, b_hh, h0, batch_sizes, reverse=False) -> (hidden, y, h_n)
//   gru_sequence_backward(w_hh, h0, gates, hidden, y, batch_sizes, reverse, grad_y, grad_h_n,
//                         need_grad_h0=True) -> (grad_gates_x, grad_gates_h, grad_h0 | None)
//   rnn_sequence_forward(y, w_hh, h0, batch_sizes, reverse=False, nonlinearity="tanh") -> (y, h_n)
//   rnn_sequence_backward(w_hh, h0, y, batch_sizes, reverse, nonlinearity, grad_y, grad_h_n,
//                         need_grad_h0=True) -> (grad_pre, grad_h0 | None)
//   rnn_weight_grads(grad_gates, x, y, h0, reverse=False) -> (grad_w_ih, grad_w_hh)
//
// The forward's first argument (the input projection of every step, (total, G * H)) is
// overwritten in place with what backward needs (activated gates; h for the Elman RNN), so the
// Python layer passes a buffer it owns. batch_sizes (T,) int64: rows per step, PyTorch's
// PackedSequence layout (core/kernel_args.h, RnnSequenceShape). W_hh (G * H, H) is packed once
// per call, in the layout each direction's GEMM reads: here (PackedWeight), or by the LSTM
// forward kernel itself (its AVX-512 float copy packs for its fused tile). Grad arguments may be None.
// The kernels skip the GEMMs on an all-zero h0 (forward; checked here) and, without need_grad_h0,
// the GEMM that would make grad_h0 (backward): RnnSequenceShape::h0_zero, want_grad_h0.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>

#include "bindings/checks.h"
#include "core/registry.h"

namespace dlcore::bind {

namespace {

namespace py = pybind11;
using py::arg;

// W_hh (G * H, H) packed by this ISA's gemm_pack_b for the recurrence kernels: forward
// (`per_gate`), each gate's block W_g^T (H, H) packed on its own, one after another (threads
// that own a slice of the units then read whole panels of every gate); backward, W_hh whole as
// is (K = G * H, N = H).
class PackedWeight {
 public:
  template <class T>
  PackedWeight(const py::array& w_hh, bool per_gate, T) {
    const int64_t H = w_hh.shape(1), gates = w_hh.shape(0) / H;
    const int64_t block = per_gate ? slot::gemm_packed_size<T>()(H, H) : slot::gemm_packed_size<T>()(gates * H, H);
    const int64_t size = per_gate ? gates * block : block;
    const size_t bytes = (static_cast<size_t>(size) * sizeof(T) + 63) / 64 * 64;
    data_.reset(std::aligned_alloc(64, std::max<size_t>(bytes, 64)));
    if (!data_) throw std::bad_alloc();
    const T* w = cdata<T>(w_hh);  // (G * H, H)
    T* packed = static_cast<T*>(data_.get());
    py::gil_scoped_release release;
    if (!per_gate) {
      slot::gemm_pack_b<T>()(false, gates * H, H, w, H, packed);
      return;
    }
    for (int64_t g = 0; g < gates; ++g) slot::gemm_pack_b<T>()(true, H, H, w + g * H * H, H, packed + g * block);
  }
  template <class T> const T* get() const { return static_cast<const T*>(data_.get()); }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> data_;
};

// The sequence geometry: H from w_hh (G * H, H), B from the initial state's rows, T and the
// row count from batch_sizes, all checked against each other.
struct Geometry {
  RnnSequenceShape shape;
  int64_t total = 0;
};

Geometry check_geometry(const char* op, int gates_per_unit, const py::array& w_hh, const py::array& state0,
                        const py::array& batch_sizes, bool reverse) {
  check_contiguous(op, "w_hh", w_hh);
  check_ndim(op, "w_hh", w_hh, 2, gates_per_unit == 1 ? "(H, H)" : "(G * H, H)");
  const int64_t H = w_hh.shape(1);
  if (H < 1 || w_hh.shape(0) != gates_per_unit * H)
    value_error(op, ": w_hh must be (", gates_per_unit, " * H, H) with H >= 1, got ", shape_str(w_hh));
  check_same_dtype(op, "w_hh", w_hh, "h0", state0);
  check_contiguous(op, "h0", state0);
  check_ndim(op, "h0", state0, 2, "(B, H)");
  const int64_t B = state0.shape(0);
  if (B < 1 || state0.shape(1) != H) value_error(op, ": h0 must be (B, H) with B >= 1, H = ", H, ", got ", shape_str(state0));
  check_int64(op, "batch_sizes", batch_sizes);
  check_contiguous(op, "batch_sizes", batch_sizes);
  check_ndim(op, "batch_sizes", batch_sizes, 1, "(T,)");
  const int64_t T = batch_sizes.shape(0);
  if (T < 1) value_error(op, ": batch_sizes is empty (a sequence needs at least one step)");
  const int64_t* bs = cdata<int64_t>(batch_sizes);
  if (bs[0] != B) value_error(op, ": batch_sizes[0] must equal the batch size B = ", B, " of h0, got ", bs[0]);
  Geometry geo;
  for (int64_t t = 0; t < T; ++t) {
    if (bs[t] < 1 || (t > 0 && bs[t] > bs[t - 1]))
      value_error(op, ": batch_sizes must be non-increasing and >= 1, got ", bs[t], " at step ", t,
                  t > 0 ? " after " + std::to_string(bs[t - 1]) : std::string());
    geo.total += bs[t];
  }
  geo.shape.T = T;
  geo.shape.B = B;
  geo.shape.H = H;
  geo.shape.batch_sizes = bs;
  geo.shape.reverse = reverse;
  return geo;
}

// Whether the (B, H) initial state h0 is all zeros (an RNN layer called without one): the
// kernels then skip the GEMMs on it (RnnSequenceShape::h0_zero). One pass over B * H values.
template <class T>
bool all_zero(const py::array& h0) {
  const T* p = cdata<T>(h0);
  return std::all_of(p, p + h0.size(), [](T v) { return v == T(0); });
}

// Checks a (rows, width) array with w_hh's dtype.
void check_rows(const char* op, const char* name, const py::array& a, const py::array& w_hh, int64_t rows,
                int64_t width) {
  check_same_dtype(op, "w_hh", w_hh, name, a);
  check_contiguous(op, name, a);
  check_shape(op, name, a, {rows, width});
}

// The data of an optional (rows, width) gradient, or null for None.
template <class T>
const T* optional_rows(const char* op, const char* name, const std::optional<py::array>& a, const py::array& w_hh,
                       int64_t rows, int64_t width) {
  if (!a) return nullptr;
  check_rows(op, name, *a, w_hh, rows, width);
  return cdata<T>(*a);
}

void check_writeable(const char* op, const char* name, const py::array& a) {
  if (!a.writeable()) value_error(op, ": ", name, " must be writeable (it is overwritten in place)");
}

RnnActivation activation_arg(const char* op, const std::string& nonlinearity) {
  if (nonlinearity == "tanh") return RnnActivation::tanh;
  if (nonlinearity == "relu") return RnnActivation::relu;
  value_error(op, ": nonlinearity must be 'tanh' or 'relu', got '", nonlinearity, "'");
}

// ---- LSTM ------------------------------------------------------------------------------------

py::tuple lstm_sequence_forward(py::array gates, const py::array& w_hh, const py::array& h0, const py::array& c0,
                                const py::array& batch_sizes, bool reverse, const std::optional<py::array>& x,
                                const std::optional<py::array>& w_ih, const std::optional<py::array>& bias) {
  const char* op = "lstm_sequence_forward";
  const FloatType ft = float_type(op, "w_hh", w_hh);
  const Geometry geo = check_geometry(op, 4, w_hh, h0, batch_sizes, reverse);
  const int64_t B = geo.shape.B, H = geo.shape.H;
  check_rows(op, "gates", gates, w_hh, geo.total, 4 * H);
  check_writeable(op, "gates", gates);
  check_rows(op, "c0", c0, w_hh, B, H);
  if (x.has_value() != w_ih.has_value() || (bias && !x))
    value_error(op, ": x and w_ih go together (gates := x w_ih^T + bias is then made here), and bias needs them");
  int64_t I = 0;
  if (x) {
    check_ndim(op, "x", *x, 2, "(total, I)");
    I = x->shape(1);
    check_rows(op, "x", *x, w_hh, geo.total, I);
    check_rows(op, "w_ih", *w_ih, w_hh, 4 * H, I);
    if (bias) {
      check_same_dtype(op, "w_hh", w_hh, "bias", *bias);
      check_contiguous(op, "bias", *bias);
      check_shape(op, "bias", *bias, {4 * H});
    }
    for (const py::array* in : {&w_hh, &h0, &c0, &*x, &*w_ih})
      if (overlaps(gates, *in)) value_error(op, ": gates must not overlap an input (it is written)");
    if (bias && overlaps(gates, *bias)) value_error(op, ": gates must not overlap an input (it is written)");
  }
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array y = empty<T>({geo.total, H}), c_all = empty<T>({geo.total, H});
    py::array h_n = empty<T>({B, H}), c_n = empty<T>({B, H});
    RnnSequenceShape shape = geo.shape;
    shape.h0_zero = all_zero<T>(h0);
    const T* xd = x ? cdata<T>(*x) : nullptr;
    const T* wi = w_ih ? cdata<T>(*w_ih) : nullptr;
    const T* bd = bias ? cdata<T>(*bias) : nullptr;
    {
      py::gil_scoped_release release;
      slot::lstm_sequence_forward<T>()(shape, cdata<T>(w_hh), xd, I, wi, bd, cdata<T>(h0), cdata<T>(c0),
                                       mdata<T>(gates), mdata<T>(y), mdata<T>(c_all), mdata<T>(h_n), mdata<T>(c_n));
    }
    return py::make_tuple(y, c_all, h_n, c_n);
  });
}

py::tuple lstm_sequence_backward(const py::array& w_hh, const py::array& gates, const py::array& c_all,
                                 const py::array& c0, const py::array& batch_sizes, bool reverse,
                                 const std::optional<py::array>& grad_y, const std::optional<py::array>& grad_h_n,
                                 const std::optional<py::array>& grad_c_n, bool need_grad_h0,
                                 const std::optional<py::array>& w_ih, std::optional<py::array> grad_x_out) {
  const char* op = "lstm_sequence_backward";
  const FloatType ft = float_type(op, "w_hh", w_hh);
  const Geometry geo = check_geometry(op, 4, w_hh, c0, batch_sizes, reverse);
  const int64_t B = geo.shape.B, H = geo.shape.H;
  check_rows(op, "gates", gates, w_hh, geo.total, 4 * H);
  check_rows(op, "c_all", c_all, w_hh, geo.total, H);
  if (w_ih.has_value() != grad_x_out.has_value())
    value_error(op, ": w_ih and grad_x_out go together (grad_x_out := grad_gates w_ih); got only ",
                w_ih ? "w_ih" : "grad_x_out");
  int64_t I = 0;
  if (w_ih) {
    check_ndim(op, "w_ih", *w_ih, 2, "(4H, I)");
    I = w_ih->shape(1);
    check_rows(op, "w_ih", *w_ih, w_hh, 4 * H, I);
    check_rows(op, "grad_x_out", *grad_x_out, w_hh, geo.total, I);
    check_writeable(op, "grad_x_out", *grad_x_out);
    for (const py::array* in : {&w_hh, &gates, &c_all, &c0, &*w_ih})
      if (overlaps(*grad_x_out, *in)) value_error(op, ": grad_x_out must not overlap an input");
    for (const auto* in : {&grad_y, &grad_h_n, &grad_c_n})
      if (*in && overlaps(*grad_x_out, **in)) value_error(op, ": grad_x_out must not overlap an input");
  }
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    const T* gy = optional_rows<T>(op, "grad_y", grad_y, w_hh, geo.total, H);
    const T* ghn = optional_rows<T>(op, "grad_h_n", grad_h_n, w_hh, B, H);
    const T* gcn = optional_rows<T>(op, "grad_c_n", grad_c_n, w_hh, B, H);
    py::array grad_gates = empty<T>({geo.total, 4 * H}), grad_h0 = empty<T>({B, H}), grad_c0 = empty<T>({B, H});
    py::array grad_bias = empty<T>({4 * H});
    RnnSequenceShape shape = geo.shape;
    shape.want_grad_h0 = need_grad_h0;
    const T* wi = w_ih ? cdata<T>(*w_ih) : nullptr;
    T* gx = grad_x_out ? mdata<T>(*grad_x_out) : nullptr;
    {
      py::gil_scoped_release release;
      slot::lstm_sequence_backward<T>()(shape, cdata<T>(w_hh), wi, I, cdata<T>(gates), cdata<T>(c_all), cdata<T>(c0),
                                        gy, ghn, gcn, mdata<T>(grad_gates), mdata<T>(grad_h0), mdata<T>(grad_c0),
                                        mdata<T>(grad_bias), gx);
    }
    return py::make_tuple(grad_gates, need_grad_h0 ? py::object(grad_h0) : py::none(), grad_c0, grad_bias);
  });
}

// ---- GRU -------------------------------------------------------------------------------------

py::tuple gru_sequence_forward(py::array gates, const py::array& w_hh, const std::optional<py::array>& b_hh,
                               const py::array& h0, const py::array& batch_sizes, bool reverse) {
  const char* op = "gru_sequence_forward";
  const FloatType ft = float_type(op, "w_hh", w_hh);
  const Geometry geo = check_geometry(op, 3, w_hh, h0, batch_sizes, reverse);
  const int64_t B = geo.shape.B, H = geo.shape.H;
  check_rows(op, "gates", gates, w_hh, geo.total, 3 * H);
  check_writeable(op, "gates", gates);
  if (b_hh) {
    check_same_dtype(op, "w_hh", w_hh, "b_hh", *b_hh);
    check_contiguous(op, "b_hh", *b_hh);
    check_shape(op, "b_hh", *b_hh, {3 * H});
  }
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    const PackedWeight w(w_hh, true, tag);
    py::array hidden = empty<T>({geo.total, 3 * H}), y = empty<T>({geo.total, H}), h_n = empty<T>({B, H});
    const T* bias = b_hh ? cdata<T>(*b_hh) : nullptr;  // (3H) | null
    RnnSequenceShape shape = geo.shape;
    shape.h0_zero = all_zero<T>(h0);
    {
      py::gil_scoped_release release;
      slot::gru_sequence_forward<T>()(shape, w.get<T>(), bias, cdata<T>(h0), mdata<T>(gates), mdata<T>(hidden),
                                      mdata<T>(y), mdata<T>(h_n));
    }
    return py::make_tuple(hidden, y, h_n);
  });
}

py::tuple gru_sequence_backward(const py::array& w_hh, const py::array& h0, const py::array& gates,
                                const py::array& hidden, const py::array& y, const py::array& batch_sizes,
                                bool reverse, const std::optional<py::array>& grad_y,
                                const std::optional<py::array>& grad_h_n, bool need_grad_h0) {
  const char* op = "gru_sequence_backward";
  const FloatType ft = float_type(op, "w_hh", w_hh);
  const Geometry geo = check_geometry(op, 3, w_hh, h0, batch_sizes, reverse);
  const int64_t B = geo.shape.B, H = geo.shape.H;
  check_rows(op, "gates", gates, w_hh, geo.total, 3 * H);
  check_rows(op, "hidden", hidden, w_hh, geo.total, 3 * H);
  check_rows(op, "y", y, w_hh, geo.total, H);
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    const T* gy = optional_rows<T>(op, "grad_y", grad_y, w_hh, geo.total, H);
    const T* ghn = optional_rows<T>(op, "grad_h_n", grad_h_n, w_hh, B, H);
    const PackedWeight w(w_hh, false, tag);
    py::array grad_x = empty<T>({geo.total, 3 * H}), grad_h = empty<T>({geo.total, 3 * H});
    py::array grad_h0 = empty<T>({B, H});
    RnnSequenceShape shape = geo.shape;
    shape.want_grad_h0 = need_grad_h0;
    {
      py::gil_scoped_release release;
      slot::gru_sequence_backward<T>()(shape, w.get<T>(), cdata<T>(h0), cdata<T>(gates), cdata<T>(hidden),
                                       cdata<T>(y), gy, ghn, mdata<T>(grad_x), mdata<T>(grad_h), mdata<T>(grad_h0));
    }
    return py::make_tuple(grad_x, grad_h, need_grad_h0 ? py::object(grad_h0) : py::none());
  });
}

// ---- Elman RNN -------------------------------------------------------------------------------

py::tuple rnn_sequence_forward(py::array y, const py::array& w_hh, const py::array& h0, const py::array& batch_sizes,
                               bool reverse, const std::string& nonlinearity) {
  const char* op = "rnn_sequence_forward";
  const FloatType ft = float_type(op, "w_hh", w_hh);
  const RnnActivation act = activation_arg(op, nonlinearity);
  const Geometry geo = check_geometry(op, 1, w_hh, h0, batch_sizes, reverse);
  const int64_t B = geo.shape.B, H = geo.shape.H;
  check_rows(op, "y", y, w_hh, geo.total, H);
  check_writeable(op, "y", y);
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    const PackedWeight w(w_hh, true, tag);
    py::array h_n = empty<T>({B, H});
    RnnSequenceShape shape = geo.shape;
    shape.h0_zero = all_zero<T>(h0);
    {
      py::gil_scoped_release release;
      slot::rnn_sequence_forward<T>()(shape, act, w.get<T>(), cdata<T>(h0), mdata<T>(y), mdata<T>(h_n));
    }
    return py::make_tuple(y, h_n);
  });
}

py::tuple rnn_sequence_backward(const py::array& w_hh, const py::array& h0, const py::array& y,
                                const py::array& batch_sizes, bool reverse, const std::string& nonlinearity,
                                const std::optional<py::array>& grad_y, const std::optional<py::array>& grad_h_n,
                                bool need_grad_h0) {
  const char* op = "rnn_sequence_backward";
  const FloatType ft = float_type(op, "w_hh", w_hh);
  const RnnActivation act = activation_arg(op, nonlinearity);
  const Geometry geo = check_geometry(op, 1, w_hh, h0, batch_sizes, reverse);
  const int64_t B = geo.shape.B, H = geo.shape.H;
  check_rows(op, "y", y, w_hh, geo.total, H);
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    const T* gy = optional_rows<T>(op, "grad_y", grad_y, w_hh, geo.total, H);
    const T* ghn = optional_rows<T>(op, "grad_h_n", grad_h_n, w_hh, B, H);
    const PackedWeight w(w_hh, false, tag);
    py::array grad_pre = empty<T>({geo.total, H}), grad_h0 = empty<T>({B, H});
    RnnSequenceShape shape = geo.shape;
    shape.want_grad_h0 = need_grad_h0;
    {
      py::gil_scoped_release release;
      slot::rnn_sequence_backward<T>()(shape, act, w.get<T>(), cdata<T>(y), gy, ghn, mdata<T>(grad_pre),
                                       mdata<T>(grad_h0));
    }
    return py::make_tuple(grad_pre, need_grad_h0 ? py::object(grad_h0) : py::none());
  });
}

// ---- weight gradients ----------------------------------------------------------------------

// grad_w_ih = grad_gates^T x and grad_w_hh = grad_gates^T h_prev of a padded batch (T steps of the
// B rows of h0): one GEMM that reads grad_gates once (csrc/cpu/rnn/weight_grads.cpp). An all-zero
// h0 goes to the kernel as null (zeros).
py::tuple rnn_weight_grads(const py::array& grad_gates, const py::array& x, const py::array& y, const py::array& h0,
                           bool reverse) {
  const char* op = "rnn_weight_grads";
  const FloatType ft = float_type(op, "grad_gates", grad_gates);
  check_contiguous(op, "grad_gates", grad_gates);
  check_ndim(op, "grad_gates", grad_gates, 2, "(total, G)");
  const std::pair<const char*, const py::array*> others[] = {{"x", &x}, {"y", &y}, {"h0", &h0}};
  for (const auto& [name, a] : others) {
    check_same_dtype(op, "grad_gates", grad_gates, name, *a);
    check_contiguous(op, name, *a);
    check_ndim(op, name, *a, 2, a == &h0 ? "(B, H)" : "(total, width)");
  }
  const int64_t total = grad_gates.shape(0), G = grad_gates.shape(1);
  const int64_t I = x.shape(1), B = h0.shape(0), H = h0.shape(1);
  check_shape(op, "x", x, {total, I});
  check_shape(op, "y", y, {total, H});
  if (B < 1 || total < B || total % B != 0)
    value_error(op, ": the rows of grad_gates, x and y (", total, ") must be whole steps of the batch B = ", B,
                " of h0 (a padded batch)");
  return dispatch_float(ft, [&](auto tag) {
    using T = decltype(tag);
    py::array grad_w_ih = empty<T>({G, I}), grad_w_hh = empty<T>({G, H});
    const T* h0_data = all_zero<T>(h0) ? nullptr : cdata<T>(h0);
    {
      py::gil_scoped_release release;
      slot::rnn_weight_grads<T>()(total, G, B, I, H, reverse, cdata<T>(grad_gates), cdata<T>(x), cdata<T>(y), h0_data,
                                  mdata<T>(grad_w_ih), mdata<T>(grad_w_hh));
    }
    return py::make_tuple(grad_w_ih, grad_w_hh);
  });
}

}  // namespace

void bind_rnn(py::module_& m) {
  m.def("lstm_sequence_forward", &lstm_sequence_forward, arg("gates"), arg("w_hh"), arg("h0"), arg("c0"),
        arg("batch_sizes"), arg("reverse") = false, arg("x") = py::none(), arg("w_ih") = py::none(),
        arg("bias") = py::none(),
        "LSTM layer over a packed sequence, one direction; gates (total, 4H) = x W_ih^T + b_ih + b_hh is "
        "overwritten with the activated gates. Given x (total, I) and w_ih (4H, I) (and bias (4H)), the kernel "
        "makes that projection itself and gates is only written. Returns (y, c_all, h_n, c_n).");
  m.def("lstm_sequence_backward", &lstm_sequence_backward, arg("w_hh"), arg("gates"), arg("c_all"), arg("c0"),
        arg("batch_sizes"), arg("reverse"), arg("grad_y").none(true), arg("grad_h_n").none(true),
        arg("grad_c_n").none(true), arg("need_grad_h0") = true, arg("w_ih") = py::none(),
        arg("grad_x_out") = py::none(),
        "LSTM backward through time. Returns (grad_gates, grad_h0, grad_c0, grad_bias), grad_bias (4H) = "
        "grad_gates summed over its rows; grad_h0 is None (and not computed) without need_grad_h0. With w_ih "
        "(4H, I), grad_x_out (total, I) := grad_gates w_ih too.");
  m.def("gru_sequence_forward", &gru_sequence_forward, arg("gates"), arg("w_hh"), arg("b_hh").none(true), arg("h0"),
        arg("batch_sizes"), arg("reverse") = false,
        "GRU layer over a packed sequence, one direction; gates (total, 3H) = x W_ih^T + b_ih is overwritten "
        "with the activated (r, z, n). Returns (hidden, y, h_n).");
  m.def("gru_sequence_backward", &gru_sequence_backward, arg("w_hh"), arg("h0"), arg("gates"), arg("hidden"), arg("y"),
        arg("batch_sizes"), arg("reverse"), arg("grad_y").none(true), arg("grad_h_n").none(true),
        arg("need_grad_h0") = true,
        "GRU backward through time. Returns (grad_gates_x, grad_gates_h, grad_h0); grad_h0 is None (and not "
        "computed) without need_grad_h0.");
  m.def("rnn_sequence_forward", &rnn_sequence_forward, arg("y"), arg("w_hh"), arg("h0"), arg("batch_sizes"),
        arg("reverse") = false, arg("nonlinearity") = "tanh",
        "Elman RNN layer over a packed sequence, one direction; y (total, H) = x W_ih^T + b_ih + b_hh is "
        "overwritten with h. Returns (y, h_n).");
  m.def("rnn_sequence_backward", &rnn_sequence_backward, arg("w_hh"), arg("h0"), arg("y"), arg("batch_sizes"),
        arg("reverse"), arg("nonlinearity"), arg("grad_y").none(true), arg("grad_h_n").none(true),
        arg("need_grad_h0") = true,
        "Elman RNN backward through time. Returns (grad_pre, grad_h0); grad_h0 is None (and not computed) "
        "without need_grad_h0.");
  m.def("rnn_weight_grads", &rnn_weight_grads, arg("grad_gates"), arg("x"), arg("y"), arg("h0"),
        arg("reverse") = false,
        "Weight gradients of one RNN layer and direction over a padded batch: (grad_gates^T x, grad_gates^T "
        "h_prev), h_prev each row's previous state (h0, or y one step earlier; later when reverse), as one "
        "GEMM that reads grad_gates once.");
}

}  // namespace dlcore::bind
