// Elementwise CUDA kernels: strided copy with dtype casts, fill, unary ops and their
// gradients, binary arithmetic, comparisons and where, with NumPy broadcasting.
//
// Math (the CPU reference's, csrc/cpu/ref/elementwise.cpp, PyTorch semantics):
//   unary    neg, exp, log, sqrt, abs, relu (v <= 0 ? 0 : v, NaN stays NaN), tanh, sigmoid
//            (e = exp(-|x|): 1 / (1 + e) for x >= 0, e / (1 + e) below: never overflows),
//            clamp (alpha = min, beta = max, +-inf = no bound, NaN stays NaN), pow_scalar
//            (x^alpha; beta unused).
//   backward grad_x = grad_y * f'(.): exp g*y, tanh g*(1 - y^2), sigmoid g*y*(1 - y),
//            sqrt g / (2y) from y; log g/x, abs sign(x)*g (0 at 0), relu (x > 0 ? g : 0),
//            clamp (g on the closed [min, max], else 0), pow_scalar g*alpha*x^(alpha-1) (0
//            when alpha == 0) from x; neg -g.
//   binary   add, sub, mul, div, pow, maximum / minimum (a NaN operand wins); int64 add, sub,
//            mul wrap modulo 2^64 like NumPy.
//   compare  eq, ne, lt, le, gt, ge (IEEE: NaN compares false except ne). where: c ? a : b.
//   casts    to bool x != 0; from bool 0 / 1; float -> int64 truncates toward zero, NaN and
//            out-of-range give INT64_MIN (NumPy on x86); others as C++ static_cast (round
//            to nearest).
//   float32 uses CUDA's expf / logf / tanhf / powf (<= 2 ulp, no fast-math), so results may
//   differ from the CPU's polynomials in the last bits; each kernel is bitwise
//   deterministic run to run (one thread per element, no atomics).
//
// Layout: unary ops read and write contiguous (n) buffers. Strided ops walk an N-d space
// (Space): the host drops size-1 dims and merges adjacent dims that are contiguous in every
// operand (stride[d] == stride[d+1] * shape[d+1]), so most calls reach the kernel as 1-D or
// 2-D; each thread turns its linear index into per-operand offsets (int64 div/mod per dim,
// none for 1-D). Math outputs are contiguous in the broadcast shape, so their offset is the
// linear index. A contiguous same-shape binary op and every unary op take a 16-byte
// vectorised path (4 floats / 2 doubles per load) when all pointers are 16-byte aligned,
// plus a scalar tail; a fully contiguous same-dtype copy is one cudaMemcpyAsync.
//
// Preconditions (checked by the bindings / python/dlcore/cuda/kernels/elementwise.py):
// device pointers valid for every element the strides address; outputs never alias inputs
// (a copy's dst may equal its src only as the same view). All index math is int64.
//
// Launches: 256 threads a block (8 warps: full occupancy for these register counts on
// sm_80 / sm_90) in grid-stride loops of at most 2^20 blocks, on current_stream().
//
// Tested by tests/cuda/test_elementwise.py (every op code, f32/f64/int64/bool, broadcasts,
// transposed / sliced / negative-stride views, sizes 1, 7, 1000003, every cast pair):
//   DLCORE_DEV_BUILD=<build> PYTHONPATH=python python3 -m pytest tests/cuda/test_elementwise.py
// Bound: memory traffic, (1 to 3 reads + 1 write) * itemsize per element (~3 TB/s on H100).
#include "cuda/elementwise.h"

#include <array>
#include <climits>
#include <cstring>
#include <string>
#include <type_traits>

#include "cuda/common.cuh"

namespace dlcore::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxDims = kElementwiseMaxDims;

// ---- the strided iteration space ----------------------------------------------------------

// An N-d space over NOps strided operands after the host's dim collapse. Dims are stored
// innermost first: shape[0] is the fastest-varying dim.
template <int NOps>
struct Space {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t stride[NOps][kMaxDims] = {};  // [operand][dim], in elements
};

__device__ __forceinline__ int64_t first_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// off[k] = element offset of linear index i (row-major over s.shape) in operand k. The loop
// is unrolled over kMaxDims so every access to s is a compile-time index into the kernel
// parameters (no local-memory copy).
template <int NOps>
__device__ __forceinline__ void unravel(const Space<NOps>& s, int64_t i, int64_t (&off)[NOps]) {
#pragma unroll
  for (int k = 0; k < NOps; ++k) off[k] = 0;
#pragma unroll
  for (int d = 0; d < kMaxDims; ++d) {
    if (d == s.ndim) break;
    int64_t c = i;  // coordinate in dim d; the outermost dim takes what is left of i
    if (d + 1 < s.ndim) {
      const int64_t q = i / s.shape[d];
      c = i - q * s.shape[d];
      i = q;
    }
#pragma unroll
    for (int k = 0; k < NOps; ++k) off[k] += c * s.stride[k][d];
  }
}

// The space of `shape` over the operands' stride lists, size-1 dims dropped and contiguous
// neighbours merged; *numel gets the element count. `what` names the op in errors.
template <int NOps>
Space<NOps> make_space(const std::string& what, const Dims& shape, const std::array<const Dims*, NOps>& strides,
                       const std::array<const char*, NOps>& names, int64_t* numel) {
  const int ndim = static_cast<int>(shape.size());
  if (ndim > kMaxDims)
    throw std::invalid_argument(what + ": shape has " + std::to_string(ndim) + " dims, at most " +
                                std::to_string(kMaxDims) + " are supported");
  for (int k = 0; k < NOps; ++k)
    if (static_cast<int>(strides[k]->size()) != ndim)
      throw std::invalid_argument(what + ": " + names[k] + " has " + std::to_string(strides[k]->size()) +
                                  " strides for a shape of " + std::to_string(ndim) + " dims");
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] < 0)
      throw std::invalid_argument(what + ": negative size " + std::to_string(shape[d]) + " in dim " +
                                  std::to_string(d));
    if (__builtin_mul_overflow(n, shape[d], &n))
      throw std::invalid_argument(what + ": the shape has more than 2^63 elements");
  }
  *numel = n;

  Space<NOps> s;
  int nd = 0;
  for (int d = ndim - 1; d >= 0; --d) {  // innermost first
    const int64_t size = shape[d];
    if (size == 1) continue;  // its stride is never used
    if (nd > 0) {
      bool merge = true;
      for (int k = 0; k < NOps; ++k) merge = merge && (*strides[k])[d] == s.stride[k][nd - 1] * s.shape[nd - 1];
      if (merge) {
        s.shape[nd - 1] *= size;
        continue;
      }
    }
    s.shape[nd] = size;
    for (int k = 0; k < NOps; ++k) s.stride[k][nd] = (*strides[k])[d];
    ++nd;
  }
  s.ndim = nd;
  return s;
}

// Whether a space is one contiguous run in every operand (a 0-D space is one element).
template <int NOps>
bool is_contiguous(const Space<NOps>& s) {
  if (s.ndim == 0) return true;
  if (s.ndim > 1) return false;
  for (int k = 0; k < NOps; ++k)
    if (s.stride[k][0] != 1) return false;
  return true;
}

void check_pointer(const std::string& what, const char* arg, const void* p) {
  if (p == nullptr) throw std::invalid_argument(what + ": " + arg + " is a null pointer");
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// ---- casts (shared by copy and fill; host and device give the same value) ------------------

template <class To, class From>
__host__ __device__ __forceinline__ To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (std::is_same_v<To, int64_t> && std::is_floating_point_v<From>) {
    // Valid range [-2^63, 2^63); NaN fails both tests.
    constexpr From kTwo63 = From(9223372036854775808.0);
    return (v >= -kTwo63 && v < kTwo63) ? static_cast<int64_t>(v) : INT64_MIN;
  } else {
    return static_cast<To>(v);
  }
}

// ---- device math, one overload per float type -------------------------------------------

__device__ __forceinline__ float m_exp(float v) { return expf(v); }
__device__ __forceinline__ double m_exp(double v) { return exp(v); }
__device__ __forceinline__ float m_log(float v) { return logf(v); }
__device__ __forceinline__ double m_log(double v) { return log(v); }
__device__ __forceinline__ float m_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double m_sqrt(double v) { return sqrt(v); }
__device__ __forceinline__ float m_abs(float v) { return fabsf(v); }
__device__ __forceinline__ double m_abs(double v) { return fabs(v); }
__device__ __forceinline__ float m_tanh(float v) { return tanhf(v); }
__device__ __forceinline__ double m_tanh(double v) { return tanh(v); }
__device__ __forceinline__ float m_pow(float u, float v) { return powf(u, v); }
__device__ __forceinline__ double m_pow(double u, double v) { return pow(u, v); }

// ---- op functors --------------------------------------------------------------------------
// Unary forward: T -> T.
template <class T> struct NegFn { __device__ T operator()(T v) const { return -v; } };
template <class T> struct ExpFn { __device__ T operator()(T v) const { return m_exp(v); } };
template <class T> struct LogFn { __device__ T operator()(T v) const { return m_log(v); } };
template <class T> struct SqrtFn { __device__ T operator()(T v) const { return m_sqrt(v); } };
template <class T> struct AbsFn { __device__ T operator()(T v) const { return m_abs(v); } };
template <class T> struct ReluFn { __device__ T operator()(T v) const { return v <= T(0) ? T(0) : v; } };
template <class T> struct TanhFn { __device__ T operator()(T v) const { return m_tanh(v); } };
template <class T> struct SigmoidFn {
  __device__ T operator()(T v) const {
    const T e = m_exp(-m_abs(v));  // in [0, 1]
    return (v >= T(0) ? T(1) : e) / (T(1) + e);
  }
};
template <class T> struct ClampFn {
  T lo, hi;
  __device__ T operator()(T v) const { return v < lo ? lo : (v > hi ? hi : v); }
};
template <class T> struct PowScalarFn {
  T p;
  __device__ T operator()(T v) const { return m_pow(v, p); }
};

// Unary backward: (v, g) -> grad_x, v being x or y (whichever the derivative reads).
template <class T> struct NegGrad { __device__ T operator()(T, T g) const { return -g; } };
template <class T> struct ExpGrad { __device__ T operator()(T y, T g) const { return g * y; } };
template <class T> struct LogGrad { __device__ T operator()(T x, T g) const { return g / x; } };
template <class T> struct SqrtGrad { __device__ T operator()(T y, T g) const { return g / (T(2) * y); } };
template <class T> struct AbsGrad {
  __device__ T operator()(T x, T g) const { return x > T(0) ? g : (x < T(0) ? -g : T(0)); }
};
template <class T> struct ReluGrad { __device__ T operator()(T x, T g) const { return x > T(0) ? g : T(0); } };
template <class T> struct TanhGrad { __device__ T operator()(T y, T g) const { return g * (T(1) - y * y); } };
template <class T> struct SigmoidGrad { __device__ T operator()(T y, T g) const { return g * y * (T(1) - y); } };
template <class T> struct ClampGrad {
  T lo, hi;
  __device__ T operator()(T x, T g) const { return (x >= lo && x <= hi) ? g : T(0); }
};
template <class T> struct PowScalarGrad {
  T p;
  __device__ T operator()(T x, T g) const { return g * p * m_pow(x, p - T(1)); }
};
template <class T> struct ZeroGrad { __device__ T operator()(T, T) const { return T(0); } };

// Binary: (T, T) -> T. Integer add / sub / mul go through uint64 so overflow wraps (defined).
template <class T> struct AddFn {
  __device__ T operator()(T u, T v) const {
    if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<uint64_t>(u) + static_cast<uint64_t>(v));
    else return u + v;
  }
};
template <class T> struct SubFn {
  __device__ T operator()(T u, T v) const {
    if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<uint64_t>(u) - static_cast<uint64_t>(v));
    else return u - v;
  }
};
template <class T> struct MulFn {
  __device__ T operator()(T u, T v) const {
    if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<uint64_t>(u) * static_cast<uint64_t>(v));
    else return u * v;
  }
};
template <class T> struct DivFn { __device__ T operator()(T u, T v) const { return u / v; } };
template <class T> struct PowFn { __device__ T operator()(T u, T v) const { return m_pow(u, v); } };
// `u != u` is the NaN test: a NaN in either operand is the result.
template <class T> struct MaximumFn { __device__ T operator()(T u, T v) const { return (u != u || u > v) ? u : v; } };
template <class T> struct MinimumFn { __device__ T operator()(T u, T v) const { return (u != u || u < v) ? u : v; } };

// Compare: (T, T) -> bool.
template <class T> struct EqFn { __device__ bool operator()(T u, T v) const { return u == v; } };
template <class T> struct NeFn { __device__ bool operator()(T u, T v) const { return u != v; } };
template <class T> struct LtFn { __device__ bool operator()(T u, T v) const { return u < v; } };
template <class T> struct LeFn { __device__ bool operator()(T u, T v) const { return u <= v; } };
template <class T> struct GtFn { __device__ bool operator()(T u, T v) const { return u > v; } };
template <class T> struct GeFn { __device__ bool operator()(T u, T v) const { return u >= v; } };

// ---- kernels ------------------------------------------------------------------------------

// 16 bytes of T: one 128-bit load or store.
template <class T>
struct alignas(16) Pack {
  static constexpr int kWidth = 16 / sizeof(T);
  T v[kWidth];
};

// y[i] = f(x[i]), x and y contiguous (n). Vec: x and y are 16-byte aligned; whole packs
// first, then the n % width tail element by element.
template <bool Vec, class T, class F>
__global__ void map1_kernel(int64_t n, const T* __restrict__ x, T* __restrict__ y, F f) {
  int64_t done = 0;
  if constexpr (Vec) {
    constexpr int W = Pack<T>::kWidth;
    const int64_t packs = n / W;
    const Pack<T>* xp = reinterpret_cast<const Pack<T>*>(x);  // (packs)
    Pack<T>* yp = reinterpret_cast<Pack<T>*>(y);              // (packs)
    for (int64_t p = first_index(); p < packs; p += grid_stride()) {
      const Pack<T> in = xp[p];
      Pack<T> out;
#pragma unroll
      for (int j = 0; j < W; ++j) out.v[j] = f(in.v[j]);
      yp[p] = out;
    }
    done = packs * W;
  }
  for (int64_t i = done + first_index(); i < n; i += grid_stride()) y[i] = f(x[i]);
}

// out[i] = f(a[i], b[i]), all contiguous (n); a and b may be the same buffer. Vec as map1.
template <bool Vec, class T, class F>
__global__ void map2_kernel(int64_t n, const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out,
                            F f) {
  int64_t done = 0;
  if constexpr (Vec) {
    constexpr int W = Pack<T>::kWidth;
    const int64_t packs = n / W;
    const Pack<T>* ap = reinterpret_cast<const Pack<T>*>(a);  // (packs)
    const Pack<T>* bp = reinterpret_cast<const Pack<T>*>(b);  // (packs)
    Pack<T>* op = reinterpret_cast<Pack<T>*>(out);            // (packs)
    for (int64_t p = first_index(); p < packs; p += grid_stride()) {
      const Pack<T> u = ap[p];
      const Pack<T> v = bp[p];
      Pack<T> r;
#pragma unroll
      for (int j = 0; j < W; ++j) r.v[j] = f(u.v[j], v.v[j]);
      op[p] = r;
    }
    done = packs * W;
  }
  for (int64_t i = done + first_index(); i < n; i += grid_stride()) out[i] = f(a[i], b[i]);
}

// out[i] = f(a[off_a(i)], b[off_b(i)]); out contiguous in the space's shape (n), R = T or bool.
template <class T, class R, class F>
__global__ void binary_strided_kernel(int64_t n, const Space<2> s, const T* __restrict__ a,
                                      const T* __restrict__ b, R* __restrict__ out, F f) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    int64_t off[2];
    unravel(s, i, off);
    out[i] = f(a[off[0]], b[off[1]]);
  }
}

// out[i] = cond[off_c(i)] ? a[off_a(i)] : b[off_b(i)]; out contiguous (n).
template <class T>
__global__ void where_kernel(int64_t n, const Space<3> s, const bool* __restrict__ cond, const T* __restrict__ a,
                             const T* __restrict__ b, T* __restrict__ out) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    int64_t off[3];
    unravel(s, i, off);
    out[i] = cond[off[0]] ? a[off[1]] : b[off[2]];
  }
}

// dst[off_dst(i)] = convert<D>(src[off_src(i)]); operand 0 of the space is dst, 1 is src.
template <class D, class S>
__global__ void strided_copy_kernel(int64_t n, const Space<2> s, D* __restrict__ dst, const S* __restrict__ src) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    int64_t off[2];
    unravel(s, i, off);
    dst[off[0]] = convert<D>(src[off[1]]);
  }
}

// dst[off(i)] = value.
template <class T>
__global__ void fill_strided_kernel(int64_t n, const Space<1> s, T* __restrict__ dst, T value) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    int64_t off[1];
    unravel(s, i, off);
    dst[off[0]] = value;
  }
}

// ---- launchers ----------------------------------------------------------------------------

template <class T, class F>
void launch_map1(const char* kernel, int64_t n, const T* x, T* y, F f) {
  if (aligned16(x) && aligned16(y)) {
    const int64_t packs = (n + Pack<T>::kWidth - 1) / Pack<T>::kWidth;
    map1_kernel<true><<<grid_for(packs, kThreads), kThreads, 0, current_stream()>>>(n, x, y, f);
  } else {
    map1_kernel<false><<<grid_for(n, kThreads), kThreads, 0, current_stream()>>>(n, x, y, f);
  }
  check_launch(kernel);
}

template <class T, class F>
void launch_map2(const char* kernel, int64_t n, const T* a, const T* b, T* out, F f) {
  if (aligned16(a) && aligned16(b) && aligned16(out)) {
    const int64_t packs = (n + Pack<T>::kWidth - 1) / Pack<T>::kWidth;
    map2_kernel<true><<<grid_for(packs, kThreads), kThreads, 0, current_stream()>>>(n, a, b, out, f);
  } else {
    map2_kernel<false><<<grid_for(n, kThreads), kThreads, 0, current_stream()>>>(n, a, b, out, f);
  }
  check_launch(kernel);
}

// Contiguous same-shape operands take map2 (vectorised when aligned); the rest walk the space.
template <class T, class R, class F>
void launch_binary(const char* kernel, int64_t n, const Space<2>& s, const T* a, const T* b, R* out, F f) {
  if constexpr (std::is_same_v<T, R>) {
    if (is_contiguous(s)) return launch_map2(kernel, n, a, b, out, f);
  }
  binary_strided_kernel<<<grid_for(n, kThreads), kThreads, 0, current_stream()>>>(n, s, a, b, out, f);
  check_launch(kernel);
}

// f(T{}) for the C++ type of t (bool for b8).
template <class F>
void dispatch_any(DType t, const std::string& what, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::i64: return f(int64_t{});
    case DType::b8: return f(bool{});
  }
  throw std::invalid_argument(what + ": unknown dtype code " + std::to_string(static_cast<int>(t)));
}

template <class F>
void dispatch_float(DType t, const std::string& what, F&& f) {
  if (t == DType::f32) return f(float{});
  if (t == DType::f64) return f(double{});
  throw std::invalid_argument(what + ": dtype must be float32 or float64, got " + dtype_name(t));
}

const char* unary_name(UnaryOp op) {
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
  throw std::invalid_argument("unary op: unknown op code " + std::to_string(static_cast<int>(op)));
}

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
    case BinaryOp::pow: return "pow";
    case BinaryOp::maximum: return "maximum";
    case BinaryOp::minimum: return "minimum";
  }
  throw std::invalid_argument("binary_forward: unknown op code " + std::to_string(static_cast<int>(op)));
}

const char* compare_name(CompareOp op) {
  switch (op) {
    case CompareOp::eq: return "eq";
    case CompareOp::ne: return "ne";
    case CompareOp::lt: return "lt";
    case CompareOp::le: return "le";
    case CompareOp::gt: return "gt";
    case CompareOp::ge: return "ge";
  }
  throw std::invalid_argument("compare_forward: unknown op code " + std::to_string(static_cast<int>(op)));
}

// Which saved tensor the gradient reads (as the CPU binding).
bool backward_needs_y(UnaryOp op) {
  return op == UnaryOp::exp || op == UnaryOp::tanh || op == UnaryOp::sigmoid || op == UnaryOp::sqrt;
}

template <class T>
void unary_forward_typed(UnaryOp op, int64_t n, const T* x, T* y, T alpha, T beta) {
  switch (op) {
    case UnaryOp::neg: return launch_map1("unary_forward_cuda(neg)", n, x, y, NegFn<T>{});
    case UnaryOp::exp: return launch_map1("unary_forward_cuda(exp)", n, x, y, ExpFn<T>{});
    case UnaryOp::log: return launch_map1("unary_forward_cuda(log)", n, x, y, LogFn<T>{});
    case UnaryOp::sqrt: return launch_map1("unary_forward_cuda(sqrt)", n, x, y, SqrtFn<T>{});
    case UnaryOp::abs: return launch_map1("unary_forward_cuda(abs)", n, x, y, AbsFn<T>{});
    case UnaryOp::relu: return launch_map1("unary_forward_cuda(relu)", n, x, y, ReluFn<T>{});
    case UnaryOp::tanh: return launch_map1("unary_forward_cuda(tanh)", n, x, y, TanhFn<T>{});
    case UnaryOp::sigmoid: return launch_map1("unary_forward_cuda(sigmoid)", n, x, y, SigmoidFn<T>{});
    case UnaryOp::clamp: return launch_map1("unary_forward_cuda(clamp)", n, x, y, ClampFn<T>{alpha, beta});
    case UnaryOp::pow_scalar: return launch_map1("unary_forward_cuda(pow_scalar)", n, x, y, PowScalarFn<T>{alpha});
  }
}

// v is y or x (whichever the op's derivative reads; grad_y for neg).
template <class T>
void unary_backward_typed(UnaryOp op, int64_t n, const T* v, const T* gy, T* gx, T alpha, T beta) {
  switch (op) {
    case UnaryOp::neg: return launch_map2("unary_backward_cuda(neg)", n, v, gy, gx, NegGrad<T>{});
    case UnaryOp::exp: return launch_map2("unary_backward_cuda(exp)", n, v, gy, gx, ExpGrad<T>{});
    case UnaryOp::log: return launch_map2("unary_backward_cuda(log)", n, v, gy, gx, LogGrad<T>{});
    case UnaryOp::sqrt: return launch_map2("unary_backward_cuda(sqrt)", n, v, gy, gx, SqrtGrad<T>{});
    case UnaryOp::abs: return launch_map2("unary_backward_cuda(abs)", n, v, gy, gx, AbsGrad<T>{});
    case UnaryOp::relu: return launch_map2("unary_backward_cuda(relu)", n, v, gy, gx, ReluGrad<T>{});
    case UnaryOp::tanh: return launch_map2("unary_backward_cuda(tanh)", n, v, gy, gx, TanhGrad<T>{});
    case UnaryOp::sigmoid: return launch_map2("unary_backward_cuda(sigmoid)", n, v, gy, gx, SigmoidGrad<T>{});
    case UnaryOp::clamp:
      return launch_map2("unary_backward_cuda(clamp)", n, v, gy, gx, ClampGrad<T>{alpha, beta});
    case UnaryOp::pow_scalar:
      if (alpha == T(0)) return launch_map2("unary_backward_cuda(pow_scalar)", n, v, gy, gx, ZeroGrad<T>{});
      return launch_map2("unary_backward_cuda(pow_scalar)", n, v, gy, gx, PowScalarGrad<T>{alpha});
  }
}

template <class T>
void binary_typed(BinaryOp op, int64_t n, const Space<2>& s, const T* a, const T* b, T* out) {
  switch (op) {
    case BinaryOp::add: return launch_binary("binary_forward_cuda(add)", n, s, a, b, out, AddFn<T>{});
    case BinaryOp::sub: return launch_binary("binary_forward_cuda(sub)", n, s, a, b, out, SubFn<T>{});
    case BinaryOp::mul: return launch_binary("binary_forward_cuda(mul)", n, s, a, b, out, MulFn<T>{});
    case BinaryOp::maximum: return launch_binary("binary_forward_cuda(maximum)", n, s, a, b, out, MaximumFn<T>{});
    case BinaryOp::minimum: return launch_binary("binary_forward_cuda(minimum)", n, s, a, b, out, MinimumFn<T>{});
    case BinaryOp::div:
    case BinaryOp::pow:
      if constexpr (std::is_floating_point_v<T>) {
        if (op == BinaryOp::div) return launch_binary("binary_forward_cuda(div)", n, s, a, b, out, DivFn<T>{});
        return launch_binary("binary_forward_cuda(pow)", n, s, a, b, out, PowFn<T>{});
      }
      break;  // integer div / pow are refused by binary_forward before dispatch
  }
}

template <class T>
void compare_typed(CompareOp op, int64_t n, const Space<2>& s, const T* a, const T* b, bool* out) {
  switch (op) {
    case CompareOp::eq: return launch_binary("compare_forward_cuda(eq)", n, s, a, b, out, EqFn<T>{});
    case CompareOp::ne: return launch_binary("compare_forward_cuda(ne)", n, s, a, b, out, NeFn<T>{});
    case CompareOp::lt: return launch_binary("compare_forward_cuda(lt)", n, s, a, b, out, LtFn<T>{});
    case CompareOp::le: return launch_binary("compare_forward_cuda(le)", n, s, a, b, out, LeFn<T>{});
    case CompareOp::gt: return launch_binary("compare_forward_cuda(gt)", n, s, a, b, out, GtFn<T>{});
    case CompareOp::ge: return launch_binary("compare_forward_cuda(ge)", n, s, a, b, out, GeFn<T>{});
  }
}

}  // namespace

// ---- host entry points ----------------------------------------------------------------------

void strided_copy(void* dst, DType dst_dtype, const Dims& dst_strides, const void* src, DType src_dtype,
                  const Dims& src_strides, const Dims& shape) {
  const std::string what = "strided_copy";
  int64_t n = 0;
  const Space<2> s = make_space<2>(what, shape, {&dst_strides, &src_strides}, {"dst", "src"}, &n);
  dtype_size(dst_dtype);  // throws on an unknown code
  dtype_size(src_dtype);
  if (n == 0) return;
  check_pointer(what, "dst", dst);
  check_pointer(what, "src", src);
  if (dst_dtype == src_dtype && is_contiguous(s)) {
    if (dst == src) return;  // the same view: nothing to move
    check(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * dtype_size(dst_dtype), cudaMemcpyDeviceToDevice,
                          current_stream()),
          "strided_copy(cudaMemcpyAsync)");
    return;
  }
  dispatch_any(dst_dtype, what, [&](auto dst_tag) {
    using D = decltype(dst_tag);
    dispatch_any(src_dtype, what, [&](auto src_tag) {
      using S = decltype(src_tag);
      strided_copy_kernel<D, S><<<grid_for(n, kThreads), kThreads, 0, current_stream()>>>(
          n, s, static_cast<D*>(dst), static_cast<const S*>(src));
      check_launch("strided_copy_kernel");
    });
  });
}

void fill(void* dst, DType dtype, const Dims& dst_strides, const Dims& shape, double value) {
  const std::string what = "fill";
  int64_t n = 0;
  const Space<1> s = make_space<1>(what, shape, {&dst_strides}, {"dst"}, &n);
  dtype_size(dtype);
  if (n == 0) return;
  check_pointer(what, "dst", dst);
  dispatch_any(dtype, what, [&](auto tag) {
    using T = decltype(tag);
    const T v = convert<T>(value);
    const T zero{};
    if (is_contiguous(s) && std::memcmp(&v, &zero, sizeof(T)) == 0) {  // all-zero bits: a memset
      check(cudaMemsetAsync(dst, 0, static_cast<size_t>(n) * sizeof(T), current_stream()), "fill(cudaMemsetAsync)");
      return;
    }
    fill_strided_kernel<T><<<grid_for(n, kThreads), kThreads, 0, current_stream()>>>(n, s, static_cast<T*>(dst), v);
    check_launch("fill_strided_kernel");
  });
}

void unary_forward(UnaryOp op, DType dtype, int64_t n, const void* x, void* y, double alpha, double beta) {
  const std::string what = std::string("unary_forward(") + unary_name(op) + ")";
  if (n < 0) throw std::invalid_argument(what + ": negative element count " + std::to_string(n));
  dispatch_float(dtype, what, [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    check_pointer(what, "x", x);
    check_pointer(what, "y", y);
    unary_forward_typed<T>(op, n, static_cast<const T*>(x), static_cast<T*>(y), static_cast<T>(alpha),
                           static_cast<T>(beta));
  });
}

void unary_backward(UnaryOp op, DType dtype, int64_t n, const void* x, const void* y, const void* grad_y,
                    void* grad_x, double alpha, double beta) {
  const std::string what = std::string("unary_backward(") + unary_name(op) + ")";
  if (n < 0) throw std::invalid_argument(what + ": negative element count " + std::to_string(n));
  dispatch_float(dtype, what, [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    check_pointer(what, "grad_y", grad_y);
    check_pointer(what, "grad_x", grad_x);
    const void* v = grad_y;  // neg reads neither x nor y
    if (backward_needs_y(op)) {
      check_pointer(what, "y", y);
      v = y;
    } else if (op != UnaryOp::neg) {
      check_pointer(what, "x", x);
      v = x;
    }
    unary_backward_typed<T>(op, n, static_cast<const T*>(v), static_cast<const T*>(grad_y), static_cast<T*>(grad_x),
                            static_cast<T>(alpha), static_cast<T>(beta));
  });
}

void binary_forward(BinaryOp op, DType dtype, const Dims& shape, const void* a, const Dims& a_strides, const void* b,
                    const Dims& b_strides, void* out) {
  const std::string what = std::string("binary_forward(") + binary_name(op) + ")";
  const bool float_only = op == BinaryOp::div || op == BinaryOp::pow;
  if (!(dtype == DType::f32 || dtype == DType::f64 || (dtype == DType::i64 && !float_only)))
    throw std::invalid_argument(what + ": dtype must be float32" + (float_only ? " or float64" : ", float64 or int64") +
                                ", got " + dtype_name(dtype));
  int64_t n = 0;
  const Space<2> s = make_space<2>(what, shape, {&a_strides, &b_strides}, {"a", "b"}, &n);
  if (n == 0) return;
  check_pointer(what, "a", a);
  check_pointer(what, "b", b);
  check_pointer(what, "out", out);
  dispatch_any(dtype, what, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, bool>)
      binary_typed<T>(op, n, s, static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(out));
  });
}

void compare_forward(CompareOp op, DType dtype, const Dims& shape, const void* a, const Dims& a_strides,
                     const void* b, const Dims& b_strides, void* out) {
  const std::string what = std::string("compare_forward(") + compare_name(op) + ")";
  int64_t n = 0;
  const Space<2> s = make_space<2>(what, shape, {&a_strides, &b_strides}, {"a", "b"}, &n);
  dtype_size(dtype);
  if (n == 0) return;
  check_pointer(what, "a", a);
  check_pointer(what, "b", b);
  check_pointer(what, "out", out);
  dispatch_any(dtype, what, [&](auto tag) {
    using T = decltype(tag);
    compare_typed<T>(op, n, s, static_cast<const T*>(a), static_cast<const T*>(b), static_cast<bool*>(out));
  });
}

void where_forward(DType dtype, const Dims& shape, const void* cond, const Dims& cond_strides, const void* a,
                   const Dims& a_strides, const void* b, const Dims& b_strides, void* out) {
  const std::string what = "where_forward";
  int64_t n = 0;
  const Space<3> s = make_space<3>(what, shape, {&cond_strides, &a_strides, &b_strides}, {"cond", "a", "b"}, &n);
  dtype_size(dtype);
  if (n == 0) return;
  check_pointer(what, "cond", cond);
  check_pointer(what, "a", a);
  check_pointer(what, "b", b);
  check_pointer(what, "out", out);
  dispatch_any(dtype, what, [&](auto tag) {
    using T = decltype(tag);
    where_kernel<T><<<grid_for(n, kThreads), kThreads, 0, current_stream()>>>(
        n, s, static_cast<const bool*>(cond), static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(out));
    check_launch("where_kernel");
  });
}

}  // namespace dlcore::cuda
