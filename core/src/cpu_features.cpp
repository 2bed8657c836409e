// CPUID + XGETBV checks for the SIMD levels (see cpu_features.h).
#include "conflux/core/cpu_features.h"

#include <cstdint>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace conflux {
namespace {

IsaLevel detect() {
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return IsaLevel::Baseline;
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28);
  if (!osxsave || !avx) return IsaLevel::Baseline;
  uint32_t xcr0_lo, xcr0_hi;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const uint64_t xcr0 = (static_cast<uint64_t>(xcr0_hi) << 32) | xcr0_lo;
  if ((xcr0 & 0x6) != 0x6) return IsaLevel::Baseline;  // XMM + YMM state
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return IsaLevel::Baseline;
  if (!(b & (1u << 5))) return IsaLevel::Baseline;  // AVX2
  const bool f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
  const bool zmm_state = (xcr0 & 0xE6) == 0xE6;  // + opmask, ZMM0-15 upper halves, ZMM16-31
  return f && dq && bw && vl && zmm_state ? IsaLevel::Avx512 : IsaLevel::Avx2;
#else
  return IsaLevel::Baseline;
#endif
}

}  // namespace

IsaLevel isa_level() {
  static const IsaLevel level = detect();
  return level;
}

const char* isa_name(IsaLevel level) {
  switch (level) {
    case IsaLevel::Baseline: return "baseline";
    case IsaLevel::Avx2: return "avx2";
    case IsaLevel::Avx512: return "avx512";
  }
  return "?";
}

}  // namespace conflux
