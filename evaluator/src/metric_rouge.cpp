// Metric "rouge_l": ROUGE-L as rouge-score computes it per (prediction, targets) pair; the corpus
// value is the mean over pairs (rouge-score's BootstrapAggregator reports the same mean as its
// "mid"). Stats: sums "precision", "recall", "fmeasure" (ExactSum over pairs) and counts "pairs".
// Option: stem (bool, default false) = rouge-score's use_stemmer.
#include "conflux/evaluator/text_metrics.h"
#include "factories.h"
#include "options.h"

#include <cstdio>

namespace conflux::evaluator::detail {
namespace {

class RougeL final : public Metric {
 public:
  InputKind inputs() const override { return InputKind::Text; }
  RougeL(nlohmann::json options, bool stem) : Metric("rouge_l", std::move(options)), stem_(stem) {}

  Stats partial(const Batch& batch) const override {
    batch.validate();
    if (batch.references.size() != batch.hypotheses.size())
      CONFLUX_THROW(DataError, "rouge_l: {} hypotheses but {} reference lists",
                    batch.hypotheses.size(), batch.references.size());
    Stats s = empty();
    auto& sums = s.sums_of("prf", 3);
    for (size_t i = 0; i < batch.hypotheses.size(); ++i) {
      if (batch.references[i].empty())
        CONFLUX_THROW(DataError, "rouge_l: example {} has no reference", batch.example_id(i));
      const RougeScore r = rouge_l(batch.references[i], batch.hypotheses[i], stem_);
      sums[0] += r.precision;
      sums[1] += r.recall;
      sums[2] += r.fmeasure;
    }
    s.counts_of("pairs", 1)[0] += static_cast<int64_t>(batch.hypotheses.size());
    return s;
  }

  Result finalize(const Stats& stats) const override {
    check_stats(stats);
    const int64_t n = stats.count("pairs");
    Stats z = stats;  // sums_of() validates the length of wire-supplied stats
    const auto& prf = z.sums_of("prf", 3);
    auto mean = [&](int k) {
      if (n == 0) return std::nan("");
      return prf[k].value() / static_cast<double>(n);
    };
    Result r;
    r.metric = name();
    r.primary = "fmeasure";
    r.value = mean(2);
    r.detail = {{"precision", number(mean(0))}, {"recall", number(mean(1))},
                {"fmeasure", number(mean(2))},  {"pairs", n},
                {"stemmed", stem_}};
    char buf[160];
    std::snprintf(buf, sizeof buf, "ROUGE-L F = %.4f P = %.4f R = %.4f (pairs = %lld%s)", mean(2),
                  mean(0), mean(1), static_cast<long long>(n), stem_ ? ", stemmed" : "");
    r.line = buf;
    return r;
  }

 private:
  bool stem_;
};

}  // namespace

std::unique_ptr<Metric> make_rouge_l(const nlohmann::json& options) {
  reject_unknown("rouge_l", options, {"stem"});
  nlohmann::json norm = nlohmann::json::object();
  const bool stem = option<bool>("rouge_l", options, "stem", false, norm);
  return std::make_unique<RougeL>(norm, stem);
}

}  // namespace conflux::evaluator::detail
