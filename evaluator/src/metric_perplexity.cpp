// Metric "perplexity": exp(total NLL / token count) with the NLL summed exactly in float64 over
// every non-ignored token (not a mean of per-sequence perplexities), and token accuracy (first
// argmax == target). Input: logits (or log-probabilities, logits.log_probs) rows and targets;
// rows whose target equals batch.ignore_index are skipped. With log-probabilities the NLL is
// -logp[target]; with logits it is logsumexp(z) - z[target] (calibration.h). Stats: sums "nll",
// counts "tokens", "correct".
#include "conflux/evaluator/calibration.h"
#include "factories.h"
#include "options.h"

#include <cstdio>

namespace conflux::evaluator::detail {
namespace {

class Perplexity final : public Metric {
 public:
  InputKind inputs() const override { return InputKind::Tokens; }
  explicit Perplexity(nlohmann::json options) : Metric("perplexity", std::move(options)) {}

  Stats partial(const Batch& batch) const override {
    batch.validate();
    Stats s = empty();
    auto& nll = s.sums_of("nll", 1)[0];
    auto& tokens = s.counts_of("tokens", 1)[0];
    auto& correct = s.counts_of("correct", 1)[0];
    const auto& L = batch.logits;
    for (int64_t r = 0; r < L.rows; ++r) {
      const int64_t t = batch.targets[static_cast<size_t>(r)];
      if (t == batch.ignore_index) continue;
      const RowScore rs = score_row(L.row(r), L.classes, t);
      nll += L.log_probs ? -static_cast<double>(L.row(r)[t]) : rs.nll;
      ++tokens;
      correct += (rs.predicted == t);
    }
    return s;
  }

  Result finalize(const Stats& stats) const override {
    check_stats(stats);
    const int64_t tokens = stats.count("tokens");
    const auto it = stats.sums.find("nll");
    const double total = it == stats.sums.end() ? 0.0 : it->second[0].value();
    const double mean = tokens ? total / static_cast<double>(tokens) : std::nan("");
    const double ppl = std::exp(mean);
    const double acc =
        tokens ? static_cast<double>(stats.count("correct")) / static_cast<double>(tokens) : std::nan("");
    Result r;
    r.metric = name();
    r.primary = "perplexity";
    r.value = ppl;
    r.detail = {{"perplexity", number(ppl)}, {"mean_nll", number(mean)}, {"total_nll", total},
                {"tokens", tokens},          {"correct", stats.count("correct")},
                {"token_accuracy", number(acc)}};
    char buf[160];
    std::snprintf(buf, sizeof buf, "perplexity = %.4f mean NLL = %.6f token accuracy = %.4f (tokens = %lld)",
                  ppl, mean, acc, static_cast<long long>(tokens));
    r.line = buf;
    return r;
  }
};

}  // namespace

std::unique_ptr<Metric> make_perplexity(const nlohmann::json& options) {
  reject_unknown("perplexity", options, {});
  return std::make_unique<Perplexity>(nlohmann::json::object());
}

}  // namespace conflux::evaluator::detail
