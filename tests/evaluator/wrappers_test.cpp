// Fairness (per-group metrics, largest gap), robustness (clean vs perturbed) and perturbations.
#include "conflux/core/error.h"
#include "conflux/evaluator/metric.h"
#include "conflux/evaluator/perturb.h"
#include "conflux/evaluator/text.h"
#include "reference_data.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace conflux::evaluator {
namespace {

using nlohmann::json;

TEST(Fairness, PerGroupEqualsMetricOnTheSubsetAndGapIsMaxMinusMin) {
  const auto& pairs = test::reference().at("rouge").at("pairs");
  Batch b = test::text_batch(pairs, 0, pairs.size());
  std::vector<size_t> even, odd;
  for (size_t i = 0; i < b.hypotheses.size(); ++i) {
    b.groups.push_back(i % 2 ? "odd" : "even");
    (i % 2 ? odd : even).push_back(i);
  }
  auto f = make_metric("fairness", {{"metric", "bleu"}});
  const Result r = f->finalize(f->partial(b));
  auto bleu = make_metric("bleu");
  const double ve = bleu->finalize(bleu->partial(b.select(even))).value;
  const double vo = bleu->finalize(bleu->partial(b.select(odd))).value;
  EXPECT_EQ(r.detail.at("groups").at("even").at("value").get<double>(), ve);
  EXPECT_EQ(r.detail.at("groups").at("odd").at("value").get<double>(), vo);
  EXPECT_EQ(r.value, std::max(ve, vo) - std::min(ve, vo));
  EXPECT_EQ(r.detail.at("max_group").get<std::string>(), ve > vo ? "even" : "odd");
  b.groups.pop_back();
  EXPECT_THROW(f->partial(b), DataError);
  EXPECT_THROW(make_metric("fairness"), ConfigError);
  EXPECT_THROW(make_metric("fairness", {{"metric", "nope"}}), ConfigError);
}

TEST(Perturb, Deterministic_PerExample_AndRateZeroIsIdentity) {
  const std::string text = "The quick brown fox jumps over the lazy dog, naïve café.";
  for (auto kind : {Perturbation::CharSwap, Perturbation::CharDelete, Perturbation::TokenSubstitute}) {
    Stream a = perturbation_stream(7, 42), b = perturbation_stream(7, 42), c = perturbation_stream(8, 42);
    const auto pa = perturb_text(text, kind, 0.3, a);
    EXPECT_EQ(pa, perturb_text(text, kind, 0.3, b));
    EXPECT_NE(pa, perturb_text(text, kind, 0.3, c)) << perturbation_name(kind);
    Stream z = perturbation_stream(7, 42);
    EXPECT_EQ(perturb_text(text, kind, 0.0, z), text);  // text has single spaces already
  }
}

TEST(Perturb, Semantics) {
  const std::string text = "abcdefghij klmnopqrst uvwxyz";
  Stream s1 = perturbation_stream(1, 0);
  auto swapped = perturb_text(text, Perturbation::CharSwap, 1.0, s1);
  EXPECT_EQ(swapped, "badcfehgji lknmporqts vuxwzy");  // rate 1: every non-space pair swapped
  Stream s2 = perturbation_stream(1, 0);
  EXPECT_EQ(perturb_text(text, Perturbation::CharDelete, 1.0, s2), "  ");
  Stream s3 = perturbation_stream(1, 0);
  const auto sub = perturb_text(text, Perturbation::TokenSubstitute, 1.0, s3, {"X", "Y"});
  for (const auto& t : python_split(sub)) EXPECT_TRUE(t == "X" || t == "Y");
  EXPECT_EQ(python_split(sub).size(), 3u);
  Stream s4 = perturbation_stream(1, 0);
  auto multi = perturb_text("é漢字ü", Perturbation::CharSwap, 1.0, s4);
  EXPECT_EQ(multi, "漢éü字");  // swaps code points, not bytes
  std::vector<int64_t> ids(1000, 5);
  Stream s5 = perturbation_stream(3, 9);
  perturb_token_ids(ids, 0.5, 100, s5);
  const auto changed = std::count_if(ids.begin(), ids.end(), [](int64_t v) { return v != 5; });
  EXPECT_GT(changed, 400);
  EXPECT_LT(changed, 600);
  for (auto v : ids) EXPECT_TRUE(v >= 0 && v < 100);
  EXPECT_THROW(parse_perturbation("shuffle"), ConfigError);
}

TEST(Robustness, CleanEqualsInnerMetricAndRateZeroGivesZeroDelta) {
  const auto& pairs = test::reference().at("rouge").at("pairs");
  const Batch b = test::text_batch(pairs, 0, pairs.size());
  auto bleu = make_metric("bleu");
  const double clean = bleu->finalize(bleu->partial(b)).value;
  auto r0 = make_metric("robustness", {{"metric", "bleu"}, {"rate", 0.0}});
  const Result z = r0->finalize(r0->partial(b));
  EXPECT_EQ(z.detail.at("clean_value").get<double>(), clean);
  EXPECT_EQ(z.value, 0.0);
  auto r = make_metric("robustness", {{"metric", "bleu"}, {"perturbation", "char_delete"}, {"rate", 0.1}});
  const Result p = r->finalize(r->partial(b));
  EXPECT_EQ(p.detail.at("clean_value").get<double>(), clean);
  EXPECT_LT(p.value, -5.0);  // deleting 10% of characters costs BLEU points
  // Stats assembled from inner stats computed elsewhere finalize the same way.
  Batch noisy = b;
  for (size_t i = 0; i < noisy.hypotheses.size(); ++i) {
    Stream s = perturbation_stream(0, b.example_id(i));
    noisy.hypotheses[i] = perturb_text(b.hypotheses[i], Perturbation::CharDelete, 0.1, s);
  }
  const Stats assembled = robustness_stats(*r, bleu->partial(b), bleu->partial(noisy));
  EXPECT_EQ(r->finalize(assembled).to_json().dump(), p.to_json().dump());
}

}  // namespace
}  // namespace conflux::evaluator
