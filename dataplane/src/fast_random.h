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
// - add_normal(): Gaussian noise in float, Box-Muller from 64 random bits per pair, written with
//   IEEE basic operations only (+ - * sqrt, exact bit manipulation, no division), so every SIMD
//   variant gives bit-identical results; clip_l2_rows() / sum_squares() likewise.
// - mask_tokens() / mask_stream(): per-token masking decision from 32 random bits.
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
  static constexpr uint64_t kMix1 = 0xbf58476d1ce4e5b9ull, kMix2 = 0x94d049bb133111ebull;  // mix's multipliers
  static constexpr uint64_t kCopySalt = 0x632be59bd9b4e019ull;
  RowStream(const StreamKey& key, uint64_t row, uint64_t copy = 0) : state_(start(key, row, copy)) {}
  // The starting state of (key, row, copy).
  static uint64_t start(const StreamKey& key, uint64_t row, uint64_t copy = 0) {
    return mix(key.a ^ mix(row * kGamma + key.b)) ^ mix(copy + kCopySalt);
  }
  uint64_t next_u64() override { return mix(state_ += kGamma); }
  bool is_secure() const override { return false; }
  void fill(uint64_t* out, size_t n);
  uint64_t state() const { return state_; }
  void skip(size_t n) { state_ += n * kGamma; }
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * kMix1;
    z = (z ^ (z >> 27)) * kMix2;
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

// x[2j] += sigma z0_j, x[2j+1] += sigma z1_j for x[0..n): (z0_j, z1_j) is the standard normal pair
// of the 64-bit word bits[j] (ceil(n / 2) words; an odd n uses z0 of the last). Box-Muller in
// float: u = (k + 1/2) 2^-40 with k the top 40 bits, rounded to float and capped at 1 - 2^-24
// (so 3.5e-4 <= r <= 7.54), the angle 2 pi l 2^-24 with l the low 24 bits. log and sin/cos are
// division-free polynomials (relative error < 2e-7) in IEEE basic operations without FMA
// contraction, so every ISA level gives the same bits.
void add_normal(float* x, size_t n, const uint64_t* bits, float sigma);
// add_normal compiled for one ISA level (0 baseline, 1 AVX2, 2 AVX-512); false if this CPU lacks
// it. For tests: every level must give the same bits. The *_isa functions below likewise.
bool add_normal_isa(int isa, float* x, size_t n, const uint64_t* bits, float sigma);

// Sum of x[i]^2 in double with 8 partial sums in a fixed order (vectorised, rank/ISA-independent).
double sum_squares(const float* x, size_t n);
bool sum_squares_isa(int isa, const float* x, size_t n, double* out);
// L2 clipping of `rows` contiguous rows of `dim` floats to radius `bound` (as clip_l2 per row).
void clip_l2_rows(float* x, size_t rows, size_t dim, double bound);
bool clip_l2_rows_isa(int isa, float* x, size_t rows, size_t dim, double bound);
// out[r * per + i] = output i of RowStream(key, ids[r]) for r < rows, i < per (one vectorised pass).
void fill_rows(const StreamKey& key, const int64_t* ids, size_t rows, size_t per, uint64_t* out);

// t[i] = mask_id where t[i] is a content token (0 <= t < 256) and the i-th 32-bit word of
// `bits` is below `threshold` (P = threshold / 2^32; threshold 2^32 masks every content token).
void mask_tokens(int32_t* t, size_t n, const uint32_t* bits, uint64_t threshold, int32_t mask_id);
// The same decisions with the words drawn from `rng` (fill of ceil(n / 2) words, low half
// first) fused into one pass; rng advances by ceil(n / 2). isa -1 = the dispatched variant.
void mask_stream(int32_t* t, size_t n, RowStream& rng, uint64_t threshold, int32_t mask_id);
bool mask_stream_isa(int isa, int32_t* t, size_t n, RowStream& rng, uint64_t threshold, int32_t mask_id);
// mask_stream on records [0, rows) of a ragged tokens column (offsets[r]..offsets[r + 1]), record
// r with RowStream(key, ids[r]); one call, no per-record dispatch.
void mask_records(int32_t* t, const int64_t* offsets, size_t rows, const int64_t* ids, const StreamKey& key,
                  uint64_t threshold, int32_t mask_id);
bool mask_records_isa(int isa, int32_t* t, const int64_t* offsets, size_t rows, const int64_t* ids,
                      const StreamKey& key, uint64_t threshold, int32_t mask_id);

}  // namespace conflux::dataplane
