// PLACEHOLDER: to be replaced by the real kernels.
#include <stdexcept>
#include "cpu/kernels.h"
namespace dlcore::cpu::DLCORE_ISA {
template <class T> void unary_forward(UnaryOp, int64_t n, const T* x, T* y, T alpha, T beta) { throw std::logic_error("unary_forward: not implemented"); }
DLCORE_INSTANTIATE(unary_forward, UnaryForwardSig)
template <class T> void unary_backward(UnaryOp, int64_t n, const T* x, const T* y, const T* grad_y, T* grad_x, T alpha, T beta) { throw std::logic_error("unary_backward: not implemented"); }
DLCORE_INSTANTIATE(unary_backward, UnaryBackwardSig)
template <class T> void binary_forward(BinaryOp, const BroadcastIter& it, const T* a, const T* b, T* out) { throw std::logic_error("binary_forward: not implemented"); }
DLCORE_INSTANTIATE(binary_forward, BinaryForwardSig)
template <class T> void compare_forward(CompareOp, const BroadcastIter& it, const T* a, const T* b, bool* out) { throw std::logic_error("compare_forward: not implemented"); }
DLCORE_INSTANTIATE(compare_forward, CompareForwardSig)
template <class T> void where_forward(const BroadcastIter& it, const bool* cond, const T* a, const T* b, T* out) { throw std::logic_error("where_forward: not implemented"); }
DLCORE_INSTANTIATE(where_forward, WhereForwardSig)
}
