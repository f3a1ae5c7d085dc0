// Placeholder until the Winograd kernels land (being written now): refuses at run time.
#include "cpu/conv/winograd.h"

#include <stdexcept>

namespace dlcore::cpu::DLCORE_ISA {

void winograd_forward(const Conv2dShape&, const float*, const float*, const float*, float*) {
  throw std::runtime_error("conv2d: Winograd not built yet");
}
void winograd_backward_input(const Conv2dShape&, const float*, const float*, float*) {
  throw std::runtime_error("conv2d: Winograd not built yet");
}
void winograd_backward_weight(const Conv2dShape&, const float*, const float*, float*) {
  throw std::runtime_error("conv2d: Winograd not built yet");
}
bool winograd_preferred(const Conv2dShape&, ConvDirection) { return false; }

}  // namespace dlcore::cpu::DLCORE_ISA
