// Internal: the 8-lane (ymm) part shared by the AVX2 and AVX-512VL kernels: loading one block
// of each of 8 lanes as the transposed, big-endian message words, and the block loop. Include
// only from a kernel file compiled with AVX2 (or later) flags; see sha256_mb_rounds.h.
#pragma once

#include "sha256_mb_rounds.h"

#include <immintrin.h>

namespace conflux::dataplane::sha256_detail {
namespace {

// Words 8h..8h+7 of lanes 0..7 (one 8x8 transpose): w[8h + t] = word 8h + t of every lane.
inline void load_x8_half(const uint8_t* const* p, int h, __m256i* w) {
  const __m256i bswap = _mm256_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 3, 2, 1, 0, 7, 6,
                                         5, 4, 11, 10, 9, 8, 15, 14, 13, 12);
  __m256i r[8], t[8];
  for (int i = 0; i < 8; ++i)
    r[i] = _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p[i] + 32 * h)), bswap);
  for (int j = 0; j < 4; ++j) {
    t[2 * j] = _mm256_unpacklo_epi32(r[2 * j], r[2 * j + 1]);
    t[2 * j + 1] = _mm256_unpackhi_epi32(r[2 * j], r[2 * j + 1]);
  }
  for (int g = 0; g < 2; ++g) {
    r[4 * g + 0] = _mm256_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    r[4 * g + 1] = _mm256_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    r[4 * g + 2] = _mm256_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    r[4 * g + 3] = _mm256_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int k = 0; k < 4; ++k) {
    w[8 * h + k] = _mm256_permute2x128_si256(r[k], r[4 + k], 0x20);
    w[8 * h + 4 + k] = _mm256_permute2x128_si256(r[k], r[4 + k], 0x31);
  }
}

// The 8-lane block loop (see sha256_mb_kernels.h) over the lane-vector traits V (T = __m256i).
template <class V>
inline void blocks_x8(uint32_t* state, const uint8_t* const* ptrs, const size_t* strides, size_t nblocks) {
  const uint8_t* p[8];
  __m256i s[8];
  for (int i = 0; i < 8; ++i) p[i] = ptrs[i];
  for (int r = 0; r < 8; ++r) s[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(state + 8 * r));
  for (size_t b = 0; b < nblocks; ++b) {
    __m256i w[16];
    load_x8_half(p, 0, w);
    load_x8_half(p, 1, w);
    for (int i = 0; i < 8; ++i) p[i] += strides[i];
    compress<V>(s, w);
  }
  for (int r = 0; r < 8; ++r) _mm256_storeu_si256(reinterpret_cast<__m256i*>(state + 8 * r), s[r]);
}

}  // namespace
}  // namespace conflux::dataplane::sha256_detail
