// PLACEHOLDER: to be replaced by the real kernels.
#include <stdexcept>
#include "cpu/kernels.h"
namespace dlcore::cpu::DLCORE_ISA {
template <class T> void conv2d_forward(const Conv2dShape&, const T* x, const T* w, const T* bias, T* y) { throw std::logic_error("conv2d_forward: not implemented"); }
DLCORE_INSTANTIATE(conv2d_forward, Conv2dForwardSig)
template <class T> void conv2d_backward_input(const Conv2dShape&, const T* w, const T* grad_y, T* grad_x) { throw std::logic_error("conv2d_backward_input: not implemented"); }
DLCORE_INSTANTIATE(conv2d_backward_input, Conv2dBackwardInputSig)
template <class T> void conv2d_backward_weight(const Conv2dShape&, const T* x, const T* grad_y, T* grad_w, T* grad_bias) { throw std::logic_error("conv2d_backward_weight: not implemented"); }
DLCORE_INSTANTIATE(conv2d_backward_weight, Conv2dBackwardWeightSig)
}
