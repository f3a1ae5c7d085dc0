// Bindings for the gemm family: _C.gemm(A, B, C=None, trans_a=False, trans_b=False,
// alpha=1.0, beta=0.0, bias=None, relu=False) -> C, with C := alpha * op(A) @ op(B) + beta * C
// and then the fused epilogue C += bias (a C-contiguous (N,) array) and C = max(C, 0).
//
// Pre-packed B (a weight packed once and reused, e.g. the LSTM recurrent GEMM):
// _C.gemm_pack_b(B, trans_b=False) -> PackedB packs op(B) (K, N) in the active ISA's panel
// layout; _C.gemm_packed(A, packed, C=None, trans_a=False, alpha=1.0, beta=0.0, bias=None,
// relu=False) -> C computes the same as gemm for a 2-D A with that B; _C.gemm_packed_size(K, N,
// dtype) -> int is the packed element count. A PackedB is only valid for the ISA that packed it.
//
// A and B are 2-D matrices or 3-D batches of them. They need not be C-contiguous: each
// matrix needs unit element stride in its last dim and a row stride >= that dim, so a
// transposed view is passed as its contiguous base with trans_a / trans_b instead of being
// copied. The batch stride may be anything >= 0 (0 for np.broadcast_to views). C, when
// given, is C-contiguous, writeable, of the result's shape and dtype, and must not overlap
// A or B.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <string>

#include "bindings/checks.h"
#include "core/registry.h"

namespace dlcore::bind {

namespace {

constexpr const char* kOp = "gemm";

// One operand seen as `batch` matrices of (rows, cols) with element strides.
struct MatrixView {
  int64_t batch = 1, rows = 0, cols = 0;
  int64_t ld = 1;            // row stride, elements
  int64_t batch_stride = 0;  // elements; 0 when batch == 1 or broadcast
};

// Reads the layout of a 2-D or 3-D operand, or raises ValueError when the kernel cannot
// address it (negative or non-unit last-dim strides, overlapping rows).
MatrixView matrix_view(const char* arg, const py::array& a, const char* op = kOp) {
  if (a.ndim() != 2 && a.ndim() != 3)
    value_error(op, ": ", arg, " must be 2-D (rows, cols) or 3-D (batch, rows, cols), got shape ",
                shape_str(a));
  const int d = static_cast<int>(a.ndim());
  const int64_t item = a.itemsize();
  MatrixView v;
  v.batch = d == 3 ? a.shape(0) : 1;
  v.rows = a.shape(d - 2);
  v.cols = a.shape(d - 1);
  const int64_t s_batch = d == 3 ? a.strides(0) : 0, s_row = a.strides(d - 2), s_col = a.strides(d - 1);
  auto unsupported = [&](const char* what) {
    value_error(op, ": ", arg, " has an unsupported memory layout (", what, "; shape ",
                shape_str(a), ", byte strides (", d == 3 ? std::to_string(s_batch) + ", " : "",
                s_row, ", ", s_col, ")); pass a contiguous array or a transposed view with trans_",
                arg[0] == 'A' ? "a" : "b");
  };
  if (a.size() == 0) {
    v.ld = std::max<int64_t>(v.cols, 1);
    return v;
  }
  if (v.cols > 1 && s_col != item) unsupported("the last dim must have unit stride");
  if (v.rows > 1) {
    if (s_row % item != 0 || s_row < v.cols * item) unsupported("row stride must be >= the last dim");
    v.ld = s_row / item;
  } else {
    v.ld = std::max<int64_t>(v.cols, 1);
  }
  if (v.batch > 1) {
    if (s_batch < 0 || s_batch % item != 0) unsupported("batch stride must be >= 0");
    v.batch_stride = s_batch / item;
  }
  return v;
}

// The output C of `op`: a new array of out_shape when C_obj is None (then beta must be 0), or
// C_obj checked to be a writeable C-contiguous array of A's dtype and out_shape that overlaps
// none of `inputs`.
py::array output_c(const char* op, py::object C_obj, FloatType ft, const py::array& A, const Shape& out_shape,
                   double beta, std::initializer_list<const py::array*> inputs) {
  if (C_obj.is_none()) {
    if (beta != 0.0) value_error(op, ": beta = ", beta, " needs C (got C=None)");
    return dispatch_float(ft, [&](auto t) { return empty<decltype(t)>(out_shape); });
  }
  if (!py::isinstance<py::array>(C_obj))
    type_error(op, ": C must be a numpy array or None, got ", py::str(py::type::of(C_obj)).cast<std::string>());
  py::array C = C_obj.cast<py::array>();
  check_same_dtype(op, "A", A, "C", C);
  check_shape(op, "C", C, out_shape);
  check_contiguous(op, "C", C);
  if (!C.writeable()) value_error(op, ": C must be writeable");
  for (const py::array* in : inputs)
    if (overlaps(C, *in)) value_error(op, ": C must not overlap ", inputs.size() > 1 ? "A or B" : "A");
  return C;
}

// The fused-epilogue bias of `op`: None (an empty array) or a C-contiguous (N,) array of A's dtype.
py::array bias_arg(const char* op, py::object bias_obj, const py::array& A, int64_t N) {
  if (bias_obj.is_none()) return py::array();
  if (!py::isinstance<py::array>(bias_obj))
    type_error(op, ": bias must be a numpy array or None, got ", py::str(py::type::of(bias_obj)).cast<std::string>());
  py::array bias = bias_obj.cast<py::array>();
  check_same_dtype(op, "A", A, "bias", bias);
  check_shape(op, "bias", bias, Shape{N});
  check_contiguous(op, "bias", bias);
  return bias;
}

// Work above which a GEMM releases the GIL.
bool worth_releasing_gil(double multiply_adds) { return multiply_adds >= 32768.0; }

py::array gemm(const py::array& A, const py::array& B, py::object C_obj, bool trans_a, bool trans_b,
               double alpha, double beta, py::object bias_obj, bool relu) {
  const FloatType ft = float_type(kOp, "A", A);
  check_same_dtype(kOp, "A", A, "B", B);
  const MatrixView a = matrix_view("A", A);
  const MatrixView b = matrix_view("B", B);

  const int64_t M = trans_a ? a.cols : a.rows, K = trans_a ? a.rows : a.cols;
  const int64_t K_b = trans_b ? b.cols : b.rows, N = trans_b ? b.rows : b.cols;
  if (K != K_b)
    value_error(kOp, " (matmul): inner dimensions differ: op(A) is (", M, ", ", K, ") from A of shape ",
                shape_str(A), trans_a ? " (trans_a)" : "", ", op(B) is (", K_b, ", ", N,
                ") from B of shape ", shape_str(B), trans_b ? " (trans_b)" : "");
  if (a.batch != b.batch && a.batch != 1 && b.batch != 1)
    value_error(kOp, " (matmul): batch sizes differ and neither is 1: A has shape ", shape_str(A),
                ", B has shape ", shape_str(B));
  const bool batched = A.ndim() == 3 || B.ndim() == 3;
  const int64_t batch = std::max(a.batch, b.batch);
  const Shape out_shape = batched ? Shape{batch, M, N} : Shape{M, N};

  py::array C = output_c(kOp, C_obj, ft, A, out_shape, beta, {&A, &B});
  const bool has_bias = !bias_obj.is_none();
  const py::array bias = bias_arg(kOp, bias_obj, A, N);  // (N,) for the fused epilogue, or empty
  if (M == 0 || N == 0 || batch == 0) return C;

  dispatch_float(ft, [&](auto t) {
    using T = decltype(t);
    GemmArgs<T> g;
    g.trans_a = trans_a;
    g.trans_b = trans_b;
    g.M = M;
    g.N = N;
    g.K = K;
    g.alpha = static_cast<T>(alpha);
    g.beta = static_cast<T>(beta);
    g.A = cdata<T>(A);  // (batch_a, M, K) or (batch_a, K, M) when trans_a
    g.lda = a.ld;
    g.B = cdata<T>(B);  // (batch_b, K, N) or (batch_b, N, K) when trans_b
    g.ldb = b.ld;
    g.C = mdata<T>(C);  // (batch, M, N)
    g.ldc = N;
    g.batch = batch;
    g.stride_a = a.batch == 1 ? 0 : a.batch_stride;
    g.stride_b = b.batch == 1 ? 0 : b.batch_stride;
    g.stride_c = M * N;
    g.bias = has_bias ? cdata<T>(bias) : nullptr;  // (N)
    g.relu = relu;
    auto* kernel = slot::gemm<T>();
    if (worth_releasing_gil(static_cast<double>(batch) * M * N * std::max<int64_t>(K, 1))) {
      py::gil_scoped_release release;
      kernel(g);
    } else {
      kernel(g);
    }
  });
  return C;
}

constexpr const char* kPackOp = "gemm_pack_b";
constexpr const char* kPackedOp = "gemm_packed";

// op(B) (K, N) packed by the gemm_pack_b kernel of one ISA: 64-byte aligned storage of
// gemm_packed_size(K, N) elements, immutable once packed.
struct PackedB {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> data;
  int64_t K = 0, N = 0, size = 0;  // size: elements
  FloatType ft = FloatType::f32;
  Isa isa = Isa::generic;

  py::dtype dtype() const { return ft == FloatType::f32 ? py::dtype::of<float>() : py::dtype::of<double>(); }
  int64_t nbytes() const { return size * (ft == FloatType::f32 ? 4 : 8); }
};

// The float element type named by a dtype-like object (np.float32, "float64", ...).
FloatType dtype_arg(const char* op, const py::object& dtype) {
  const py::dtype dt = py::dtype::from_args(dtype);
  if (dt.equal(py::dtype::of<float>())) return FloatType::f32;
  if (dt.equal(py::dtype::of<double>())) return FloatType::f64;
  type_error(op, ": dtype must be float32 or float64, got ", py::str(dt).cast<std::string>());
}

int64_t gemm_packed_size(int64_t K, int64_t N, const py::object& dtype) {
  const FloatType ft = dtype_arg("gemm_packed_size", dtype);
  if (K < 0 || N < 0) value_error("gemm_packed_size: K and N must be >= 0, got K = ", K, ", N = ", N);
  return dispatch_float(ft, [&](auto t) { return slot::gemm_packed_size<decltype(t)>()(K, N); });
}

PackedB gemm_pack_b(const py::array& B, bool trans_b) {
  const FloatType ft = float_type(kPackOp, "B", B);
  check_ndim(kPackOp, "B", B, 2, trans_b ? "(N, K) (trans_b)" : "(K, N)");
  const MatrixView b = matrix_view("B", B, kPackOp);
  PackedB packed;
  packed.K = trans_b ? b.cols : b.rows;
  packed.N = trans_b ? b.rows : b.cols;
  packed.ft = ft;
  packed.isa = active_isa();
  dispatch_float(ft, [&](auto t) {
    using T = decltype(t);
    packed.size = slot::gemm_packed_size<T>()(packed.K, packed.N);
    const size_t bytes = (static_cast<size_t>(packed.size) * sizeof(T) + 63) / 64 * 64;
    packed.data.reset(std::aligned_alloc(64, std::max<size_t>(bytes, 64)));
    if (!packed.data) throw std::bad_alloc();
    auto* kernel = slot::gemm_pack_b<T>();
    T* Bp = static_cast<T*>(packed.data.get());  // (packed.size)
    if (worth_releasing_gil(static_cast<double>(packed.size))) {
      py::gil_scoped_release release;
      kernel(trans_b, packed.K, packed.N, cdata<T>(B), b.ld, Bp);
    } else {
      kernel(trans_b, packed.K, packed.N, cdata<T>(B), b.ld, Bp);
    }
  });
  return packed;
}

py::array gemm_packed(const py::array& A, const PackedB& packed, py::object C_obj, bool trans_a, double alpha,
                      double beta, py::object bias_obj, bool relu) {
  const FloatType ft = float_type(kPackedOp, "A", A);
  if (ft != packed.ft)
    type_error(kPackedOp, ": A must have the dtype of the packed B (", py::str(packed.dtype()).cast<std::string>(),
               "), got ", dtype_str(A));
  if (packed.isa != active_isa())
    value_error(kPackedOp, ": B was packed for the ", isa_name(packed.isa), " kernels but the active ISA is ",
                isa_name(active_isa()), " (the panel layout differs); re-pack it with gemm_pack_b");
  check_ndim(kPackedOp, "A", A, 2, trans_a ? "(K, M) (trans_a)" : "(M, K)");
  const MatrixView a = matrix_view("A", A, kPackedOp);
  const int64_t M = trans_a ? a.cols : a.rows, K = trans_a ? a.rows : a.cols, N = packed.N;
  if (K != packed.K)
    value_error(kPackedOp, " (matmul): inner dimensions differ: op(A) is (", M, ", ", K, ") from A of shape ",
                shape_str(A), trans_a ? " (trans_a)" : "", ", the packed B is (", packed.K, ", ", N, ")");
  py::array C = output_c(kPackedOp, C_obj, ft, A, Shape{M, N}, beta, {&A});
  const bool has_bias = !bias_obj.is_none();
  const py::array bias = bias_arg(kPackedOp, bias_obj, A, N);  // (N,) for the fused epilogue, or empty
  if (M == 0 || N == 0) return C;

  dispatch_float(ft, [&](auto t) {
    using T = decltype(t);
    GemmArgs<T> g;
    g.trans_a = trans_a;
    g.M = M;
    g.N = N;
    g.K = K;
    g.alpha = static_cast<T>(alpha);
    g.beta = static_cast<T>(beta);
    g.A = cdata<T>(A);  // (M, K) or (K, M) when trans_a
    g.lda = a.ld;
    g.C = mdata<T>(C);  // (M, N)
    g.ldc = N;
    g.bias = has_bias ? cdata<T>(bias) : nullptr;  // (N)
    g.relu = relu;
    const T* Bp = static_cast<const T*>(packed.data.get());  // (packed.size)
    auto* kernel = slot::gemm_packed<T>();
    if (worth_releasing_gil(static_cast<double>(M) * N * std::max<int64_t>(K, 1))) {
      py::gil_scoped_release release;
      kernel(g, Bp);
    } else {
      kernel(g, Bp);
    }
  });
  return C;
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("gemm", &gemm, py::arg("A"), py::arg("B"), py::arg("C") = py::none(), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("alpha") = 1.0, py::arg("beta") = 0.0,
        py::arg("bias") = py::none(), py::arg("relu") = false,
        "C := alpha * op(A) @ op(B) + beta * C for 2-D or batched 3-D float arrays, then the fused "
        "epilogue C += bias (N,) per column and C = max(C, 0) if relu; returns C.");

  py::class_<PackedB>(m, "PackedB",
                      "op(B) (K, N) packed once by gemm_pack_b into the panel layout of the ISA that was active "
                      "then; pass it to gemm_packed (same ISA and dtype) as many times as needed.")
      .def_property_readonly("K", [](const PackedB& p) { return p.K; }, "rows of op(B) (the inner dimension)")
      .def_property_readonly("N", [](const PackedB& p) { return p.N; }, "columns of op(B) (of the result)")
      .def_property_readonly("dtype", &PackedB::dtype, "element type, float32 or float64")
      .def_property_readonly("isa", [](const PackedB& p) { return std::string(isa_name(p.isa)); },
                             "the ISA whose kernels packed it (and alone can read it)")
      .def_property_readonly("nbytes", &PackedB::nbytes, "bytes of packed storage (panels zero-padded to NR)")
      .def("__repr__", [](const PackedB& p) {
        return "PackedB(K=" + std::to_string(p.K) + ", N=" + std::to_string(p.N) + ", dtype=" +
               py::str(p.dtype()).cast<std::string>() + ", isa=" + isa_name(p.isa) + ")";
      });
  m.def("gemm_packed_size", &gemm_packed_size, py::arg("K"), py::arg("N"), py::arg("dtype"),
        "Elements the active ISA's gemm_pack_b uses for a (K, N) op(B) of this dtype (N rounded up to whole "
        "register-tile panels).");
  m.def("gemm_pack_b", &gemm_pack_b, py::arg("B"), py::arg("trans_b") = false,
        "Packs op(B) (K, N) of a 2-D float array B ((K, N), or (N, K) with trans_b) once for gemm_packed, in "
        "the active ISA's panel layout; returns a PackedB.");
  m.def("gemm_packed", &gemm_packed, py::arg("A"), py::arg("packed"), py::arg("C") = py::none(),
        py::arg("trans_a") = false, py::arg("alpha") = 1.0, py::arg("beta") = 0.0, py::arg("bias") = py::none(),
        py::arg("relu") = false,
        "C := alpha * op(A) @ B + beta * C for a 2-D A ((M, K), or (K, M) with trans_a) and B packed by "
        "gemm_pack_b under the same ISA, then the fused epilogue C += bias (N,) and C = max(C, 0) if relu; "
        "returns C (M, N).");
}

}  // namespace dlcore::bind
