// The metric registry: the one place where metric names map to their factories.
// To add a metric: write src/metric_<name>.cpp with a factory, declare it in factories.h, and
// add a row here.
#include "conflux/core/error.h"
#include "factories.h"

namespace conflux::evaluator {

const std::vector<MetricInfo>& metric_registry() {
  static const std::vector<MetricInfo> table = {
      {"bleu", "corpus BLEU identical to sacrebleu's default (13a, exp smoothing)", detail::make_bleu},
      {"rouge_l", "ROUGE-L F/P/R as rouge-score, mean over pairs", detail::make_rouge_l},
      {"distinct", "distinct-n: unique n-grams / n-grams of generated text", detail::make_distinct},
      {"perplexity", "exp(total NLL / tokens) and token accuracy", detail::make_perplexity},
      {"ece", "expected calibration error, 15 equal-width bins", detail::make_ece},
      {"calibration", "temperature scaling: NLL and ECE before/after", detail::make_calibration},
      {"drift", "PSI and Kolmogorov-Smirnov per feature", detail::make_drift},
      {"fairness", "any metric per group and the largest gap", detail::make_fairness},
      {"robustness", "any text metric clean and under perturbation", detail::make_robustness},
  };
  return table;
}

std::vector<std::string> metric_names() {
  std::vector<std::string> names;
  for (const auto& m : metric_registry()) names.push_back(m.name);
  return names;
}

std::unique_ptr<Metric> make_metric(const std::string& name, const nlohmann::json& options) {
  for (const auto& m : metric_registry())
    if (m.name == name) return m.make(options.is_null() ? nlohmann::json::object() : options);
  std::string known;
  for (const auto& n : metric_names()) known += (known.empty() ? "" : ", ") + n;
  CONFLUX_THROW(ConfigError, "unknown metric '{}' (known: {})", name, known);
}

}  // namespace conflux::evaluator
