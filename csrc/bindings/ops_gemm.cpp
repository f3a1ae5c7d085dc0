// Bindings for the gemm family: _C.gemm(A, B, C=None, trans_a=False, trans_b=False,
// alpha=1.0, beta=0.0, bias=None, relu=False) -> C, with C := alpha * op(A) @ op(B) + beta * C
// and then the fused epilogue C += bias (a C-contiguous (N,) array) and C = max(C, 0).
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
MatrixView matrix_view(const char* arg, const py::array& a) {
  if (a.ndim() != 2 && a.ndim() != 3)
    value_error(kOp, ": ", arg, " must be 2-D (rows, cols) or 3-D (batch, rows, cols), got shape ",
                shape_str(a));
  const int d = static_cast<int>(a.ndim());
  const int64_t item = a.itemsize();
  MatrixView v;
  v.batch = d == 3 ? a.shape(0) : 1;
  v.rows = a.shape(d - 2);
  v.cols = a.shape(d - 1);
  const int64_t s_batch = d == 3 ? a.strides(0) : 0, s_row = a.strides(d - 2), s_col = a.strides(d - 1);
  auto unsupported = [&](const char* what) {
    value_error(kOp, ": ", arg, " has an unsupported memory layout (", what, "; shape ",
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

// [lo, hi) byte range an operand's elements span (the array is non-empty).
struct ByteRange { const char* lo; const char* hi; };
ByteRange byte_range(const py::array& a) {
  const char* base = static_cast<const char*>(a.data());
  const char* lo = base;
  const char* hi = base + a.itemsize();
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    const py::ssize_t span = (a.shape(d) - 1) * a.strides(d);
    (span < 0 ? lo : hi) += span;
  }
  return {lo, hi};
}

bool overlaps(const py::array& a, const py::array& b) {
  if (a.size() == 0 || b.size() == 0) return false;
  const ByteRange ra = byte_range(a), rb = byte_range(b);
  return ra.lo < rb.hi && rb.lo < ra.hi;
}

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

  py::array C;
  if (C_obj.is_none()) {
    if (beta != 0.0) value_error(kOp, ": beta = ", beta, " needs C (got C=None)");
    C = dispatch_float(ft, [&](auto t) { return empty<decltype(t)>(out_shape); });
  } else {
    if (!py::isinstance<py::array>(C_obj))
      type_error(kOp, ": C must be a numpy array or None, got ", py::str(py::type::of(C_obj)).cast<std::string>());
    C = C_obj.cast<py::array>();
    check_same_dtype(kOp, "A", A, "C", C);
    check_shape(kOp, "C", C, out_shape);
    check_contiguous(kOp, "C", C);
    if (!C.writeable()) value_error(kOp, ": C must be writeable");
    if (overlaps(C, A) || overlaps(C, B)) value_error(kOp, ": C must not overlap A or B");
  }
  py::array bias;  // (N,) for the fused epilogue, or empty
  const bool has_bias = !bias_obj.is_none();
  if (has_bias) {
    if (!py::isinstance<py::array>(bias_obj))
      type_error(kOp, ": bias must be a numpy array or None, got ", py::str(py::type::of(bias_obj)).cast<std::string>());
    bias = bias_obj.cast<py::array>();
    check_same_dtype(kOp, "A", A, "bias", bias);
    check_shape(kOp, "bias", bias, Shape{N});
    check_contiguous(kOp, "bias", bias);
  }
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
    if (static_cast<double>(batch) * M * N * std::max<int64_t>(K, 1) >= 32768.0) {
      py::gil_scoped_release release;
      kernel(g);
    } else {
      kernel(g);
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
}

}  // namespace dlcore::bind
