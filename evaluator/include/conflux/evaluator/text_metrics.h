// Sentence-level building blocks of the text metrics, exposed for the CLI and for tests.
//
// BLEU (sacrebleu 2.x defaults): segment statistics [hyp_len, ref_len, correct_1..4, total_1..4]
// are summed over a corpus, then compute_bleu() applies 'exp' smoothing and the brevity penalty.
// ROUGE-L (rouge-score): LCS-based precision/recall/F of one prediction against its target(s);
// with several targets the one with the highest F wins (first on ties), as score_multi() does.
// All functions are pure and thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace conflux::evaluator {

inline constexpr int kBleuOrder = 4;
using BleuStats = std::array<int64_t, 2 + 2 * kBleuOrder>;  // sys, ref, correct[4], total[4]

BleuStats bleu_segment_stats(std::string_view hypothesis, const std::vector<std::string>& refs);

struct BleuScore {
  double score = 0.0;                          // 0..100
  std::array<double, kBleuOrder> precisions{};  // 0..100, after smoothing
  double bp = 0.0;
  double ratio = 0.0;
  int64_t sys_len = 0;
  int64_t ref_len = 0;
  std::array<int64_t, kBleuOrder> counts{};
  std::array<int64_t, kBleuOrder> totals{};
  // "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)"
  std::string line() const;
  nlohmann::json to_json() const;  // score, precisions, bp, ratio, sys_len, ref_len, counts, totals
};
BleuScore compute_bleu(const BleuStats& corpus_stats);

struct RougeScore {
  double precision = 0.0;
  double recall = 0.0;
  double fmeasure = 0.0;
};
RougeScore rouge_l_tokens(const std::vector<std::string>& target,
                          const std::vector<std::string>& prediction);
RougeScore rouge_l(const std::vector<std::string>& targets, std::string_view prediction,
                   bool use_stemmer);

// Corpus distinct-n inputs: the n-grams (tokens joined by ' ') of Python's split() of the text.
std::vector<std::string> word_ngrams(std::string_view text, int n);

}  // namespace conflux::evaluator
