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
  const double norm = l2_distance(r.weights, *global_);
  const double factor = clip_factor(norm, options_.clip);
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

AdaptiveClipStep adaptive_clip_step(double clip, size_t within_bound, double count_noise, double expected_clients,
                                    const AdaptiveClipOptions& o) {
  if (!(o.target_quantile > 0 && o.target_quantile < 1))
    CONFLUX_THROW(ConfigError, "privacy.target_quantile must be in (0, 1), got {}", o.target_quantile);
  if (!(o.clip_lr >= 0) || !std::isfinite(o.clip_lr))
    CONFLUX_THROW(ConfigError, "privacy.clip_lr must be a finite number >= 0, got {}", o.clip_lr);
  if (!(o.count_stddev >= 0) || !std::isfinite(o.count_stddev))
    CONFLUX_THROW(ConfigError, "privacy.clip_count_stddev must be a finite number >= 0, got {}", o.count_stddev);
  if (!(expected_clients > 0) || !std::isfinite(expected_clients))
    CONFLUX_THROW(ConfigError, "the expected cohort size must be positive, got {}", expected_clients);
  AdaptiveClipStep s;
  s.noisy_count = static_cast<double>(within_bound) + count_noise;
  s.fraction = s.noisy_count / expected_clients;
  s.next_clip = clip * std::exp(-o.clip_lr * (s.fraction - o.target_quantile));
  return s;
}

AdaptiveClipStep DpFedAvg::adapt_clip(const AdaptiveClipOptions& adaptive, RandomSource& noise) const {
  const double draw = adaptive.count_stddev > 0 ? adaptive.count_stddev * noise.normal() : 0.0;
  return adaptive_clip_step(options_.clip, within_bound(), draw, options_.expected_clients, adaptive);
}

}  // namespace conflux::federated
