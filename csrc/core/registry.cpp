// The per-ISA kernel tables and the active one. Chosen once at import: the best ISA the
// CPU supports, lowered by DLCORE_CPU_ISA=generic|avx2|avx512 (never raised above what the
// CPU can run).
#include "core/registry.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "core/cpu_features.h"

namespace dlcore {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::generic: return "generic";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "unknown";
}

namespace {

struct Tables {
  KernelTable table[kNumIsas];
  Isa active = Isa::generic;
  Tables() {
    cpu::generic::register_kernels(table[0]);
    cpu::avx2::register_kernels(table[1]);
    cpu::avx512::register_kernels(table[2]);
    active = detect_best_isa();
    if (const char* env = std::getenv("DLCORE_CPU_ISA"); env != nullptr && *env != '\0') {
      std::string want(env);
      for (int i = 0; i < kNumIsas; ++i) {
        Isa isa = static_cast<Isa>(i);
        if (want == isa_name(isa) && static_cast<int>(isa) < static_cast<int>(active)) active = isa;
      }
    }
  }
};

Tables& tables() {
  static Tables t;
  return t;
}

}  // namespace

const KernelTable& active_kernels() { return tables().table[static_cast<int>(tables().active)]; }

Isa active_isa() { return tables().active; }

void set_active_isa(Isa isa) {
  if (!isa_supported(isa))
    throw std::invalid_argument(std::string("set_cpu_isa: this CPU cannot run ISA '") +
                                isa_name(isa) + "'");
  tables().active = isa;
}

const KernelTable& kernels_for(Isa isa) { return tables().table[static_cast<int>(isa)]; }

std::vector<std::string> kernel_slot_names() {
  return {
#define DLCORE_SLOT_NAME(name, Sig) #name,
      DLCORE_CPU_KERNELS(DLCORE_SLOT_NAME)
#undef DLCORE_SLOT_NAME
  };
}

}  // namespace dlcore
