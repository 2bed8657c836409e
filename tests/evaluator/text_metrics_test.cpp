// BLEU, ROUGE-L, Porter stemming and distinct-n against sacrebleu / rouge-score / nltk vectors.
#include "conflux/evaluator/metric.h"
#include "conflux/evaluator/text.h"
#include "conflux/evaluator/text_metrics.h"
#include "reference_data.h"

#include <gtest/gtest.h>

namespace conflux::evaluator {
namespace {

using nlohmann::json;
const json& ref() { return test::reference(); }

TEST(Tokenizer13a, MatchesSacrebleuOnEverySegment) {
  for (const auto& seg : ref().at("bleu").at("segments")) {
    const auto hyp = seg.at("hyp").get<std::string>();
    EXPECT_EQ(tokenize_13a(python_rstrip(hyp)), seg.at("hyp_tokens").get<std::string>()) << hyp;
  }
}

TEST(Bleu, SegmentStatisticsExact) {
  size_t n = 0;
  for (const auto& seg : ref().at("bleu").at("segments")) {
    const auto st = bleu_segment_stats(seg.at("hyp").get<std::string>(),
                                       seg.at("refs").get<std::vector<std::string>>());
    const auto expect = seg.at("stats").get<std::vector<int64_t>>();
    ASSERT_EQ(expect.size(), st.size());
    for (size_t k = 0; k < st.size(); ++k)
      EXPECT_EQ(st[k], expect[k]) << "segment " << n << " stat " << k << ": " << seg.at("hyp");
    ++n;
  }
  EXPECT_GT(n, 300u);
}

void expect_bleu_matches(const Result& r, const json& c) {
  EXPECT_NEAR(r.value, c.at("score").get<double>(), 1e-9) << c.at("name");
  EXPECT_EQ(r.line, c.at("line").get<std::string>()) << c.at("name");
  const auto& d = r.detail;
  EXPECT_NEAR(d.at("bp").get<double>(), c.at("bp").get<double>(), 1e-12);
  for (int k = 0; k < 4; ++k) {
    EXPECT_NEAR(d.at("precisions")[k].get<double>(), c.at("precisions")[k].get<double>(), 1e-9);
    EXPECT_EQ(d.at("counts")[k].get<int64_t>(), c.at("counts")[k].get<int64_t>());
    EXPECT_EQ(d.at("totals")[k].get<int64_t>(), c.at("totals")[k].get<int64_t>());
  }
  EXPECT_EQ(d.at("sys_len").get<int64_t>(), c.at("sys_len").get<int64_t>());
  EXPECT_EQ(d.at("ref_len").get<int64_t>(), c.at("ref_len").get<int64_t>());
}

TEST(Bleu, CorpusScoresMatchSacrebleu) {
  const auto& segs = ref().at("bleu").at("segments");
  auto metric = make_metric("bleu");
  size_t checked = 0;
  for (const auto& c : ref().at("bleu").at("corpora")) {
    Batch b;
    for (const auto& i : c.at("indices")) {
      b.hypotheses.push_back(segs[i.get<size_t>()].at("hyp").get<std::string>());
      b.references.push_back(segs[i.get<size_t>()].at("refs").get<std::vector<std::string>>());
    }
    const Result r = metric->finalize(metric->partial(b));
    expect_bleu_matches(r, c);
    EXPECT_EQ(r.value, c.at("score").get<double>()) << "not bit-identical: " << c.at("name");
    ++checked;
  }
  EXPECT_GT(checked, 20u);
}

TEST(Bleu, PublishedLineFormat) {
  BleuStats st{17, 18, 14, 8, 5, 3, 17, 16, 11, 8};  // hyp_len 17, ref_len 18
  const BleuScore b = compute_bleu(st);
  EXPECT_EQ(b.line().substr(0, 33), "BLEU = 48.53 82.4/50.0/45.5/37.5 ");
  EXPECT_EQ(b.line(), "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 "
                      "ref_len = 18)");
}

TEST(Porter, MatchesNltkOnEveryWord) {
  size_t n = 0;
  for (const auto& [word, stem] : ref().at("porter").items()) {
    EXPECT_EQ(porter_stem(word), stem.get<std::string>()) << word;
    ++n;
  }
  EXPECT_GT(n, 1000u);
}

TEST(Rouge, TokensAndPairScoresExact) {
  for (const auto& p : ref().at("rouge").at("pairs")) {
    const auto hyp = p.at("hyp").get<std::string>();
    const auto refs = p.at("refs").get<std::vector<std::string>>();
    EXPECT_EQ(rouge_tokenize(hyp, false), p.at("tokens_plain").get<std::vector<std::string>>()) << hyp;
    EXPECT_EQ(rouge_tokenize(hyp, true), p.at("tokens_stem").get<std::vector<std::string>>()) << hyp;
    for (bool stem : {false, true}) {
      const RougeScore s = rouge_l(refs, hyp, stem);
      const auto& e = p.at(stem ? "stem" : "plain");
      EXPECT_EQ(s.precision, e[0].get<double>()) << hyp;
      EXPECT_EQ(s.recall, e[1].get<double>()) << hyp;
      EXPECT_EQ(s.fmeasure, e[2].get<double>()) << hyp;
    }
  }
}

TEST(Rouge, CorpusMeanIsExactMeanOfPairs) {
  const auto& pairs = ref().at("rouge").at("pairs");
  for (bool stem : {false, true}) {
    auto m = make_metric("rouge_l", {{"stem", stem}});
    const Result r = m->finalize(m->partial(test::text_batch(pairs, 0, pairs.size())));
    const auto& e = ref().at("rouge").at("means").at(stem ? "stem" : "plain");
    EXPECT_EQ(r.detail.at("precision").get<double>(), e[0].get<double>());
    EXPECT_EQ(r.detail.at("recall").get<double>(), e[1].get<double>());
    EXPECT_EQ(r.value, e[2].get<double>());
    EXPECT_EQ(r.detail.at("pairs").get<int64_t>(), static_cast<int64_t>(pairs.size()));
  }
}

TEST(Distinct, MatchesPythonCounts) {
  const auto& pairs = ref().at("rouge").at("pairs");
  auto m = make_metric("distinct", {{"orders", {1, 2, 3}}});
  const Result r = m->finalize(m->partial(test::text_batch(pairs, 0, pairs.size())));
  for (const auto& [n, e] : ref().at("distinct").at("orders").items()) {
    EXPECT_EQ(r.detail.at("unique_" + n).get<int64_t>(), e.at("unique").get<int64_t>());
    EXPECT_EQ(r.detail.at("total_" + n).get<int64_t>(), e.at("total").get<int64_t>());
    EXPECT_EQ(r.detail.at("distinct_" + n).get<double>(), e.at("distinct").get<double>());
  }
  EXPECT_EQ(r.primary, "distinct_1");
}

TEST(PythonText, SplitAndRstrip) {
  EXPECT_EQ(python_split("  a\u00a0b\u3000c\x1f d  "), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(python_rstrip("ab \t\u2003"), "ab");
  EXPECT_EQ(python_split("\xff\xfe x"), (std::vector<std::string>{"\xff\xfe", "x"}));
}

}  // namespace
}  // namespace conflux::evaluator

namespace conflux::evaluator {
namespace {

TEST(Tokenizers, RandomHostileStringsMatchSacrebleuAndRougeScore) {
  size_t n = 0;
  for (const auto& c : test::reference().at("tokenizer_fuzz")) {
    const auto text = c.at("text").get<std::string>();
    EXPECT_EQ(tokenize_13a(python_rstrip(text)), c.at("tok13a").get<std::string>()) << text;
    EXPECT_EQ(rouge_tokenize(text, false), c.at("rouge").get<std::vector<std::string>>()) << text;
    EXPECT_EQ(rouge_tokenize(text, true), c.at("rouge_stem").get<std::vector<std::string>>()) << text;
    ++n;
  }
  EXPECT_EQ(n, 600u);
}

}  // namespace
}  // namespace conflux::evaluator
