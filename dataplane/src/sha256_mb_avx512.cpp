// Multi-buffer SHA-256 block kernels with AVX-512 (F, BW, VL): 16 lanes in zmm registers, and 8
// lanes in ymm registers with the AVX-512VL forms (ymm work issues on three ports of these
// cores, zmm on two, so the 8-lane kernel is the faster one for up to 8 messages). Rotations
// are vprord, the Ch / Maj / three-way XOR functions one vpternlogd each. Compiled with
// -mavx512f -mavx512bw -mavx512vl -mavx2 (x86-64 only); called after a runtime CPU check.
#if defined(__x86_64__)
// GCC 12's avx512fintrin.h passes _mm512_undefined_epi32() as the unused merge operand of
// several unmasked intrinsics (vprord, shuffles), which -Wmaybe-uninitialized reports at every
// inlined use; the values are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "sha256_mb_kernels.h"
#include "sha256_mb_rounds.h"
#include "sha256_mb_x8.h"

#include <immintrin.h>

namespace conflux::dataplane::sha256_detail {
namespace {

struct Zmm {
  using T = __m512i;
  static T add(T a, T b) { return _mm512_add_epi32(a, b); }
  // vpternlogd truth tables (bit index = 4a + 2b + c): parity 0x96, a ? b : c 0xCA, majority 0xE8.
  static T xor3(T a, T b, T c) { return _mm512_ternarylogic_epi32(a, b, c, 0x96); }
  static T ch(T e, T f, T g) { return _mm512_ternarylogic_epi32(e, f, g, 0xCA); }
  static T maj(T a, T b, T c) { return _mm512_ternarylogic_epi32(a, b, c, 0xE8); }
  template <int n> static T ror(T x) { return _mm512_ror_epi32(x, n); }
  template <int n> static T shr(T x) { return _mm512_srli_epi32(x, n); }
  static T set1(uint32_t k) { return _mm512_set1_epi32(static_cast<int>(k)); }
};

struct YmmVl {
  using T = __m256i;
  static T add(T a, T b) { return _mm256_add_epi32(a, b); }
  static T xor3(T a, T b, T c) { return _mm256_ternarylogic_epi32(a, b, c, 0x96); }
  static T ch(T e, T f, T g) { return _mm256_ternarylogic_epi32(e, f, g, 0xCA); }
  static T maj(T a, T b, T c) { return _mm256_ternarylogic_epi32(a, b, c, 0xE8); }
  template <int n> static T ror(T x) { return _mm256_ror_epi32(x, n); }
  template <int n> static T shr(T x) { return _mm256_srli_epi32(x, n); }
  static T set1(uint32_t k) { return _mm256_set1_epi32(static_cast<int>(k)); }
};

// w[t] = big-endian word t of the current block of lanes 0..15: a 16x16 transpose of 32-bit
// words in four shuffle stages (pairs of words, pairs of pairs, then 128-bit quarters).
inline void load_x16(const uint8_t* const* p, __m512i w[16]) {
  const __m512i bswap = _mm512_broadcast_i32x4(_mm_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12));
  __m512i r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_shuffle_epi8(_mm512_loadu_si512(p[i]), bswap);
  // t[2j] / t[2j+1]: words (4q, 4q+1) / (4q+2, 4q+3) of lanes 2j, 2j+1 in 128-bit quarter q.
  for (int j = 0; j < 8; ++j) {
    t[2 * j] = _mm512_unpacklo_epi32(r[2 * j], r[2 * j + 1]);
    t[2 * j + 1] = _mm512_unpackhi_epi32(r[2 * j], r[2 * j + 1]);
  }
  // r[4g + k]: word 4q + k of lanes 4g..4g+3 in quarter q.
  for (int g = 0; g < 4; ++g) {
    r[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    r[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    r[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    r[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  // Word 4q + k of all lanes: quarter q of r[k], r[4 + k], r[8 + k], r[12 + k].
  for (int k = 0; k < 4; ++k) {
    __m512i a = _mm512_shuffle_i32x4(r[k], r[4 + k], 0x44);       // r[k].q0 q1, r[4+k].q0 q1
    __m512i b = _mm512_shuffle_i32x4(r[k], r[4 + k], 0xEE);       // .q2 q3
    __m512i c = _mm512_shuffle_i32x4(r[8 + k], r[12 + k], 0x44);
    __m512i d = _mm512_shuffle_i32x4(r[8 + k], r[12 + k], 0xEE);
    w[k] = _mm512_shuffle_i32x4(a, c, 0x88);       // quarter 0 of the four
    w[4 + k] = _mm512_shuffle_i32x4(a, c, 0xDD);   // quarter 1
    w[8 + k] = _mm512_shuffle_i32x4(b, d, 0x88);   // quarter 2
    w[12 + k] = _mm512_shuffle_i32x4(b, d, 0xDD);  // quarter 3
  }
}

}  // namespace

void blocks_x16_avx512(uint32_t* state, const uint8_t* const* ptrs, const size_t* strides, size_t nblocks) {
  const uint8_t* p[16];
  __m512i s[8];
  for (int i = 0; i < 16; ++i) p[i] = ptrs[i];
  for (int r = 0; r < 8; ++r) s[r] = _mm512_loadu_si512(state + 16 * r);
  for (size_t b = 0; b < nblocks; ++b) {
    __m512i w[16];
    load_x16(p, w);
    for (int i = 0; i < 16; ++i) p[i] += strides[i];
    compress<Zmm>(s, w);
  }
  for (int r = 0; r < 8; ++r) _mm512_storeu_si512(state + 16 * r, s[r]);
}

void blocks_x8_avx512vl(uint32_t* state, const uint8_t* const* ptrs, const size_t* strides, size_t nblocks) {
  blocks_x8<YmmVl>(state, ptrs, strides, nblocks);
}

}  // namespace conflux::dataplane::sha256_detail
#endif
