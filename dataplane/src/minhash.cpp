// MinHash building blocks: shingle sets, Jaccard similarity, signatures.
#include "conflux/core/rng.h"
#include "conflux/dataplane/dedup.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace conflux::dataplane {

double MinHashParams::effective_threshold() const {
  return threshold > 0 ? threshold : std::pow(1.0 / bands, 1.0 / rows);
}

std::vector<uint64_t> shingle_set(const int32_t* tokens, int64_t n, int k) {
  std::vector<uint64_t> s;
  if (n <= k) {
    s.push_back(hash64(tokens, static_cast<size_t>(n) * 4, 0x5417));
    return s;
  }
  s.reserve(static_cast<size_t>(n - k + 1));
  for (int64_t i = 0; i + k <= n; ++i) s.push_back(hash64(tokens + i, static_cast<size_t>(k) * 4, 0x5417));
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
  return s;
}

double jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  size_t i = 0, j = 0, inter = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] < b[j])
      ++i;
    else if (b[j] < a[i])
      ++j;
    else {
      ++inter;
      ++i;
      ++j;
    }
  }
  size_t uni = a.size() + b.size() - inter;
  return uni == 0 ? 1.0 : static_cast<double>(inter) / static_cast<double>(uni);
}

namespace {
// out[i] = min_j ((a[i] * x[j] + b[i]) mod 2^64) >> 32. Cloned for AVX-512 (64-bit vector
// multiplies) with a portable fallback; both give identical results.
__attribute__((target_clones("arch=skylake-avx512", "default"))) void minhash_kernel(
    const uint64_t* x, size_t n, const uint64_t* a, const uint64_t* b, int m, uint32_t* out) {
  for (int i = 0; i < m; ++i) {
    const uint64_t ai = a[i], bi = b[i];
    uint64_t mn = ~uint64_t{0};
    for (size_t j = 0; j < n; ++j) {
      uint64_t h = ai * x[j] + bi;
      mn = h < mn ? h : mn;
    }
    out[i] = static_cast<uint32_t>(mn >> 32);
  }
}
}  // namespace

void minhash_signature(const std::vector<uint64_t>& shingles, const MinHashParams& p, uint32_t* out) {
  const int m = p.bands * p.rows;
  // Multiply-add-shift hashes h_i(x) = (a_i * x + b_i mod 2^64) >> 32 (Dietzfelbinger; a_i odd)
  // on the 64-bit shingle hashes, parameters from a stream keyed by the seed.
  thread_local std::vector<uint64_t> a, b;
  thread_local uint64_t cached_seed = 0;
  thread_local int cached_m = 0;
  if (cached_m != m || cached_seed != p.seed) {
    Stream rng(p.seed, "minhash", 0);
    a.resize(static_cast<size_t>(m));
    b.resize(static_cast<size_t>(m));
    for (int i = 0; i < m; ++i) {
      a[i] = rng.next_u64() | 1ull;
      b[i] = rng.next_u64();
    }
    cached_m = m;
    cached_seed = p.seed;
  }
  minhash_kernel(shingles.data(), shingles.size(), a.data(), b.data(), m, out);
}

}  // namespace conflux::dataplane
