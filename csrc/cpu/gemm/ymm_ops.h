// The 256-bit vector operations both intrinsic GEMM tiles use on a ymm of T: the AVX2 tile's
// every vector (ukernel_avx2.h) and the AVX-512 tile's half vector (ukernel_avx512.h), each of
// which adds its own masked loads and stores and ReLU (vmaskmov and blendv on AVX2, k-masks on
// AVX-512). Needs AVX and FMA; included only from those two headers.
#pragma once
#include <immintrin.h>

namespace dlcore::cpu::DLCORE_ISA {

template <class T>
struct YmmOps;

template <>
struct YmmOps<float> {
  using V = __m256;
  static constexpr int kLanes = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_load_ps(p); }
  static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
};

template <>
struct YmmOps<double> {
  using V = __m256d;
  static constexpr int kLanes = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V load(const double* p) { return _mm256_load_pd(p); }
  static V loadu(const double* p) { return _mm256_loadu_pd(p); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
};

}  // namespace dlcore::cpu::DLCORE_ISA
