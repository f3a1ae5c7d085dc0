// PLACEHOLDER: to be replaced by the real kernels.
#include <stdexcept>
#include "cpu/kernels.h"
namespace dlcore::cpu::DLCORE_ISA {
template <class T> void reduce_forward(ReduceOp, int64_t outer, int64_t R, int64_t inner, const T* x, T* out, int64_t* index) { throw std::logic_error("reduce_forward: not implemented"); }
DLCORE_INSTANTIATE(reduce_forward, ReduceForwardSig)
template <class T> void reduce_max_backward(int64_t outer, int64_t R, int64_t inner, const int64_t* index, const T* grad_out, T* grad_x) { throw std::logic_error("reduce_max_backward: not implemented"); }
DLCORE_INSTANTIATE(reduce_max_backward, ReduceMaxBackwardSig)
}
