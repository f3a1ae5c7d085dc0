// gemm: the portable GEMM driver (cache blocking, packing, threads) with a plain-C++
// register-tile micro-kernel that GCC vectorises with this copy's ISA flags.
//
// Math:   C[b] := alpha * op(A[b]) * op(B[b]) + beta * C[b],  b < batch,
//         op(A) (M, K), op(B) (K, N), C (M, N), all row-major with row strides lda/ldb/ldc.
// Layout: see GemmArgs (core/kernel_args.h). A is (M, K), or (K, M) when trans_a; B is (K, N),
//         or (N, K) when trans_b. Batch b reads A + b*stride_a, B + b*stride_b, C + b*stride_c;
//         a stride may be 0 (broadcast; stride_c == 0 accumulates in order b = 0, 1, ...).
// Preconditions (checked in csrc/bindings/ops_gemm.cpp): M, N, K, batch >= 0; every row and
//         element addressed through the strides lies inside the caller's arrays; C overlaps
//         neither A nor B.
// Overwrite: beta == 0 overwrites C without reading it (NaNs in C do not leak); K == 0 gives
//         C := beta * C. No element outside the M x N (x K) index space is ever read or written:
//         packing zero-pads edge panels instead of reading past the matrices.
// Algorithm (BLIS / GotoBLAS): loop jc over NC columns, pc over KC depth, pack op(B)[pc, jc]
//         into NR-wide panels; loop ic over MC rows, pack op(A)[ic, pc] into MR-tall panels;
//         then every MR x NR tile of C is one micro-kernel call over the packed panels. Packing
//         makes all four transpose combinations look the same to the micro-kernel.
//         Small or thin problems (under 16^3 multiply-adds, M == 1, N < NR / 4) skip packing
//         and run as row updates (axpy) or dot products.
// Threads: one OpenMP region splits C into a grid of nearly square blocks (one per thread,
//         aligned to the tile), each run by its own blocked loops and pack buffers; batched GEMMs
//         with many matrices split the batch instead. Problems under 96^3 stay single-threaded,
//         and so does a call made from inside another parallel region.
// Tested: tests/kernels/test_gemm_kernels.py (NumPy float64 oracle, K-scaled tolerance,
//         integer-exact case, sizes 1..20 and around the tile, all transposes, alpha/beta,
//         broadcast batches, strided views). Timed against NumPy (OpenBLAS) with the script in
//         that file's docstring.
// Bound: one Zen 4 core peaks near 32 float / 16 double flops per cycle (two 256-bit FMA
//         pipes), ~118 / 59 GFLOP/s at 3.7 GHz. Measured on one core (AVX-512 copy), this path
//         runs at 85-100 % of OpenBLAS: 100-107 GFLOP/s float, 44-52 double on 256^3..1024^3.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "cpu/kernels.h"

namespace dlcore::cpu::DLCORE_ISA {

namespace {

// Width of one vector register of this ISA copy, bytes.
#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif

// Register tile MR x NR. NR is two vector registers wide, so a row of the tile is two
// vector FMAs against one broadcast of A; MR = 6 rows give 12 accumulators, which with the
// two B vectors and the broadcast fit the 16 registers of SSE2/AVX2 and hide the 4-cycle
// FMA latency (12 independent chains >= 2 pipes x 4 cycles). float: 6x8 SSE2, 6x16 AVX2,
// 6x32 AVX-512; double: half as wide.
template <class T>
struct Tile {
  static constexpr int MR = 6;
  static constexpr int NR = 2 * kVectorBytes / static_cast<int>(sizeof(T));
};

// Cache blocks, in elements (sizes for Zen 4: L1d 32 KiB, L2 1 MiB per core, L3 32 MiB):
//  KC: depth of one packed panel pair. The B micro-panel (KC x NR) is reused by every A
//      micro-panel of the block and must stay in L1 beside the streaming A panel:
//      KC * NR * sizeof(T) = 24 KiB, i.e. KC = 192 (AVX-512), 384 (AVX2, and SSE2 capped at
//      384). Measured: 16 KiB (KC = 128) was 5-10 % slower on AVX-512, 32 KiB mixed. The
//      depth is then split into equal blocks of at most KC.
//  MC: rows of the packed A block (MC x KC), reused across all NC columns, kept in L2:
//      MC = 192 gives 144 KiB (float AVX-512) to 576 KiB (double AVX2), under the 1 MiB L2
//      with room for the B panels passing through; 96 measured 2-5 % slower.
//  NC: columns of the packed B block (KC x NC), reused across all MC blocks, kept in L3:
//      KC * NC * sizeof(T) = 4 MiB per thread, so two threads use a quarter of L3.
template <class T>
struct Blocks {
  static constexpr int64_t KC = std::min<int64_t>(384, 24576 / (Tile<T>::NR * sizeof(T)));
  static constexpr int64_t MC = 192;
  static constexpr int64_t NC = (4 << 20) / (KC * sizeof(T)) / Tile<T>::NR * Tile<T>::NR;
  static_assert(MC % Tile<T>::MR == 0 && NC % Tile<T>::NR == 0, "blocks hold whole tiles");
};

// Below this many multiply-adds per matrix, packing does not pay: unpacked loops instead
// (near 16^3 both paths take ~1.5 us on Zen 4, mostly call overhead; above it packing wins,
// e.g. 31^3 runs 3x faster packed).
constexpr double kSmallWork = 16.0 * 16.0 * 16.0;
// Below this many multiply-adds in the whole call, threads cost more than they save
// (an OpenMP fork/join is a few microseconds; 96^3 is ~20 us of one core's work).
constexpr double kParallelWork = 96.0 * 96.0 * 96.0;

// How one matrix is computed.
enum class Path {
  scale,    // K == 0: C := beta * C
  axpy,     // unpacked, row of C += a * row of B (B not transposed, small or M == 1)
  dots,     // unpacked, dot products over K (B transposed and small, or N too thin for a tile)
  blocked,  // packed panels and the micro-kernel
};

// A 64-byte aligned scratch buffer per thread, grown on demand and reused across calls
// (OpenMP keeps its worker threads, so steady-state calls allocate nothing).
template <class T>
T* scratch(int which, int64_t count) {
  struct Buffer {
    T* data = nullptr;
    int64_t size = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffers[2];
  Buffer& buf = buffers[which];
  if (buf.size < count) {
    std::free(buf.data);
    const size_t bytes = (static_cast<size_t>(count) * sizeof(T) + 63) / 64 * 64;
    buf.data = static_cast<T*>(std::aligned_alloc(64, bytes));
    buf.size = buf.data ? count : 0;
  }
  return buf.data;
}

// C (m, n) := beta * C, where beta == 0 writes zeros without reading C.
template <class T>
void scale_c(int64_t m, int64_t n, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    T* __restrict c = C + i * ldc;  // (n)
    if (beta == T(0)) {
      for (int64_t j = 0; j < n; ++j) c[j] = T(0);
    } else if (beta != T(1)) {
      for (int64_t j = 0; j < n; ++j) c[j] *= beta;
    }
  }
}

// Unpacked rows [i0, i1) of C for small problems, in axpy form: C is scaled once, then row i
// gets alpha * op(A)[i, p] * op(B)[p, :] for each p, a contiguous vector update when B is
// not transposed. Correct for every layout; also the fallback when no panel memory is left.
template <class T>
void gemm_axpy(const GemmArgs<T>& g, const T* A, const T* B, T* C, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) {
    T* __restrict c = C + i * g.ldc;  // (N)
    scale_c<T>(1, g.N, g.beta, c, g.ldc);
    for (int64_t p = 0; p < g.K; ++p) {
      const T a = g.alpha * (g.trans_a ? A[p * g.lda + i] : A[i * g.lda + p]);
      if (!g.trans_b) {
        const T* __restrict b = B + p * g.ldb;  // (N)
        for (int64_t j = 0; j < g.N; ++j) c[j] += a * b[j];
      } else {
        for (int64_t j = 0; j < g.N; ++j) c[j] += a * B[j * g.ldb + p];
      }
    }
  }
}

// Unpacked rows [i0, i1) of C as dot products of contiguous length-K rows of op(A) and
// op(B)^T: C[i, j] := alpha * <op(A)[i, :], op(B)[:, j]> + beta * C[i, j]. A transposed A
// row or an untransposed B is first copied into a contiguous scratch row / (N, K) block.
// `omp simd reduction` lets GCC vectorise the sum (it may reassociate it, which the
// K-scaled tolerance allows).
template <class T>
void gemm_dots(const GemmArgs<T>& g, const T* A, const T* B, T* C, int64_t i0, int64_t i1) {
  const T* bt = B;  // op(B)^T (N, K), row stride ldbt
  int64_t ldbt = g.ldb;
  if (!g.trans_b) {
    T* buf = scratch<T>(1, g.N * g.K);  // (N, K)
    if (!buf) return gemm_axpy(g, A, B, C, i0, i1);
    for (int64_t p = 0; p < g.K; ++p)
      for (int64_t j = 0; j < g.N; ++j) buf[j * g.K + p] = B[p * g.ldb + j];
    bt = buf;
    ldbt = g.K;
  }
  T* a_row = g.trans_a ? scratch<T>(0, g.K) : nullptr;  // (K)
  if (g.trans_a && !a_row) return gemm_axpy(g, A, B, C, i0, i1);
  for (int64_t i = i0; i < i1; ++i) {
    const T* __restrict a = A + i * g.lda;  // (K)
    if (g.trans_a) {
      for (int64_t p = 0; p < g.K; ++p) a_row[p] = A[p * g.lda + i];
      a = a_row;
    }
    T* __restrict c = C + i * g.ldc;  // (N)
    for (int64_t j = 0; j < g.N; ++j) {
      const T* __restrict b = bt + j * ldbt;  // (K)
      T acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t p = 0; p < g.K; ++p) acc += a[p] * b[p];
      c[j] = g.beta == T(0) ? g.alpha * acc : g.alpha * acc + g.beta * c[j];
    }
  }
}

// Packs op(A)[i0 : i0+mc, p0 : p0+kc] into MR-row panels: Ap (ceil(mc/MR), kc, MR), rows past
// mc zero-filled, so the micro-kernel always runs a full tile and never reads past A.
template <class T>
void pack_a(const GemmArgs<T>& g, const T* A, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
            T* __restrict Ap) {
  constexpr int MR = Tile<T>::MR;
  for (int64_t ir = 0; ir < mc; ir += MR, Ap += kc * MR) {
    const int64_t m = std::min<int64_t>(MR, mc - ir);
    if (!g.trans_a && m == MR) {
      const T* __restrict a = A + (i0 + ir) * g.lda + p0;  // (MR, kc), row stride lda
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < MR; ++i) Ap[p * MR + i] = a[i * g.lda + p];
    } else if (!g.trans_a) {
      for (int64_t i = 0; i < m; ++i) {
        const T* __restrict a = A + (i0 + ir + i) * g.lda + p0;  // (kc)
        for (int64_t p = 0; p < kc; ++p) Ap[p * MR + i] = a[p];
      }
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        const T* __restrict a = A + (p0 + p) * g.lda + i0 + ir;  // (m)
        for (int64_t i = 0; i < m; ++i) Ap[p * MR + i] = a[i];
      }
    }
    for (int64_t i = m; i < MR; ++i)
      for (int64_t p = 0; p < kc; ++p) Ap[p * MR + i] = T(0);
  }
}

// Packs op(B)[p0 : p0+kc, j0 : j0+nc] into NR-column panels: Bp (ceil(nc/NR), kc, NR),
// columns past nc zero-filled.
template <class T>
void pack_b(const GemmArgs<T>& g, const T* B, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
            T* __restrict Bp) {
  constexpr int NR = Tile<T>::NR;
  for (int64_t jr = 0; jr < nc; jr += NR, Bp += kc * NR) {
    const int64_t n = std::min<int64_t>(NR, nc - jr);
    if (!g.trans_b) {
      for (int64_t p = 0; p < kc; ++p) {
        const T* __restrict b = B + (p0 + p) * g.ldb + j0 + jr;  // (n)
        T* __restrict dst = Bp + p * NR;                          // (NR)
        if (n == NR) {
          for (int j = 0; j < NR; ++j) dst[j] = b[j];
        } else {
          for (int64_t j = 0; j < n; ++j) dst[j] = b[j];
          for (int64_t j = n; j < NR; ++j) dst[j] = T(0);
        }
      }
    } else {
      for (int64_t j = 0; j < n; ++j) {
        const T* __restrict b = B + (j0 + jr + j) * g.ldb + p0;  // (kc)
        for (int64_t p = 0; p < kc; ++p) Bp[p * NR + j] = b[p];
      }
      for (int64_t j = n; j < NR; ++j)
        for (int64_t p = 0; p < kc; ++p) Bp[p * NR + j] = T(0);
    }
  }
}

// The micro-kernel. Assumptions: a is one packed A panel (kc, MR), b one packed B panel
// (kc, NR), both zero-padded to the full tile; c points at the (m, n) corner of C to update,
// m <= MR, n <= NR. The accumulator is a fixed-size local array, so at -O3 the p-loop body
// becomes MR broadcasts and MR * NR / lanes vector FMAs on registers.
// C[:m, :n] := alpha * acc + beta * C (beta == 0: C is not read).
template <class T>
void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict c,
                  int64_t ldc, int64_t m, int64_t n, T alpha, T beta) {
  constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR;
  T acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p, a += MR, b += NR) {
    // Without these two hints GCC vectorises the double tiles across p with shuffles
    // (measured 9 vs 58 GFLOP/s on one Zen 4 core); with them every ISA and type runs at
    // 85-100 % of the core's FMA peak on L1-resident panels.
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
#pragma omp simd
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
    }
  }
  if (m == MR && n == NR) {
    for (int i = 0; i < MR; ++i) {
      T* __restrict row = c + i * ldc;  // (NR)
      if (beta == T(0)) {
        for (int j = 0; j < NR; ++j) row[j] = alpha * acc[i][j];
      } else {
        for (int j = 0; j < NR; ++j) row[j] = alpha * acc[i][j] + beta * row[j];
      }
    }
  } else {
    for (int64_t i = 0; i < m; ++i) {
      T* __restrict row = c + i * ldc;  // (n)
      if (beta == T(0)) {
        for (int64_t j = 0; j < n; ++j) row[j] = alpha * acc[i][j];
      } else {
        for (int64_t j = 0; j < n; ++j) row[j] = alpha * acc[i][j] + beta * row[j];
      }
    }
  }
}

// The blocked loops over C[m0 : m1, n0 : n1] of one matrix, on the calling thread.
template <class T>
void gemm_blocked(const GemmArgs<T>& g, const T* A, const T* B, T* C, int64_t m0, int64_t m1,
                  int64_t n0, int64_t n1) {
  constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR;
  constexpr int64_t KC = Blocks<T>::KC, MC = Blocks<T>::MC, NC = Blocks<T>::NC;
  if (m0 >= m1 || n0 >= n1) return;
  // Equal depth blocks (K = 576 runs as 3 x 192, not 256 + 256 + 64): no thin last pass.
  const int64_t kc_max = (g.K + (g.K + KC - 1) / KC - 1) / ((g.K + KC - 1) / KC);
  const int64_t mc_max = std::min(MC, (m1 - m0 + MR - 1) / MR * MR);
  const int64_t nc_max = std::min(NC, (n1 - n0 + NR - 1) / NR * NR);
  T* Ap = scratch<T>(0, mc_max * kc_max);  // (MC / MR, KC, MR)
  T* Bp = scratch<T>(1, nc_max * kc_max);  // (NC / NR, KC, NR)
  if (!Ap || !Bp) {  // no memory for the panels: still correct, just slower
    GemmArgs<T> sub = g;
    sub.N = n1 - n0;
    gemm_axpy(sub, A, g.trans_b ? B + n0 * g.ldb : B + n0, C + n0, m0, m1);
    return;
  }
  for (int64_t jc = n0; jc < n1; jc += NC) {
    const int64_t nc = std::min(NC, n1 - jc);
    for (int64_t pc = 0; pc < g.K; pc += kc_max) {
      const int64_t kc = std::min(kc_max, g.K - pc);
      const T beta = pc == 0 ? g.beta : T(1);  // later depth blocks accumulate
      pack_b(g, B, pc, kc, jc, nc, Bp);
      for (int64_t ic = m0; ic < m1; ic += MC) {
        const int64_t mc = std::min(MC, m1 - ic);
        pack_a(g, A, ic, mc, pc, kc, Ap);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          for (int64_t ir = 0; ir < mc; ir += MR) {
            micro_kernel<T>(kc, Ap + ir * kc, Bp + jr * kc, C + (ic + ir) * g.ldc + jc + jr, g.ldc,
                            std::min<int64_t>(MR, mc - ir), std::min<int64_t>(NR, nc - jr),
                            g.alpha, beta);
          }
        }
      }
    }
  }
}

template <class T>
Path choose_path(const GemmArgs<T>& g) {
  if (g.K == 0) return Path::scale;
  // A tile NR wide wastes more than 3/4 of its work on N < NR / 4 columns; dot products win.
  if (g.N < Tile<T>::NR / 4) return Path::dots;
  if (g.M == 1 || static_cast<double>(g.M) * g.N * g.K < kSmallWork)
    return g.trans_b ? Path::dots : Path::axpy;
  return Path::blocked;
}

// Part `tid` of `nt` of one matrix: rows split evenly for the unpacked paths; for the blocked
// path the tiles are split as a tm x tn grid (tm * tn = nt) that keeps blocks closest to
// square (least packing per flop).
template <class T>
void gemm_part(const GemmArgs<T>& g, Path path, const T* A, const T* B, T* C, int tid, int nt) {
  constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR;
  if (path != Path::blocked) {
    const int64_t i0 = g.M * tid / nt, i1 = g.M * (tid + 1) / nt;
    if (path == Path::scale) scale_c(i1 - i0, g.N, g.beta, C + i0 * g.ldc, g.ldc);
    if (path == Path::axpy) gemm_axpy(g, A, B, C, i0, i1);
    if (path == Path::dots) gemm_dots(g, A, B, C, i0, i1);
    return;
  }
  const int64_t m_tiles = (g.M + MR - 1) / MR, n_tiles = (g.N + NR - 1) / NR;
  int tm = 1;
  double best = 1e300;
  for (int d = 1; d <= nt; ++d) {
    if (nt % d) continue;
    const double rows = static_cast<double>((m_tiles + d - 1) / d) * MR;
    const double cols = static_cast<double>((n_tiles + nt / d - 1) / (nt / d)) * NR;
    if (rows + cols < best) best = rows + cols, tm = d;
  }
  const int tn = nt / tm, ti = tid / tn, tj = tid % tn;
  const int64_t m0 = std::min(g.M, m_tiles * ti / tm * MR), m1 = std::min(g.M, m_tiles * (ti + 1) / tm * MR);
  const int64_t n0 = std::min(g.N, n_tiles * tj / tn * NR), n1 = std::min(g.N, n_tiles * (tj + 1) / tn * NR);
  gemm_blocked(g, A, B, C, m0, m1, n0, n1);
}

}  // namespace

template <class T>
void gemm(const GemmArgs<T>& g) {
  if (g.M <= 0 || g.N <= 0 || g.batch <= 0) return;
  const Path path = choose_path(g);
  const double work = static_cast<double>(g.M) * g.N * std::max<int64_t>(g.K, 1);
  const int max_threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  auto matrix = [&](int64_t b, int tid, int nt) {
    gemm_part(g, path, g.A + b * g.stride_a,  // (M, K) or (K, M)
              g.B + b * g.stride_b,           // (K, N) or (N, K)
              g.C + b * g.stride_c,           // (M, N)
              tid, nt);
  };
  if (max_threads == 1 || work * g.batch < kParallelWork) {
    for (int64_t b = 0; b < g.batch; ++b) matrix(b, 0, 1);
    return;
  }
  // Whole matrices per thread when they are small or numerous enough to balance; a shared C
  // (stride_c == 0) must be accumulated in batch order, so it is split inside each matrix.
  const bool split_batch = g.batch > 1 && g.stride_c != 0 &&
                           (work < kParallelWork || g.batch >= 4 * max_threads || g.batch % max_threads == 0);
  if (split_batch) {
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < g.batch; ++b) matrix(b, 0, 1);
    return;
  }
  for (int64_t b = 0; b < g.batch; ++b) {
#pragma omp parallel
    matrix(b, omp_get_thread_num(), omp_get_num_threads());
  }
}
DLCORE_INSTANTIATE(gemm, GemmSig)

}  // namespace dlcore::cpu::DLCORE_ISA
