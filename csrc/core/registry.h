// Kernel registry: one KernelTable per compiled ISA, filled from DLCORE_CPU_KERNELS, and
// the table chosen at import (csrc/core/cpu_features.h). Bindings reach a kernel through
// slot::<name><T>(), e.g. slot::gemm<float>()(args).
#pragma once
#include <string>
#include <type_traits>
#include <vector>

#include "core/kernel_list.h"

namespace dlcore {

enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };
constexpr int kNumIsas = 3;
const char* isa_name(Isa isa);

struct KernelTable {
#define DLCORE_TABLE_FIELD(name, Sig) Sig<float>* name##_f32 = nullptr; Sig<double>* name##_f64 = nullptr;
  DLCORE_CPU_KERNELS(DLCORE_TABLE_FIELD)
#undef DLCORE_TABLE_FIELD
};

// Filled by csrc/cpu/register_isa.cpp, compiled once per ISA.
namespace cpu {
namespace generic { void register_kernels(KernelTable& table); }
namespace avx2 { void register_kernels(KernelTable& table); }
namespace avx512 { void register_kernels(KernelTable& table); }
}  // namespace cpu

// The table of the active ISA.
const KernelTable& active_kernels();
Isa active_isa();
// Switch the active ISA; throws std::invalid_argument if the CPU cannot run it.
void set_active_isa(Isa isa);
// The table of one ISA (for tests that compare ISAs side by side).
const KernelTable& kernels_for(Isa isa);

namespace slot {
#define DLCORE_SLOT_ACCESSOR(name, Sig)                                    \
  template <class T>                                                       \
  inline Sig<T>* name() {                                                  \
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);  \
    if constexpr (std::is_same_v<T, float>) return active_kernels().name##_f32; \
    else return active_kernels().name##_f64;                               \
  }
DLCORE_CPU_KERNELS(DLCORE_SLOT_ACCESSOR)
#undef DLCORE_SLOT_ACCESSOR
}  // namespace slot

// Names of all slots, in list order.
std::vector<std::string> kernel_slot_names();

}  // namespace dlcore
