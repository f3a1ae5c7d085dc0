// The GEMM micro-kernel table: which register tile the driver (csrc/cpu/gemm/gemm.cpp) uses in
// this ISA copy, one row per (ISA, element type). The contract every micro-kernel meets is in
// csrc/cpu/gemm/README.md; adding one is a new file *_<isa>.cpp plus its row here.
//
// A row names the kernel function and its tile MR x NR; the driver packs A into (kc, MR)
// panels and B into (kc, NR) panels for it and sizes its cache blocks from NR (GemmBlocks).
// The generic (SSE2) copy uses the portable C++ tile below, which GCC vectorises.
#pragma once
#include <cstdint>

#ifndef DLCORE_ISA
#error "csrc/cpu sources must be compiled with -DDLCORE_ISA=<generic|avx2|avx512>"
#endif

namespace dlcore::cpu::DLCORE_ISA {

// The A operand of an intrinsic tile (ukernel_avx512.h, ukernel_avx2.h): rows(), the start of
// each of the tile's ROWS rows and the distance between consecutive depths.
template <class T, int ROWS>
struct ARows {
  const T* row[ROWS];
  int64_t step;
};
// One packed A panel (kc, MR): element (i, p) at a[p * MR + i].
template <class T>
struct PackedA {
  const T* a;
  template <int ROWS, int MR>
  ARows<T, ROWS> rows() const {
    ARows<T, ROWS> r;
    for (int i = 0; i < ROWS; ++i) r.row[i] = a + i;
    r.step = MR;
    return r;
  }
};
// A read in place: element (i, p) at a[i * row_stride + p * depth_stride] (lda and 1 for A as
// is, 1 and lda for A transposed).
template <class T>
struct StridedA {
  const T* a;
  int64_t row_stride, depth_stride;
  template <int ROWS, int MR>
  ARows<T, ROWS> rows() const {
    ARows<T, ROWS> r;
    for (int i = 0; i < ROWS; ++i) r.row[i] = a + i * row_stride;
    r.step = depth_stride;
    return r;
  }
};

// The B operand of an intrinsic tile: one packed panel (kc, NR), 64-byte aligned, element (p, j)
// at b[p * NR + j]; or B as is read in place, element (p, j) at b[p * ldb + j], any alignment
// (a whole tile only: the kernel loads all NR columns of each row).
template <class T>
struct PackedB {
  static constexpr bool kAligned = true;
  const T* b;
  template <int NR>
  int64_t step() const { return NR; }
};
template <class T>
struct StridedB {
  static constexpr bool kAligned = false;
  const T* b;
  int64_t ldb;
  template <int NR>
  int64_t step() const { return ldb; }
};

// C[:m, :n] := alpha * a * b + beta * C[:m, :n]; a (kc, MR) and b (kc, NR) packed, zero-padded.
// Then, before the store: C[i, j] += bias[j] when bias (the tile's first column) is not null,
// then C = C <= 0 ? 0 : C when relu (the GEMM's fused epilogue, on the last depth block only).
template <class T>
using GemmUkernel = void(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t m, int64_t n,
                         T alpha, T beta, const T* bias, bool relu);
// The same tile reading its m rows of A in place instead of from a packed panel (for a GEMM
// whose few column tiles would not repay packing A; gemm.cpp).
template <class T>
using GemmUkernelStridedA = void(int64_t kc, StridedA<T> a, const T* b, T* c, int64_t ldc, int64_t m,
                                 int64_t n, T alpha, T beta, const T* bias, bool relu);
// The same tile reading B in place (B as is, n == NR) instead of from a packed panel (a GEMM with
// few rows of C, where a packed B element would be reused by few row tiles; gemm.cpp).
template <class T>
using GemmUkernelStridedB = void(int64_t kc, const T* a, StridedB<T> b, T* c, int64_t ldc, int64_t m,
                                 int64_t n, T alpha, T beta, const T* bias, bool relu);

// The portable tile: a fixed-size accumulator array that GCC keeps in vector registers.
// MR = 6 rows x NR = two 16-byte vectors (8 floats, 4 doubles): 12 accumulators + 2 B vectors
// + 1 broadcast fit the 16 SSE registers.
template <class T, int MR, int NR>
void gemm_ukernel_portable(int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict c,
                           int64_t ldc, int64_t m, int64_t n, T alpha, T beta, const T* __restrict bias,
                           bool relu) {
  T acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p, a += MR, b += NR) {
    // Without these two hints GCC vectorises the double tile across p with shuffles
    // (measured 6x slower); with them the p-loop body is MR broadcasts and MR * NR / lanes FMAs.
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
#pragma omp simd
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
    }
  }
  for (int64_t i = 0; i < m; ++i) {
    T* __restrict row = c + i * ldc;  // (n)
    if (beta == T(0)) {
      for (int64_t j = 0; j < n; ++j) row[j] = alpha * acc[i][j];
    } else {
      for (int64_t j = 0; j < n; ++j) row[j] = alpha * acc[i][j] + beta * row[j];
    }
    if (bias)
      for (int64_t j = 0; j < n; ++j) row[j] += bias[j];
    if (relu)
      for (int64_t j = 0; j < n; ++j) row[j] = row[j] <= T(0) ? T(0) : row[j];  // NaN stays NaN
  }
}

template <class T>
struct GemmTile;

// The intrinsic micro-kernels, each defined in its own file (csrc/cpu/gemm/<name>.cpp), with
// their in-place-A twins (<name>_strided_a, same file) and, on AVX-512, in-place-B twins
// (<name>_strided_b).
GemmUkernel<float> sgemm_ukernel_6x64_avx512, sgemm_ukernel_6x16_avx2;
GemmUkernel<double> dgemm_ukernel_6x32_avx512, dgemm_ukernel_6x8_avx2;
GemmUkernelStridedA<float> sgemm_ukernel_6x64_avx512_strided_a, sgemm_ukernel_6x16_avx2_strided_a;
GemmUkernelStridedA<double> dgemm_ukernel_6x32_avx512_strided_a, dgemm_ukernel_6x8_avx2_strided_a;
GemmUkernelStridedB<float> sgemm_ukernel_6x64_avx512_strided_b;
GemmUkernelStridedB<double> dgemm_ukernel_6x32_avx512_strided_b;

// Defines the micro-kernel `name` and its twin name##_strided_a as one intrinsic register tile
// (a gemm_ukernel_<isa><T, MR, NV> instantiation, passed as the variadic argument), in a
// <name>.cpp compiled with that ISA's flags.
#define DLCORE_DEFINE_GEMM_UKERNELS(name, T, ...)                                                       \
  void name(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t m, int64_t n, T alpha, T beta, \
            const T* bias, bool relu) {                                                                 \
    __VA_ARGS__(kc, PackedA<T>{a}, PackedB<T>{b}, c, ldc, m, n, alpha, beta, bias, relu);               \
  }                                                                                                     \
  void name##_strided_a(int64_t kc, StridedA<T> a, const T* b, T* c, int64_t ldc, int64_t m, int64_t n,  \
                        T alpha, T beta, const T* bias, bool relu) {                                    \
    __VA_ARGS__(kc, a, PackedB<T>{b}, c, ldc, m, n, alpha, beta, bias, relu);                           \
  }

// Defines name##_strided_b, the tile reading B in place for whole tiles (n == NR), from the
// instantiation passed as the variadic argument (AVX-512 files only, see GemmTile).
#define DLCORE_DEFINE_GEMM_UKERNEL_STRIDED_B(name, T, ...)                                              \
  void name##_strided_b(int64_t kc, const T* a, StridedB<T> b, T* c, int64_t ldc, int64_t m, int64_t n,  \
                        T alpha, T beta, const T* bias, bool relu) {                                    \
    __VA_ARGS__(kc, PackedA<T>{a}, b, c, ldc, m, n, alpha, beta, bias, relu);                           \
  }

// kernel_strided_a and kernel_strided_b are null where the ISA has no such twins: the portable
// tile; and B in place on AVX2, whose 6 x 16 tile reads one 64-byte row of B per depth, ldb
// apart: there it measured slower with wide B (1 thread, GFLOP/s, packed -> in place:
// 64x4096x1024 NN 77-80 -> 60, 64x2048x512 NN 87-89 -> 77-79; 20x2600x650 NN 62-76 -> 83-86).
#define DLCORE_GEMM_UKERNEL(T, mr, nr, packed, strided_a, strided_b)      \
  template <>                                                            \
  struct GemmTile<T> {                                                   \
    static constexpr int MR = mr, NR = nr;                               \
    static constexpr GemmUkernel<T>* kernel = packed;                    \
    static constexpr GemmUkernelStridedA<T>* kernel_strided_a = strided_a; \
    static constexpr GemmUkernelStridedB<T>* kernel_strided_b = strided_b; \
  };

#if defined(__AVX512F__)
DLCORE_GEMM_UKERNEL(float, 6, 64, &sgemm_ukernel_6x64_avx512, &sgemm_ukernel_6x64_avx512_strided_a,
                    &sgemm_ukernel_6x64_avx512_strided_b)
DLCORE_GEMM_UKERNEL(double, 6, 32, &dgemm_ukernel_6x32_avx512, &dgemm_ukernel_6x32_avx512_strided_a,
                    &dgemm_ukernel_6x32_avx512_strided_b)
#elif defined(__AVX2__)
DLCORE_GEMM_UKERNEL(float, 6, 16, &sgemm_ukernel_6x16_avx2, &sgemm_ukernel_6x16_avx2_strided_a, nullptr)
DLCORE_GEMM_UKERNEL(double, 6, 8, &dgemm_ukernel_6x8_avx2, &dgemm_ukernel_6x8_avx2_strided_a, nullptr)
#else
DLCORE_GEMM_UKERNEL(float, 6, 8, (&gemm_ukernel_portable<float, 6, 8>), nullptr, nullptr)
DLCORE_GEMM_UKERNEL(double, 6, 4, (&gemm_ukernel_portable<double, 6, 4>), nullptr, nullptr)
#endif

#undef DLCORE_GEMM_UKERNEL

}  // namespace dlcore::cpu::DLCORE_ISA
