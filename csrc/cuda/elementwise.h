// Host entry points of the CUDA elementwise family (csrc/cuda/elementwise.cu): strided copy
// with dtype casts, fill, unary ops and their gradients, binary arithmetic, comparisons and
// where. Plain C++ (no CUDA types) so the g++-compiled bindings include it.
//
// Conventions for every function here:
// - Pointers are device addresses of element [0, ..., 0] on the current device; strides are
//   in ELEMENTS (any sign, 0 = broadcast), one per dim of `shape` (at most kMaxDims dims).
// - Outputs of the math functions are C-contiguous in `shape` and OVERWRITTEN; they must not
//   alias an input. Work is queued on current_stream(); nothing waits for it.
// - Zero elements: nothing is launched. Bad arguments (unknown op or dtype code, a dtype the
//   op does not take, mismatched stride lists, > kMaxDims dims) throw std::invalid_argument
//   naming the op; a failed launch throws std::runtime_error naming the kernel.
#pragma once
#include <cstdint>
#include <vector>

#include "core/kernel_args.h"
#include "cuda/dtype.h"

namespace dlcore::cuda {

// Most dims a strided operand may have (the CPU BroadcastIter's bound).
constexpr int kElementwiseMaxDims = 8;

using Dims = std::vector<int64_t>;

// dst[i . dst_strides] = cast<dst_dtype>(src[i . src_strides]) for every index i of shape.
// Casts as NumPy astype: to bool is x != 0, from bool is 0 / 1, float -> int64 truncates
// toward zero (NaN and out-of-range give INT64_MIN, as NumPy on x86). dst must not overlap
// src unless both are the same view.
void strided_copy(void* dst, DType dst_dtype, const Dims& dst_strides, const void* src, DType src_dtype,
                  const Dims& src_strides, const Dims& shape);

// dst[i . dst_strides] = cast<dtype>(value) for every index i of shape.
void fill(void* dst, DType dtype, const Dims& dst_strides, const Dims& shape, double value);

// y (n) = f(x) (n), contiguous; float32 / float64. alpha, beta: clamp min / max, pow exponent.
void unary_forward(UnaryOp op, DType dtype, int64_t n, const void* x, void* y, double alpha, double beta);

// grad_x (n) = grad_y * f'(.), contiguous; f' reads y for exp, tanh, sigmoid, sqrt, nothing
// for neg, x for the rest (the pointer not read may be null).
void unary_backward(UnaryOp op, DType dtype, int64_t n, const void* x, const void* y, const void* grad_y,
                    void* grad_x, double alpha, double beta);

// out (shape) = a (op) b over strided (broadcast) operands. float32 / float64 for every op;
// int64 for add, sub, mul, maximum, minimum (wrapping on overflow, as NumPy).
void binary_forward(BinaryOp op, DType dtype, const Dims& shape, const void* a, const Dims& a_strides,
                    const void* b, const Dims& b_strides, void* out);

// out (shape, bool) = a (cmp) b over strided operands of one dtype (any of the four).
void compare_forward(CompareOp op, DType dtype, const Dims& shape, const void* a, const Dims& a_strides,
                     const void* b, const Dims& b_strides, void* out);

// out (shape) = cond ? a : b over strided operands; cond bool, a and b of `dtype` (any).
void where_forward(DType dtype, const Dims& shape, const void* cond, const Dims& cond_strides, const void* a,
                   const Dims& a_strides, const void* b, const Dims& b_strides, void* out);

}  // namespace dlcore::cuda
