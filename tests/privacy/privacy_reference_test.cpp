// The privacy module against reference vectors computed by independent oracles
// (gen_reference.py): Opacus's RDP accountant for the sampled Gaussian mechanism and its
// noise-multiplier search, and a separate Balle & Wang implementation for the analytic Gaussian.
// Everything must agree to 1e-6 relative; best orders must be identical.
#include "conflux/core/privacy.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <string>

namespace cp = conflux::privacy;
using nlohmann::json;

namespace {

constexpr double kRtol = 1e-6;

const json& reference() {
  static const json j = [] {
    std::ifstream in(CONFLUX_PRIVACY_REFERENCE);
    if (!in) throw std::runtime_error(std::string("cannot open ") + CONFLUX_PRIVACY_REFERENCE);
    return json::parse(in);
  }();
  return j;
}

::testing::AssertionResult close(double got, double want, double rtol = kRtol) {
  if (std::fabs(got - want) <= rtol * std::fabs(want)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", want " << want << " (relative error "
                                       << std::fabs(got - want) / std::fabs(want) << ")";
}

}  // namespace

TEST(PrivacyReference, DefaultOrdersAreOpacusAlphas) {
  const auto want = reference().at("default_alphas").get<std::vector<double>>();
  const auto got = cp::default_rdp_orders();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << "order " << i;
}

TEST(PrivacyReference, DpsgdEpsilonMatchesOpacus) {
  const auto& cases = reference().at("dpsgd_epsilon");
  ASSERT_GE(cases.size(), 40u);
  int integer_orders = 0;
  for (const auto& c : cases) {
    const auto r = cp::dpsgd_epsilon(c["q"], c["sigma"], c["steps"].get<int64_t>(), c["delta"]);
    SCOPED_TRACE(c.dump());
    EXPECT_TRUE(close(r.epsilon, c["epsilon"]));
    EXPECT_EQ(r.order, c["order"].get<double>());
    integer_orders += std::floor(r.order) == r.order;
  }
  // The grid exercises both branches of log A_alpha.
  EXPECT_GE(integer_orders, 5);
  EXPECT_GE(static_cast<int>(cases.size()) - integer_orders, 5);
}

TEST(PrivacyReference, OpacusOwnTestCase) {
  // Opacus's test suite: q = 0.04, sigma = 1.5, 2250 steps, delta = 1e-5 gives eps ~ 7.3291.
  const auto r = cp::dpsgd_epsilon(0.04, 1.5, 2250, 1e-5);
  EXPECT_NEAR(r.epsilon, 7.3291, 1e-4);
}

TEST(PrivacyReference, RdpVectorsMatchOpacus) {
  const auto orders = cp::default_rdp_orders();
  for (const auto& c : reference().at("rdp_vectors")) {
    SCOPED_TRACE(c.dump().substr(0, 60));
    const auto want = c["rdp"].get<std::vector<double>>();
    const auto got = cp::compute_rdp(c["q"], c["sigma"], c["steps"].get<int64_t>(), orders);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(close(got[i], want[i])) << "order " << orders[i];
  }
}

TEST(PrivacyReference, NoiseMultiplierMatchesOpacus) {
  for (const auto& c : reference().at("noise_multiplier")) {
    SCOPED_TRACE(c.dump());
    const double got = cp::dpsgd_noise_multiplier(c["target_epsilon"], c["delta"], c["q"],
                                                  c["steps"].get<int64_t>(), c["tolerance"]);
    EXPECT_TRUE(close(got, c["noise_multiplier"]));
    // The result honours the target.
    EXPECT_LE(cp::dpsgd_epsilon(c["q"], got, c["steps"].get<int64_t>(), c["delta"]).epsilon,
              c["target_epsilon"].get<double>());
  }
}

TEST(PrivacyReference, HeterogeneousAccountantMatchesOpacus) {
  for (const auto& c : reference().at("accountant")) {
    SCOPED_TRACE(c.dump());
    cp::RdpAccountant acct;
    for (const auto& h : c["history"]) acct.step(h[0], h[1], h[2].get<int64_t>());
    const auto r = acct.epsilon(c["delta"]);
    EXPECT_TRUE(close(r.epsilon, c["epsilon"]));
    EXPECT_EQ(r.order, c["order"].get<double>());
    // A checkpoint round trip gives the same answer.
    cp::RdpAccountant restored;
    restored.set_history(acct.history());
    EXPECT_EQ(restored.epsilon(c["delta"]).epsilon, r.epsilon);
  }
}

TEST(PrivacyReference, GaussianRdpCompositionMatchesOpacus) {
  for (const auto& c : reference().at("gaussian_rdp")) {
    SCOPED_TRACE(c.dump());
    const auto r = cp::compose_gaussian_rdp(c["noise_multiplier"], c["releases"].get<int64_t>(),
                                            c["delta"]);
    EXPECT_TRUE(close(r.epsilon, c["epsilon"]));
    EXPECT_EQ(r.order, c["order"].get<double>());
  }
}

TEST(PrivacyReference, AnalyticGaussianMatchesBalleWang) {
  for (const auto& c : reference().at("gaussian_analytic")) {
    SCOPED_TRACE(c.dump());
    const double sigma = cp::gaussian_sigma_analytic(c["epsilon"], c["delta"], c["sensitivity"]);
    EXPECT_TRUE(close(sigma, c["sigma"]));
    // Calibrated: the exact delta at that sigma is the target (to bisection resolution).
    EXPECT_LE(cp::gaussian_delta(c["epsilon"], sigma, c["sensitivity"]), c["delta"].get<double>());
    EXPECT_TRUE(close(cp::gaussian_delta(c["epsilon"], sigma, c["sensitivity"]), c["delta"], 1e-9));
    if (c.contains("sigma_classic")) {
      const double classic = cp::gaussian_sigma_classic(c["epsilon"], c["delta"], c["sensitivity"]);
      EXPECT_TRUE(close(classic, c["sigma_classic"], 1e-12));
      EXPECT_LT(sigma, classic);  // the analytic calibration is never worse
    }
  }
}

TEST(PrivacyReference, GaussianDeltaMatchesReference) {
  for (const auto& c : reference().at("gaussian_delta")) {
    SCOPED_TRACE(c.dump());
    EXPECT_TRUE(close(cp::gaussian_delta(c["epsilon"], c["sigma"], c["sensitivity"]), c["delta"], 1e-9));
  }
}

// DP-FedAvg's user-level accounting: q = clients_per_round / population, one sampled Gaussian per
// round, against Opacus with that q (gen_reference.py's DPFEDAVG cohorts).
TEST(PrivacyReference, DpFedAvgEpsilonMatchesOpacus) {
  const auto& cases = reference().at("dpfedavg_epsilon");
  ASSERT_GE(cases.size(), 4u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.dump());
    const double q = cp::dpfedavg_sample_rate(c["clients_per_round"], c["population"]);
    EXPECT_EQ(q, c["q"].get<double>());
    const auto r = cp::dpfedavg_epsilon(q, c["noise_multiplier"], c["rounds"].get<int64_t>(), c["delta"]);
    EXPECT_TRUE(close(r.epsilon, c["epsilon"]));
    EXPECT_EQ(r.order, c["order"].get<double>());
  }
}

TEST(PrivacyReference, DpFedAvgNoiseMultiplierMatchesOpacus) {
  for (const auto& c : reference().at("dpfedavg_noise_multiplier")) {
    SCOPED_TRACE(c.dump());
    const double q = cp::dpfedavg_sample_rate(c["clients_per_round"], c["population"]);
    const int64_t rounds = c["rounds"];
    const double z = cp::dpfedavg_noise_multiplier(c["target_epsilon"], c["delta"], q, rounds, c["tolerance"]);
    EXPECT_TRUE(close(z, c["noise_multiplier"]));
    EXPECT_LE(cp::dpfedavg_epsilon(q, z, rounds, c["delta"]).epsilon, c["target_epsilon"].get<double>());
  }
}

// Z -> epsilon -> Z: the search with a tight tolerance finds the noise it started from (epsilon
// decreases strictly in z, and the search returns the upper end of its bracket: z' >= z).
TEST(PrivacyReference, DpFedAvgRoundTrip) {
  for (const auto& c : reference().at("dpfedavg_epsilon")) {
    SCOPED_TRACE(c.dump());
    const double q = c["q"], z = c["noise_multiplier"], delta = c["delta"];
    const int64_t rounds = c["rounds"];
    const double eps = cp::dpfedavg_epsilon(q, z, rounds, delta).epsilon;
    const double back = cp::dpfedavg_noise_multiplier(eps, delta, q, rounds, 1e-9);
    EXPECT_GE(back, z);
    EXPECT_TRUE(close(back, z, 1e-6));
    EXPECT_LE(cp::dpfedavg_epsilon(q, back, rounds, delta).epsilon, eps);
  }
}
