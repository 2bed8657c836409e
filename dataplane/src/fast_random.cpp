// Fast random sources (SplitMix64 row streams, ChaCha20 keystream) and the vectorised Box-Muller
// and masking kernels (see fast_random.h). Built with -ffp-contract=off (CMakeLists.txt) so the
// AVX-512, AVX2 and baseline variants round identically: results never depend on the CPU.
#include "fast_random.h"

#include "conflux/core/error.h"

#include <sodium.h>
#include <xxhash.h>

#include <cstring>
#include <vector>

// Each kernel body is an always-inline function; thin wrappers compile it for AVX-512
// (F+DQ+BW+VL), AVX2 and the baseline, and the first call picks the widest the CPU supports.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CONFLUX_KERNEL_MULTIVERSION 1
#define CONFLUX_INLINE inline __attribute__((always_inline))
#else
#define CONFLUX_KERNEL_MULTIVERSION 0
#define CONFLUX_INLINE inline
#endif

namespace conflux::dataplane {

StreamKey stream_key(uint64_t seed, std::string_view purpose) {
  std::vector<uint8_t> buf(8 + purpose.size());
  std::memcpy(buf.data(), &seed, 8);
  std::memcpy(buf.data() + 8, purpose.data(), purpose.size());
  XXH128_hash_t h = XXH3_128bits(buf.data(), buf.size());
  return StreamKey{h.low64, h.high64};
}

RowStream::RowStream(const StreamKey& key, uint64_t row, uint64_t copy)
    : state_(mix(key.a ^ mix(row * kGamma + key.b)) ^ mix(copy + 0x632be59bd9b4e019ull)) {}

namespace {

CONFLUX_INLINE void splitmix_fill_body(uint64_t state, uint64_t* __restrict out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = RowStream::mix(state + (i + 1) * RowStream::kGamma);
}

CONFLUX_INLINE double bits_to_double(uint64_t b) {
  double d;
  std::memcpy(&d, &b, 8);
  return d;
}
CONFLUX_INLINE uint64_t double_to_bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, 8);
  return b;
}

// ln(u) for normal u > 0 (here u in [2^-53, 1)). u = m * 2^e with m in [sqrt(1/2), sqrt(2)) (the
// shift of the mantissa range is integer arithmetic on the bits, as in musl's log: no branches or
// selects, so every ISA level vectorises it); ln(m) = 2 atanh(s), s = (m - 1) / (m + 1),
// |s| <= 0.1716, and the series to s^23 leaves < 1e-18.
CONFLUX_INLINE double log_pos(double u) {
  constexpr uint64_t kSqrtHalf = 0x3fe6a09e667f3bcdull;  // bits of sqrt(1/2)
  const uint64_t b = double_to_bits(u) + (0x3ff0000000000000ull - kSqrtHalf);
  // Exponent as a double, exactly: (2^52 + field) - 2^52 - 1023.
  const double e = (bits_to_double(0x4330000000000000ull | (b >> 52)) - 0x1p52) - 1023.0;
  const double m = bits_to_double((b & 0x000fffffffffffffull) + kSqrtHalf);
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  double p = 1.0 / 23;
  p = p * s2 + 1.0 / 21;
  p = p * s2 + 1.0 / 19;
  p = p * s2 + 1.0 / 17;
  p = p * s2 + 1.0 / 15;
  p = p * s2 + 1.0 / 13;
  p = p * s2 + 1.0 / 11;
  p = p * s2 + 1.0 / 9;
  p = p * s2 + 1.0 / 7;
  p = p * s2 + 1.0 / 5;
  p = p * s2 + 1.0 / 3;
  const double log_m = 2.0 * s + 2.0 * s * s2 * p;
  constexpr double kLn2Hi = 0x1.62e42fefa3800p-1, kLn2Lo = 0x1.ef35793c76730p-45;
  return e * kLn2Hi + (e * kLn2Lo + log_m);
}

// sin and cos of 2 pi v, v in [0, 1): v = (q + f) / 4 with q the nearest quarter turn and
// |f| <= 1/2, so the polynomials run on |theta| <= pi / 4 (Taylor to theta^19: error < 1e-19).
// The quadrant comes out of the rounding trick's low bits and is applied with bit operations.
CONFLUX_INLINE void sincos_2pi(double v, double* s_out, double* c_out) {
  const double t = 4.0 * v;
  const double shifted = t + 0x1.8p52;  // round to nearest: the low bits of `shifted` hold q
  const uint64_t q = double_to_bits(shifted) & 3;  // q mod 4 (a full turn is 0)
  const double f = t - (shifted - 0x1.8p52);
  const double x = f * 1.5707963267948966192;
  const double x2 = x * x;
  double sp = -1.0 / 121645100408832000.0;  // -1/19!
  sp = sp * x2 + 1.0 / 355687428096000.0;
  sp = sp * x2 - 1.0 / 1307674368000.0;
  sp = sp * x2 + 1.0 / 6227020800.0;
  sp = sp * x2 - 1.0 / 39916800.0;
  sp = sp * x2 + 1.0 / 362880.0;
  sp = sp * x2 - 1.0 / 5040.0;
  sp = sp * x2 + 1.0 / 120.0;
  sp = sp * x2 - 1.0 / 6.0;
  const double sn = x + x * x2 * sp;
  double cp = 1.0 / 6402373705728000.0;  // 1/18!
  cp = cp * x2 - 1.0 / 20922789888000.0;
  cp = cp * x2 + 1.0 / 87178291200.0;
  cp = cp * x2 - 1.0 / 479001600.0;
  cp = cp * x2 + 1.0 / 3628800.0;
  cp = cp * x2 - 1.0 / 40320.0;
  cp = cp * x2 + 1.0 / 720.0;
  cp = cp * x2 - 1.0 / 24.0;
  cp = cp * x2 + 0.5;
  const double cs = 1.0 - x2 * cp;
  // Rotate by q quarter turns: odd q swaps sin and cos; sin is negated for q = 2, 3 and cos for
  // q = 1, 2.
  const uint64_t swap = 0 - (q & 1);
  const uint64_t sb = double_to_bits(sn), cb = double_to_bits(cs);
  const uint64_t s_bits = ((sb & ~swap) | (cb & swap)) ^ ((q >> 1) << 63);
  const uint64_t c_bits = ((cb & ~swap) | (sb & swap)) ^ (((q ^ (q >> 1)) & 1) << 63);
  *s_out = bits_to_double(s_bits);
  *c_out = bits_to_double(c_bits);
}

CONFLUX_INLINE void gaussian_body(const uint64_t* __restrict bits, size_t pairs, double* __restrict z) {
  for (size_t j = 0; j < pairs; ++j) {
    const uint64_t a = bits[2 * j], b = bits[2 * j + 1];
    // u = (k + 1/2) / 2^52 - ... : (1 + k 2^-52) - (1 - 2^-53) = (2k + 1) 2^-53, exact, in (0, 1).
    const double u = bits_to_double((a >> 12) | 0x3ff0000000000000ull) - (1.0 - 0x1p-53);
    const double v = bits_to_double((b >> 12) | 0x3ff0000000000000ull) - 1.0;  // [0, 1)
    const double r = std::sqrt(-2.0 * log_pos(u));
    double s, c;
    sincos_2pi(v, &s, &c);
    z[2 * j] = r * c;
    z[2 * j + 1] = r * s;
  }
}

CONFLUX_INLINE void mask_body(int32_t* __restrict t, size_t n, const uint32_t* __restrict bits,
                                uint64_t threshold, int32_t mask_id) {
  for (size_t i = 0; i < n; ++i) {
    const bool content = static_cast<uint32_t>(t[i]) < 256u;
    t[i] = (content && static_cast<uint64_t>(bits[i]) < threshold) ? mask_id : t[i];
  }
}

// One wrapper per ISA level around a body; `pick` returns the widest supported.
#if CONFLUX_KERNEL_MULTIVERSION
#define CONFLUX_VARIANTS(name, body, params, args)                                              \
  __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) void name##_avx512 params {     \
    body args;                                                                                  \
  }                                                                                             \
  __attribute__((target("avx2"))) void name##_avx2 params { body args; }                        \
  void name##_base params { body args; }                                                        \
  using name##_fn = void(*) params;                                                             \
  name##_fn name##_pick() {                                                                     \
    __builtin_cpu_init();                                                                       \
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&              \
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))               \
      return name##_avx512;                                                                     \
    if (__builtin_cpu_supports("avx2")) return name##_avx2;                                     \
    return name##_base;                                                                         \
  }                                                                                             \
  void name params {                                                                            \
    static const name##_fn fn = name##_pick();                                                  \
    fn args;                                                                                    \
  }                                                                                             \
  [[maybe_unused]] name##_fn name##_at(int isa) {                                                              \
    __builtin_cpu_init();                                                                       \
    if (isa == 2)                                                                               \
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&         \
                     __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")   \
                 ? name##_avx512                                                                \
                 : nullptr;                                                                     \
    if (isa == 1) return __builtin_cpu_supports("avx2") ? name##_avx2 : nullptr;                \
    return name##_base;                                                                         \
  }
#else
#define CONFLUX_VARIANTS(name, body, params, args) \
  void name params { body args; }                  \
  using name##_fn = void(*) params;                \
  [[maybe_unused]] name##_fn name##_at(int isa) { return isa == 0 ? name : nullptr; }
#endif

CONFLUX_VARIANTS(splitmix_fill, splitmix_fill_body, (uint64_t state, uint64_t* out, size_t n), (state, out, n))
CONFLUX_VARIANTS(gaussian_kernel, gaussian_body, (const uint64_t* bits, size_t pairs, double* z), (bits, pairs, z))
CONFLUX_VARIANTS(mask_kernel, mask_body,
                 (int32_t* t, size_t n, const uint32_t* bits, uint64_t threshold, int32_t mask_id),
                 (t, n, bits, threshold, mask_id))

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

void gaussian_pairs(const uint64_t* bits, size_t pairs, double* z) { gaussian_kernel(bits, pairs, z); }

bool gaussian_pairs_isa(int isa, const uint64_t* bits, size_t pairs, double* z) {
  auto fn = gaussian_kernel_at(isa);
  if (!fn) return false;
  fn(bits, pairs, z);
  return true;
}

void mask_tokens(int32_t* t, size_t n, const uint32_t* bits, uint64_t threshold, int32_t mask_id) {
  mask_kernel(t, n, bits, threshold, mask_id);
}

}  // namespace conflux::dataplane
