// Internal: fast random sources and vectorised kernels for the per-record stages.
//
// - RowStream: SplitMix64 started at a state derived from a key (XXH3-128 of seed and purpose,
//   computed once per run) and the record's (global row id, copy). Constructing one is a few
//   multiplies (no allocation), and a block of outputs is a pure function of (state, index), so
//   fill() vectorises. Output depends only on (seed, purpose, row, copy): identical for any
//   number of ranks or threads. Not a CSPRNG (seeded runs are marked "not private" anyway).
// - ChaChaRandom: the ChaCha20 keystream (libsodium crypto_stream_chacha20) under a 256-bit key
//   drawn from libsodium's randombytes (the OS CSPRNG) at construction, with a fresh 64-bit nonce
//   per 4 KiB block. ChaCha20 is a cryptographically secure generator, so this is a private noise
//   source like SecureRandom, ~100x faster than one randombytes call per 8 bytes.
// - fill_u64(): bulk output of any RandomSource (fast paths for the two classes above).
// - gaussian_pairs(): Box-Muller from 2 x 64 random bits per pair, written with IEEE basic
//   operations only (+ - * / sqrt, exact bit manipulation), so every SIMD variant gives
//   bit-identical results; log and sin/cos are polynomial with relative error < 1e-15.
// - mask_tokens(): per-token masking decision from 32 random bits.
// Thread safety: objects are per thread; the functions are pure.
#pragma once

#include "conflux/core/rng.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace conflux::dataplane {

struct StreamKey {
  uint64_t a = 0, b = 0;
};
StreamKey stream_key(uint64_t seed, std::string_view purpose);

class RowStream final : public RandomSource {
 public:
  static constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ull;
  RowStream(const StreamKey& key, uint64_t row, uint64_t copy = 0);
  uint64_t next_u64() override { return mix(state_ += kGamma); }
  bool is_secure() const override { return false; }
  void fill(uint64_t* out, size_t n);
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

class ChaChaRandom final : public RandomSource {
 public:
  ChaChaRandom();
  ~ChaChaRandom() override;
  ChaChaRandom(const ChaChaRandom&) = delete;
  ChaChaRandom& operator=(const ChaChaRandom&) = delete;
  uint64_t next_u64() override;
  bool is_secure() const override { return true; }
  void fill(uint64_t* out, size_t n);

 private:
  void refill();
  static constexpr size_t kWords = 512;  // 4 KiB of keystream per refill
  unsigned char key_[32];
  uint64_t nonce_ = 0;
  uint64_t buf_[kWords];
  size_t pos_ = kWords;
};

// n outputs of rng (the same values n calls of next_u64 would give, for RowStream and ChaChaRandom
// in their own bulk order).
void fill_u64(RandomSource& rng, uint64_t* out, size_t n);

// z[2j], z[2j+1] = a standard normal pair from bits[2j], bits[2j+1] (Box-Muller: the first word
// gives u in (0, 1) with 53-bit resolution, |z| <= 8.57; the second the angle).
void gaussian_pairs(const uint64_t* bits, size_t pairs, double* z);

// gaussian_pairs compiled for one ISA level (0 baseline, 1 AVX2, 2 AVX-512); false if this CPU
// lacks it. For tests: every level must give the same bits.
bool gaussian_pairs_isa(int isa, const uint64_t* bits, size_t pairs, double* z);

// t[i] = mask_id where t[i] is a content token (0 <= t < 256) and the i-th 32-bit word of
// `bits` is below `threshold` (P = threshold / 2^32; threshold 2^32 masks every content token).
void mask_tokens(int32_t* t, size_t n, const uint32_t* bits, uint64_t threshold, int32_t mask_id);

}  // namespace conflux::dataplane
