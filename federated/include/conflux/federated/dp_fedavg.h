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
  const DpFedAvgOptions& options() const { return options_; }

 private:
  DpFedAvgOptions options_;
  const Weights* global_ = nullptr;
  std::vector<std::vector<double>> sum_;
  size_t results_ = 0, clipped_ = 0;
};

}  // namespace conflux::federated
