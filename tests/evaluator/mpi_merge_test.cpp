// Multi-rank exactness: every metric computed on an interleaved split of the data across 2 or 4
// MPI ranks, merged with merge_across, equals the single-process result bit for bit.
#include "conflux/evaluator/distributed.h"
#include "conflux/evaluator/metric.h"
#include "mpi_main.h"
#include "reference_data.h"

#include <gtest/gtest.h>

#include <numeric>

namespace conflux::evaluator {
namespace {

using nlohmann::json;

void expect_rank_split_exact(const std::string& metric, const json& options, const Batch& full) {
  auto& comm = conflux::test::grid().world();
  auto m = make_metric(metric, options);
  std::vector<size_t> mine, all(full.num_examples());
  std::iota(all.begin(), all.end(), 0);
  for (size_t i = static_cast<size_t>(comm.rank()); i < all.size(); i += static_cast<size_t>(comm.size()))
    mine.push_back(i);
  const Stats merged = merge_across(m->partial(full.select(mine)), comm);
  const Stats single = m->partial(full.select(all));
  EXPECT_TRUE(merged == single) << metric << " on rank " << comm.rank();
  EXPECT_EQ(m->finalize(merged).to_json().dump(), m->finalize(single).to_json().dump()) << metric;
}

TEST(MpiMerge, EveryMetricIsExactAcrossRanks) {
  const auto& pairs = test::reference().at("rouge").at("pairs");
  Batch text = test::text_batch(pairs, 0, pairs.size());
  for (size_t i = 0; i < text.hypotheses.size(); ++i) text.groups.push_back(i % 3 ? "x" : "y");
  expect_rank_split_exact("bleu", json::object(), text);
  expect_rank_split_exact("rouge_l", {{"stem", true}}, text);
  expect_rank_split_exact("distinct", json::object(), text);
  expect_rank_split_exact("fairness", {{"metric", "rouge_l"}}, text);
  expect_rank_split_exact("robustness", {{"metric", "bleu"}, {"perturbation", "char_delete"}}, text);
  test::TokenData d;
  Batch tokens = d.batch(0, d.rows);
  expect_rank_split_exact("perplexity", json::object(), tokens);
  expect_rank_split_exact("ece", json::object(), tokens);
  expect_rank_split_exact("calibration", json::object(), tokens);
  // drift: current rows split across ranks, reference rows sent by rank 0 only (counted once)
  auto& comm = conflux::test::grid().world();
  const auto& f = test::reference().at("drift").at("normal_shift");
  const auto cur = f.at("current").get<std::vector<double>>();
  Batch full, local;
  full.features["x"] = cur;
  full.reference_features["x"] = f.at("reference").get<std::vector<double>>();
  for (size_t i = static_cast<size_t>(comm.rank()); i < cur.size(); i += static_cast<size_t>(comm.size()))
    local.features["x"].push_back(cur[i]);
  if (comm.rank() == 0) local.reference_features = full.reference_features;
  auto m = make_metric("drift");
  const Stats merged = merge_across(m->partial(local), comm);
  EXPECT_TRUE(merged == m->partial(full));
  EXPECT_EQ(m->finalize(merged).to_json().dump(), m->finalize(m->partial(full)).to_json().dump());
}

}  // namespace
}  // namespace conflux::evaluator
