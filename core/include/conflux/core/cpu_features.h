// Which SIMD level this process may use: the one CPU-feature check behind every runtime dispatch
// (the dataplane's multiversioned kernels, multi-buffer SHA-256).
//
// A level is usable only when the CPU has the instructions (CPUID) *and* the operating system
// saves their register state across context switches (OSXSAVE, then XGETBV's XCR0: SSE+AVX state
// for AVX2; additionally the opmask and both ZMM halves for AVX-512). A kernel or hypervisor that
// disables AVX-512 state leaves the CPUID bits set, so checking CPUID alone would fault.
//   Avx2   = AVX2 (+ AVX state)
//   Avx512 = AVX-512 F + DQ + BW + VL (+ AVX-512 state)
// Thread safety: computed once (thread-safe static), then read-only.
#pragma once

namespace conflux {

enum class IsaLevel : int { Baseline = 0, Avx2 = 1, Avx512 = 2 };

// The widest usable level (cached).
IsaLevel isa_level();
inline bool isa_usable(IsaLevel level) { return static_cast<int>(level) <= static_cast<int>(isa_level()); }
const char* isa_name(IsaLevel level);  // "baseline", "avx2", "avx512"

}  // namespace conflux
