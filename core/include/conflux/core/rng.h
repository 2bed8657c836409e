// Random numbers: reproducible named streams, and a cryptographically secure source.
//
// - Stream(seed, purpose, rank): a xoshiro256** generator whose state is derived by hashing
//   (seed, purpose, rank, substream) with XXH3-128, so streams for different purposes or ranks are
//   independent and a result never depends on thread timing or on how many other streams exist.
// - SecureRandom: libsodium's randombytes (ChaCha20 / getrandom); never reproducible.
// Both implement RandomSource so privacy mechanisms take either; is_secure() tells the ledger
// whether a run's noise is private ("secure") or reproducible ("seeded: not private").
// Thread safety: a generator object is not shared between threads; create one per thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace conflux {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual uint64_t next_u64() = 0;
  virtual bool is_secure() const = 0;

  double uniform();                      // [0, 1) with 53 random bits
  double uniform_open();                 // (0, 1), never 0 (for logs)
  uint64_t below(uint64_t n);            // uniform integer in [0, n), unbiased
  double normal();                       // standard normal (Marsaglia polar, no cached spare)
  double laplace(double scale);          // Laplace(0, scale)
  bool bernoulli(double p);
};

class Stream final : public RandomSource {
 public:
  Stream(uint64_t seed, std::string_view purpose, uint64_t rank = 0, uint64_t substream = 0);
  uint64_t next_u64() override;
  bool is_secure() const override { return false; }
  // A 64-bit seed for other generators (e.g. torch::Generator) derived from this stream.
  uint64_t derive_seed() { return next_u64(); }
  // Full state, for checkpoints (resume exactly).
  void get_state(uint64_t out[4]) const;
  void set_state(const uint64_t in[4]);

 private:
  uint64_t s_[4];
};

class SecureRandom final : public RandomSource {
 public:
  SecureRandom();
  uint64_t next_u64() override;
  bool is_secure() const override { return true; }
};

// XXH3-128 of a byte range, as (low, high) 64-bit halves: content hashes for dedup.
struct Hash128 {
  uint64_t lo = 0, hi = 0;
  bool operator==(const Hash128& o) const { return lo == o.lo && hi == o.hi; }
  bool operator<(const Hash128& o) const { return hi != o.hi ? hi < o.hi : lo < o.lo; }
};
Hash128 hash128(const void* data, size_t len, uint64_t seed = 0);
uint64_t hash64(const void* data, size_t len, uint64_t seed = 0);

}  // namespace conflux
