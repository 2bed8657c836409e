// Parameter validation (each bad value raises PrivacyError naming the parameter) and the closed
// forms and edge cases that need no oracle: Laplace, randomized response, basic composition,
// the accountant's history handling, and Opacus's conventions for "no privacy" and "no steps".
#include "conflux/core/error.h"
#include "conflux/core/privacy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

namespace cp = conflux::privacy;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Runs f, expects a PrivacyError whose message contains every fragment.
void expect_privacy_error(const std::function<void()>& f, std::initializer_list<const char*> fragments) {
  try {
    f();
    ADD_FAILURE() << "no PrivacyError thrown (expected one mentioning '" << *fragments.begin() << "')";
  } catch (const conflux::PrivacyError& e) {
    for (const char* frag : fragments)
      EXPECT_NE(e.message().find(frag), std::string::npos) << "message: " << e.message();
    EXPECT_EQ(conflux::exit_code(e.kind()), conflux::kExitUser);
  }
}

}  // namespace

TEST(PrivacyValidation, EpsilonMustBePositiveAndFinite) {
  for (double eps : {0.0, -1.0, kNaN, kInf}) {
    expect_privacy_error([&] { cp::gaussian_sigma_analytic(eps, 1e-5, 1.0); }, {"epsilon", "> 0"});
    expect_privacy_error([&] { cp::gaussian_sigma_classic(eps, 1e-5, 1.0); }, {"epsilon"});
    expect_privacy_error([&] { cp::laplace_scale(eps, 1.0); }, {"laplace_scale", "epsilon"});
    expect_privacy_error([&] { cp::randomized_response_keep_probability(eps, 2); }, {"epsilon"});
    expect_privacy_error([&] { cp::gaussian_delta(eps, 1.0, 1.0); }, {"epsilon"});
    expect_privacy_error([&] { cp::dpsgd_noise_multiplier(eps, 1e-5, 0.01, 100); },
                         {"target_epsilon"});
  }
}

TEST(PrivacyValidation, DeltaMustBeInOpenUnitInterval) {
  for (double delta : {0.0, 1.0, -1e-5, 1.5, kNaN}) {
    expect_privacy_error([&] { cp::gaussian_sigma_analytic(0.5, delta, 1.0); }, {"delta", "(0, 1)"});
    expect_privacy_error([&] { cp::gaussian_sigma_classic(0.5, delta, 1.0); }, {"delta"});
    expect_privacy_error([&] { cp::dpsgd_epsilon(0.01, 1.0, 10, delta); }, {"delta"});
    expect_privacy_error([&] { cp::dpsgd_noise_multiplier(1.0, delta, 0.01, 10); }, {"delta"});
    expect_privacy_error([&] { cp::compose_gaussian_rdp(1.0, 10, delta); }, {"delta"});
    expect_privacy_error([&] { cp::RdpAccountant().epsilon(delta); }, {"delta"});
  }
}

TEST(PrivacyValidation, SensitivityMustBePositive) {
  for (double s : {0.0, -2.0, kNaN, kInf}) {
    expect_privacy_error([&] { cp::gaussian_sigma_analytic(0.5, 1e-5, s); }, {"sensitivity"});
    expect_privacy_error([&] { cp::gaussian_sigma_classic(0.5, 1e-5, s); }, {"sensitivity"});
    expect_privacy_error([&] { cp::laplace_scale(0.5, s); }, {"sensitivity"});
  }
  expect_privacy_error([] { cp::gaussian_delta(0.5, 0.0, 1.0); }, {"sigma"});
}

TEST(PrivacyValidation, ClassicGaussianRefusesLargeEpsilon) {
  for (double eps : {1.0, 2.0, 10.0})
    expect_privacy_error([&] { cp::gaussian_sigma_classic(eps, 1e-5, 1.0); },
                         {"epsilon < 1", "analytic"});
  EXPECT_NO_THROW(cp::gaussian_sigma_analytic(1.0, 1e-5, 1.0));
  EXPECT_DOUBLE_EQ(cp::gaussian_sigma_classic(0.5, 1e-5, 2.0),
                   std::sqrt(2.0 * std::log(1.25 / 1e-5)) * 2.0 / 0.5);
}

TEST(PrivacyValidation, RandomizedResponseNeedsTwoCategories) {
  for (int k : {1, 0, -3})
    expect_privacy_error([&] { cp::randomized_response_keep_probability(1.0, k); }, {"k", ">= 2"});
}

TEST(PrivacyValidation, SampleRateNoiseAndSteps) {
  for (double q : {0.0, -0.1, 1.0000001, kNaN}) {
    expect_privacy_error([&] { cp::dpsgd_epsilon(q, 1.0, 10, 1e-5); }, {"sample_rate", "(0, 1]"});
    expect_privacy_error([&] { cp::RdpAccountant().step(1.0, q); }, {"sample_rate"});
    expect_privacy_error([&] { cp::dpsgd_noise_multiplier(1.0, 1e-5, q, 10); }, {"sample_rate"});
  }
  for (double z : {-0.5, kNaN, kInf}) {
    expect_privacy_error([&] { cp::dpsgd_epsilon(0.01, z, 10, 1e-5); }, {"noise_multiplier", ">= 0"});
    expect_privacy_error([&] { cp::compose_gaussian_rdp(z, 10, 1e-5); }, {"noise_multiplier"});
  }
  expect_privacy_error([] { cp::dpsgd_epsilon(0.01, 1.0, -1, 1e-5); }, {"steps", ">= 0"});
  expect_privacy_error([] { cp::RdpAccountant().step(1.0, 0.01, -2); }, {"n", ">= 0"});
  expect_privacy_error([] { cp::compose_gaussian_rdp(1.0, -1, 1e-5); }, {"releases"});
  expect_privacy_error([] { cp::dpsgd_noise_multiplier(1.0, 1e-5, 0.01, 10, 0.0); }, {"tolerance"});
}

TEST(PrivacyValidation, OrdersAndRdpVectors) {
  const auto orders = cp::default_rdp_orders();
  expect_privacy_error([] { cp::compute_rdp(0.01, 1.0, 10, {}); }, {"orders"});
  expect_privacy_error([] { cp::compute_rdp(0.01, 1.0, 10, {2.0, 1.0}); }, {"order", "> 1"});
  expect_privacy_error([&] { cp::rdp_to_epsilon(orders, std::vector<double>(3, 0.0), 1e-5); },
                       {"same length"});
}

TEST(PrivacyValidation, BudgetTooLowForAnyNoise) {
  // Even with no noise cost at all, the conversion term -(log delta + log alpha)/(alpha - 1) +
  // log((alpha - 1)/alpha) is above 0.1 at every default order for delta = 1e-5, so no noise
  // multiplier reaches epsilon 0.05.
  expect_privacy_error([] { cp::dpsgd_noise_multiplier(0.05, 1e-5, 0.01, 1); }, {"budget is too low"});
  // With no steps any noise meets any reachable budget: there is nothing to search for.
  expect_privacy_error([] { cp::dpsgd_noise_multiplier(1.0, 1e-5, 0.01, 0); }, {"steps", ">= 1"});
}

TEST(PrivacyClosedForms, LaplaceAndRandomizedResponse) {
  EXPECT_DOUBLE_EQ(cp::laplace_scale(0.5, 2.0), 4.0);
  EXPECT_DOUBLE_EQ(cp::randomized_response_keep_probability(std::log(3.0), 2), 0.75);
  EXPECT_NEAR(cp::randomized_response_keep_probability(1.0, 4), std::exp(1.0) / (std::exp(1.0) + 3), 1e-15);
  EXPECT_DOUBLE_EQ(cp::randomized_response_keep_probability(1000.0, 10), 1.0);  // no overflow
}

TEST(PrivacyClosedForms, BasicCompositionSums) {
  const auto r = cp::compose_basic({{0.5, 1e-6}, {1.25, 2e-6}, {0.25, 0.0}});
  EXPECT_DOUBLE_EQ(r.epsilon, 2.0);
  EXPECT_DOUBLE_EQ(r.delta, 3e-6);
  const auto none = cp::compose_basic({});
  EXPECT_EQ(none.epsilon, 0.0);
  EXPECT_EQ(none.delta, 0.0);
  expect_privacy_error([] { cp::compose_basic({{0.5, 1e-6}, {-1.0, 0.0}}); }, {"release 1", "epsilon"});
  expect_privacy_error([] { cp::compose_basic({{0.5, 2.0}}); }, {"release 0", "delta"});
}

TEST(PrivacyAccountant, MergesRepeatedStepsLikeOpacus) {
  cp::RdpAccountant acct;
  EXPECT_EQ(acct.epsilon(1e-5).epsilon, 0.0);  // nothing spent yet (Opacus returns (0, 0))
  acct.step(1.1, 0.01);
  acct.step(1.1, 0.01, 99);
  acct.step(0.9, 0.01, 50);
  acct.step(0.9, 0.01, 0);
  ASSERT_EQ(acct.history().size(), 2u);
  EXPECT_EQ(acct.history()[0].steps, 100);
  EXPECT_EQ(acct.history()[1].steps, 50);
  // Summing RDP over the history equals adding the two vectors by hand.
  const auto orders = cp::default_rdp_orders();
  auto rdp = cp::compute_rdp(0.01, 1.1, 100, orders);
  const auto rdp2 = cp::compute_rdp(0.01, 0.9, 50, orders);
  for (size_t i = 0; i < rdp.size(); ++i) rdp[i] += rdp2[i];
  const auto want = cp::rdp_to_epsilon(orders, rdp, 1e-6);
  EXPECT_EQ(acct.epsilon(1e-6).epsilon, want.epsilon);
  EXPECT_EQ(acct.epsilon(1e-6).order, want.order);
  // Homogeneous history equals dpsgd_epsilon.
  cp::RdpAccountant homo;
  homo.step(1.3, 0.02, 700);
  EXPECT_EQ(homo.epsilon(1e-5).epsilon, cp::dpsgd_epsilon(0.02, 1.3, 700, 1e-5).epsilon);
}

TEST(PrivacyAccountant, NoNoiseMeansNoPrivacy) {
  const auto r = cp::dpsgd_epsilon(0.01, 0.0, 10, 1e-5);
  EXPECT_TRUE(std::isinf(r.epsilon));
  // Zero steps release nothing, with or without noise: epsilon 0 and no best order (Opacus
  // computes inf * 0 = NaN here and reports inf; the conversion's floor, ~0.1, is no cost either).
  for (double z : {0.0, 1.0}) {
    const auto none = cp::dpsgd_epsilon(0.01, z, 0, 1e-5);
    EXPECT_EQ(none.epsilon, 0.0) << "noise " << z;
    EXPECT_TRUE(std::isnan(none.order));
    EXPECT_EQ(cp::compute_rdp(0.01, z, 0, cp::default_rdp_orders()),
              std::vector<double>(cp::default_rdp_orders().size(), 0.0));
  }
  EXPECT_EQ(cp::compose_gaussian_rdp(1.0, 0, 1e-5).epsilon, 0.0);
  EXPECT_EQ(cp::rdp_to_epsilon({2.0, 3.0}, {0.0, 0.0}, 1e-5).epsilon, 0.0);
  // Any positive cost keeps the usual conversion (its floor included).
  EXPECT_GT(cp::rdp_to_epsilon({2.0, 3.0}, {1e-12, 1e-12}, 1e-5).epsilon, 0.1);
}

TEST(PrivacyAccountant, EpsilonGrowsWithStepsAndShrinksWithNoise) {
  double prev = 0;
  for (int64_t t : {1, 10, 100, 1000, 10000}) {
    const double e = cp::dpsgd_epsilon(0.01, 1.0, t, 1e-5).epsilon;
    EXPECT_GT(e, prev);
    prev = e;
  }
  EXPECT_LT(cp::dpsgd_epsilon(0.01, 2.0, 1000, 1e-5).epsilon,
            cp::dpsgd_epsilon(0.01, 1.0, 1000, 1e-5).epsilon);
}

TEST(PrivacyValidation, DpFedAvgCohortAndRounds) {
  expect_privacy_error([] { cp::dpfedavg_sample_rate(0, 10); }, {"clients_per_round", "(0, 1]", "got 0"});
  expect_privacy_error([] { cp::dpfedavg_sample_rate(11, 10); }, {"clients_per_round", "population = 10"});
  expect_privacy_error([] { cp::dpfedavg_sample_rate(1, 0); }, {"population", ">= 1"});
  EXPECT_EQ(cp::dpfedavg_sample_rate(10, 10), 1.0);
  EXPECT_EQ(cp::dpfedavg_sample_rate(1, 4), 0.25);
  for (double q : {0.0, 1.5, kNaN})
    expect_privacy_error([&] { cp::dpfedavg_epsilon(q, 1.0, 10, 1e-5); }, {"dpfedavg_epsilon", "sample_rate"});
  expect_privacy_error([] { cp::dpfedavg_epsilon(0.1, 1.0, -1, 1e-5); }, {"rounds", ">= 0"});
  expect_privacy_error([] { cp::dpfedavg_epsilon(0.1, -1.0, 10, 1e-5); }, {"noise_multiplier"});
  expect_privacy_error([] { cp::dpfedavg_epsilon(0.1, 1.0, 10, 1.0); }, {"delta"});
  expect_privacy_error([] { cp::dpfedavg_noise_multiplier(1.0, 1e-5, 0.1, 0); }, {"rounds", ">= 1"});
  expect_privacy_error([] { cp::dpfedavg_noise_multiplier(0.05, 1e-5, 0.1, 1); }, {"budget is too low", "rounds"});
  // No rounds release nothing; DP-FedAvg's numbers are DP-SGD's with steps = rounds.
  EXPECT_EQ(cp::dpfedavg_epsilon(0.1, 1.0, 0, 1e-5).epsilon, 0.0);
  EXPECT_EQ(cp::dpfedavg_epsilon(0.02, 1.3, 70, 1e-5).epsilon, cp::dpsgd_epsilon(0.02, 1.3, 70, 1e-5).epsilon);
}

// Adaptive clipping (Andrew et al. 2021, Thm 1): z_delta = (z^-2 - (2 sigma_b)^-2)^(-1/2).
TEST(PrivacyAdaptiveClip, UpdateNoiseMultiplierByHand) {
  // z = 1, sigma_b = 1: z_delta = (1 - 1/4)^(-1/2) = 2 / sqrt(3).
  EXPECT_DOUBLE_EQ(cp::adaptive_clip_update_noise_multiplier(1.0, 1.0), 2.0 / std::sqrt(3.0));
  // z = 1.2, sigma_b = 5 (the paper's M / 20 for M = 100): (1/1.44 - 1/100)^(-1/2).
  EXPECT_DOUBLE_EQ(cp::adaptive_clip_update_noise_multiplier(1.2, 5.0), 1.0 / std::sqrt(1.0 / 1.44 - 0.01));
  EXPECT_EQ(cp::adaptive_clip_update_noise_multiplier(0.0, 0.0), 0.0);  // no noise asked: none given
  // The inverse gives z back.
  for (double z : {0.3, 1.0, 1.2, 4.0})
    for (double sb : {z, 2 * z, 5.0})
      EXPECT_NEAR(cp::adaptive_clip_effective_noise_multiplier(cp::adaptive_clip_update_noise_multiplier(z, sb), sb),
                  z, 1e-12 * z);
  // sigma_b <= z / 2: z_delta is undefined (the count alone spends more than z allows).
  expect_privacy_error([] { cp::adaptive_clip_update_noise_multiplier(1.0, 0.5); },
                       {"adaptive_clip_update_noise_multiplier", "too small", "sigma_b > z / 2 = 0.5"});
  expect_privacy_error([] { cp::adaptive_clip_update_noise_multiplier(1.0, 0.2); }, {"too small"});
  expect_privacy_error([] { cp::adaptive_clip_update_noise_multiplier(1.0, -1.0); }, {"count_stddev", ">= 0"});
  expect_privacy_error([] { cp::adaptive_clip_update_noise_multiplier(1.0, kNaN); }, {"count_stddev"});
  expect_privacy_error([] { cp::adaptive_clip_update_noise_multiplier(-1.0, 1.0); }, {"noise_multiplier"});
}

// The accountant charges the requested z once per round: exactly the RDP of the update release
// (z_delta, sensitivity 1) plus the count release (sigma_b, sensitivity 1/2) composed, as the
// theorem says. Checked on the unsampled curves (q = 1, where RDP adds up exactly) and as epsilon.
TEST(PrivacyAdaptiveClip, AccountantChargesTheCombinedMechanism) {
  const double z = 1.1, sb = 2.0;
  const double zd = cp::adaptive_clip_update_noise_multiplier(z, sb);
  const auto orders = cp::default_rdp_orders();
  const auto update = cp::compute_rdp(1.0, zd, 7, orders), count = cp::compute_rdp(1.0, 2 * sb, 7, orders),
             whole = cp::compute_rdp(1.0, z, 7, orders);
  for (size_t i = 0; i < orders.size(); ++i) EXPECT_NEAR(update[i] + count[i], whole[i], 1e-12 * whole[i]);
  // Sampled rounds: the accountant's epsilon is dpfedavg_epsilon at the effective z.
  cp::RdpAccountant acc;
  for (int r = 0; r < 30; ++r) acc.step(cp::adaptive_clip_effective_noise_multiplier(zd, sb), 0.05);
  EXPECT_NEAR(acc.epsilon(1e-5).epsilon, cp::dpfedavg_epsilon(0.05, z, 30, 1e-5).epsilon, 1e-9);
}
