// DP-FedAvg's server side (McMahan et al. 2018, "Learning Differentially Private Recurrent
// Language Models"): user-level differential privacy for federated averaging.
//
// Per round: each participant's update delta_k = w_k - w_global is clipped to L2 norm S
// (factor min(1, S / ||delta_k||)), the clipped deltas are summed unweighted (each user's
// influence is bounded by S whatever its data size), Gaussian noise N(0, (z*S)^2) is added once
// to every coordinate of the sum, and the sum is divided by the expected cohort size qN (the
// fixed-denominator estimator, so the sensitivity stays S / (qN)):
//   w_next = w_global + (sum_k clip(delta_k) + N(0, z^2 S^2 I)) / (q N).
// The privacy cost of a round is one sampled Gaussian mechanism with sampling rate q and noise
// multiplier z; the RDP accountant (core/privacy.h) composes the rounds.
//
// Adaptive clipping (Andrew et al. 2021, "Differentially Private Learning with Adaptive
// Clipping"): the round also counts the bits b_k = [||delta_k|| <= S] (within_bound()); the
// server releases the count with Gaussian noise N(0, sigma_b^2), b_bar = (count + noise) / (q N),
// and the next round's bound is the geometric update S' = S * exp(-eta_C * (b_bar - gamma)),
// which moves S toward the gamma-quantile of the update norms (adaptive_clip_step). With adaptive
// clipping the options' noise_multiplier is z_delta (core/privacy.h,
// adaptive_clip_update_noise_multiplier), so that update and count together cost z.
//
// Memory: one float64 running sum, O(model). Deltas are computed and clipped in float64.
// Thread safety: one thread.
#pragma once

#include "conflux/core/rng.h"
#include "conflux/federated/weights.h"

namespace conflux::federated {

struct DpFedAvgOptions {
  double clip = 1.0;              // S
  double noise_multiplier = 1.0;  // z
  double expected_clients = 1.0;  // q N
};

struct AdaptiveClipOptions {
  double target_quantile = 0.5;  // gamma, in (0, 1)
  double clip_lr = 0.2;          // eta_C >= 0
  double count_stddev = 0;       // sigma_b >= 0: noise std of the released bit count
};

struct AdaptiveClipStep {
  double noisy_count;     // sum of the bits + N(0, sigma_b^2)
  double fraction;        // b_bar = noisy_count / expected_clients
  double next_clip;       // S * exp(-clip_lr * (b_bar - target_quantile))
};

// The clip update rule for given values (pure): `count_noise` is the already drawn noise sample
// (sigma_b * N(0, 1)). ConfigError for options out of range or expected_clients <= 0.
AdaptiveClipStep adaptive_clip_step(double clip, size_t within_bound, double count_noise, double expected_clients,
                                    const AdaptiveClipOptions& options);

class DpFedAvg {
 public:
  explicit DpFedAvg(DpFedAvgOptions options);

  // `global` must outlive the round.
  void begin_round(const Weights& global);
  // Validates the result against the global (names, shapes, finite values: DataError naming its
  // source), clips its delta and folds it in. Returns the delta's L2 norm before clipping.
  double add(ClientResult result);
  // The next global weights, noise drawn from `noise` (SecureRandom unless a seeded run).
  Weights finish(RandomSource& noise);

  size_t results() const { return results_; }
  size_t clipped() const { return clipped_; }  // results whose delta exceeded S this round
  size_t within_bound() const { return results_ - clipped_; }  // the bits b_k = [||delta_k|| <= S] summed
  // Adaptive clipping: releases this round's bit count with noise count_stddev * noise.normal()
  // (no draw when count_stddev is 0) and returns the next bound. Call after the round's add()s.
  AdaptiveClipStep adapt_clip(const AdaptiveClipOptions& adaptive, RandomSource& noise) const;
  const DpFedAvgOptions& options() const { return options_; }

 private:
  DpFedAvgOptions options_;
  const Weights* global_ = nullptr;
  std::vector<std::vector<double>> sum_;
  size_t results_ = 0, clipped_ = 0;
};

}  // namespace conflux::federated
