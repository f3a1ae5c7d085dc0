// PLACEHOLDER: to be replaced by the real kernels.
#include <stdexcept>
#include "cpu/kernels.h"
namespace dlcore::cpu::DLCORE_ISA {
template <class T> void softmax_forward(bool log, int64_t outer, int64_t R, int64_t inner, const T* x, T* y) { throw std::logic_error("softmax_forward: not implemented"); }
DLCORE_INSTANTIATE(softmax_forward, SoftmaxForwardSig)
template <class T> void softmax_backward(bool log, int64_t outer, int64_t R, int64_t inner, const T* y, const T* grad_y, T* grad_x) { throw std::logic_error("softmax_backward: not implemented"); }
DLCORE_INSTANTIATE(softmax_backward, SoftmaxBackwardSig)
}
