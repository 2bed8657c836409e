// Secure aggregation: Shamir secret sharing of 32-byte secrets over the prime field GF(2^61 - 1)
// (five polynomials, one per 7-byte chunk), with reconstruction from any t shares and a
// consistency check of the extra shares.
#include <conflux/federated/secagg.h>

#include <algorithm>
#include <map>

namespace conflux::federated::secagg {

namespace {

constexpr uint64_t kP = (uint64_t{1} << 61) - 1;
constexpr int kChunks = 5;
constexpr int kChunkBytes = 7;

uint64_t add(uint64_t a, uint64_t b) {
  uint64_t s = a + b;
  return s >= kP ? s - kP : s;
}
uint64_t sub(uint64_t a, uint64_t b) { return a >= b ? a - b : a + kP - b; }
uint64_t mul(uint64_t a, uint64_t b) {
  const unsigned __int128 t = static_cast<unsigned __int128>(a) * b;
  uint64_t r = (static_cast<uint64_t>(t) & kP) + static_cast<uint64_t>(t >> 61);
  r = (r & kP) + (r >> 61);
  return r >= kP ? r - kP : r;
}
uint64_t power(uint64_t a, uint64_t e) {
  uint64_t r = 1;
  while (e) {
    if (e & 1) r = mul(r, a);
    a = mul(a, a);
    e >>= 1;
  }
  return r;
}
uint64_t inverse(uint64_t a) { return power(a, kP - 2); }

uint64_t random_element(RandomSource& rng) {
  for (;;) {
    const uint64_t v = rng.next_u64() & kP;  // 61 bits
    if (v != kP) return v;
  }
}

size_t chunk_len(int c) { return std::min<size_t>(kChunkBytes, 32 - c * kChunkBytes); }

}  // namespace

std::vector<Share> shamir_split(const Key32& secret, uint32_t threshold,
                                const std::vector<uint32_t>& holders, RandomSource& rng) {
  if (threshold < 1 || threshold > holders.size())
    CONFLUX_THROW(ProtocolError, "secure aggregation: cannot share a secret with threshold {} "
                  "among {} holders", threshold, holders.size());
  std::array<std::vector<uint64_t>, kChunks> coef;
  for (int c = 0; c < kChunks; ++c) {
    uint64_t s = 0;
    for (size_t b = 0; b < chunk_len(c); ++b) s |= uint64_t{secret[c * kChunkBytes + b]} << (8 * b);
    coef[c].push_back(s);
    for (uint32_t d = 1; d < threshold; ++d) coef[c].push_back(random_element(rng));
  }
  std::vector<Share> shares;
  shares.reserve(holders.size());
  for (uint32_t h : holders) {
    Share sh;
    sh.holder = h;
    const uint64_t x = uint64_t{h} + 1;
    for (int c = 0; c < kChunks; ++c) {
      uint64_t y = 0;
      for (size_t d = coef[c].size(); d-- > 0;) y = add(mul(y, x), coef[c][d]);
      sh.y[c] = y;
    }
    shares.push_back(sh);
  }
  for (auto& c : coef) std::fill(c.begin(), c.end(), 0);
  return shares;
}

Key32 shamir_reconstruct(const std::vector<Share>& shares, uint32_t threshold, uint32_t owner,
                         const std::string& what) {
  // Distinct holders; the same holder twice must carry the same share.
  std::map<uint32_t, const Share*> by_holder;
  for (const Share& s : shares) {
    auto [it, fresh] = by_holder.emplace(s.holder, &s);
    if (!fresh && it->second->y != s.y)
      CONFLUX_THROW(ProtocolError, "secure aggregation: {}: participant {} sent two different "
                    "shares", what, s.holder);
  }
  if (threshold < 1 || by_holder.size() < threshold)
    throw NotEnoughSharesError(
        fmt::format("secure aggregation: cannot rebuild {}: {} shares available, {} needed "
                    "(threshold t = {})", what, by_holder.size(), threshold, threshold),
        __FILE__, __LINE__, owner, by_holder.size(), threshold);
  std::vector<const Share*> base, extra;
  for (auto& [h, s] : by_holder) (base.size() < threshold ? base : extra).push_back(s);
  // Lagrange basis at point z over the base points.
  auto basis = [&](uint64_t z) {
    std::vector<uint64_t> l(base.size());
    for (size_t j = 0; j < base.size(); ++j) {
      const uint64_t xj = uint64_t{base[j]->holder} + 1;
      uint64_t num = 1, den = 1;
      for (size_t m = 0; m < base.size(); ++m) {
        if (m == j) continue;
        const uint64_t xm = uint64_t{base[m]->holder} + 1;
        num = mul(num, sub(z, xm));
        den = mul(den, sub(xj, xm));
      }
      l[j] = mul(num, inverse(den));
    }
    return l;
  };
  auto eval = [&](const std::vector<uint64_t>& l, int c) {
    uint64_t v = 0;
    for (size_t j = 0; j < base.size(); ++j) v = add(v, mul(l[j], base[j]->y[c]));
    return v;
  };
  for (const Share* e : extra) {
    const auto l = basis(uint64_t{e->holder} + 1);
    for (int c = 0; c < kChunks; ++c)
      if (eval(l, c) != e->y[c])
        CONFLUX_THROW(ProtocolError, "secure aggregation: {}: participant {}'s share disagrees "
                      "with the others", what, e->holder);
  }
  const auto l0 = basis(0);
  Key32 secret{};
  for (int c = 0; c < kChunks; ++c) {
    const uint64_t v = eval(l0, c);
    if (v >> (8 * chunk_len(c)))
      CONFLUX_THROW(ProtocolError, "secure aggregation: {}: the shares rebuild an out-of-range "
                    "value (corrupt shares)", what);
    for (size_t b = 0; b < chunk_len(c); ++b)
      secret[c * kChunkBytes + b] = static_cast<uint8_t>(v >> (8 * b));
  }
  return secret;
}

}  // namespace conflux::federated::secagg
