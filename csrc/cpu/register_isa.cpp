// Fills the KernelTable of this translation unit's ISA (DLCORE_ISA) from the kernel list.
#include "core/registry.h"
#include "cpu/kernels.h"

namespace dlcore::cpu::DLCORE_ISA {

void register_kernels(KernelTable& table) {
#define DLCORE_REGISTER(name, Sig) \
  table.name##_f32 = &name<float>; \
  table.name##_f64 = &name<double>;
  DLCORE_CPU_KERNELS(DLCORE_REGISTER)
#undef DLCORE_REGISTER
}

}  // namespace dlcore::cpu::DLCORE_ISA
