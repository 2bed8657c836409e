// DP-FedAvg's clipped, noised, fixed-denominator average (dp_fedavg.h).
#include "conflux/federated/dp_fedavg.h"

#include "conflux/core/error.h"

#include <cmath>

namespace conflux::federated {

DpFedAvg::DpFedAvg(DpFedAvgOptions options) : options_(options) {
  if (!(options_.clip > 0) || !std::isfinite(options_.clip))
    CONFLUX_THROW(ConfigError, "privacy.clip must be a positive number, got {}", options_.clip);
  if (!(options_.noise_multiplier >= 0) || !std::isfinite(options_.noise_multiplier))
    CONFLUX_THROW(ConfigError, "privacy.noise_multiplier must be >= 0, got {}", options_.noise_multiplier);
  if (!(options_.expected_clients > 0) || !std::isfinite(options_.expected_clients))
    CONFLUX_THROW(ConfigError, "the expected cohort size must be positive, got {}", options_.expected_clients);
}

void DpFedAvg::begin_round(const Weights& global) {
  check_weights(global, "the global model");
  global_ = &global;
  sum_.assign(global.size(), {});
  for (size_t i = 0; i < global.size(); ++i) sum_[i].assign(global[i].values.size(), 0.0);
  results_ = clipped_ = 0;
}

double DpFedAvg::add(ClientResult r) {
  if (!global_) CONFLUX_THROW(UsageError, "DpFedAvg::add() outside a round");
  check_weights(r.weights, r.source);
  match_layout(r.weights, *global_, r.source);
  double norm2 = 0;
  for (size_t i = 0; i < r.weights.size(); ++i) {
    const auto& w = r.weights[i].values;
    const auto& g = (*global_)[i].values;
    for (size_t j = 0; j < w.size(); ++j) {
      const double d = static_cast<double>(w[j]) - static_cast<double>(g[j]);
      norm2 += d * d;
    }
  }
  const double norm = std::sqrt(norm2);
  const double factor = norm > options_.clip ? options_.clip / norm : 1.0;
  if (factor < 1.0) ++clipped_;
  for (size_t i = 0; i < r.weights.size(); ++i) {
    const auto& w = r.weights[i].values;
    const auto& g = (*global_)[i].values;
    auto& s = sum_[i];
    for (size_t j = 0; j < w.size(); ++j)
      s[j] += (static_cast<double>(w[j]) - static_cast<double>(g[j])) * factor;
  }
  ++results_;
  return norm;
}

Weights DpFedAvg::finish(RandomSource& noise) {
  if (!global_) CONFLUX_THROW(UsageError, "DpFedAvg::finish() outside a round");
  const double sigma = options_.noise_multiplier * options_.clip;
  Weights next = *global_;
  for (size_t i = 0; i < next.size(); ++i) {
    auto& v = next[i].values;
    for (size_t j = 0; j < v.size(); ++j) {
      const double noisy = sum_[i][j] + (sigma > 0 ? sigma * noise.normal() : 0.0);
      v[j] = static_cast<float>(static_cast<double>(v[j]) + noisy / options_.expected_clients);
    }
  }
  global_ = nullptr;
  sum_.clear();
  return next;
}

}  // namespace conflux::federated
