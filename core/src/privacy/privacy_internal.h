// Internal helpers of the privacy module: parameter validation that names the parameter, and
// the special functions (log of the normal CDF, log erfc, binomial coefficients) that the
// calibration and the RDP accountant share. Not part of the public API.
#pragma once

#include <cstdint>

namespace conflux::privacy::detail {

// Each throws PrivacyError "<function>: <name> must be ... (got X)" when the value is out of range.
void require_epsilon(const char* fn, const char* name, double epsilon);       // finite, > 0
void require_delta(const char* fn, double delta);                             // 0 < delta < 1
void require_sensitivity(const char* fn, double sensitivity);                 // finite, > 0
void require_sample_rate(const char* fn, double sample_rate);                 // 0 < q <= 1
void require_noise_multiplier(const char* fn, double noise_multiplier);       // finite, >= 0
void require_steps(const char* fn, const char* name, int64_t steps);          // >= 0

// log(Phi(x)) for the standard normal CDF, accurate in both tails (same branches as scipy's
// log_ndtr: log1p(-erfc(x/sqrt2)/2) for x >= -1, log(erfcx(-x/sqrt2)/2) - x^2/2 below).
double log_ndtr(double x);
// log(erfc(x)) = log(2) + log_ndtr(-x*sqrt(2)), as Opacus's _log_erfc computes it.
double log_erfc(double x);
// Binomial coefficient C(n, k) for real n and integer k >= 0 (scipy.special.binom's branches:
// the multiplicative formula for k < 20 after symmetry, Gamma functions beyond).
double binom(double n, int64_t k);

}  // namespace conflux::privacy::detail
