// sacrebleu-compatible BLEU: segment statistics, corpus score, and the familiar output line.
//
// Mirrors sacrebleu.metrics.bleu.BLEU with its defaults (13a tokenizer, mixed case, max order 4,
// smooth_method='exp', effective_order=False). Floating-point operations follow the Python code
// in the same order (precision = 100 * correct / total; exp smoothing divides 100 by
// 2^k * total; score = bp * exp(sum(log p_n) / 4) with log(0) floored to -9999999999), so scores
// match sacrebleu bit for bit.
#include "conflux/evaluator/text.h"
#include "conflux/evaluator/text_metrics.h"

#include <cmath>
#include <cstdio>
#include <unordered_map>

namespace conflux::evaluator {
namespace {

using NgramCounts = std::unordered_map<std::string, int64_t>;

// All n-grams of orders 1..4 of a tokenised line (tokens joined by ' '), and the token count.
NgramCounts extract_ngrams(const std::string& tokenized, int64_t* length) {
  const auto tokens = python_split(tokenized);
  *length = static_cast<int64_t>(tokens.size());
  NgramCounts counts;
  for (int n = 1; n <= kBleuOrder; ++n) {
    for (size_t i = 0; i + n <= tokens.size(); ++i) {
      std::string key = tokens[i];
      for (int k = 1; k < n; ++k) key += ' ' + tokens[i + k];
      ++counts[key];
    }
  }
  return counts;
}

int order_of(const std::string& ngram) {
  int n = 1;
  for (char c : ngram) n += (c == ' ');
  return n;
}

// sacrebleu's _get_closest_ref_len: smallest |hyp - ref|, ties to the shorter reference.
int64_t closest_ref_len(int64_t hyp_len, const std::vector<int64_t>& ref_lens) {
  int64_t best_diff = -1, best_len = -1;
  for (int64_t r : ref_lens) {
    const int64_t diff = std::llabs(hyp_len - r);
    if (best_diff == -1 || diff < best_diff) {
      best_diff = diff;
      best_len = r;
    } else if (diff == best_diff && r < best_len) {
      best_len = r;
    }
  }
  return best_len;
}

double my_log(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }

std::string fixed(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);  // correctly rounded, like Python's format
  return buf;
}

}  // namespace

BleuStats bleu_segment_stats(std::string_view hypothesis, const std::vector<std::string>& refs) {
  NgramCounts ref_max;
  std::vector<int64_t> ref_lens;
  for (const auto& ref : refs) {
    int64_t len = 0;
    const auto counts = extract_ngrams(tokenize_13a(python_rstrip(ref)), &len);
    ref_lens.push_back(len);
    for (const auto& [g, c] : counts) {
      auto& m = ref_max[g];
      if (c > m) m = c;
    }
  }
  int64_t hyp_len = 0;
  const auto hyp = extract_ngrams(tokenize_13a(python_rstrip(hypothesis)), &hyp_len);
  BleuStats s{};
  s[0] = hyp_len;
  s[1] = closest_ref_len(hyp_len, ref_lens);
  for (const auto& [g, c] : hyp) {
    const int n = order_of(g) - 1;
    s[2 + kBleuOrder + n] += c;
    if (auto it = ref_max.find(g); it != ref_max.end()) s[2 + n] += std::min(c, it->second);
  }
  return s;
}

BleuScore compute_bleu(const BleuStats& st) {
  BleuScore r;
  r.sys_len = st[0];
  r.ref_len = st[1];
  for (int n = 0; n < kBleuOrder; ++n) {
    r.counts[n] = st[2 + n];
    r.totals[n] = st[2 + kBleuOrder + n];
  }
  r.ratio = r.ref_len ? static_cast<double>(r.sys_len) / static_cast<double>(r.ref_len) : 0.0;
  if (r.sys_len < r.ref_len)
    r.bp = r.sys_len > 0
               ? std::exp(1.0 - static_cast<double>(r.ref_len) / static_cast<double>(r.sys_len))
               : 0.0;
  else
    r.bp = 1.0;
  bool any_correct = false;
  for (auto c : r.counts) any_correct = any_correct || c != 0;
  if (!any_correct) return r;  // score 0, precisions 0 (sacrebleu's early stop)
  double smooth = 1.0;
  for (int n = 0; n < kBleuOrder; ++n) {
    if (r.totals[n] == 0) break;
    if (r.counts[n] == 0) {
      smooth *= 2;
      r.precisions[n] = 100.0 / (smooth * static_cast<double>(r.totals[n]));
    } else {
      r.precisions[n] = 100.0 * static_cast<double>(r.counts[n]) / static_cast<double>(r.totals[n]);
    }
  }
  double sum = 0.0;
  for (int n = 0; n < kBleuOrder; ++n) sum += my_log(r.precisions[n]);
  r.score = r.bp * std::exp(sum / kBleuOrder);
  return r;
}

std::string BleuScore::line() const {
  std::string prec;
  for (int n = 0; n < kBleuOrder; ++n) prec += (n ? "/" : "") + fixed(precisions[n], 1);
  return "BLEU = " + fixed(score, 2) + " " + prec + " (BP = " + fixed(bp, 3) +
         " ratio = " + fixed(ratio, 3) + " hyp_len = " + std::to_string(sys_len) +
         " ref_len = " + std::to_string(ref_len) + ")";
}

nlohmann::json BleuScore::to_json() const {
  return nlohmann::json{{"score", score},   {"precisions", precisions}, {"bp", bp},
                        {"ratio", ratio},   {"sys_len", sys_len},       {"ref_len", ref_len},
                        {"counts", counts}, {"totals", totals}};
}

}  // namespace conflux::evaluator
