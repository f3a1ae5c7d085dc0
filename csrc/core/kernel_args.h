// Plain argument structs and op codes shared by the kernel list, the kernels and the
// bindings. No math here.
#pragma once
#include <cstdint>

namespace dlcore {

// C[b] := alpha * op(A[b]) * op(B[b]) + beta * C[b], row-major.
// op(A) is (M, K): A is (M, K) with row stride lda, or (K, M) when trans_a.
// op(B) is (K, N): B is (K, N) with row stride ldb, or (N, K) when trans_b.
// C is (M, N) with row stride ldc. beta == 0 overwrites C (NaNs in C do not leak).
// Batch b reads A + b * stride_a, B + b * stride_b, C + b * stride_c (a stride may be 0).
// Optional fused epilogue, applied once to the final C of each matrix (after alpha and beta):
// C[i, j] += bias[j] when bias is set (N elements), then C = max(C, 0) when relu; so a Linear
// layer (and Linear + ReLU) is one pass over C. Requires stride_c != 0 (matrices of their own).
template <class T>
struct GemmArgs {
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0;
  T alpha = 1, beta = 0;
  const T* A = nullptr; int64_t lda = 0;
  const T* B = nullptr; int64_t ldb = 0;
  T* C = nullptr;       int64_t ldc = 0;
  int64_t batch = 1, stride_a = 0, stride_b = 0, stride_c = 0;
  const T* bias = nullptr;  // (N) or null
  bool relu = false;
};

// Elementwise unary ops. alpha/beta: clamp min/max (use +-inf for "none"); pow exponent.
enum class UnaryOp : int32_t { neg, exp, log, sqrt, abs, relu, tanh, sigmoid, clamp, pow_scalar };

enum class BinaryOp : int32_t { add, sub, mul, div, pow, maximum, minimum };

enum class CompareOp : int32_t { eq, ne, lt, le, gt, ge };

enum class ReduceOp : int32_t { sum, max };

// An N-d iteration space over up to three operands with element strides (0 = broadcast).
// The output is contiguous in `shape`. Bindings collapse adjacent dims where possible,
// so ndim is usually 1 or 2; kMaxDims bounds what a tensor may have.
struct BroadcastIter {
  static constexpr int kMaxDims = 8;
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[3][kMaxDims] = {};  // [operand][dim], in elements
  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= shape[d];
    return n;
  }
};

// conv2d algorithms (csrc/cpu/ref/conv2d.cpp has the rule kAuto follows; csrc/core/conv_algo.h
// says which one may run which shape). A forced algorithm serves tests and benchmarks.
enum class ConvAlgo : int32_t {
  kAuto = 0,      // the measured per-shape rule
  kGemm = 1,      // im2col (skipped for 1x1 stride-1 unpadded) + gemm; col2im for backward_input
  kDirect = 2,    // stride 1: implicit im2col over a padded copy, register tiles of channels x positions
  kWinograd = 3,  // F(2x2, 3x3) transforms + gemm (3x3, stride 1, float32)
};

// conv2d geometry, NCHW. OH = (H + 2*pad_h - dil_h*(KH-1) - 1) / stride_h + 1 (same for OW).
struct Conv2dShape {
  int64_t N, C, H, W;        // input
  int64_t C_out, KH, KW;     // weight (C_out, C / groups, KH, KW)
  int64_t OH, OW;            // output
  int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  int64_t groups;
  ConvAlgo algo = ConvAlgo::kAuto;
  bool relu = false;  // forward only: y = max(conv + bias, 0) in the same pass (NaN stays NaN)
};

// pool2d geometry, NCHW. OH/OW are computed by the caller (floor or ceil mode).
struct Pool2dShape {
  int64_t N, C, H, W;
  int64_t OH, OW;
  int64_t KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  bool count_include_pad;    // avg_pool2d divisor: full window vs. in-bounds elements
};

// max_pool2d's uint8 window index (kh*KW + kw inside the window): the value of an empty window,
// and so the most taps it can name.
constexpr uint8_t kNoWindowTap = 255;

// One recurrent layer and direction over a packed sequence (PyTorch's PackedSequence layout):
// the batch is sorted by descending length; step t holds rows [0, batch_sizes[t]) of it, stored
// contiguously right after the rows of steps 0 .. t-1 (so a row-major (total, F) array holds
// every step, total = sum of batch_sizes). A padded (T, B, F) batch is batch_sizes[t] = B.
// Preconditions: T >= 1, B >= 1, H >= 1, batch_sizes[0] == B, batch_sizes non-increasing, >= 1.
// reverse: steps run t = T-1 .. 0 (the second direction of a bidirectional layer); a row then
// starts from its initial state at its own last step, as in PyTorch.
// The last two fields name work the kernels may skip, results unchanged (the bindings set them):
//   h0_zero: h0 is all zeros, so rows that start from it skip the GEMM h0 W_hh^T (forward);
//   want_grad_h0 false: the caller drops grad_h0, so rows that start from h0 skip the GEMM
//     that makes it (backward), and grad_h0 is left unspecified.
// Without an initial state (nn.LSTM's default) that is the first step's GEMM in each
// direction, 1/T of the recurrence. ("Unchanged" for finite W_hh: a NaN or inf weight times the
// zeros would have made that step's gates NaN; the later steps' still are.)
struct RnnSequenceShape {
  int64_t T = 0, B = 0, H = 0;
  const int64_t* batch_sizes = nullptr;  // (T)
  bool reverse = false;
  bool h0_zero = false;
  bool want_grad_h0 = true;
};

// The Elman RNN's nonlinearity: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh).
enum class RnnActivation : int32_t { tanh, relu };

// One SGD step's hyper-parameters (python/dlcore/optim/sgd.py, torch.optim.SGD). first: the
// momentum buffer does not exist yet and is set to this step's direction.
struct SgdHyper {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false, maximize = false, first = false;
};

// One Adam / AdamW step's hyper-parameters (python/dlcore/optim/adam.py, torch.optim.Adam):
// step_size = lr / (1 - beta1^t), bias_correction2_sqrt = sqrt(1 - beta2^t) for step t.
struct AdamHyper {
  double lr = 0, step_size = 0, bias_correction2_sqrt = 1, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  bool maximize = false, decoupled = false;  // amsgrad: the kernel is given a max_exp_avg_sq
};

}  // namespace dlcore
