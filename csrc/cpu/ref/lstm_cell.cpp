// PLACEHOLDER: to be replaced by the real kernels.
#include <stdexcept>
#include "cpu/kernels.h"
namespace dlcore::cpu::DLCORE_ISA {
template <class T> void lstm_cell_forward(int64_t B, int64_t H, const T* gates_pre, const T* c_prev, T* h, T* c, T* gates) { throw std::logic_error("lstm_cell_forward: not implemented"); }
DLCORE_INSTANTIATE(lstm_cell_forward, LstmCellForwardSig)
template <class T> void lstm_cell_backward(int64_t B, int64_t H, const T* gates, const T* c_prev, const T* c, const T* grad_h, const T* grad_c, T* grad_gates_pre, T* grad_c_prev) { throw std::logic_error("lstm_cell_backward: not implemented"); }
DLCORE_INSTANTIATE(lstm_cell_backward, LstmCellBackwardSig)
}
