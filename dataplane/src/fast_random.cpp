// Fast random sources (SplitMix64 row streams, ChaCha20 keystream) and the vectorised Box-Muller
// and masking kernels (see fast_random.h). Built with -ffp-contract=off (CMakeLists.txt) so the
// AVX-512, AVX2 and baseline variants round identically: results never depend on the CPU.
#include "fast_random.h"

#include "conflux/core/error.h"
#include "multiversion.h"

#include <sodium.h>
#include <xxhash.h>

#if CONFLUX_KERNEL_MULTIVERSION
#include <immintrin.h>
// GCC 12's AVX-512 headers build vectors from _mm512_undefined_*() and then warn about them.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace conflux::dataplane {

StreamKey stream_key(uint64_t seed, std::string_view purpose) {
  std::vector<uint8_t> buf(8 + purpose.size());
  std::memcpy(buf.data(), &seed, 8);
  std::memcpy(buf.data() + 8, purpose.data(), purpose.size());
  XXH128_hash_t h = XXH3_128bits(buf.data(), buf.size());
  return StreamKey{h.low64, h.high64};
}

namespace {

CONFLUX_INLINE void splitmix_fill_body(uint64_t state, uint64_t* __restrict out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = RowStream::mix(state + (i + 1) * RowStream::kGamma);
}

CONFLUX_INLINE float bits_to_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
CONFLUX_INLINE uint32_t float_to_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// Constants of the documented normal map, shared by the generic code and the AVX-512 intrinsics
// (x - c is x + (-c) in IEEE arithmetic, so every step is a multiply then an add).
constexpr uint32_t kSqrtHalfBits = 0x3f3504f3u;  // bits of sqrt(1/2) in float
constexpr float kLogQ[7] = {0x1.5c71e0p-4f, -0x1.22c3a4p-3f, 0x1.323230p-3f, -0x1.53b8a0p-3f,
                            0x1.98cb04p-3f, -0x1.00028ap-2f, 0x1.555702p-2f};
constexpr float kLn2Hi = 0x1.62e400p-1f, kLn2Lo = 0x1.7f7d1cp-20f;  // ln 2 = hi + lo, hi * e exact
constexpr float kSinP[4] = {1.0f / 362880.0f, -1.0f / 5040.0f, 1.0f / 120.0f, -1.0f / 6.0f};
constexpr float kCosP[5] = {-1.0f / 3628800.0f, 1.0f / 40320.0f, -1.0f / 720.0f, 1.0f / 24.0f, -0.5f};
constexpr float kHalfPi = 1.57079632679489662f;

// ln(u) for u in [2^-41, 1), in float. u = m * 2^e with m in [sqrt(1/2), sqrt(2)) (the shift of
// the mantissa range is integer arithmetic on the bits, as in musl's log: no branches, so every
// ISA level vectorises it); ln(m) = t - t^2/2 + t^3 q(t), t = m - 1, with q a degree-6 polynomial
// fitted (weighted least squares on Chebyshev nodes) for relative error < 1.5e-7 in float: no
// division.
CONFLUX_INLINE float logf_pos(float u) {
  const uint32_t b = float_to_bits(u) + (0x3f800000u - kSqrtHalfBits);
  const float e = static_cast<float>(static_cast<int32_t>(b >> 23) - 127);  // exact
  const float t = bits_to_float((b & 0x007fffffu) + kSqrtHalfBits) - 1.0f;
  float q = kLogQ[0];
  for (int i = 1; i < 7; ++i) q = q * t + kLogQ[i];
  const float t2 = t * t;
  const float log_m = t - 0.5f * t2 + t2 * t * q;
  return e * kLn2Hi + (e * kLn2Lo + log_m);
}

// One standard normal pair from 64 random bits (the documented map, see fast_random.h):
// u from the top 40 bits (rounded to float, capped below 1), the angle from the low 24 bits as
// a quarter turn q and a remainder f in [-1/2, 1/2) of a quarter turn, both exact integer
// arithmetic; sin and cos of (pi/2) f are Taylor polynomials (|x| <= pi/4: errors < 3e-8), and
// the quadrant is applied with bit operations.
CONFLUX_INLINE void normal_pair(uint32_t lo, uint32_t hi, float* z0, float* z1) {
  const float a = static_cast<float>(static_cast<int32_t>(hi >> 8));                            // 24 bits
  const float b = static_cast<float>(static_cast<int32_t>(((hi & 0xffu) << 8) | (lo >> 24))) + 0.5f;  // 16 bits
  const float u1 = (a + b * 0x1p-16f) * 0x1p-24f;  // (k + 1/2) 2^-40 rounded to float, in (0, 1]
  // Capped at 1 - 2^-24 as an integer min on the bits (u > 0: the order of the bits is the order of
  // the values), which vectorises where a float compare-select may not.
  const float u = bits_to_float(std::min(float_to_bits(u1), 0x3f7fffffu));
  const float r = std::sqrt(-2.0f * logf_pos(u));
  const uint32_t k = lo & 0xffffffu;
  const uint32_t qq = (k + (1u << 21)) >> 22;  // nearest quarter turn, 0..4
  const float f = static_cast<float>(static_cast<int32_t>(k) - static_cast<int32_t>(qq << 22)) * 0x1p-22f;
  const uint32_t q = qq & 3u;
  const float x = f * kHalfPi;
  const float x2 = x * x;
  float sp = kSinP[0];
  for (int i = 1; i < 4; ++i) sp = sp * x2 + kSinP[i];
  const float sn = x + x * x2 * sp;
  float cp = kCosP[0];
  for (int i = 1; i < 5; ++i) cp = cp * x2 + kCosP[i];
  const float cs = 1.0f + x2 * cp;
  // Rotate by q quarter turns: odd q swaps sin and cos; sin is negated for q = 2, 3 and cos for
  // q = 1, 2.
  const uint32_t swap = 0u - (q & 1u);
  const uint32_t sb = float_to_bits(sn), cb = float_to_bits(cs);
  const uint32_t s_bits = ((sb & ~swap) | (cb & swap)) ^ ((q >> 1) << 31);
  const uint32_t c_bits = ((cb & ~swap) | (sb & swap)) ^ (((q ^ (q >> 1)) & 1u) << 31);
  *z0 = r * bits_to_float(c_bits);
  *z1 = r * bits_to_float(s_bits);
}

// x[2j] += sigma z0(bits[j]), x[2j+1] += sigma z1(bits[j]); an odd n uses z0 of the last word.
CONFLUX_INLINE void noise_body(float* __restrict x, size_t n, const uint64_t* __restrict bits, float sigma) {
  const size_t pairs = n / 2;
  const auto* w = reinterpret_cast<const uint32_t*>(bits);  // little-endian: lo, hi
  for (size_t j = 0; j < pairs; ++j) {
    float z0, z1;
    normal_pair(w[2 * j], w[2 * j + 1], &z0, &z1);
    x[2 * j] = x[2 * j] + sigma * z0;
    x[2 * j + 1] = x[2 * j + 1] + sigma * z1;
  }
  if (n & 1) {
    float z0, z1;
    normal_pair(static_cast<uint32_t>(bits[pairs]), static_cast<uint32_t>(bits[pairs] >> 32), &z0, &z1);
    x[n - 1] = x[n - 1] + sigma * z0;
  }
}

// Sum of squares in double with 8 partial sums in a fixed order (element i goes to sum i mod 8,
// then a fixed tree): the same bits whether the compiler uses 8, 4, 2 or 1 lanes.
// The 8 sums are one 8-wide vector (GCC vector extensions: one zmm, two ymm or four xmm, the
// same IEEE operations per element), so a row costs a few vector operations instead of
// scalar-per-lane code, and the tree is two halvings of that vector.
typedef double Double8 __attribute__((vector_size(64)));
typedef float Float8 __attribute__((vector_size(32)));
CONFLUX_INLINE double sum_sq_body(const float* __restrict x, size_t n) {
  Double8 acc = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    Float8 f;
    std::memcpy(&f, x + i, sizeof f);
    const Double8 d = __builtin_convertvector(f, Double8);
    acc += d * d;
  }
  for (size_t l = 0; i + l < n; ++l) acc[l] += static_cast<double>(x[i + l]) * static_cast<double>(x[i + l]);
  const double t0 = acc[0] + acc[4], t1 = acc[1] + acc[5], t2 = acc[2] + acc[6], t3 = acc[3] + acc[7];
  return (t0 + t2) + (t1 + t3);
}

// Masking fused with the row stream: token i draws the low (even i) or high (odd i) half of
// SplitMix64 output i / 2 of the stream at `state`, exactly as fill() + mask_tokens would.
CONFLUX_INLINE void mask_stream_body(int32_t* __restrict t, size_t n, uint64_t state, uint32_t below_or_eq,
                                     int32_t mask_id) {
  const size_t pairs = n / 2;
  for (size_t j = 0; j < pairs; ++j) {
    const uint64_t w = RowStream::mix(state + (j + 1) * RowStream::kGamma);
    const uint32_t d0 = static_cast<uint32_t>(w), d1 = static_cast<uint32_t>(w >> 32);
    const int32_t t0 = t[2 * j], t1 = t[2 * j + 1];
    t[2 * j] = (static_cast<uint32_t>(t0) < 256u && d0 <= below_or_eq) ? mask_id : t0;
    t[2 * j + 1] = (static_cast<uint32_t>(t1) < 256u && d1 <= below_or_eq) ? mask_id : t1;
  }
  if (n & 1) {
    const uint32_t d0 = static_cast<uint32_t>(RowStream::mix(state + (pairs + 1) * RowStream::kGamma));
    const int32_t t0 = t[n - 1];
    t[n - 1] = (static_cast<uint32_t>(t0) < 256u && d0 <= below_or_eq) ? mask_id : t0;
  }
}

CONFLUX_INLINE void mask_body(int32_t* __restrict t, size_t n, const uint32_t* __restrict bits,
                                uint64_t threshold, int32_t mask_id) {
  for (size_t i = 0; i < n; ++i) {
    const bool content = static_cast<uint32_t>(t[i]) < 256u;
    t[i] = (content && static_cast<uint64_t>(bits[i]) < threshold) ? mask_id : t[i];
  }
}


// Clipping factors from sums of squares, in place: bound / norm where the norm exceeds bound, else 1
// (vectorised across rows).
CONFLUX_INLINE void clip_factors(double* f, size_t n, double bound) {
  for (size_t r = 0; r < n; ++r) {
    const double norm = std::sqrt(f[r]);
    f[r] = norm > bound ? bound / norm : 1.0;
  }
}

// Blocks of rows: sums of squares, then the factors, then x * f for every element of a clipped
// row (f = 1 would leave x unchanged exactly, so this equals clip_l2's conditional scaling).
CONFLUX_INLINE void clip_rows_body(float* __restrict x, size_t rows, size_t dim, double bound) {
  constexpr size_t kRows = 64;
  double f[kRows];
  for (size_t r0 = 0; r0 < rows; r0 += kRows) {
    const size_t nb = std::min(kRows, rows - r0);
    float* xb = x + r0 * dim;
    for (size_t r = 0; r < nb; ++r) f[r] = sum_sq_body(xb + r * dim, dim);
    clip_factors(f, nb, bound);
    for (size_t r = 0; r < nb; ++r) {
      if (f[r] == 1.0) continue;
      for (size_t i = 0; i < dim; ++i) xb[r * dim + i] = static_cast<float>(xb[r * dim + i] * f[r]);
    }
  }
}

// fn(r, starting state of RowStream(key, ids[r])) for r < rows; the states are computed 64 rows at
// a time in a loop of their own, so that loop vectorises.
template <typename Fn>
CONFLUX_INLINE void for_row_streams(uint64_t ka, uint64_t kb, const int64_t* __restrict ids, size_t rows, Fn&& fn) {
  constexpr size_t kRows = 64;
  uint64_t st[kRows];
  const StreamKey key{ka, kb};
  for (size_t r0 = 0; r0 < rows; r0 += kRows) {
    const size_t nb = std::min(kRows, rows - r0);
    for (size_t r = 0; r < nb; ++r) st[r] = RowStream::start(key, static_cast<uint64_t>(ids[r0 + r]));
    for (size_t r = 0; r < nb; ++r) fn(r0 + r, st[r]);
  }
}

CONFLUX_INLINE void fill_rows_body(uint64_t ka, uint64_t kb, const int64_t* __restrict ids, size_t rows, size_t per,
                                   uint64_t* __restrict out) {
  for_row_streams(ka, kb, ids, rows, [&](size_t r, uint64_t st) CONFLUX_INLINE_LAMBDA {
    splitmix_fill_body(st, out + r * per, per);
  });
}

CONFLUX_INLINE void mask_records_body(int32_t* __restrict t, const int64_t* __restrict offsets, size_t rows,
                                      const int64_t* __restrict ids, uint64_t ka, uint64_t kb, uint32_t below_or_eq,
                                      int32_t mask_id) {
  for_row_streams(ka, kb, ids, rows, [&](size_t r, uint64_t st) CONFLUX_INLINE_LAMBDA {
    mask_stream_body(t + offsets[r], static_cast<size_t>(offsets[r + 1] - offsets[r]), st, below_or_eq, mask_id);
  });
}

CONFLUX_INLINE void sum_sq_out(const float* x, size_t n, double* out) { *out = sum_sq_body(x, n); }

#if CONFLUX_KERNEL_MULTIVERSION
// AVX-512 bodies in intrinsics where GCC's code for the generic body is slow: the same IEEE
// operations in the same order (tests compare every level's bits).
// - splitmix: the generic loop multiplies (i + 1) * gamma per word (a third 64-bit multiply);
//   here the states advance by one add. 0.98 -> 0.59 ns per word.
// - sums of squares: GCC splits the 8-wide double vector into halves and spills the tree to the
//   stack; here one zmm, an extract tree, and four rows at a time so that their add chains
//   overlap. Clipping 0.87 -> 0.47 ns per value (dim 32).
CONFLUX_TARGET_AVX512 CONFLUX_INLINE __m512i splitmix_mix8(__m512i z) {
  z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)),
                         _mm512_set1_epi64(static_cast<long long>(RowStream::kMix1)));
  z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)),
                         _mm512_set1_epi64(static_cast<long long>(RowStream::kMix2)));
  return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}

CONFLUX_TARGET_AVX512 CONFLUX_INLINE void splitmix_fill_512(uint64_t state, uint64_t* out, size_t n) {
  constexpr uint64_t g = RowStream::kGamma;
  __m512i s = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(state)),
                               _mm512_setr_epi64(g, 2 * g, 3 * g, 4 * g, 5 * g, 6 * g, 7 * g, 8 * g));
  const __m512i step = _mm512_set1_epi64(static_cast<long long>(8 * g));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm512_storeu_si512(out + i, splitmix_mix8(s));
    s = _mm512_add_epi64(s, step);
  }
  if (i < n) _mm512_mask_storeu_epi64(out + i, static_cast<__mmask8>((1u << (n - i)) - 1), splitmix_mix8(s));
}

// RowStream::start(key, ids[r]) for 8 rows (copy 0): mix(ka ^ mix(row * gamma + kb)) ^ mix(C).
CONFLUX_TARGET_AVX512 CONFLUX_INLINE __m512i row_starts8(uint64_t ka, uint64_t kb, const int64_t* ids, __mmask8 m) {
  const __m512i row = _mm512_maskz_loadu_epi64(m, ids);
  const __m512i h = splitmix_mix8(_mm512_add_epi64(
      _mm512_mullo_epi64(row, _mm512_set1_epi64(static_cast<long long>(RowStream::kGamma))),
      _mm512_set1_epi64(static_cast<long long>(kb))));
  const uint64_t copy0 = RowStream::mix(RowStream::kCopySalt);  // folded at compile time
  return _mm512_xor_si512(splitmix_mix8(_mm512_xor_si512(_mm512_set1_epi64(static_cast<long long>(ka)), h)),
                          _mm512_set1_epi64(static_cast<long long>(copy0)));
}

CONFLUX_TARGET_AVX512 CONFLUX_INLINE void fill_rows_512(uint64_t ka, uint64_t kb, const int64_t* __restrict ids,
                                                        size_t rows, size_t per, uint64_t* __restrict out) {
  alignas(64) uint64_t st[8];
  for (size_t r0 = 0; r0 < rows; r0 += 8) {
    const size_t nb = std::min<size_t>(8, rows - r0);
    _mm512_store_si512(st, row_starts8(ka, kb, ids + r0, static_cast<__mmask8>((1u << nb) - 1)));
    for (size_t r = 0; r < nb; ++r) splitmix_fill_512(st[r], out + (r0 + r) * per, per);
  }
}

// acc[l] += x[i]^2 for the 8 elements from x (the first `m` of them where m is a partial mask).
CONFLUX_TARGET_AVX512 CONFLUX_INLINE __m512d sum_sq_step(__m512d acc, const float* x, __mmask8 m) {
  const __m512d d = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, x));
  return _mm512_mask_add_pd(acc, m, acc, _mm512_mul_pd(d, d));
}
// The fixed tree: (acc0 + acc4, ..., acc3 + acc7), then (t0 + t2, t1 + t3), then their sum.
CONFLUX_TARGET_AVX512 CONFLUX_INLINE double sum_sq_tree(__m512d acc) {
  const __m256d t = _mm256_add_pd(_mm512_castpd512_pd256(acc), _mm512_extractf64x4_pd(acc, 1));
  const __m128d u = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));
  return _mm_cvtsd_f64(_mm_add_sd(u, _mm_unpackhi_pd(u, u)));
}

CONFLUX_TARGET_AVX512 CONFLUX_INLINE double sum_sq_512(const float* x, size_t n) {
  __m512d acc = _mm512_setzero_pd();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) acc = sum_sq_step(acc, x + i, 0xff);
  if (i < n) acc = sum_sq_step(acc, x + i, static_cast<__mmask8>((1u << (n - i)) - 1));
  return sum_sq_tree(acc);
}

CONFLUX_TARGET_AVX512 CONFLUX_INLINE void sum_sq_out_512(const float* x, size_t n, double* out) {
  *out = sum_sq_512(x, n);
}

// f[r] = sum of squares of row r for `rows` rows of `dim`, four rows at a time.
CONFLUX_TARGET_AVX512 CONFLUX_INLINE void sum_sq_rows_512(const float* x, size_t rows, size_t dim, double* f) {
  const __mmask8 tail = static_cast<__mmask8>((1u << (dim % 8)) - 1);
  size_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const float* p = x + r * dim;
    __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 8 <= dim; i += 8) {
      a0 = sum_sq_step(a0, p + i, 0xff);
      a1 = sum_sq_step(a1, p + dim + i, 0xff);
      a2 = sum_sq_step(a2, p + 2 * dim + i, 0xff);
      a3 = sum_sq_step(a3, p + 3 * dim + i, 0xff);
    }
    if (i < dim) {
      a0 = sum_sq_step(a0, p + i, tail);
      a1 = sum_sq_step(a1, p + dim + i, tail);
      a2 = sum_sq_step(a2, p + 2 * dim + i, tail);
      a3 = sum_sq_step(a3, p + 3 * dim + i, tail);
    }
    f[r] = sum_sq_tree(a0);
    f[r + 1] = sum_sq_tree(a1);
    f[r + 2] = sum_sq_tree(a2);
    f[r + 3] = sum_sq_tree(a3);
  }
  for (; r < rows; ++r) f[r] = sum_sq_512(x + r * dim, dim);
}

CONFLUX_TARGET_AVX512 CONFLUX_INLINE void clip_rows_512(float* __restrict x, size_t rows, size_t dim, double bound) {
  constexpr size_t kRows = 64;
  double f[kRows];
  const __mmask8 tail = static_cast<__mmask8>((1u << (dim % 8)) - 1);
  for (size_t r0 = 0; r0 < rows; r0 += kRows) {
    const size_t nb = std::min(kRows, rows - r0);
    float* xb = x + r0 * dim;
    sum_sq_rows_512(xb, nb, dim, f);
    clip_factors(f, nb, bound);
    for (size_t r = 0; r < nb; ++r) {
      if (f[r] == 1.0) continue;
      float* xr = xb + r * dim;
      const __m512d fr = _mm512_set1_pd(f[r]);
      size_t i = 0;
      for (; i + 8 <= dim; i += 8)
        _mm256_storeu_ps(xr + i, _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(xr + i)), fr)));
      if (i < dim)
        _mm256_mask_storeu_ps(xr + i, tail,
                              _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(tail, xr + i)), fr)));
    }
  }
}
#endif

CONFLUX_VARIANTS_WITH(splitmix_fill, splitmix_fill_body, splitmix_fill_512, (uint64_t state, uint64_t* out, size_t n), (state, out, n))
CONFLUX_VARIANTS(noise_kernel, noise_body, (float* x, size_t n, const uint64_t* bits, float sigma),
                 (x, n, bits, sigma))
CONFLUX_VARIANTS_WITH(sum_sq_kernel, sum_sq_out, sum_sq_out_512, (const float* x, size_t n, double* out), (x, n, out))
CONFLUX_VARIANTS_WITH(clip_rows_kernel, clip_rows_body, clip_rows_512, (float* x, size_t rows, size_t dim, double bound),
                 (x, rows, dim, bound))
CONFLUX_VARIANTS(mask_kernel, mask_body,
                 (int32_t* t, size_t n, const uint32_t* bits, uint64_t threshold, int32_t mask_id),
                 (t, n, bits, threshold, mask_id))
CONFLUX_VARIANTS_WITH(fill_rows_kernel, fill_rows_body, fill_rows_512,
                 (uint64_t ka, uint64_t kb, const int64_t* ids, size_t rows, size_t per, uint64_t* out),
                 (ka, kb, ids, rows, per, out))
CONFLUX_VARIANTS(mask_records_kernel, mask_records_body,
                 (int32_t* t, const int64_t* offsets, size_t rows, const int64_t* ids, uint64_t ka, uint64_t kb,
                  uint32_t below_or_eq, int32_t mask_id),
                 (t, offsets, rows, ids, ka, kb, below_or_eq, mask_id))
CONFLUX_VARIANTS(mask_stream_kernel, mask_stream_body,
                 (int32_t* t, size_t n, uint64_t state, uint32_t below_or_eq, int32_t mask_id),
                 (t, n, state, below_or_eq, mask_id))

}  // namespace

void RowStream::fill(uint64_t* out, size_t n) {
  splitmix_fill(state_, out, n);
  state_ += n * kGamma;
}

ChaChaRandom::ChaChaRandom() {
  if (sodium_init() < 0) CONFLUX_THROW(PrivacyError, "libsodium failed to initialise its secure generator");
  randombytes_buf(key_, sizeof key_);
}

ChaChaRandom::~ChaChaRandom() { sodium_memzero(key_, sizeof key_); }

void ChaChaRandom::refill() {
  fill(buf_, kWords);
  pos_ = 0;
}

uint64_t ChaChaRandom::next_u64() {
  if (pos_ == kWords) refill();
  return buf_[pos_++];
}

void ChaChaRandom::fill(uint64_t* out, size_t n) {
  unsigned char nonce[crypto_stream_chacha20_NONCEBYTES];
  static_assert(sizeof nonce == 8, "ChaCha20 (original) has a 64-bit nonce");
  std::memcpy(nonce, &nonce_, 8);
  ++nonce_;  // every call its own keystream: no 64-byte block is ever reused
  if (crypto_stream_chacha20(reinterpret_cast<unsigned char*>(out), n * 8, nonce, key_) != 0)
    CONFLUX_THROW(PrivacyError, "libsodium crypto_stream_chacha20 failed");
}

void fill_u64(RandomSource& rng, uint64_t* out, size_t n) {
  if (auto* r = dynamic_cast<RowStream*>(&rng)) return r->fill(out, n);
  if (auto* c = dynamic_cast<ChaChaRandom*>(&rng)) {
    if (n >= 256) return c->fill(out, n);
  }
  for (size_t i = 0; i < n; ++i) out[i] = rng.next_u64();
}

void add_normal(float* x, size_t n, const uint64_t* bits, float sigma) { noise_kernel(x, n, bits, sigma); }

bool add_normal_isa(int isa, float* x, size_t n, const uint64_t* bits, float sigma) {
  auto fn = noise_kernel_at(isa);
  if (!fn) return false;
  fn(x, n, bits, sigma);
  return true;
}

double sum_squares(const float* x, size_t n) {
  double s;
  sum_sq_kernel(x, n, &s);
  return s;
}

bool sum_squares_isa(int isa, const float* x, size_t n, double* out) {
  auto fn = sum_sq_kernel_at(isa);
  if (!fn) return false;
  fn(x, n, out);
  return true;
}

void clip_l2_rows(float* x, size_t rows, size_t dim, double bound) { clip_rows_kernel(x, rows, dim, bound); }

bool clip_l2_rows_isa(int isa, float* x, size_t rows, size_t dim, double bound) {
  auto fn = clip_rows_kernel_at(isa);
  if (!fn) return false;
  fn(x, rows, dim, bound);
  return true;
}

void fill_rows(const StreamKey& key, const int64_t* ids, size_t rows, size_t per, uint64_t* out) {
  fill_rows_kernel(key.a, key.b, ids, rows, per, out);
}

bool mask_records_isa(int isa, int32_t* t, const int64_t* offsets, size_t rows, const int64_t* ids,
                      const StreamKey& key, uint64_t threshold, int32_t mask_id) {
  auto fn = isa < 0 ? mask_records_kernel : mask_records_kernel_at(isa);
  if (!fn) return false;
  if (threshold > 0) fn(t, offsets, rows, ids, key.a, key.b, static_cast<uint32_t>(threshold - 1), mask_id);
  return true;
}

void mask_records(int32_t* t, const int64_t* offsets, size_t rows, const int64_t* ids, const StreamKey& key,
                  uint64_t threshold, int32_t mask_id) {
  mask_records_isa(-1, t, offsets, rows, ids, key, threshold, mask_id);
}

bool mask_stream_isa(int isa, int32_t* t, size_t n, RowStream& rng, uint64_t threshold, int32_t mask_id) {
  auto fn = isa < 0 ? mask_stream_kernel : mask_stream_kernel_at(isa);
  if (!fn) return false;
  if (threshold > 0 && n > 0) fn(t, n, rng.state(), static_cast<uint32_t>(threshold - 1), mask_id);
  rng.skip((n + 1) / 2);
  return true;
}

void mask_stream(int32_t* t, size_t n, RowStream& rng, uint64_t threshold, int32_t mask_id) {
  mask_stream_isa(-1, t, n, rng, threshold, mask_id);
}

void mask_tokens(int32_t* t, size_t n, const uint32_t* bits, uint64_t threshold, int32_t mask_id) {
  mask_kernel(t, n, bits, threshold, mask_id);
}

}  // namespace conflux::dataplane
