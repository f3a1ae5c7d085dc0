// PLACEHOLDER: to be replaced by the real kernels.
#include <stdexcept>
#include "cpu/kernels.h"
namespace dlcore::cpu::DLCORE_ISA {
template <class T> void gemm(const GemmArgs<T>&) { throw std::logic_error("gemm: not implemented"); }
DLCORE_INSTANTIATE(gemm, GemmSig)
}
