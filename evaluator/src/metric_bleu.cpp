// Metric "bleu": corpus BLEU identical to sacrebleu's default. Stats: counts "bleu" =
// [hyp_len, ref_len, correct_1..4, total_1..4] summed over segments, and "segments".
#include "conflux/evaluator/text_metrics.h"
#include "factories.h"
#include "options.h"

namespace conflux::evaluator::detail {
namespace {

class Bleu final : public Metric {
 public:
  InputKind inputs() const override { return InputKind::Text; }
  explicit Bleu(nlohmann::json options) : Metric("bleu", std::move(options)) {}

  Stats partial(const Batch& batch) const override {
    batch.validate();
    if (batch.references.size() != batch.hypotheses.size())
      CONFLUX_THROW(DataError, "bleu: {} hypotheses but {} reference lists",
                    batch.hypotheses.size(), batch.references.size());
    Stats s = empty();
    auto& c = s.counts_of("bleu", std::tuple_size<BleuStats>::value);
    for (size_t i = 0; i < batch.hypotheses.size(); ++i) {
      if (batch.references[i].empty())
        CONFLUX_THROW(DataError, "bleu: example {} has no reference", batch.example_id(i));
      const auto seg = bleu_segment_stats(batch.hypotheses[i], batch.references[i]);
      for (size_t k = 0; k < seg.size(); ++k) c[k] += seg[k];
    }
    s.counts_of("segments", 1)[0] += static_cast<int64_t>(batch.hypotheses.size());
    return s;
  }

  Result finalize(const Stats& stats) const override {
    check_stats(stats);
    Stats z = stats;  // counts_of() validates the length of wire-supplied stats
    const auto& c = z.counts_of("bleu", std::tuple_size<BleuStats>::value);
    BleuStats st{};
    for (size_t k = 0; k < st.size(); ++k) st[k] = c[k];
    const BleuScore b = compute_bleu(st);
    Result r;
    r.metric = name();
    r.primary = "score";
    r.value = b.score;
    r.detail = b.to_json();
    r.detail["segments"] = stats.count("segments");
    r.line = b.line();
    return r;
  }
};

}  // namespace

std::unique_ptr<Metric> make_bleu(const nlohmann::json& options) {
  reject_unknown("bleu", options, {});
  return std::make_unique<Bleu>(nlohmann::json::object());
}

}  // namespace conflux::evaluator::detail
