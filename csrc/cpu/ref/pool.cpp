// PLACEHOLDER: to be replaced by the real kernels.
#include <stdexcept>
#include "cpu/kernels.h"
namespace dlcore::cpu::DLCORE_ISA {
template <class T> void max_pool2d_forward(const Pool2dShape&, const T* x, T* y, int64_t* index) { throw std::logic_error("max_pool2d_forward: not implemented"); }
DLCORE_INSTANTIATE(max_pool2d_forward, MaxPool2dForwardSig)
template <class T> void max_pool2d_backward(const Pool2dShape&, const int64_t* index, const T* grad_y, T* grad_x) { throw std::logic_error("max_pool2d_backward: not implemented"); }
DLCORE_INSTANTIATE(max_pool2d_backward, MaxPool2dBackwardSig)
template <class T> void avg_pool2d_forward(const Pool2dShape&, const T* x, T* y) { throw std::logic_error("avg_pool2d_forward: not implemented"); }
DLCORE_INSTANTIATE(avg_pool2d_forward, AvgPool2dForwardSig)
template <class T> void avg_pool2d_backward(const Pool2dShape&, const T* grad_y, T* grad_x) { throw std::logic_error("avg_pool2d_backward: not implemented"); }
DLCORE_INSTANTIATE(avg_pool2d_backward, AvgPool2dBackwardSig)
}
