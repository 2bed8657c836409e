// Perplexity, ECE and temperature scaling against numpy/scipy reference values.
#include "conflux/core/error.h"
#include "conflux/evaluator/calibration.h"
#include "conflux/evaluator/metric.h"
#include "reference_data.h"

#include <gtest/gtest.h>

#include <cmath>

namespace conflux::evaluator {
namespace {

using nlohmann::json;
const json& tok() { return test::reference().at("tokens"); }

TEST(Perplexity, MatchesReferenceBitwise) {
  test::TokenData d;
  auto m = make_metric("perplexity");
  const Result r = m->finalize(m->partial(d.batch(0, d.rows)));
  const auto& e = tok().at("perplexity");
  EXPECT_EQ(r.detail.at("tokens").get<int64_t>(), e.at("tokens").get<int64_t>());
  EXPECT_EQ(r.detail.at("correct").get<int64_t>(), e.at("correct").get<int64_t>());
  EXPECT_EQ(r.detail.at("total_nll").get<double>(), e.at("total_nll").get<double>());
  EXPECT_EQ(r.detail.at("mean_nll").get<double>(), e.at("mean_nll").get<double>());
  EXPECT_EQ(r.value, e.at("perplexity").get<double>());
}

TEST(Perplexity, LogProbabilityInputMatchesBitwise) {
  test::TokenData d;
  std::vector<float> logp;  // the reference's float32 log-softmax rows
  for (double x : tok().at("logp")) logp.push_back(static_cast<float>(x));
  Batch b = d.batch(0, d.rows);
  b.logits.data = logp.data();
  b.logits.log_probs = true;
  auto m = make_metric("perplexity");
  const Result r = m->finalize(m->partial(b));
  EXPECT_EQ(r.detail.at("total_nll").get<double>(),
            tok().at("perplexity").at("logprob_total_nll").get<double>());
  EXPECT_EQ(r.value, tok().at("perplexity").at("logprob_perplexity").get<double>());
}

TEST(Ece, MatchesNumpy) {
  test::TokenData d;
  auto m = make_metric("ece");
  const Result r = m->finalize(m->partial(d.batch(0, d.rows)));
  const auto& e = tok().at("ece");
  EXPECT_NEAR(r.value, e.at("ece").get<double>(), 1e-12);
  const auto& bins = r.detail.at("bins");
  ASSERT_EQ(bins.size(), 15u);
  for (size_t b = 0; b < 15; ++b)
    EXPECT_EQ(bins[b].at("count").get<int64_t>(), e.at("counts")[b].get<int64_t>()) << "bin " << b;
}

TEST(Ece, BinBoundaries) {
  EXPECT_EQ(ece_bin(1.0), 14);
  EXPECT_EQ(ece_bin(1.0 / 15), 0);  // (0, 1/15] is bin 0
  EXPECT_EQ(ece_bin(std::nextafter(1.0 / 15, 1.0)), 1);
  EXPECT_EQ(ece_bin(0.1), 1);
}

TEST(Calibration, TemperatureAndBeforeAfterMatchScipy) {
  test::TokenData d;
  // The reference fits on even rows and evaluates on odd rows with every row kept.
  Batch b = d.batch(0, d.rows);
  b.targets = tok().at("true_targets").get<std::vector<int64_t>>();
  auto m = make_metric("calibration");
  const Result r = m->finalize(m->partial(b));
  const auto& e = tok().at("calibration");
  const double t = e.at("temperature").get<double>();
  EXPECT_NEAR(r.value, t, 1e-9 * t);
  EXPECT_LT(std::fabs(r.detail.at("gradient_at_fit").get<double>()), 1e-10);
  EXPECT_NEAR(r.detail.at("nll_before").get<double>(), e.at("before").at("nll").get<double>(), 1e-12);
  EXPECT_NEAR(r.detail.at("nll_after").get<double>(), e.at("after").at("nll").get<double>(), 1e-10);
  EXPECT_NEAR(r.detail.at("ece_before").get<double>(), e.at("before").at("ece").get<double>(), 1e-12);
  EXPECT_NEAR(r.detail.at("ece_after").get<double>(), e.at("after").at("ece").get<double>(), 1e-9);
  for (size_t k = 0; k < 15; ++k) {
    EXPECT_EQ(r.detail.at("bins_before")[k].at("count").get<int64_t>(),
              e.at("before").at("counts")[k].get<int64_t>());
    EXPECT_EQ(r.detail.at("bins_after")[k].at("count").get<int64_t>(),
              e.at("after").at("counts")[k].get<int64_t>());
  }
  EXPECT_LT(r.detail.at("nll_after").get<double>(), r.detail.at("nll_before").get<double>());
}

TEST(Calibration, HandDerivedTwoClassOptimum) {
  // Two classes, logits (z, 0): with a fraction q of rows correct, the NLL-optimal calibrated
  // probability equals q, so sigmoid(z / T) = q and T = z / logit(q).
  const float z = 2.0f;
  std::vector<float> logits;
  std::vector<int64_t> targets;
  for (int i = 0; i < 40; ++i) {  // 30 correct of 40: q = 0.75
    logits.push_back(z);
    logits.push_back(0.0f);
    targets.push_back(i % 4 == 3 ? 1 : 0);
  }
  Batch b;
  b.logits = LogitsView{logits.data(), 40, 2, false};
  b.targets = targets;
  auto m = make_metric("calibration", {{"fit_every", 1}});
  const Result r = m->finalize(m->partial(b));
  EXPECT_NEAR(r.value, 2.0 / std::log(3.0), 1e-12);
}

TEST(TokenMetrics, RejectBadInput) {
  std::vector<float> logits = {0.f, 1.f, 2.f};
  Batch b;
  b.logits = LogitsView{logits.data(), 1, 3, false};
  b.targets = {3};
  EXPECT_THROW(make_metric("perplexity")->partial(b), DataError);
  b.targets = {};
  EXPECT_THROW(make_metric("perplexity")->partial(b), DataError);
  logits[1] = NAN;
  b.targets = {0};
  EXPECT_THROW(make_metric("ece")->partial(b), DataError);
  EXPECT_THROW(make_metric("ece", {{"temperature", -1.0}}), ConfigError);
  EXPECT_THROW(make_metric("perplexity", {{"bogus", 1}}), ConfigError);
  EXPECT_THROW(make_metric("no_such_metric"), ConfigError);
}

}  // namespace
}  // namespace conflux::evaluator
