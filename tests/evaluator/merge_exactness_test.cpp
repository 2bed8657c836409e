// Exactness: every metric gives bit-identical Stats and results whether the data arrives as 1, 3
// or 7 batches, split contiguously, interleaved or at random, merged in any tree and order, and
// whether the Stats travel through JSON or CBOR on the way.
#include "conflux/core/error.h"
#include "conflux/evaluator/metric.h"
#include "reference_data.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

namespace conflux::evaluator {
namespace {

using nlohmann::json;
using Parts = std::vector<std::vector<size_t>>;

Parts partition(size_t n, size_t parts, int strategy, uint64_t seed) {
  Parts out(parts);
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::mt19937_64 gen(seed);
  if (strategy == 2) std::shuffle(idx.begin(), idx.end(), gen);
  for (size_t i = 0; i < n; ++i) {
    size_t p = strategy == 0 ? i * parts / n : i % parts;  // contiguous / interleaved / shuffled
    if (strategy == 2) p = gen() % parts;
    out[p].push_back(idx[i]);
  }
  for (auto& p : out) std::sort(p.begin(), p.end());
  return out;
}

// Merges a list of Stats in one of several orders/trees; sometimes via JSON or CBOR.
Stats merge_all(std::vector<Stats> s, int order) {
  if (order == 1) std::reverse(s.begin(), s.end());
  if (order == 2) {  // pairwise tree, each operand through the wire formats
    while (s.size() > 1) {
      std::vector<Stats> next;
      for (size_t i = 0; i + 1 < s.size(); i += 2)
        next.push_back(merge(Stats::from_bytes(s[i].to_bytes()), Stats::from_json(s[i + 1].to_json())));
      if (s.size() % 2) next.push_back(s.back());
      s.swap(next);
    }
    return s[0];
  }
  Stats acc = s[0];
  for (size_t i = 1; i < s.size(); ++i) merge_into(acc, s[i]);
  return acc;
}

struct Case {
  std::string metric;
  json options;
  Batch full;
  Batch reference;  // drift only: reference rows as `features`, moved into reference_features
};

Batch text_full() {
  const auto& pairs = test::reference().at("rouge").at("pairs");
  Batch b = test::text_batch(pairs, 0, pairs.size());
  for (size_t i = 0; i < b.hypotheses.size(); ++i) b.groups.push_back(std::string(1, "abc"[i % 3]));
  return b;
}

Batch tokens_full(const test::TokenData& d) {
  Batch b = d.batch(0, d.rows).select([&] {
    std::vector<size_t> all(static_cast<size_t>(d.rows));
    std::iota(all.begin(), all.end(), 0);
    return all;
  }());
  for (int64_t i = 0; i < d.rows; ++i) b.groups.push_back(i % 5 == 0 ? "rare" : "common");
  return b;
}

void check_case(const Case& c) {
  auto m = make_metric(c.metric, c.options);
  auto stats_for = [&](const Parts& parts, const Parts& ref_parts) {
    std::vector<Stats> out;
    for (size_t p = 0; p < parts.size(); ++p) {
      Batch b = c.full.select(parts[p]);
      if (!c.reference.features.empty()) {
        Batch r = c.reference.select(ref_parts[p]);
        b.reference_features = r.features;
      }
      out.push_back(m->partial(b));
    }
    return out;
  };
  const size_t n = c.full.num_examples();
  const size_t nr = c.reference.num_examples();
  const Stats one = stats_for(partition(n, 1, 0, 0), partition(nr, 1, 0, 0))[0];
  const std::string expect = m->finalize(one).to_json().dump();
  int variant = 0;
  for (size_t parts : {3u, 7u}) {
    for (int strategy = 0; strategy < 3; ++strategy) {
      for (int order = 0; order < 3; ++order, ++variant) {
        const auto stats = stats_for(partition(n, parts, strategy, 17 + variant),
                                     partition(nr, parts, (strategy + 1) % 3, 31 + variant));
        const Stats merged = merge_all(stats, order);
        EXPECT_TRUE(merged == one) << c.metric << ": stats differ, " << parts << " parts, strategy "
                                   << strategy << ", order " << order;
        EXPECT_EQ(m->finalize(merged).to_json().dump(), expect)
            << c.metric << ": result differs, " << parts << " parts, strategy " << strategy;
      }
    }
  }
  // The Stats' own serialisations round-trip exactly.
  EXPECT_TRUE(Stats::from_json(json::parse(one.to_json().dump())) == one) << c.metric;
  EXPECT_TRUE(Stats::from_bytes(one.to_bytes()) == one) << c.metric;
}

TEST(MergeExactness, TextMetrics) {
  const Batch text = text_full();
  check_case({"bleu", json::object(), text, {}});
  check_case({"rouge_l", {{"stem", true}}, text, {}});
  check_case({"distinct", {{"orders", {1, 2, 4}}}, text, {}});
  check_case({"fairness", {{"metric", "bleu"}}, text, {}});
  check_case({"robustness",
              {{"metric", "rouge_l"}, {"perturbation", "char_swap"}, {"rate", 0.2}, {"seed", 5}},
              text, {}});
  check_case({"robustness",
              {{"metric", "bleu"}, {"perturbation", "token_substitute"}, {"rate", 0.3}}, text, {}});
}

TEST(MergeExactness, TokenMetrics) {
  test::TokenData d;
  const Batch tokens = tokens_full(d);
  check_case({"perplexity", json::object(), tokens, {}});
  check_case({"ece", {{"temperature", 1.7}}, tokens, {}});
  check_case({"calibration", {{"fit_every", 3}}, tokens, {}});
  check_case({"fairness", {{"metric", "perplexity"}}, tokens, {}});
}

TEST(MergeExactness, Drift) {
  Batch cur, ref;
  for (const auto& [name, f] : test::reference().at("drift").items()) {
    if (name != "normal_shift" && name != "same") continue;  // equal row counts per batch
    cur.features[name] = f.at("current").get<std::vector<double>>();
    ref.features[name] = f.at("reference").get<std::vector<double>>();
    cur.features[name].resize(800);
    ref.features[name].resize(900);
  }
  check_case({"drift", json::object(), cur, ref});
}

TEST(MergeExactness, IncompatibleStatsRefuseToMerge) {
  auto a = make_metric("rouge_l", {{"stem", true}})->empty();
  auto b = make_metric("rouge_l", {{"stem", false}})->empty();
  EXPECT_THROW(merge(a, b), DataError);
  EXPECT_THROW(merge(a, make_metric("bleu")->empty()), DataError);
  test::TokenData d;
  auto cal = make_metric("calibration");
  const Stats s = cal->partial(d.batch(0, 10));
  EXPECT_THROW(merge(s, s), DataError);  // the same example twice
  EXPECT_THROW(make_metric("bleu")->finalize(s), DataError);
  EXPECT_THROW(Stats::from_json(json{{"metric", "bleu"}}), DataError);
  EXPECT_THROW(Stats::from_bytes({0xff, 0x00, 0x13}), DataError);
  // Stats from the wire with the right names but the wrong shape are refused, not misread.
  auto bleu = make_metric("bleu");
  Stats bad = bleu->empty();
  bad.counts["bleu"] = {1, 2, 3};
  EXPECT_THROW(bleu->finalize(bad), DataError);
  auto ece = make_metric("ece");
  Stats bad_ece = ece->empty();
  bad_ece.sums["confidence"] = {ExactSum(0.5)};
  EXPECT_THROW(ece->finalize(bad_ece), DataError);
}

TEST(MergeExactness, FinalizeStatsHelperUsesStatsOptions) {
  const Batch text = text_full();
  auto m = make_metric("rouge_l", {{"stem", true}});
  std::vector<Stats> parts = {m->partial(text.select({0, 1, 2})), m->partial(text.select({3, 4}))};
  EXPECT_EQ(finalize_stats(parts).to_json().dump(),
            m->finalize(m->partial(text.select({0, 1, 2, 3, 4}))).to_json().dump());
}

}  // namespace
}  // namespace conflux::evaluator
