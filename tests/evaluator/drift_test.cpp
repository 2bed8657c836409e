// PSI and KS against numpy (inverted-CDF deciles, searchsorted bins) and scipy.stats.ks_2samp.
#include "conflux/core/error.h"
#include "conflux/evaluator/drift.h"
#include "conflux/evaluator/metric.h"
#include "reference_data.h"

#include <gtest/gtest.h>

namespace conflux::evaluator {
namespace {

TEST(Drift, MatchesNumpyAndScipy) {
  Batch b;
  std::vector<std::string> categorical;
  for (const auto& [name, f] : test::reference().at("drift").items()) {
    b.reference_features[name] = f.at("reference").get<std::vector<double>>();
    if (f.at("categorical").get<bool>()) categorical.push_back(name);
  }
  // current rows differ in count per feature: one batch per feature, merged
  auto m = make_metric("drift", {{"categorical", categorical}});
  Stats s = m->partial(b);
  for (const auto& [name, f] : test::reference().at("drift").items()) {
    Batch cur;
    cur.features[name] = f.at("current").get<std::vector<double>>();
    merge_into(s, m->partial(cur));
  }
  const Result r = m->finalize(s);
  size_t seen = 0;
  double max_psi = 0;
  for (const auto& got : r.detail.at("features")) {
    const auto name = got.at("feature").get<std::string>();
    const auto& e = test::reference().at("drift").at(name);
    EXPECT_EQ(got.at("reference_counts"), e.at("reference_counts")) << name;
    EXPECT_EQ(got.at("current_counts"), e.at("current_counts")) << name;
    if (!e.at("categorical").get<bool>()) {
      EXPECT_EQ(got.at("edges"), e.at("edges")) << name;
    }
    EXPECT_NEAR(got.at("psi").get<double>(), e.at("psi").get<double>(), 1e-12) << name;
    EXPECT_EQ(got.at("ks").get<double>(), e.at("ks").get<double>()) << name;
    max_psi = std::max(max_psi, got.at("psi").get<double>());
    ++seen;
  }
  EXPECT_EQ(seen, 4u);
  EXPECT_EQ(r.value, max_psi);
}

TEST(Drift, HandDerivedCases) {
  // Identical samples: PSI 0, KS 0.
  Multiset a{{1.0, 5}, {2.0, 5}, {3.0, 5}};
  auto f = feature_drift("x", a, a, false);
  EXPECT_EQ(f.psi, 0.0);
  EXPECT_EQ(f.ks, 0.0);
  EXPECT_EQ(f.level, "none");
  // Inverted-CDF deciles of 1..10 are 1..9; disjoint current sample -> KS 1.
  Multiset r, c;
  for (int i = 1; i <= 10; ++i) r[i] = 1;
  c[100.0] = 4;
  EXPECT_EQ(quantile_edges(r), (std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  f = feature_drift("y", r, c, false);
  EXPECT_EQ(f.ks, 1.0);
  // all current mass in the last bin: 9 bins with p_cur = eps, one with p_cur = 1, p_ref = 0.1
  const double expect = 9 * (1e-4 - 0.1) * std::log(1e-4 / 0.1) + (1 - 0.1) * std::log(1 / 0.1);
  EXPECT_NEAR(f.psi, expect, 1e-12);
  EXPECT_EQ(f.level, "significant");
  EXPECT_EQ(psi_level(0.1), "moderate");
  EXPECT_EQ(psi_level(0.0999), "none");
  EXPECT_EQ(psi_level(0.25), "significant");
}

TEST(Drift, TokenDistributions) {
  // Reference: ids 0..3 uniformly, length 4; current: id 3 dominates, length 6.
  const std::vector<std::vector<int64_t>> ref = {{0, 1, 2, 3}, {3, 2, 1, 0}};
  const std::vector<std::vector<int64_t>> cur = {{3, 3, 3, 3, 3, 0}};
  Batch b;
  b.reference_features = token_features(ref);
  b.features = token_features(cur);
  auto m = make_metric("drift", {{"categorical", {"token_id"}}});
  const Result r = m->finalize(m->partial(b));
  const auto& f = r.detail.at("features");
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[1].at("feature"), "token_id");
  EXPECT_EQ(f[1].at("reference_counts"), nlohmann::json({2, 2, 2, 2}));
  EXPECT_EQ(f[1].at("current_counts"), nlohmann::json({1, 0, 0, 5}));
  // PSI by hand: p_ref = 1/4 each; p_cur = 1/6, eps, eps, 5/6
  const double q = 0.25;
  const double expect = (1.0 / 6 - q) * std::log((1.0 / 6) / q) + 2 * (1e-4 - q) * std::log(1e-4 / q) +
                        (5.0 / 6 - q) * std::log((5.0 / 6) / q);
  EXPECT_NEAR(f[1].at("psi").get<double>(), expect, 1e-12);
  EXPECT_EQ(f[0].at("feature"), "length");
  EXPECT_EQ(f[0].at("ks").get<double>(), 1.0);  // lengths 4,4 vs 6: disjoint
}

TEST(Drift, ErrorsNameTheFeature) {
  auto m = make_metric("drift");
  Batch b;
  b.reference_features["only_ref"] = {1, 2, 3};
  try {
    m->finalize(m->partial(b));
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("only_ref"), std::string::npos);
  }
  b.features["bad"] = {1.0, NAN};
  EXPECT_THROW(m->partial(b), DataError);
}

}  // namespace
}  // namespace conflux::evaluator
