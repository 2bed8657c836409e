// Differential-privacy calibration and accounting shared by the dataplane (noising records),
// the trainer (DP-SGD) and federated rounds (DP-FedAvg).
//
// All functions are pure and thread-safe; invalid parameters throw PrivacyError naming the
// parameter and the allowed range.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace conflux::privacy {

// Classic Gaussian mechanism (Dwork & Roth, Thm A.1): sigma = sqrt(2 ln(1.25/delta)) * sens / eps.
// Only valid for 0 < eps < 1: throws PrivacyError for eps >= 1 (use the analytic calibration).
double gaussian_sigma_classic(double epsilon, double delta, double sensitivity);

// Analytic Gaussian mechanism (Balle & Wang 2018, Alg. 1): the smallest sigma with
// delta(eps, sigma) <= delta, by bisection on the exact formula
//   delta(eps, s) = Phi(sens/(2s) - eps*s/sens) - e^eps * Phi(-sens/(2s) - eps*s/sens).
double gaussian_sigma_analytic(double epsilon, double delta, double sensitivity);
// The exact delta achieved by Gaussian noise sigma at epsilon (the formula above).
double gaussian_delta(double epsilon, double sigma, double sensitivity);

// Laplace mechanism: scale b = sensitivity / epsilon (L1 sensitivity).
double laplace_scale(double epsilon, double sensitivity);

// k-ary randomized response: probability of reporting the true value, e^eps / (e^eps + k - 1).
double randomized_response_keep_probability(double epsilon, int k);

// Renyi DP of the sampled Gaussian mechanism, as Opacus's accountants/analysis/rdp.py computes it
// (Mironov et al. 2019): rdp[i] for each order, for `steps` compositions.
std::vector<double> default_rdp_orders();  // Opacus's DEFAULT_ALPHAS: 1 + x/10 (x=1..99), 12..63
std::vector<double> compute_rdp(double sample_rate, double noise_multiplier, int64_t steps,
                                const std::vector<double>& orders);

struct EpsilonAtOrder {
  double epsilon;
  double order;
};
// (eps, delta) from RDP with the conversion of Balle et al. 2020 (Opacus's get_privacy_spent).
EpsilonAtOrder rdp_to_epsilon(const std::vector<double>& orders, const std::vector<double>& rdp,
                              double delta);

// Convenience: epsilon after `steps` of DP-SGD.
EpsilonAtOrder dpsgd_epsilon(double sample_rate, double noise_multiplier, int64_t steps,
                             double delta);
// The smallest noise multiplier reaching at most `target_epsilon` (Opacus's
// get_noise_multiplier: bracket, then bisection to `tolerance` in epsilon).
double dpsgd_noise_multiplier(double target_epsilon, double delta, double sample_rate,
                              int64_t steps, double tolerance = 0.01);

// DP-FedAvg (McMahan et al. 2018, "Learning Differentially Private Recurrent Language Models"):
// user-level privacy of `rounds` federated rounds, each sampling clients with probability
// q = clients_per_round / population (Poisson sampling, as the accountant assumes), clipping each
// client's update to L2 norm S and adding Gaussian noise of std z * S to the sum. One round is one
// sampled Gaussian mechanism with sampling rate q and noise multiplier z over *users*, so the
// accounting is the RDP accountant above with steps = rounds (Opacus's RDP, identical numbers to
// DP-SGD with q and z); errors name `rounds` instead of `steps`.
//
// q = M / N; PrivacyError naming clients_per_round / population unless 1 <= M <= N.
double dpfedavg_sample_rate(int64_t clients_per_round, int64_t population);
// User-level (epsilon, best Renyi order) after `rounds` rounds (0 rounds: epsilon 0, order NaN).
EpsilonAtOrder dpfedavg_epsilon(double sample_rate, double noise_multiplier, int64_t rounds,
                                double delta);
// The smallest noise multiplier z whose epsilon after `rounds` rounds is at most
// `target_epsilon`, found as dpsgd_noise_multiplier finds it (bisection to `tolerance` in
// epsilon; the result always honours the target). PrivacyError if rounds < 1 or no z <= 1e6 does.
double dpfedavg_noise_multiplier(double target_epsilon, double delta, double sample_rate,
                                 int64_t rounds, double tolerance = 0.01);

// DP-FedAvg with adaptive clipping (Andrew, Chien, Ramaswamy & McMahan 2021, "Differentially
// Private Learning with Adaptive Clipping", Sec. 3 and Thm 1): each round also releases the sum
// of the clipped-or-not bits b_i = [||delta_i|| <= C] with Gaussian noise of std sigma_b. The bit
// sum has sensitivity 1/2 (the paper centres the bits at 1/2), so the round is equivalent to one
// sampled Gaussian mechanism with noise multiplier z where
//   z^-2 = z_delta^-2 + (2 sigma_b)^-2,
// z_delta being the noise multiplier of the update sum. To spend the budget of a requested z, the
// update sum gets z_delta = (z^-2 - (2 sigma_b)^-2)^(-1/2); the accountant charges z (at rate q).
// PrivacyError unless z >= 0 and sigma_b >= 0 are finite and, for z > 0, sigma_b > z / 2 (else
// z_delta is undefined: the bit query alone spends more than z allows). z = 0 gives 0.
double adaptive_clip_update_noise_multiplier(double noise_multiplier, double count_stddev);
// The inverse: the noise multiplier z of the combined mechanism for z_delta and sigma_b (0 when
// either is 0: a release without noise is not private).
double adaptive_clip_effective_noise_multiplier(double update_noise_multiplier, double count_stddev);

// An accountant that composes heterogeneous sampled-Gaussian steps (its state goes in checkpoints).
class RdpAccountant {
 public:
  RdpAccountant();
  void step(double noise_multiplier, double sample_rate, int64_t n = 1);
  EpsilonAtOrder epsilon(double delta) const;
  // History as (noise_multiplier, sample_rate, count) triples, for checkpoints.
  struct Entry {
    double noise_multiplier;
    double sample_rate;
    int64_t steps;
  };
  const std::vector<Entry>& history() const { return history_; }
  void set_history(std::vector<Entry> h) { history_ = std::move(h); }

 private:
  std::vector<Entry> history_;
};

// Basic (sequential) composition of (eps_i, delta_i): sums.
struct EpsDelta {
  double epsilon;
  double delta;
};
EpsDelta compose_basic(const std::vector<EpsDelta>& releases);
// k repeated Gaussian releases with noise multiplier z (sigma / L2 sensitivity) each, composed
// with RDP (no subsampling: rdp(alpha) = k * alpha / (2 z^2)) and converted to (eps, delta).
EpsilonAtOrder compose_gaussian_rdp(double noise_multiplier, int64_t releases, double delta);

}  // namespace conflux::privacy
