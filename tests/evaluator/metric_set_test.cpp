// MetricSet: mixed text/token batches, exact merging of a set, serialisation, report.
#include "conflux/core/error.h"
#include "conflux/evaluator/metric_set.h"
#include "reference_data.h"

#include <gtest/gtest.h>

namespace conflux::evaluator {
namespace {

using nlohmann::json;

TEST(MetricSet, MixedBatchesMergeToTheSingleMetricValues) {
  const json specs = json::parse(R"([
    {"metric": "bleu"}, {"metric": "rouge_l", "options": {"stem": true}},
    {"metric": "perplexity"}, {"metric": "ece"},
    {"name": "bleu_by_parity", "metric": "fairness", "options": {"metric": "bleu"}}])");
  const MetricSet set(specs);
  EXPECT_EQ(set.names().size(), 5u);
  const auto& pairs = test::reference().at("rouge").at("pairs");
  Batch t1 = test::text_batch(pairs, 0, 100), t2 = test::text_batch(pairs, 100, pairs.size());
  for (size_t i = 0; i < t1.hypotheses.size(); ++i) t1.groups.push_back(i % 2 ? "odd" : "even");
  for (size_t i = 0; i < t2.hypotheses.size(); ++i) t2.groups.push_back((i + 100) % 2 ? "odd" : "even");
  test::TokenData d;
  // a worker's results arrive as CBOR, in any order
  SetStats total = set.empty();
  for (const Batch* b : std::vector<const Batch*>{&t2, nullptr, &t1}) {
    const SetStats part = b ? set.partial(*b) : set.partial(d.batch(0, d.rows));
    MetricSet::merge_into(total, MetricSet::from_bytes(MetricSet::to_bytes(part)));
  }
  const auto results = set.finalize(total);
  ASSERT_EQ(results.size(), 5u);
  auto bleu = make_metric("bleu");
  Batch all = test::text_batch(pairs, 0, pairs.size());
  EXPECT_EQ(results[0].value, bleu->finalize(bleu->partial(all)).value);
  auto ppl = make_metric("perplexity");
  EXPECT_EQ(results[2].value, ppl->finalize(ppl->partial(d.batch(0, d.rows))).value);
  EXPECT_EQ(results[4].metric, "fairness");
  EXPECT_EQ(results[4].detail.at("name"), "bleu_by_parity");
  EXPECT_EQ(set.report(total, {{"run", "t"}}).to_json().at("results").size(), 5u);
  EXPECT_TRUE(MetricSet::from_json(MetricSet::to_json(total)) == total);
}

TEST(MetricSet, RejectsBadSpecs) {
  EXPECT_THROW(MetricSet(json::array()), ConfigError);
  EXPECT_THROW(MetricSet(json::parse(R"([{"metric": "bleu"}, {"metric": "bleu"}])")), ConfigError);
  EXPECT_THROW(MetricSet(json::parse(R"([{"metrc": "bleu"}])")), ConfigError);
  EXPECT_THROW(MetricSet(json::parse(R"([{"metric": "bleu", "extra": 1}])")), ConfigError);
  const MetricSet a(json::parse(R"([{"metric": "bleu"}])"));
  const MetricSet b(json::parse(R"([{"metric": "bleu"}, {"metric": "ece"}])"));
  SetStats sa = a.empty();
  EXPECT_THROW(MetricSet::merge_into(sa, b.empty()), DataError);
  EXPECT_THROW(MetricSet::from_bytes({1, 2, 3}), DataError);
}

}  // namespace
}  // namespace conflux::evaluator
