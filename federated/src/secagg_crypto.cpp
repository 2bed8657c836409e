// Secure aggregation building blocks on libsodium: the random source (secure or seeded ChaCha20),
// X25519 key pairs and pairwise mask seeds, the ChaCha20 mask PRG, the SecAgg+ neighbour graph and
// the parameter check. See secagg.h for the protocol these serve.
#include <conflux/federated/secagg.h>

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "secagg_internal.h"

namespace conflux::federated::secagg {

void detail::ensure_sodium() {
  static const int rc = sodium_init();
  if (rc < 0) CONFLUX_THROW(InternalError, "secure aggregation: libsodium failed to initialise");
}

uint32_t validate(const Params& p) {
  if (p.num_participants < 2)
    CONFLUX_THROW(ConfigError, "secure_aggregation: needs at least 2 participants, got {}",
                  p.num_participants);
  if (p.modulus_bits < 8 || p.modulus_bits > 32)
    CONFLUX_THROW(ConfigError, "secure_aggregation.modulus_bits must be in [8, 32], got {}",
                  p.modulus_bits);
  const uint32_t n = p.num_participants;
  const uint32_t k = (p.degree == 0 || p.degree >= n - 1) ? n - 1 : p.degree;
  if (k < n - 1 && k % 2 == 1 && n % 2 == 1)
    CONFLUX_THROW(ConfigError,
                  "secure_aggregation.degree {} is odd and the cohort size {} is odd: no {}-regular "
                  "graph exists (use an even degree)", k, n, k);
  if (p.threshold < 1 || p.threshold > k)
    CONFLUX_THROW(ConfigError,
                  "secure_aggregation.threshold must be in [1, degree = {}], got {}", k, p.threshold);
  return k;
}

RandomSource RandomSource::secure() {
  detail::ensure_sodium();
  return RandomSource{};
}

RandomSource RandomSource::seeded(uint64_t seed, const std::string& label) {
  detail::ensure_sodium();
  RandomSource r;
  r.seeded_ = true;
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, r.key_.size());
  const std::string domain = "conflux secagg rng v1";
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(domain.data()), domain.size());
  uint8_t s[8];
  detail::store_le64(s, seed);
  crypto_generichash_update(&st, s, sizeof s);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(label.data()), label.size());
  crypto_generichash_final(&st, r.key_.data(), r.key_.size());
  return r;
}

void RandomSource::fill(uint8_t* out, size_t len) {
  if (!seeded_) {
    randombytes_buf(out, len);
    return;
  }
  static const uint8_t kNonce[crypto_stream_chacha20_NONCEBYTES] = {};
  while (len > 0) {
    if (used_ == buf_.size()) {
      buf_.fill(0);
      crypto_stream_chacha20_xor_ic(buf_.data(), buf_.data(), buf_.size(), kNonce, block_++,
                                    key_.data());
      used_ = 0;
    }
    const size_t take = std::min(len, buf_.size() - used_);
    std::memcpy(out, buf_.data() + used_, take);
    used_ += take;
    out += take;
    len -= take;
  }
}

uint64_t RandomSource::next_u64() {
  uint8_t b[8];
  fill(b, sizeof b);
  return detail::load_le64(b);
}

Key32 RandomSource::next_key() {
  Key32 k;
  fill(k.data(), k.size());
  return k;
}

KeyPair make_keypair(RandomSource& rng) {
  KeyPair kp;
  kp.secret_key = rng.next_key();
  crypto_scalarmult_base(kp.public_key.data(), kp.secret_key.data());
  return kp;
}

Key32 pairwise_seed(uint32_t my_id, const KeyPair& mine, uint32_t their_id, const Key32& their_pk,
                    uint64_t round) {
  detail::ensure_sodium();
  uint8_t shared[crypto_scalarmult_BYTES];
  if (crypto_scalarmult(shared, mine.secret_key.data(), their_pk.data()) != 0)
    CONFLUX_THROW(ProtocolError,
                  "secure aggregation round {}: participant {}'s mask key is a low-order point "
                  "(rejected by participant {})", round, their_id, my_id);
  const Key32& lo = my_id < their_id ? mine.public_key : their_pk;
  const Key32& hi = my_id < their_id ? their_pk : mine.public_key;
  crypto_generichash_state st;
  Key32 seed;
  crypto_generichash_init(&st, nullptr, 0, seed.size());
  const std::string domain = "conflux secagg pairwise v1";
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(domain.data()), domain.size());
  crypto_generichash_update(&st, shared, sizeof shared);
  crypto_generichash_update(&st, lo.data(), lo.size());
  crypto_generichash_update(&st, hi.data(), hi.size());
  uint8_t r[8];
  detail::store_le64(r, round);
  crypto_generichash_update(&st, r, sizeof r);
  crypto_generichash_final(&st, seed.data(), seed.size());
  sodium_memzero(shared, sizeof shared);
  return seed;
}

void add_mask(uint32_t* acc, size_t n, const Key32& seed, int sign, int bits) {
  detail::ensure_sodium();
  const uint32_t mask = bits >= 32 ? 0xFFFFFFFFu : ((1u << bits) - 1u);
  static const uint8_t kNonce[crypto_stream_chacha20_NONCEBYTES] = {};
  constexpr size_t kBlocks = 256;  // 16 KiB of keystream per call
  alignas(64) uint8_t buf[64 * kBlocks];
  uint64_t block = 0;
  for (size_t start = 0; start < n; start += sizeof buf / 4) {
    const size_t count = std::min(n - start, sizeof buf / 4);
    const size_t bytes = (count * 4 + 63) / 64 * 64;
    std::memset(buf, 0, bytes);
    crypto_stream_chacha20_xor_ic(buf, buf, bytes, kNonce, block, seed.data());
    block += bytes / 64;
    uint32_t* a = acc + start;
    if (sign >= 0) {
      for (size_t i = 0; i < count; ++i) a[i] = (a[i] + detail::load_le32(buf + 4 * i)) & mask;
    } else {
      for (size_t i = 0; i < count; ++i) a[i] = (a[i] - detail::load_le32(buf + 4 * i)) & mask;
    }
  }
}

std::vector<std::vector<uint32_t>> neighbour_graph(uint32_t n, uint32_t degree, uint64_t seed) {
  std::vector<std::vector<uint32_t>> nb(n);
  if (n < 2) return nb;
  if (degree == 0 || degree >= n - 1) {
    for (uint32_t u = 0; u < n; ++u)
      for (uint32_t v = 0; v < n; ++v)
        if (u != v) nb[u].push_back(v);
    return nb;
  }
  if (degree % 2 == 1 && n % 2 == 1)
    CONFLUX_THROW(ConfigError, "secure aggregation: no {}-regular graph on {} participants (odd "
                  "degree and odd cohort)", degree, n);
  // Seeded permutation (Fisher-Yates), then the Harary graph on the ring of positions.
  std::vector<uint32_t> at(n);
  for (uint32_t i = 0; i < n; ++i) at[i] = i;
  RandomSource rng = RandomSource::seeded(seed, "secagg+ neighbour graph");
  for (uint32_t i = n - 1; i > 0; --i) std::swap(at[i], at[rng.next_u64() % (uint64_t{i} + 1)]);
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t d = 1; d <= degree / 2; ++d) {
      nb[at[i]].push_back(at[(i + d) % n]);
      nb[at[i]].push_back(at[(i + n - d) % n]);
    }
    if (degree % 2 == 1) nb[at[i]].push_back(at[(i + n / 2) % n]);
  }
  for (auto& v : nb) std::sort(v.begin(), v.end());
  return nb;
}

}  // namespace conflux::federated::secagg
