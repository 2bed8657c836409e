// Metric "robustness": a text metric on the clean hypotheses and on perturbed hypotheses
// (perturb.h), reported side by side with the difference perturbed - clean.
// Options: metric (inner, required), options (inner options), perturbation ("char_swap",
// "char_delete", "token_substitute"), rate (0..1, default 0.1), seed (default 0), vocabulary
// (token_substitute replacements; default: tokens of the same text). Each example is perturbed
// with the stream keyed by its global id, so batching does not change the perturbed corpus.
// Stats: children "clean" and "perturbed" (inner metric stats). robustness_stats() assembles the
// same Stats from inner stats computed elsewhere (e.g. after perturbing model inputs).
#include "conflux/evaluator/perturb.h"
#include "factories.h"
#include "options.h"

#include <cstdio>

namespace conflux::evaluator::detail {
namespace {

class Robustness final : public Metric {
 public:
  InputKind inputs() const override { return inner_->inputs(); }
  Robustness(nlohmann::json options, std::unique_ptr<Metric> inner, Perturbation kind, double rate,
             uint64_t seed, std::vector<std::string> vocab)
      : Metric("robustness", std::move(options)), inner_(std::move(inner)), kind_(kind),
        rate_(rate), seed_(seed), vocab_(std::move(vocab)) {}

  Stats partial(const Batch& batch) const override {
    batch.validate();
    if (batch.hypotheses.empty() && batch.num_examples() > 0)
      CONFLUX_THROW(DataError, "robustness: perturbs hypotheses, but the batch has none (perturb "
                    "model inputs with perturb_text/perturb_token_ids and use robustness_stats)");
    Batch noisy = batch;
    for (size_t i = 0; i < noisy.hypotheses.size(); ++i) {
      Stream rng = perturbation_stream(seed_, batch.example_id(i));
      noisy.hypotheses[i] = perturb_text(batch.hypotheses[i], kind_, rate_, rng, vocab_);
    }
    Stats s = empty();
    s.children["clean"] = inner_->partial(batch);
    s.children["perturbed"] = inner_->partial(noisy);
    return s;
  }

  Result finalize(const Stats& stats) const override {
    check_stats(stats);
    const auto c = stats.children.find("clean");
    const auto p = stats.children.find("perturbed");
    const Result clean = c == stats.children.end() ? inner_->finalize(inner_->empty())
                                                   : inner_->finalize(c->second);
    const Result noisy = p == stats.children.end() ? inner_->finalize(inner_->empty())
                                                   : inner_->finalize(p->second);
    Result r;
    r.metric = name();
    r.primary = "delta";
    r.value = noisy.value - clean.value;
    r.detail = {{"inner_metric", inner_->name()}, {"perturbation", perturbation_name(kind_)},
                {"rate", rate_}, {"seed", seed_}, {"clean", clean.to_json()},
                {"perturbed", noisy.to_json()}, {"clean_value", number(clean.value)},
                {"perturbed_value", number(noisy.value)}, {"delta", number(r.value)}};
    char buf[256];
    std::snprintf(buf, sizeof buf, "robustness(%s, %s @ %.3f): clean %s = %.4f perturbed = %.4f delta = %+.4f",
                  inner_->name().c_str(), perturbation_name(kind_), rate_, clean.primary.c_str(),
                  clean.value, noisy.value, r.value);
    r.line = buf;
    return r;
  }

 private:
  std::unique_ptr<Metric> inner_;
  Perturbation kind_;
  double rate_;
  uint64_t seed_;
  std::vector<std::string> vocab_;
};

}  // namespace

std::unique_ptr<Metric> make_robustness(const nlohmann::json& options) {
  reject_unknown("robustness", options,
                 {"metric", "options", "perturbation", "rate", "seed", "vocabulary"});
  nlohmann::json norm = nlohmann::json::object();
  const auto inner_name = option<std::string>("robustness", options, "metric", "", norm);
  if (inner_name.empty() || inner_name == "robustness")
    CONFLUX_THROW(ConfigError, "metric 'robustness': option 'metric' must name another metric");
  const auto inner_opts =
      option<nlohmann::json>("robustness", options, "options", nlohmann::json::object(), norm);
  const auto kind = parse_perturbation(
      option<std::string>("robustness", options, "perturbation", "char_swap", norm));
  const double rate = option<double>("robustness", options, "rate", 0.1, norm);
  if (!(rate >= 0 && rate <= 1))
    CONFLUX_THROW(ConfigError, "metric 'robustness': rate {} is outside [0, 1]", rate);
  const auto seed = option<uint64_t>("robustness", options, "seed", 0, norm);
  auto vocab = option<std::vector<std::string>>("robustness", options, "vocabulary", {}, norm);
  auto inner = make_metric(inner_name, inner_opts);
  norm["options"] = inner->options();
  return std::make_unique<Robustness>(norm, std::move(inner), kind, rate, seed, std::move(vocab));
}

}  // namespace conflux::evaluator::detail

namespace conflux::evaluator {

Stats robustness_stats(const Metric& robustness, const Stats& clean, const Stats& perturbed) {
  if (robustness.name() != "robustness")
    CONFLUX_THROW(DataError, "robustness_stats needs the robustness metric, got '{}'",
                  robustness.name());
  Stats s = robustness.empty();
  s.children["clean"] = clean;
  s.children["perturbed"] = perturbed;
  return s;
}

}  // namespace conflux::evaluator
