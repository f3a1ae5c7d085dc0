// Pieces of the GEMM driver (csrc/cpu/gemm/gemm.cpp) for kernels that split one GEMM across
// their own threads, e.g. the recurrences in csrc/cpu/rnn/, whose threads each own a slice of
// the hidden units for a whole sequence. Not kernel slots: called from inside another kernel of
// the same ISA copy.
#pragma once
#include <cstdint>

#include "core/kernel_args.h"
#include "cpu/gemm/ukernels.h"

namespace dlcore::cpu::DLCORE_ISA {

// One GEMM's op(B) (K, N) and C (M, N) cut into column blocks that are separate matrices
// (gemm_column_blocks): block j has `cols` columns; C_j (M, cols) has row stride ldc; op(B)_j
// (K, cols) is row-major (B as is), its K rows given as consecutive pieces, piece i `rows` rows
// of its own matrix B (row stride ldb), or zeros where B is null. An RNN layer's weight gradient
// grad_gates^T [x | h_prev] has x as one block and h_prev as h0 above the outputs y shifted by
// a step (csrc/cpu/rnn/weight_grads.cpp).
template <class T>
struct GemmColumnBlocks {
  static constexpr int kMaxBlocks = 2, kMaxPieces = 2;
  struct Piece {
    int64_t rows = 0;
    const T* B = nullptr;  // (rows, cols) row stride ldb, or null: zeros
    int64_t ldb = 0;
  };
  struct Block {
    int64_t cols = 0;
    int pieces = 0;
    Piece piece[kMaxPieces];
    T* C = nullptr;  // (M, cols) row stride ldc
    int64_t ldc = 0;
  };
  int count = 0;
  Block block[kMaxBlocks];
};

// C_j := op(A) op(B)_j for every column block j of `blocks`, as one GEMM over the blocks side by
// side: op(A) is packed once for all of them (g gives A, lda, trans_a, M and K, the rows of every
// block's pieces; its other fields are ignored). Uses the calling thread's team like gemm. When
// a block other than the last is not a whole number of NR-wide panels, or the shape takes
// another path than the blocked loops, each block runs as its own GEMM(s) instead (op(A) then
// read once per block). Each C_j is overwritten; it overlaps neither A nor any B.
template <class T>
void gemm_column_blocks(const GemmArgs<T>& g, const GemmColumnBlocks<T>& blocks);

// Bp (gemm_packed_size(K, N) elements, N the blocks' columns together) := the blocks' op(B)
// side by side, packed as gemm_pack_b packs one (K, N) matrix; every block but the last must be
// a whole number of GemmTile<T>::NR-wide panels. The blocks' C fields are not used.
template <class T>
void gemm_pack_b_column_blocks(const GemmColumnBlocks<T>& blocks, int64_t K, T* Bp);

// Columns [n0, n1) of gemm_packed(g, Bp) (C[:, n0:n1] := alpha * op(A) * op(B)[:, n0:n1] +
// beta * C[:, n0:n1], then the epilogue), on the calling thread only. n0 is a multiple of
// GemmTile<T>::NR (a packed panel boundary); n1 is one too, or g.N. With c_blocks, C is written
// to their column blocks (their C and ldc; g.C unused; pieces ignored) instead, each block but
// the last a whole number of panels.
template <class T>
void gemm_packed_columns(const GemmArgs<T>& g, const T* Bp, int64_t n0, int64_t n1,
                         const GemmColumnBlocks<T>* c_blocks = nullptr);

}  // namespace dlcore::cpu::DLCORE_ISA
