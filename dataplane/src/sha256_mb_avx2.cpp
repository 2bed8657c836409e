// Multi-buffer SHA-256 block kernel with AVX2: 8 lanes in ymm registers, for CPUs without
// AVX-512. AVX2 has no rotate or ternary-logic instructions, so rotations are two shifts and an
// OR, and Ch / Maj are built from AND / ANDNOT / OR. Compiled with -mavx2 (x86-64 only); called
// after a runtime CPU check.
#if defined(__x86_64__)
#include "sha256_mb_kernels.h"
#include "sha256_mb_x8.h"

namespace conflux::dataplane::sha256_detail {
namespace {

struct Ymm {
  using T = __m256i;
  static T add(T a, T b) { return _mm256_add_epi32(a, b); }
  static T xor3(T a, T b, T c) { return _mm256_xor_si256(_mm256_xor_si256(a, b), c); }
  static T ch(T e, T f, T g) { return _mm256_xor_si256(_mm256_and_si256(e, f), _mm256_andnot_si256(e, g)); }
  static T maj(T a, T b, T c) {
    return _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(c, _mm256_or_si256(a, b)));
  }
  template <int n> static T ror(T x) { return _mm256_or_si256(_mm256_srli_epi32(x, n), _mm256_slli_epi32(x, 32 - n)); }
  template <int n> static T shr(T x) { return _mm256_srli_epi32(x, n); }
  static T set1(uint32_t k) { return _mm256_set1_epi32(static_cast<int>(k)); }
};

}  // namespace

void blocks_x8_avx2(uint32_t* state, const uint8_t* const* ptrs, const size_t* strides, size_t nblocks) {
  blocks_x8<Ymm>(state, ptrs, strides, nblocks);
}

}  // namespace conflux::dataplane::sha256_detail
#endif
