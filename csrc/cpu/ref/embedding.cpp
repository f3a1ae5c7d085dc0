// PLACEHOLDER: to be replaced by the real kernels.
#include <stdexcept>
#include "cpu/kernels.h"
namespace dlcore::cpu::DLCORE_ISA {
template <class T> void embedding_forward(int64_t num, int64_t D, const T* weight, int64_t n, const int64_t* index, T* out) { throw std::logic_error("embedding_forward: not implemented"); }
DLCORE_INSTANTIATE(embedding_forward, EmbeddingForwardSig)
template <class T> void embedding_backward(int64_t num, int64_t D, int64_t n, const int64_t* index, int64_t padding_idx, const T* grad_out, T* grad_weight) { throw std::logic_error("embedding_backward: not implemented"); }
DLCORE_INSTANTIATE(embedding_backward, EmbeddingBackwardSig)
}
