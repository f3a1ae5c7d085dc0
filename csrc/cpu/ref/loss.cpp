// PLACEHOLDER: to be replaced by the real kernels.
#include <stdexcept>
#include "cpu/kernels.h"
namespace dlcore::cpu::DLCORE_ISA {
template <class T> void cross_entropy_forward(int64_t N, int64_t C, const T* logits, const int64_t* target, int64_t ignore_index, T* loss, T* lse) { throw std::logic_error("cross_entropy_forward: not implemented"); }
DLCORE_INSTANTIATE(cross_entropy_forward, CrossEntropyForwardSig)
template <class T> void cross_entropy_backward(int64_t N, int64_t C, const T* logits, const int64_t* target, int64_t ignore_index, const T* lse, const T* grad_loss, T* grad_logits) { throw std::logic_error("cross_entropy_backward: not implemented"); }
DLCORE_INSTANTIATE(cross_entropy_backward, CrossEntropyBackwardSig)
template <class T> void nll_loss_forward(int64_t N, int64_t C, const T* logp, const int64_t* target, int64_t ignore_index, T* loss) { throw std::logic_error("nll_loss_forward: not implemented"); }
DLCORE_INSTANTIATE(nll_loss_forward, NllLossForwardSig)
template <class T> void nll_loss_backward(int64_t N, int64_t C, const int64_t* target, int64_t ignore_index, const T* grad_loss, T* grad_logp) { throw std::logic_error("nll_loss_backward: not implemented"); }
DLCORE_INSTANTIATE(nll_loss_backward, NllLossBackwardSig)
}
