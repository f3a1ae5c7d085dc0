// CPUID + XGETBV feature detection.
//   avx2:   CPUID.7.0:EBX bit 5 (AVX2), CPUID.1:ECX bit 12 (FMA), bit 27 (OSXSAVE),
//           and XCR0 bits 1-2 (the OS saves XMM and YMM state).
//   avx512: CPUID.7.0:EBX bits 16 (F), 17 (DQ), 30 (BW), 31 (VL),
//           and XCR0 bits 5-7 (opmask, ZMM0-15 upper halves, ZMM16-31).
#include "core/cpu_features.h"

#include <cpuid.h>

#include <cstring>

namespace dlcore {

namespace {

struct Features {
  bool avx2 = false, avx512 = false;
};

uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

Features detect() {
  Features f;
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool fma = ecx & (1u << 12), osxsave = ecx & (1u << 27), avx = ecx & (1u << 28);
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;
  const bool os_zmm = (xcr0 & 0xE6) == 0xE6;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  f.avx2 = os_ymm && fma && (ebx & (1u << 5));
  const unsigned avx512_bits = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31);
  f.avx512 = f.avx2 && os_zmm && (ebx & avx512_bits) == avx512_bits;
  return f;
}

const Features& features() {
  static const Features f = detect();
  return f;
}

}  // namespace

Isa detect_best_isa() {
  if (features().avx512) return Isa::avx512;
  if (features().avx2) return Isa::avx2;
  return Isa::generic;
}

bool isa_supported(Isa isa) { return static_cast<int>(isa) <= static_cast<int>(detect_best_isa()); }

std::string cpu_brand() {
  unsigned regs[12] = {};
  if (__get_cpuid_max(0x80000000, nullptr) < 0x80000004) return "unknown";
  for (unsigned i = 0; i < 3; ++i)
    __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
  char brand[49] = {};
  std::memcpy(brand, regs, 48);
  std::string s(brand);
  const auto first = s.find_first_not_of(' ');
  return first == std::string::npos ? "unknown" : s.substr(first);
}

}  // namespace dlcore
