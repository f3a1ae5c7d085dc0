// PLACEHOLDER: to be replaced by the real kernels.
#include <stdexcept>
#include "cpu/kernels.h"
namespace dlcore::cpu::DLCORE_ISA {
template <class T> void dropout_forward(int64_t n, double p, uint64_t seed, const T* x, T* y, bool* keep) { throw std::logic_error("dropout_forward: not implemented"); }
DLCORE_INSTANTIATE(dropout_forward, DropoutForwardSig)
template <class T> void dropout_backward(int64_t n, T scale, const bool* keep, const T* grad_y, T* grad_x) { throw std::logic_error("dropout_backward: not implemented"); }
DLCORE_INSTANTIATE(dropout_backward, DropoutBackwardSig)
}
