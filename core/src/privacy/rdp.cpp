// Renyi-DP accounting of the sampled Gaussian mechanism, following Opacus's
// accountants/analysis/rdp.py operation for operation so that epsilons agree to rounding:
//   - log A_alpha by the binomial expansion of Mironov et al. 2019 (Sec. 3.3), in log space;
//     integer orders sum alpha+1 terms, fractional orders sum two alternating series split at
//     z0 = sigma^2 log(1/q - 1) + 1/2 until both terms fall below e^-30;
//   - rdp(alpha) = log A_alpha / (alpha - 1) per step, times the step count;
//   - (eps, delta) by Balle et al. 2020, Thm 21, minimised over the orders (NaNs ignored).
// The noise-multiplier search is Opacus's accountants/utils.py get_noise_multiplier: double
// sigma from 20 until eps <= target, then bisect until target - eps <= tolerance.
// DP-FedAvg's user-level accounting is the same sampled Gaussian with q = M/N and one
// composition per round (McMahan et al. 2018): thin entry points that name rounds.
#include "conflux/core/error.h"
#include "conflux/core/privacy.h"
#include "privacy_internal.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace conflux::privacy {

using namespace detail;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kMaxSigma = 1e6;  // Opacus's MAX_SIGMA
constexpr int64_t kMaxSeriesTerms = 100000000;

double log_add(double logx, double logy) {
  const double a = std::fmin(logx, logy), b = std::fmax(logx, logy);
  if (a == -kInf) return b;
  return std::log1p(std::exp(a - b)) + b;
}

double log_sub(double logx, double logy) {
  if (logx < logy)
    CONFLUX_THROW(InternalError, "RDP log-space subtraction went negative ({} - {})", logx, logy);
  if (logy == -kInf) return logx;
  if (logx == logy) return -kInf;
  const double d = std::expm1(logx - logy);
  if (std::isinf(d)) return logx;  // Python's math.expm1 overflow branch
  return std::log(d) + logy;
}

double log_a_int(double q, double sigma, int64_t alpha) {
  double log_a = -kInf;
  const double two_sigma2 = 2.0 * (sigma * sigma);
  for (int64_t i = 0; i <= alpha; ++i) {
    const double log_coef = std::log(binom(static_cast<double>(alpha), i)) +
                            static_cast<double>(i) * std::log(q) +
                            static_cast<double>(alpha - i) * std::log(1 - q);
    const double s = log_coef + static_cast<double>(i * i - i) / two_sigma2;
    log_a = log_add(log_a, s);
  }
  return log_a;
}

double log_a_frac(double q, double sigma, double alpha) {
  double log_a0 = -kInf, log_a1 = -kInf;
  const double two_sigma2 = 2.0 * (sigma * sigma);
  const double z0 = (sigma * sigma) * std::log(1 / q - 1) + 0.5;
  const double scale = std::sqrt(2.0) * sigma;
  for (int64_t i = 0;; ++i) {
    // Opacus loops without bound; a NaN parameter would never meet the stop test here.
    if (i > kMaxSeriesTerms)
      CONFLUX_THROW(InternalError, "RDP series for q={} sigma={} alpha={} did not converge", q,
                    sigma, alpha);
    const double coef = binom(alpha, i);
    const double log_coef = std::log(std::fabs(coef));
    const double fi = static_cast<double>(i);
    const double j = alpha - fi;

    const double log_t0 = log_coef + fi * std::log(q) + j * std::log(1 - q);
    const double log_t1 = log_coef + j * std::log(q) + fi * std::log(1 - q);

    const double log_e0 = std::log(0.5) + log_erfc((fi - z0) / scale);
    const double log_e1 = std::log(0.5) + log_erfc((z0 - j) / scale);

    const double log_s0 = log_t0 + static_cast<double>(i * i - i) / two_sigma2 + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / two_sigma2 + log_e1;

    if (coef > 0) {
      log_a0 = log_add(log_a0, log_s0);
      log_a1 = log_add(log_a1, log_s1);
    } else {
      log_a0 = log_sub(log_a0, log_s0);
      log_a1 = log_sub(log_a1, log_s1);
    }
    if (std::fmax(log_s0, log_s1) < -30) break;
  }
  return log_add(log_a0, log_a1);
}

// RDP of one step at one order (Opacus's _compute_rdp).
double rdp_one_step(double q, double sigma, double alpha) {
  if (q == 0) return 0;
  if (sigma == 0) return kInf;
  if (q == 1.0) return alpha / (2 * (sigma * sigma));
  if (std::isinf(alpha)) return kInf;
  const double log_a = (std::floor(alpha) == alpha) ? log_a_int(q, sigma, static_cast<int64_t>(alpha))
                                                    : log_a_frac(q, sigma, alpha);
  return log_a / (alpha - 1);
}

void require_orders(const char* fn, const std::vector<double>& orders) {
  if (orders.empty()) CONFLUX_THROW(PrivacyError, "{}: orders must not be empty", fn);
  for (double a : orders)
    if (!(std::isfinite(a) && a > 1))
      CONFLUX_THROW(PrivacyError, "{}: every RDP order must be a finite number > 1 (got {})", fn, a);
}

}  // namespace

std::vector<double> default_rdp_orders() {
  std::vector<double> orders;
  orders.reserve(99 + 52);
  for (int x = 1; x < 100; ++x) orders.push_back(1 + x / 10.0);
  for (int a = 12; a < 64; ++a) orders.push_back(a);
  return orders;
}

std::vector<double> compute_rdp(double sample_rate, double noise_multiplier, int64_t steps,
                                const std::vector<double>& orders) {
  constexpr const char* fn = "compute_rdp";
  require_sample_rate(fn, sample_rate);
  require_noise_multiplier(fn, noise_multiplier);
  require_steps(fn, "steps", steps);
  require_orders(fn, orders);
  std::vector<double> rdp(orders.size(), 0.0);
  // Zero compositions release nothing: RDP 0 at every order (Opacus computes inf * 0 = NaN for
  // zero noise and zero steps and so reports infinite epsilon for nothing released).
  if (steps == 0) return rdp;
  for (size_t i = 0; i < orders.size(); ++i)
    rdp[i] = rdp_one_step(sample_rate, noise_multiplier, orders[i]) * static_cast<double>(steps);
  return rdp;
}

EpsilonAtOrder rdp_to_epsilon(const std::vector<double>& orders, const std::vector<double>& rdp,
                              double delta) {
  constexpr const char* fn = "rdp_to_epsilon";
  require_orders(fn, orders);
  require_delta(fn, delta);
  if (orders.size() != rdp.size())
    CONFLUX_THROW(PrivacyError, "{}: orders and rdp must have the same length ({} vs {})", fn,
                  orders.size(), rdp.size());
  // RDP 0 at every order means identical output distributions: nothing was spent. The
  // conversion below would report its floor, -(log delta + log alpha)/(alpha - 1) + ..., about
  // 0.1 at delta 1e-5, a cost of nothing (issue 17: `privacy dpsgd --steps 0` said 0.103). No
  // order is the best one: NaN.
  if (std::all_of(rdp.begin(), rdp.end(), [](double r) { return r == 0; }))
    return {0.0, std::numeric_limits<double>::quiet_NaN()};
  // eps(alpha) = rdp - (log delta + log alpha)/(alpha - 1) + log((alpha - 1)/alpha); keep the
  // first minimum, ignoring NaN (np.nanargmin); all NaN means no privacy at all.
  size_t best = orders.size();
  double best_eps = 0;
  for (size_t i = 0; i < orders.size(); ++i) {
    const double a = orders[i];
    const double eps = rdp[i] - (std::log(delta) + std::log(a)) / (a - 1) + std::log((a - 1) / a);
    if (std::isnan(eps)) continue;
    if (best == orders.size() || eps < best_eps) {
      best = i;
      best_eps = eps;
    }
  }
  if (best == orders.size()) return {kInf, std::numeric_limits<double>::quiet_NaN()};
  return {best_eps, orders[best]};
}

EpsilonAtOrder dpsgd_epsilon(double sample_rate, double noise_multiplier, int64_t steps,
                             double delta) {
  require_delta("dpsgd_epsilon", delta);
  const auto orders = default_rdp_orders();
  return rdp_to_epsilon(orders, compute_rdp(sample_rate, noise_multiplier, steps, orders), delta);
}

namespace {

// Opacus's get_noise_multiplier for `count` compositions of the sampled Gaussian; `fn` and `unit`
// ("steps" of DP-SGD, "rounds" of DP-FedAvg) name the caller in errors.
double noise_multiplier_search(const char* fn, const char* unit, double target_epsilon, double delta,
                               double sample_rate, int64_t count, double tolerance) {
  require_epsilon(fn, "target_epsilon", target_epsilon);
  require_delta(fn, delta);
  require_sample_rate(fn, sample_rate);
  if (count < 1)
    CONFLUX_THROW(PrivacyError, "{}: {} must be >= 1 (got {}); with no {} no noise is needed", fn, unit,
                  count, unit);
  require_epsilon(fn, "tolerance", tolerance);
  double eps_high = kInf;
  double sigma_low = 0, sigma_high = 10;
  while (eps_high > target_epsilon) {
    sigma_high = 2 * sigma_high;
    eps_high = dpsgd_epsilon(sample_rate, sigma_high, count, delta).epsilon;
    if (sigma_high > kMaxSigma)
      CONFLUX_THROW(PrivacyError,
                    "{}: the privacy budget is too low: even noise multiplier {} gives epsilon {} > "
                    "target {} (delta {}, sample rate {}, {} {})",
                    fn, sigma_high, eps_high, target_epsilon, delta, sample_rate, count, unit);
  }
  // Bisection; the cap only matters if eps stops changing at double resolution, and sigma_high
  // always satisfies eps <= target.
  for (int iter = 0; iter < 2000 && target_epsilon - eps_high > tolerance; ++iter) {
    const double sigma = (sigma_low + sigma_high) / 2;
    const double eps = dpsgd_epsilon(sample_rate, sigma, count, delta).epsilon;
    if (eps < target_epsilon) {
      sigma_high = sigma;
      eps_high = eps;
    } else {
      sigma_low = sigma;
    }
  }
  return sigma_high;
}

}  // namespace

double dpsgd_noise_multiplier(double target_epsilon, double delta, double sample_rate,
                              int64_t steps, double tolerance) {
  return noise_multiplier_search("dpsgd_noise_multiplier", "steps", target_epsilon, delta, sample_rate, steps,
                                 tolerance);
}

double dpfedavg_sample_rate(int64_t clients_per_round, int64_t population) {
  constexpr const char* fn = "dpfedavg_sample_rate";
  if (population < 1) CONFLUX_THROW(PrivacyError, "{}: population must be >= 1 (got {})", fn, population);
  if (clients_per_round < 1 || clients_per_round > population)
    CONFLUX_THROW(PrivacyError,
                  "{}: clients_per_round must be in [1, population = {}] so that q = M/N is in (0, 1] "
                  "(got {})",
                  fn, population, clients_per_round);
  return static_cast<double>(clients_per_round) / static_cast<double>(population);
}

EpsilonAtOrder dpfedavg_epsilon(double sample_rate, double noise_multiplier, int64_t rounds,
                                double delta) {
  constexpr const char* fn = "dpfedavg_epsilon";
  require_sample_rate(fn, sample_rate);
  require_noise_multiplier(fn, noise_multiplier);
  require_steps(fn, "rounds", rounds);
  require_delta(fn, delta);
  return dpsgd_epsilon(sample_rate, noise_multiplier, rounds, delta);
}

double dpfedavg_noise_multiplier(double target_epsilon, double delta, double sample_rate,
                                 int64_t rounds, double tolerance) {
  return noise_multiplier_search("dpfedavg_noise_multiplier", "rounds", target_epsilon, delta, sample_rate,
                                 rounds, tolerance);
}

namespace {
void require_count_stddev(const char* fn, double count_stddev) {
  if (!(count_stddev >= 0) || !std::isfinite(count_stddev))
    CONFLUX_THROW(PrivacyError, "{}: count_stddev (sigma_b) must be a finite number >= 0 (got {})", fn,
                  count_stddev);
}
}  // namespace

double adaptive_clip_update_noise_multiplier(double noise_multiplier, double count_stddev) {
  constexpr const char* fn = "adaptive_clip_update_noise_multiplier";
  require_noise_multiplier(fn, noise_multiplier);
  require_count_stddev(fn, count_stddev);
  if (noise_multiplier == 0) return 0;
  if (!(2 * count_stddev > noise_multiplier))
    CONFLUX_THROW(PrivacyError,
                  "{}: count_stddev (sigma_b) = {} is too small for noise multiplier z = {}: z_delta = (z^-2 - "
                  "(2 sigma_b)^-2)^(-1/2) needs sigma_b > z / 2 = {}",
                  fn, count_stddev, noise_multiplier, noise_multiplier / 2);
  const double inv = 1.0 / (noise_multiplier * noise_multiplier) - 1.0 / (4 * count_stddev * count_stddev);
  return 1.0 / std::sqrt(inv);
}

double adaptive_clip_effective_noise_multiplier(double update_noise_multiplier, double count_stddev) {
  constexpr const char* fn = "adaptive_clip_effective_noise_multiplier";
  require_noise_multiplier(fn, update_noise_multiplier);
  require_count_stddev(fn, count_stddev);
  if (update_noise_multiplier == 0 || count_stddev == 0) return 0;
  const double inv = 1.0 / (update_noise_multiplier * update_noise_multiplier) +
                     1.0 / (4 * count_stddev * count_stddev);
  return 1.0 / std::sqrt(inv);
}

RdpAccountant::RdpAccountant() = default;

void RdpAccountant::step(double noise_multiplier, double sample_rate, int64_t n) {
  constexpr const char* fn = "RdpAccountant::step";
  require_noise_multiplier(fn, noise_multiplier);
  require_sample_rate(fn, sample_rate);
  require_steps(fn, "n", n);
  if (n == 0) return;
  if (!history_.empty() && history_.back().noise_multiplier == noise_multiplier &&
      history_.back().sample_rate == sample_rate) {
    history_.back().steps += n;
    return;
  }
  history_.push_back({noise_multiplier, sample_rate, n});
}

EpsilonAtOrder RdpAccountant::epsilon(double delta) const {
  require_delta("RdpAccountant::epsilon", delta);
  if (history_.empty()) return {0.0, 0.0};  // Opacus returns (0, 0) before the first step
  const auto orders = default_rdp_orders();
  std::vector<double> total(orders.size(), 0.0);
  for (const auto& e : history_) {
    const auto rdp = compute_rdp(e.sample_rate, e.noise_multiplier, e.steps, orders);
    for (size_t i = 0; i < total.size(); ++i) total[i] += rdp[i];
  }
  return rdp_to_epsilon(orders, total, delta);
}

EpsDelta compose_basic(const std::vector<EpsDelta>& releases) {
  EpsDelta sum{0.0, 0.0};
  for (size_t i = 0; i < releases.size(); ++i) {
    const auto& r = releases[i];
    if (!(std::isfinite(r.epsilon) && r.epsilon >= 0))
      CONFLUX_THROW(PrivacyError, "compose_basic: release {} has epsilon {}; must be finite and >= 0",
                    i, r.epsilon);
    if (!(r.delta >= 0 && r.delta <= 1))
      CONFLUX_THROW(PrivacyError, "compose_basic: release {} has delta {}; must be in [0, 1]", i,
                    r.delta);
    sum.epsilon += r.epsilon;
    sum.delta += r.delta;
  }
  return sum;
}

EpsilonAtOrder compose_gaussian_rdp(double noise_multiplier, int64_t releases, double delta) {
  constexpr const char* fn = "compose_gaussian_rdp";
  require_noise_multiplier(fn, noise_multiplier);
  require_steps(fn, "releases", releases);
  require_delta(fn, delta);
  // Without subsampling (q = 1) the sampled Gaussian RDP is alpha / (2 z^2) per release.
  const auto orders = default_rdp_orders();
  return rdp_to_epsilon(orders, compute_rdp(1.0, noise_multiplier, releases, orders), delta);
}

}  // namespace conflux::privacy
