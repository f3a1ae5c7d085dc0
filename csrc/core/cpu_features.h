// CPU feature detection: which ISA levels this CPU and its OS can run (CPUID for the
// instructions, XGETBV for the OS saving the wider registers on context switches).
#pragma once
#include "core/registry.h"

namespace dlcore {

// The highest ISA level this machine supports.
Isa detect_best_isa();
// Whether the machine can run `isa`.
bool isa_supported(Isa isa);
// A short description of the CPU (brand string), for dlcore.info.
std::string cpu_brand();

}  // namespace dlcore
