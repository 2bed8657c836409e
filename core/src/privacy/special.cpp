// Special functions and parameter checks for the privacy module.
//
// The RDP accountant has to agree with Opacus (which uses scipy) to 1e-6 relative, so the
// functions here follow scipy's branch structure: log_ndtr switches to the scaled complementary
// error function below -1 so that Phi(x) ~ 1e-300 and beyond stays representable in log space,
// and binom uses the multiplicative formula for small k and (log-)Gamma functions for large k.
#include "privacy_internal.h"

#include "conflux/core/error.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace conflux::privacy::detail {

void require_epsilon(const char* fn, const char* name, double epsilon) {
  if (!(std::isfinite(epsilon) && epsilon > 0))
    CONFLUX_THROW(PrivacyError, "{}: {} must be a finite number > 0 (got {})", fn, name, epsilon);
}

void require_delta(const char* fn, double delta) {
  if (!(delta > 0 && delta < 1))
    CONFLUX_THROW(PrivacyError, "{}: delta must be in (0, 1) (got {})", fn, delta);
}

void require_sensitivity(const char* fn, double sensitivity) {
  if (!(std::isfinite(sensitivity) && sensitivity > 0))
    CONFLUX_THROW(PrivacyError, "{}: sensitivity must be a finite number > 0 (got {})", fn,
                  sensitivity);
}

void require_sample_rate(const char* fn, double sample_rate) {
  if (!(sample_rate > 0 && sample_rate <= 1))
    CONFLUX_THROW(PrivacyError, "{}: sample_rate must be in (0, 1] (got {})", fn, sample_rate);
}

void require_noise_multiplier(const char* fn, double noise_multiplier) {
  if (!(std::isfinite(noise_multiplier) && noise_multiplier >= 0))
    CONFLUX_THROW(PrivacyError, "{}: noise_multiplier must be a finite number >= 0 (got {})", fn,
                  noise_multiplier);
}

void require_steps(const char* fn, const char* name, int64_t steps) {
  if (steps < 0) CONFLUX_THROW(PrivacyError, "{}: {} must be >= 0 (got {})", fn, name, steps);
}

namespace {

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kSqrtPi = 1.77245385090551602730;

// erfc(y) * exp(y^2) for y >= 25 by its asymptotic series
//   1/(y sqrt(pi)) * sum_k (-1)^k (2k-1)!! / (2y^2)^k,
// whose terms shrink by (2k+1)/(2y^2) <= 21/1250 for the 10 terms kept (error < 1e-17).
double erfcx_large(double y) {
  const double inv = 1.0 / (2.0 * y * y);
  double term = 1.0, sum = 1.0;
  for (int k = 1; k <= 10; ++k) {
    term *= -(2.0 * k - 1.0) * inv;
    sum += term;
  }
  return sum / (y * kSqrtPi);
}

}  // namespace

double log_ndtr(double x) {
  if (std::isnan(x)) return x;
  if (x == std::numeric_limits<double>::infinity()) return 0.0;
  if (x == -std::numeric_limits<double>::infinity()) return -std::numeric_limits<double>::infinity();
  const double t = x * kSqrt1_2;
  if (x >= -1.0) return std::log1p(-std::erfc(t) / 2.0);
  // Lower tail: Phi(x) = erfc(y)/2 with y = -t > 0.7. erfc(y) stays a normal double up to
  // y ~ 26.5; beyond 25 use the scaled form so log(Phi) never underflows.
  const double y = -t;
  if (y < 25.0) return std::log(std::erfc(y) / 2.0);
  return std::log(erfcx_large(y) / 2.0) - y * y;
}

double log_erfc(double x) { return std::log(2.0) + log_ndtr(-x * std::sqrt(2.0)); }

double binom(double n, int64_t k) {
  if (k < 0) return 0.0;
  double kx = static_cast<double>(k);
  const double nx = std::floor(n);
  if (nx == n && kx > nx / 2 && nx > 0) kx = nx - kx;  // symmetry for integer n
  if (kx >= 0 && kx < 20) {
    double num = 1.0, den = 1.0;
    for (int i = 1; i <= static_cast<int>(kx); ++i) {
      num *= i + n - kx;
      den *= i;
      if (std::fabs(num) > 1e50) {
        num /= den;
        den = 1.0;
      }
    }
    return num / den;
  }
  if (nx == n && n >= 0) {
    // Integer n (here at most a few hundred): the product stays exact to rounding.
    double r = 1.0;
    for (int64_t i = 1; i <= static_cast<int64_t>(kx); ++i) r = r * (n - kx + i) / i;
    return r;
  }
  // General case: C(n, k) = 1 / ((n + 1) B(n - k + 1, k + 1)), the Beta function through
  // log-Gamma with explicit signs (n - k + 1 is negative for k > n + 1).
  const double a = n - kx + 1.0, b = kx + 1.0;
  int sa = 1, sb = 1, sab = 1;
  const double lbeta = ::lgamma_r(a, &sa) + ::lgamma_r(b, &sb) - ::lgamma_r(a + b, &sab);
  const double sign = static_cast<double>(sa * sb * sab);
  return sign / ((n + 1.0) * std::exp(lbeta));
}

}  // namespace conflux::privacy::detail
