// Seeded streams (xoshiro256** keyed by XXH3-128 of seed/purpose/rank/substream), the libsodium
// secure source, and the distributions both share.
#include "conflux/core/rng.h"

#include "conflux/core/error.h"

#include <sodium.h>
#include <xxhash.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace conflux {
namespace {
inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
inline uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

double RandomSource::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double RandomSource::uniform_open() {
  double u;
  do {
    u = uniform();
  } while (u == 0.0);
  return u;
}

uint64_t RandomSource::below(uint64_t n) {
  CONFLUX_CHECK(n > 0, "below(0)");
  // Lemire-free simple rejection: unbiased and clear.
  uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
  uint64_t x;
  do {
    x = next_u64();
  } while (x >= limit);
  return x % n;
}

double RandomSource::normal() {
  double u, v, s;
  do {
    u = 2.0 * uniform() - 1.0;
    v = 2.0 * uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  return u * std::sqrt(-2.0 * std::log(s) / s);
}

double RandomSource::laplace(double scale) {
  // Inverse CDF on u in (-1/2, 1/2), never exactly +-1/2.
  double u = uniform_open() - 0.5;
  return -scale * (u < 0 ? -1.0 : 1.0) * std::log(1.0 - 2.0 * std::fabs(u));
}

bool RandomSource::bernoulli(double p) { return uniform() < p; }

Stream::Stream(uint64_t seed, std::string_view purpose, uint64_t rank, uint64_t substream) {
  std::vector<uint8_t> key(24 + purpose.size());
  std::memcpy(key.data(), &seed, 8);
  std::memcpy(key.data() + 8, &rank, 8);
  std::memcpy(key.data() + 16, &substream, 8);
  std::memcpy(key.data() + 24, purpose.data(), purpose.size());
  XXH128_hash_t h = XXH3_128bits(key.data(), key.size());
  uint64_t a = h.low64, b = h.high64;
  s_[0] = splitmix64(a);
  s_[1] = splitmix64(a);
  s_[2] = splitmix64(b);
  s_[3] = splitmix64(b);
  if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;
}

uint64_t Stream::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

void Stream::get_state(uint64_t out[4]) const { std::memcpy(out, s_, sizeof(s_)); }
void Stream::set_state(const uint64_t in[4]) { std::memcpy(s_, in, sizeof(s_)); }

SecureRandom::SecureRandom() {
  if (sodium_init() < 0) CONFLUX_THROW(PrivacyError, "libsodium failed to initialise its secure generator");
}

uint64_t SecureRandom::next_u64() {
  uint64_t v;
  randombytes_buf(&v, sizeof(v));
  return v;
}

Hash128 hash128(const void* data, size_t len, uint64_t seed) {
  XXH128_hash_t h = XXH3_128bits_withSeed(data, len, seed);
  return Hash128{h.low64, h.high64};
}

uint64_t hash64(const void* data, size_t len, uint64_t seed) { return XXH3_64bits_withSeed(data, len, seed); }

}  // namespace conflux
