// Noise calibration for the basic DP mechanisms: classic and analytic Gaussian, Laplace and
// k-ary randomized response.
//
// The analytic Gaussian calibration (Balle & Wang 2018) finds the smallest sigma whose exact
// privacy profile delta(eps, sigma) is at most the target delta. The profile
//   delta = Phi(A) - e^eps Phi(B),  A = s/(2 sigma) - eps sigma/s,  B = -s/(2 sigma) - eps sigma/s
// is evaluated as Phi(A) * (1 - exp(eps + log Phi(B) - log Phi(A))) with log Phi from the
// tail-safe log_ndtr, so e^eps never overflows and Phi never underflows; it decreases in sigma,
// so plain bisection on sigma converges to the double-precision boundary.
#include "conflux/core/error.h"
#include "conflux/core/privacy.h"
#include "privacy_internal.h"

#include <cmath>

namespace conflux::privacy {

using namespace detail;

double gaussian_sigma_classic(double epsilon, double delta, double sensitivity) {
  constexpr const char* fn = "gaussian_sigma_classic";
  require_epsilon(fn, "epsilon", epsilon);
  require_delta(fn, delta);
  require_sensitivity(fn, sensitivity);
  if (epsilon >= 1.0)
    CONFLUX_THROW(PrivacyError,
                  "{}: the classic Gaussian calibration sqrt(2 ln(1.25/delta)) * sensitivity / "
                  "epsilon is only valid for epsilon < 1 (got epsilon {}); use the analytic "
                  "calibration (gaussian_sigma_analytic, `--mechanism analytic`) instead",
                  fn, epsilon);
  return std::sqrt(2.0 * std::log(1.25 / delta)) * sensitivity / epsilon;
}

namespace {

// delta(eps, sigma) for validated, positive arguments.
double profile_delta(double epsilon, double sigma, double sensitivity) {
  const double a = sensitivity / (2.0 * sigma) - epsilon * sigma / sensitivity;
  const double b = -sensitivity / (2.0 * sigma) - epsilon * sigma / sensitivity;
  const double log_phi_a = log_ndtr(a);
  const double log_phi_b = log_ndtr(b);
  if (std::isinf(log_phi_a)) return 0.0;
  const double r = epsilon + log_phi_b - log_phi_a;  // log of e^eps Phi(B) / Phi(A), <= 0
  if (r >= 0.0) return 0.0;                           // rounding at the far end of the tail
  return std::exp(log_phi_a) * -std::expm1(r);
}

}  // namespace

double gaussian_delta(double epsilon, double sigma, double sensitivity) {
  constexpr const char* fn = "gaussian_delta";
  require_epsilon(fn, "epsilon", epsilon);
  if (!(std::isfinite(sigma) && sigma > 0))
    CONFLUX_THROW(PrivacyError, "{}: sigma must be a finite number > 0 (got {})", fn, sigma);
  require_sensitivity(fn, sensitivity);
  return profile_delta(epsilon, sigma, sensitivity);
}

double gaussian_sigma_analytic(double epsilon, double delta, double sensitivity) {
  constexpr const char* fn = "gaussian_sigma_analytic";
  require_epsilon(fn, "epsilon", epsilon);
  require_delta(fn, delta);
  require_sensitivity(fn, sensitivity);
  // Bracket: delta(eps, sigma) -> 1 as sigma -> 0, so lo = 0 is always too small; grow hi from
  // the classic value (a valid upper bound for eps < 1) until it satisfies the target.
  double lo = 0.0;
  double hi = sensitivity * std::fmax(1.0, std::sqrt(2.0 * std::log(1.25 / delta)) / epsilon);
  while (profile_delta(epsilon, hi, sensitivity) > delta) {
    lo = hi;
    hi *= 2.0;
    if (!std::isfinite(hi))
      CONFLUX_THROW(PrivacyError, "{}: no finite sigma reaches delta {} at epsilon {}", fn, delta,
                    epsilon);
  }
  // Invariant: profile_delta(lo) > delta >= profile_delta(hi). Stop when no double lies between.
  for (int iter = 0; iter < 4096; ++iter) {
    const double mid = lo + (hi - lo) / 2.0;
    if (mid <= lo || mid >= hi) break;
    if (profile_delta(epsilon, mid, sensitivity) <= delta)
      hi = mid;
    else
      lo = mid;
  }
  return hi;
}

double laplace_scale(double epsilon, double sensitivity) {
  constexpr const char* fn = "laplace_scale";
  require_epsilon(fn, "epsilon", epsilon);
  require_sensitivity(fn, sensitivity);
  return sensitivity / epsilon;
}

double randomized_response_keep_probability(double epsilon, int k) {
  constexpr const char* fn = "randomized_response_keep_probability";
  require_epsilon(fn, "epsilon", epsilon);
  if (k < 2) CONFLUX_THROW(PrivacyError, "{}: k (number of categories) must be >= 2 (got {})", fn, k);
  // e^eps / (e^eps + k - 1), written so that a large epsilon cannot overflow.
  return 1.0 / (1.0 + static_cast<double>(k - 1) * std::exp(-epsilon));
}

}  // namespace conflux::privacy
