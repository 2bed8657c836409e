// Internal: one factory per metric file; registry.cpp lists them in one table.
#pragma once

#include "conflux/evaluator/metric.h"

#include <cmath>

namespace conflux::evaluator::detail {

std::unique_ptr<Metric> make_bleu(const nlohmann::json& options);
std::unique_ptr<Metric> make_rouge_l(const nlohmann::json& options);
std::unique_ptr<Metric> make_distinct(const nlohmann::json& options);
std::unique_ptr<Metric> make_perplexity(const nlohmann::json& options);
std::unique_ptr<Metric> make_ece(const nlohmann::json& options);
std::unique_ptr<Metric> make_calibration(const nlohmann::json& options);
std::unique_ptr<Metric> make_drift(const nlohmann::json& options);
std::unique_ptr<Metric> make_fairness(const nlohmann::json& options);
std::unique_ptr<Metric> make_robustness(const nlohmann::json& options);

// A double for JSON: NaN/inf become null (JSON has no NaN).
inline nlohmann::json number(double x) {
  return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr);
}

}  // namespace conflux::evaluator::detail
