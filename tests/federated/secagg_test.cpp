// Secure aggregation's cryptographic core (federated/include/conflux/federated/secagg.h): a whole
// round simulated in one process (the coordinator's relaying done by the test), checking that the
// unmasked sum equals the plain sum (exactly for integers, within quantization error for floats),
// with one and two dropouts, that fewer than t shares fail with NotEnoughSharesError, that one
// masked vector looks uniform (chi-square with a fixed seed and a p ~ 1e-12 threshold), Shamir
// reconstruction from every t-subset, and the SecAgg+ neighbour graph's regularity and symmetry.
#include "conflux/core/error.h"
#include "conflux/federated/secagg.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

namespace sa = conflux::federated::secagg;

namespace {

struct RoundSpec {
  std::set<uint32_t> drop_before_share;  // in U1, not in U2
  std::set<uint32_t> drop_after_mask;    // in U2, masked input lost (not in U3)
  std::set<uint32_t> silent_in_unmask;   // in U3, no unmasking answer
};

// Runs one round with the test as the coordinator; returns the unmasked sum.
std::vector<uint32_t> run_round(const sa::Params& p, const std::vector<std::vector<uint32_t>>& x,
                                const RoundSpec& spec, uint64_t seed = 7) {
  const uint32_t n = p.num_participants;
  std::vector<sa::Participant> parts;
  for (uint32_t u = 0; u < n; ++u)
    parts.emplace_back(p, u, sa::RandomSource::seeded(seed, "participant " + std::to_string(u)));
  std::vector<sa::KeyAdvertisement> roster;
  for (auto& q : parts) roster.push_back(q.advertise());
  std::vector<sa::EncryptedShares> mailbox;
  std::vector<uint32_t> u2;
  for (auto& q : parts) {
    if (spec.drop_before_share.count(q.id())) continue;
    auto out = q.share_keys(roster);
    mailbox.insert(mailbox.end(), out.begin(), out.end());
    u2.push_back(q.id());
  }
  std::vector<std::pair<uint32_t, std::vector<uint32_t>>> masked;
  std::vector<uint32_t> u3;
  for (uint32_t u : u2) {
    std::vector<sa::EncryptedShares> mine;
    for (const auto& e : mailbox)
      if (e.to == u) mine.push_back(e);
    auto y = parts[u].masked_input(mine, x[u]);
    if (spec.drop_after_mask.count(u)) continue;
    masked.emplace_back(u, std::move(y));
    u3.push_back(u);
  }
  std::vector<sa::UnmaskResponse> responses;
  for (uint32_t u : u3)
    if (!spec.silent_in_unmask.count(u)) responses.push_back(parts[u].unmask(u3));
  return sa::unmask_sum(p, roster, u2, masked, responses);
}

std::vector<std::vector<uint32_t>> random_inputs(uint32_t n, size_t len, int bits, uint64_t seed) {
  std::mt19937_64 gen(seed);
  const uint32_t mask = bits >= 32 ? 0xFFFFFFFFu : ((1u << bits) - 1u);
  std::vector<std::vector<uint32_t>> x(n, std::vector<uint32_t>(len));
  for (auto& v : x)
    for (auto& e : v) e = static_cast<uint32_t>(gen()) & mask;
  return x;
}

std::vector<uint32_t> plain_sum(const std::vector<std::vector<uint32_t>>& x,
                                const std::set<uint32_t>& excluded, int bits) {
  const uint32_t mask = bits >= 32 ? 0xFFFFFFFFu : ((1u << bits) - 1u);
  std::vector<uint32_t> s(x[0].size(), 0);
  for (uint32_t u = 0; u < x.size(); ++u)
    if (!excluded.count(u))
      for (size_t i = 0; i < s.size(); ++i) s[i] = (s[i] + x[u][i]) & mask;
  return s;
}

sa::Params params(uint32_t n, uint32_t t, uint32_t degree = 0, int bits = 32) {
  sa::Params p;
  p.num_participants = n;
  p.threshold = t;
  p.degree = degree;
  p.round = 3;
  p.graph_seed = 11;
  p.modulus_bits = bits;
  return p;
}

TEST(SecAgg, IntegerSumIsExactWithoutDropouts) {
  for (int bits : {32, 20}) {
    const auto p = params(6, 4, 0, bits);
    const auto x = random_inputs(6, 1000, bits, 1);
    EXPECT_EQ(run_round(p, x, {}), plain_sum(x, {}, bits)) << bits << " bits";
  }
}

TEST(SecAgg, SurvivorsSumRecoveredAfterOneAndTwoDropouts) {
  const auto p = params(7, 4);
  const auto x = random_inputs(7, 500, 32, 2);
  EXPECT_EQ(run_round(p, x, {{}, {3}, {}}), plain_sum(x, {3}, 32));
  EXPECT_EQ(run_round(p, x, {{}, {0, 6}, {}}), plain_sum(x, {0, 6}, 32));
  // Also one dropped before sharing its keys, and one survivor silent in the unmasking stage.
  EXPECT_EQ(run_round(p, x, {{5}, {1}, {2}}), plain_sum(x, {5, 1}, 32));
}

TEST(SecAgg, SecAggPlusNeighboursOnlyWithDropouts) {
  const auto p = params(12, 3, 4);
  const auto x = random_inputs(12, 300, 32, 3);
  EXPECT_EQ(run_round(p, x, {}), plain_sum(x, {}, 32));
  EXPECT_EQ(run_round(p, x, {{}, {4}, {}}), plain_sum(x, {4}, 32));
  EXPECT_EQ(run_round(p, x, {{}, {4, 9}, {}}), plain_sum(x, {4, 9}, 32));
}

TEST(SecAgg, FloatSumWithinQuantizationError) {
  const uint32_t n = 5;
  const double clip = 1.0;
  const auto p = params(n, 3);
  sa::Quantizer qz(clip, p.modulus_bits, n);
  std::mt19937_64 gen(4);
  std::uniform_real_distribution<float> dist(-1.5f, 1.5f);
  const size_t len = 2000;
  std::vector<std::vector<float>> xf(n, std::vector<float>(len));
  std::vector<std::vector<uint32_t>> xq;
  auto rng = sa::RandomSource::seeded(5, "quantize");
  for (auto& v : xf) {
    for (auto& e : v) e = dist(gen);
    v[0] = 1.0f;  // every client at +clip: the extreme sum must not wrap
    v[1] = -7.0f;  // and at -clip after clipping
    xq.push_back(qz.quantize(v.data(), v.size(), rng));
  }
  for (const std::set<uint32_t>& dropped : {std::set<uint32_t>{}, std::set<uint32_t>{2}}) {
    const auto sum = qz.dequantize_sum(run_round(p, xq, {{}, dropped, {}}));
    for (size_t i = 0; i < len; ++i) {
      double want = 0;
      for (uint32_t u = 0; u < n; ++u)
        if (!dropped.count(u)) want += std::clamp<double>(xf[u][i], -clip, clip);
      ASSERT_NEAR(sum[i], want, (n - dropped.size()) / qz.scale() + 1e-6 * std::abs(want))
          << "coordinate " << i;
    }
    EXPECT_NEAR(sum[0], 1.0 * (n - dropped.size()), 1e-6);
    EXPECT_NEAR(sum[1], -1.0 * (n - dropped.size()), 1e-6);
  }
}

TEST(SecAgg, QuantizationIsUnbiasedAndRejectsNaN) {
  sa::Quantizer qz(1.0, 12, 4);  // coarse: M = 511, step ~ 0.002
  auto rng = sa::RandomSource::seeded(6, "quantize");
  const float v = 0.3337f;
  std::vector<float> x(200000, v);
  const auto q = qz.quantize(x.data(), x.size(), rng);
  double mean = 0;
  for (uint32_t e : q) mean += qz.dequantize_sum({e})[0];
  mean /= q.size();
  EXPECT_NEAR(mean, v, 3e-5);  // per-sample sd <= step/2 ~ 1e-3, so sd of the mean ~ 2e-6
  x[17] = std::nanf("");
  try {
    qz.quantize(x.data(), x.size(), rng);
    FAIL() << "NaN accepted";
  } catch (const conflux::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("coordinate 17 is NaN"), std::string::npos) << e.what();
  }
  x[17] = 0;
  x[3] = -INFINITY;
  EXPECT_THROW(qz.quantize(x.data(), x.size(), rng), conflux::DataError);
  EXPECT_THROW(sa::Quantizer(1.0, 8, 200), conflux::ConfigError);  // 200 * 1 > 127
}

TEST(SecAgg, BelowThresholdFailsWithNamedError) {
  // Server side: 3 survivors but only 2 answer; t = 3.
  const auto p = params(6, 3);
  const auto x = random_inputs(6, 50, 32, 7);
  try {
    run_round(p, x, {{}, {0, 1, 2}, {5}});
    FAIL() << "unmasking succeeded with too few shares";
  } catch (const sa::NotEnoughSharesError& e) {
    EXPECT_EQ(e.available(), 2u);
    EXPECT_EQ(e.needed(), 3u);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("2 shares available, 3 needed"), std::string::npos) << msg;
  }
  // Participant side: it refuses to reveal anything when fewer than t survive.
  const auto p4 = params(5, 4);
  const auto x4 = random_inputs(5, 50, 32, 8);
  try {
    run_round(p4, x4, {{}, {1, 2}, {}});
    FAIL() << "participants unmasked with 3 survivors and t = 4";
  } catch (const sa::NotEnoughSharesError& e) {
    EXPECT_EQ(e.available(), 3u);
    EXPECT_EQ(e.needed(), 4u);
  }
}

// Pearson chi-square of the top (or bottom) 8 bits over 256 bins.
double chi_square_byte(const std::vector<uint32_t>& v, int shift) {
  std::vector<double> hist(256, 0);
  for (uint32_t e : v) hist[(e >> shift) & 0xFF] += 1;
  const double expect = static_cast<double>(v.size()) / 256;
  double chi = 0;
  for (double h : hist) chi += (h - expect) * (h - expect) / expect;
  return chi;
}

TEST(SecAgg, MaskedVectorLooksUniform) {
  // 255 degrees of freedom: P(chi2 > 450) ~ 1e-12. Fixed seeds: deterministic, and it cannot flake.
  constexpr double kCritical = 450;
  const auto p = params(4, 2);
  const size_t len = 1 << 18;
  std::vector<std::vector<uint32_t>> x(4, std::vector<uint32_t>(len));
  for (auto& v : x)
    for (size_t i = 0; i < len; ++i) v[i] = static_cast<uint32_t>(i % 1000);  // very non-uniform
  EXPECT_GT(chi_square_byte(x[0], 24), 1e4) << "the control input should fail the test";
  std::vector<sa::Participant> parts;
  for (uint32_t u = 0; u < 4; ++u) parts.emplace_back(p, u, sa::RandomSource::seeded(9, std::to_string(u)));
  std::vector<sa::KeyAdvertisement> roster;
  for (auto& q : parts) roster.push_back(q.advertise());
  std::vector<sa::EncryptedShares> mailbox;
  for (auto& q : parts) {
    auto out = q.share_keys(roster);
    mailbox.insert(mailbox.end(), out.begin(), out.end());
  }
  std::vector<sa::EncryptedShares> mine;
  for (const auto& e : mailbox)
    if (e.to == 0) mine.push_back(e);
  const auto y = parts[0].masked_input(mine, x[0]);
  EXPECT_LT(chi_square_byte(y, 24), kCritical);
  EXPECT_LT(chi_square_byte(y, 0), kCritical);
  EXPECT_LT(chi_square_byte(y, 12), kCritical);
}

TEST(SecAgg, TamperedShareCiphertextIsRejectedNamingTheSender) {
  const auto p = params(3, 2);
  std::vector<sa::Participant> parts;
  for (uint32_t u = 0; u < 3; ++u) parts.emplace_back(p, u, sa::RandomSource::secure());
  std::vector<sa::KeyAdvertisement> roster;
  for (auto& q : parts) roster.push_back(q.advertise());
  parts[0].share_keys(roster);
  auto from1 = parts[1].share_keys(roster);
  auto it = std::find_if(from1.begin(), from1.end(), [](auto& e) { return e.to == 0; });
  ASSERT_NE(it, from1.end());
  it->ciphertext.back() ^= 1;
  try {
    parts[0].masked_input({*it}, std::vector<uint32_t>(4, 0));
    FAIL() << "tampered ciphertext accepted";
  } catch (const conflux::ProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find("from participant 1 fail to decrypt"), std::string::npos)
        << e.what();
  }
}

TEST(SecAgg, ShamirReconstructsFromEveryThresholdSubset) {
  auto rng = sa::RandomSource::seeded(10, "shamir");
  const sa::Key32 secret = rng.next_key();
  const std::vector<uint32_t> holders = {0, 1, 2, 3, 4, 5, 6};
  const uint32_t t = 3;
  const auto shares = sa::shamir_split(secret, t, holders, rng);
  int subsets = 0;
  for (uint32_t mask = 0; mask < (1u << holders.size()); ++mask) {
    std::vector<sa::Share> sub;
    for (size_t i = 0; i < holders.size(); ++i)
      if (mask >> i & 1) sub.push_back(shares[i]);
    if (sub.size() < t) {
      EXPECT_THROW(sa::shamir_reconstruct(sub, t, 9, "test secret"), sa::NotEnoughSharesError);
      continue;
    }
    EXPECT_EQ(sa::shamir_reconstruct(sub, t, 9, "test secret"), secret) << "subset " << mask;
    if (sub.size() == t) ++subsets;
  }
  EXPECT_EQ(subsets, 35);  // C(7, 3)
  // An extra share that disagrees is caught.
  auto bad = shares;
  bad[4].y[2] ^= 1;
  EXPECT_THROW(sa::shamir_reconstruct(bad, t, 9, "test secret"), conflux::ProtocolError);
  // All-0xFF secret (largest chunk values) round-trips.
  sa::Key32 ff;
  ff.fill(0xFF);
  EXPECT_EQ(sa::shamir_reconstruct(sa::shamir_split(ff, 2, {10, 20}, rng), 2, 0, "ff"), ff);
}

TEST(SecAgg, NeighbourGraphIsRegularAndSymmetric) {
  for (uint32_t n = 3; n <= 24; ++n) {
    for (uint32_t k = 1; k < n - 1; ++k) {
      if (k % 2 == 1 && n % 2 == 1) {
        EXPECT_THROW(sa::neighbour_graph(n, k, 1), conflux::ConfigError);
        continue;
      }
      const auto g = sa::neighbour_graph(n, k, 1234 + n);
      for (uint32_t u = 0; u < n; ++u) {
        ASSERT_EQ(g[u].size(), k) << "n=" << n << " k=" << k << " u=" << u;
        ASSERT_EQ(std::set<uint32_t>(g[u].begin(), g[u].end()).size(), k) << "repeated neighbour";
        for (uint32_t v : g[u]) {
          ASSERT_NE(u, v);
          ASSERT_TRUE(std::binary_search(g[v].begin(), g[v].end(), u)) << u << "-" << v;
        }
      }
    }
    const auto full = sa::neighbour_graph(n, 0, 1);
    for (uint32_t u = 0; u < n; ++u) EXPECT_EQ(full[u].size(), n - 1);
  }
  EXPECT_NE(sa::neighbour_graph(20, 4, 1), sa::neighbour_graph(20, 4, 2)) << "seed ignored";
  EXPECT_EQ(sa::neighbour_graph(20, 4, 1), sa::neighbour_graph(20, 4, 1));
}

TEST(SecAgg, PairwiseSeedsAgreeAndMasksCancel) {
  auto rng = sa::RandomSource::seeded(12, "keys");
  const auto a = sa::make_keypair(rng), b = sa::make_keypair(rng);
  const auto sab = sa::pairwise_seed(2, a, 5, b.public_key, 1);
  EXPECT_EQ(sab, sa::pairwise_seed(5, b, 2, a.public_key, 1));
  EXPECT_NE(sab, sa::pairwise_seed(2, a, 5, b.public_key, 2)) << "round not bound";
  std::vector<uint32_t> v(10000, 42);
  sa::add_mask(v.data(), v.size(), sab, +1, 32);
  EXPECT_NE(v[0], 42u);
  sa::add_mask(v.data(), v.size(), sab, -1, 32);
  EXPECT_EQ(v, std::vector<uint32_t>(10000, 42));
  sa::Key32 zero{};
  EXPECT_THROW(sa::pairwise_seed(0, a, 1, zero, 1), conflux::ProtocolError);
}

TEST(SecAgg, ParametersAreChecked) {
  EXPECT_THROW(sa::validate(params(5, 5)), conflux::ConfigError);      // t > n-1
  EXPECT_THROW(sa::validate(params(7, 2, 3)), conflux::ConfigError);   // odd k, odd n
  EXPECT_THROW(sa::validate(params(8, 5, 4)), conflux::ConfigError);   // t > k
  EXPECT_THROW(sa::validate(params(8, 2, 4, 40)), conflux::ConfigError);
  EXPECT_EQ(sa::validate(params(8, 2, 4)), 4u);
  EXPECT_EQ(sa::validate(params(8, 2)), 7u);
}

}  // namespace
