// Internal: compile one always-inline kernel body for several ISA levels (AVX-512 F+DQ+BW+VL,
// AVX2, baseline) and dispatch to the widest the CPU supports on first call. Kernels written with
// IEEE basic operations and exact integer arithmetic (and compiled without FMA contraction) give
// the same bits on every level; name##_at(isa) exposes each level for tests. Which level the
// process may use is core's one CPU check (cpu_features.h: CPUID and the OS's register state).
#pragma once

#include "conflux/core/cpu_features.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CONFLUX_KERNEL_MULTIVERSION 1
#define CONFLUX_INLINE inline __attribute__((always_inline))
#define CONFLUX_INLINE_LAMBDA __attribute__((always_inline))
#else
#define CONFLUX_KERNEL_MULTIVERSION 0
#define CONFLUX_INLINE inline
#define CONFLUX_INLINE_LAMBDA
#endif

// One wrapper per ISA level around a body; `pick` returns the widest supported.
#if CONFLUX_KERNEL_MULTIVERSION
#define CONFLUX_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))
#define CONFLUX_VARIANTS(name, body, params, args) CONFLUX_VARIANTS_WITH(name, body, body, params, args)
// As CONFLUX_VARIANTS, with the AVX-512 level given its own body (hand-written intrinsics, declared
// CONFLUX_TARGET_AVX512 CONFLUX_INLINE) that must give the generic body's bits.
#define CONFLUX_VARIANTS_WITH(name, body, body512, params, args)                                 \
  CONFLUX_TARGET_AVX512 void name##_avx512 params {                                             \
    body512 args;                                                                               \
  }                                                                                             \
  __attribute__((target("avx2"))) void name##_avx2 params { body args; }                        \
  void name##_base params { body args; }                                                        \
  using name##_fn = void(*) params;                                                             \
  name##_fn name##_pick() {                                                                     \
    if (::conflux::isa_usable(::conflux::IsaLevel::Avx512)) return name##_avx512;               \
    if (::conflux::isa_usable(::conflux::IsaLevel::Avx2)) return name##_avx2;                   \
    return name##_base;                                                                         \
  }                                                                                             \
  void name params {                                                                            \
    static const name##_fn fn = name##_pick();                                                  \
    fn args;                                                                                    \
  }                                                                                             \
  [[maybe_unused]] name##_fn name##_at(int isa) {                                              \
    if (isa == 2) return ::conflux::isa_usable(::conflux::IsaLevel::Avx512) ? name##_avx512 : nullptr; \
    if (isa == 1) return ::conflux::isa_usable(::conflux::IsaLevel::Avx2) ? name##_avx2 : nullptr; \
    return name##_base;                                                                         \
  }
#else
#define CONFLUX_VARIANTS_WITH(name, body, body512, params, args) CONFLUX_VARIANTS(name, body, params, args)
#define CONFLUX_VARIANTS(name, body, params, args) \
  void name params { body args; }                  \
  using name##_fn = void(*) params;                \
  [[maybe_unused]] name##_fn name##_at(int isa) { return isa == 0 ? name : nullptr; }
#endif
