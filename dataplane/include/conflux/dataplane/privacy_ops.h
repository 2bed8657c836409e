// Differential-privacy mechanisms for records and the privacy ledger kept in the manifest.
//
// Adjacency: each record's value is released on its own (local DP, replace-one): after clipping
// to an L1 (Laplace) or L2 (Gaussian) ball of radius C, two records differ by at most 2C, so the
// sensitivity is 2C. Calibration comes from conflux/core/privacy.h: Laplace b = 2C / eps;
// Gaussian sigma from the classic (eps < 1 only) or analytic (Balle & Wang) calibration; k-ary
// randomized response keeps the true label with probability e^eps / (e^eps + k - 1), otherwise
// reports one of the k - 1 other labels uniformly.
//
// Ledger (manifest "privacy"): {"entries": [...], "total": {...}}. An entry per noised field and
// run: field, mechanism, clip, epsilon, delta, the calibrated scale, the noise source ("secure",
// or "seeded: not private") and the stage time. Totals compose every entry of the whole
// provenance chain: basic composition (sums), and for Gaussian entries the tighter RDP
// composition (rdp(a) = sum a / (2 z^2), z = sigma / sensitivity) converted at the summed delta.
// "private" is false as soon as any entry used seeded noise.
// Thread safety: stateless functions.
#pragma once

#include "conflux/core/rng.h"
#include "conflux/dataplane/schema.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace conflux::dataplane {

struct DpFieldConfig {
  std::string field;              // "" = the first field with the mechanism's role
  std::string mechanism = "none"; // laplace | gaussian (features), randomized_response (label)
  double epsilon = 1.0;
  double delta = 1e-6;            // gaussian only
  double clip = 1.0;              // L1 (laplace) / L2 (gaussian) clipping radius C
  std::string calibration = "analytic";  // gaussian: analytic | classic
  int64_t classes = 0;            // randomized response: k (0 = max label + 1 over the data)
};

struct Calibration {
  double scale = 0;        // laplace b, gaussian sigma
  double keep_probability = 1;
  double sensitivity = 0;
  int64_t classes = 0;
};

class DpMechanism {
 public:
  virtual ~DpMechanism() = default;
  virtual const char* name() const = 0;
  virtual Role role() const = 0;  // Features or Label
  virtual Calibration calibrate(const DpFieldConfig& cfg) const = 0;
  virtual void apply_features(float* x, int64_t dim, const DpFieldConfig& cfg, const Calibration& cal,
                              RandomSource& rng) const {}
  virtual void apply_label(int64_t* label, const Calibration& cal, RandomSource& rng) const {}
};
const std::vector<const DpMechanism*>& dp_registry();
const DpMechanism* find_dp(const std::string& name);

// Adds N(0, sigma^2) to x[0..n): Box-Muller pairs (both outputs used) from 64 bits of rng each,
// computed in float by a vectorised kernel (polynomial log / sin / cos, relative error < 2e-7).
void add_gaussian_noise(float* x, int64_t n, double sigma, RandomSource& rng);

// Clipping helpers (return the scale factor applied).
double clip_l1(float* x, int64_t dim, double bound);
double clip_l2(float* x, int64_t dim, double bound);

// A ledger entry for one noised field.
nlohmann::json ledger_entry(const DpFieldConfig& cfg, const Calibration& cal, bool secure);
// New ledger = parent entries + new entries, with recomputed totals.
nlohmann::json compose_ledger(const nlohmann::json& parent, const std::vector<nlohmann::json>& entries);

}  // namespace conflux::dataplane
