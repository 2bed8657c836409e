// The participant's side of secure aggregation in rounds (tasks/include/conflux/tasks/
// secagg_round.h, SecaggClient): three clients in one process, the test relaying their JSON as the
// coordinator does. Checks the weighted sum after unmasking (within the quantization bound), that
// a client refuses a second unmasking request (which could reveal both shares of one peer), a
// roster carrying other keys under its id, and a stage of a round it never advertised for.
#include <conflux/core/error.h>
#include <conflux/core/rng.h>
#include <conflux/federated/secagg.h>
#include <conflux/tasks/secagg_round.h>

#include <gtest/gtest.h>

#include <cmath>

namespace sa = conflux::federated::secagg;
using conflux::tasks::SecaggClient;
using json = nlohmann::json;

namespace {

constexpr uint32_t kN = 3;
constexpr double kClip = 0.5;

json base(uint32_t id, uint64_t round = 65536) {
  return {{"round", round}, {"n", kN}, {"threshold", 2}, {"degree", 0}, {"graph_seed", 9}, {"bits", 16},
          {"clip", kClip}, {"id", id}};
}

sa::Key32 key(const json& j) {
  sa::Key32 k{};
  const std::string s = j.get<std::string>();
  for (size_t i = 0; i < 32; ++i) k[i] = static_cast<uint8_t>(std::stoi(s.substr(2 * i, 2), nullptr, 16));
  return k;
}

struct Round {
  SecaggClient c[kN];
  json roster = json::array();
  std::vector<sa::KeyAdvertisement> ads;
  json inbox[kN];

  void advertise_and_share() {
    for (uint32_t i = 0; i < kN; ++i) {
      json a = c[i].advertise(base(i));
      roster.push_back({{"id", i}, {"identity", "p" + std::to_string(i)}, {"c_pk", a["c_pk"]}, {"s_pk", a["s_pk"]}});
      ads.push_back({i, key(a["c_pk"]), key(a["s_pk"])});
    }
    for (uint32_t i = 0; i < kN; ++i) {
      json st = base(i);
      st["roster"] = roster;
      const json out = c[i].share_keys(st);
      for (const auto& e : out["shares"])
        inbox[e["to"].get<uint32_t>()].push_back({{"from", i}, {"ct", e["ct"]}});
    }
  }
};

// Masks x[i] (masked_input with the stage `extra` adds), unmasks with every client surviving and
// returns the dequantized sum (quantizer range `clip`).
std::vector<float> unmasked_sum(Round& r, const std::vector<std::vector<float>>& x, const int64_t* n,
                                const json& extra, double clip) {
  std::vector<std::pair<uint32_t, std::vector<uint32_t>>> masked;
  for (uint32_t i = 0; i < kN; ++i) {
    json st = base(i);
    st["shares"] = r.inbox[i];
    st.update(extra);
    masked.emplace_back(i, r.c[i].masked_input(st, x[i], n[i]));
  }
  std::vector<sa::UnmaskResponse> responses;
  for (uint32_t i = 0; i < kN; ++i) {
    json st = base(i);
    st["survivors"] = {0, 1, 2};
    const json a = r.c[i].unmask(st);
    sa::UnmaskResponse u{i, {}, {}};
    for (const auto& e : a["self"]) {
      sa::Share s;
      s.holder = e[1].get<uint32_t>();
      for (int k = 0; k < 5; ++k) s.y[k] = e[2 + k].get<uint64_t>();
      u.self_mask_shares.emplace_back(e[0].get<uint32_t>(), s);
    }
    EXPECT_TRUE(a["keys"].empty()) << "no key shares when nobody dropped";
    responses.push_back(u);
  }
  sa::Params p;
  p.num_participants = kN;
  p.threshold = 2;
  p.round = 65536;
  p.graph_seed = 9;
  p.modulus_bits = 16;
  return sa::Quantizer(clip, 16, kN).dequantize_sum(sa::unmask_sum(p, r.ads, {0, 1, 2}, masked, responses));
}

}  // namespace

TEST(SecaggClient, WeightedSumAfterUnmasking) {
  Round r;
  r.advertise_and_share();
  const std::vector<std::vector<float>> x = {{0.1f, -0.2f, 0.3f}, {0.05f, 0.0f, -0.4f}, {-0.25f, 0.45f, 0.2f}};
  const int64_t n[kN] = {10, 30, 60};
  const auto got = unmasked_sum(r, x, n, {{"weight_total", 100}}, kClip);
  const sa::Quantizer q(kClip, 16, kN);
  for (size_t j = 0; j < 3; ++j) {
    double want = 0;
    for (uint32_t i = 0; i < kN; ++i) want += x[i][j] * static_cast<double>(n[i]) / 100.0;
    EXPECT_LE(std::abs(got[j] - want), kN / q.scale() + 1e-6) << "coordinate " << j;
  }
}

// DP-FedAvg under secure aggregation (SecaggDp): each client clips its update to L2 norm S,
// unweighted, and adds its seeded noise share Stream(seed, "secagg-dp-noise", round tag, id); the
// unmasked sum is the sum of the clipped updates plus exactly those draws.
TEST(SecaggClient, DpClipsToL2NormAndAddsItsNoiseShareUnweighted) {
  namespace c = conflux;
  const std::vector<std::vector<float>> x = {{0.3f, -0.4f, 0.0f}, {0.05f, 0.0f, -0.1f}, {-0.6f, 0.8f, 0.0f}};
  const int64_t n[kN] = {10, 30, 60};  // ignored under DP
  const double S = 0.25, sigma = 0.01;
  for (const int64_t seed : {int64_t{-2}, int64_t{5}}) {  // -2: no noise (stddev 0); 5: seeded noise
    Round r;
    r.advertise_and_share();
    const double sd = seed < 0 ? 0.0 : sigma;
    const auto got = unmasked_sum(r, x, n, {{"dp", {{"clip", S}, {"noise_stddev", sd}, {"noise_seed", seed}}}}, kClip);
    const sa::Quantizer q(kClip, 16, kN);
    std::vector<double> want(3, 0.0), plain(3, 0.0);
    for (uint32_t i = 0; i < kN; ++i) {
      double norm = 0;
      for (float v : x[i]) norm += double(v) * v;
      norm = std::sqrt(norm);
      c::Stream noise(5, "secagg-dp-noise", 65536, i);
      for (size_t j = 0; j < 3; ++j) {
        const float clipped = static_cast<float>(x[i][j] * std::min(1.0, S / norm));
        want[j] += sd > 0 ? static_cast<float>(clipped + sd * noise.normal()) : clipped;
        plain[j] += clipped;
      }
    }
    for (size_t j = 0; j < 3; ++j)
      EXPECT_LE(std::abs(got[j] - want[j]), kN / q.scale() + 1e-6) << "seed " << seed << " coordinate " << j;
    // Clipping happened (clients 0 and 2 have norm 0.5 and 1.0 > S); with noise, the sum moved.
    EXPECT_NEAR(plain[0], 0.3 * 0.5 + 0.05 - 0.6 * 0.25, 1e-6);
    if (sd > 0) {
      EXPECT_GT(std::abs(got[0] - plain[0]) + std::abs(got[1] - plain[1]), 10 * kN / q.scale());
    }
  }
}

TEST(SecaggClient, RefusesASecondUnmaskingRequest) {
  Round r;
  r.advertise_and_share();
  for (uint32_t i = 0; i < kN; ++i) {
    json st = base(i);
    st["shares"] = r.inbox[i];
    st["weight_total"] = 3;
    r.c[i].masked_input(st, {0.1f, 0.2f}, 1);
  }
  json st = base(0);
  st["survivors"] = {0, 1, 2};
  const json first = r.c[0].unmask(st);
  EXPECT_EQ(first["self"].size(), 3u);
  // Asked again with participant 2 "dropped": answering would reveal 2's key share after its
  // self-mask share, which unmasks 2's input.
  st["survivors"] = {0, 1};
  EXPECT_THROW(r.c[0].unmask(st), conflux::Error);
}

TEST(SecaggClient, RejectsARosterWithOtherKeysForItself) {
  Round r;
  for (uint32_t i = 0; i < kN; ++i) {
    json a = r.c[i].advertise(base(i));
    r.roster.push_back({{"id", i}, {"identity", "p" + std::to_string(i)}, {"c_pk", a["c_pk"]}, {"s_pk", a["s_pk"]}});
  }
  json st = base(0);
  st["roster"] = r.roster;
  st["roster"][0]["s_pk"] = r.roster[1]["s_pk"];
  try {
    r.c[0].share_keys(st);
    FAIL() << "a roster with substituted keys was accepted";
  } catch (const conflux::ProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find("other keys for this participant"), std::string::npos) << e.what();
  }
}

TEST(SecaggClient, RejectsAStageOfAnotherRound) {
  SecaggClient c;
  c.advertise(base(0, 65536));
  json st = base(0, 2 * 65536);
  st["survivors"] = {0, 1, 2};
  EXPECT_THROW(c.unmask(st), conflux::ProtocolError);
  SecaggClient fresh;
  EXPECT_THROW(fresh.unmask(st), conflux::ProtocolError);
}

// The same request again (a re-send) keeps the keys; the same round tag from another coordinator
// session (a restarted coordinator) starts afresh, and the old session's later stages are refused.
TEST(SecaggClient, ANewCoordinatorSessionGetsFreshKeys) {
  SecaggClient c;
  json first = base(0);
  first["session"] = 7;
  const json a = c.advertise(first);
  EXPECT_EQ(c.advertise(first), a) << "a re-sent advertise request keeps the keys";
  json second = first;
  second["session"] = 8;
  const json b = c.advertise(second);
  EXPECT_NE(b["c_pk"], a["c_pk"]);
  EXPECT_NE(b["s_pk"], a["s_pk"]);
  first["roster"] = json::array();
  EXPECT_THROW(c.share_keys(first), conflux::ProtocolError) << "the old session's state is gone";
}
