// Drift math: Population Stability Index and the two-sample Kolmogorov-Smirnov statistic.
//
// Samples are multisets (value -> count), exactly what the drift metric's Stats hold.
// PSI (numeric): edges are the reference's inverted-CDF deciles, e_k = R_(ceil(k n / 10)) for
// k = 1..9 (R sorted, 1-based; numpy.quantile(method='inverted_cdf')), de-duplicated; bin i holds
// values v with e_i < v <= e_{i+1} (first bin unbounded below, last above). PSI (categorical): one
// bin per distinct value seen in either sample. Proportions p = count / n; a zero proportion is
// replaced by kPsiEpsilon = 1e-4 (no renormalisation); PSI = sum (p_cur - p_ref) ln(p_cur / p_ref).
// Reading: < 0.1 no significant shift, 0.1-0.25 moderate shift, >= 0.25 significant shift.
// KS: D = max over observed x of |F_ref(x) - F_cur(x)|, exactly, as h / lcm(n_ref, n_cur) rounded
// once: equal to scipy.stats.ks_2samp(...).statistic in its exact mode (both sizes <= 10000).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace conflux::evaluator {

using Multiset = std::map<double, int64_t>;

inline constexpr int kPsiBins = 10;
inline constexpr double kPsiEpsilon = 1e-4;
inline constexpr double kPsiModerate = 0.1;
inline constexpr double kPsiSignificant = 0.25;

std::vector<double> quantile_edges(const Multiset& reference, int bins = kPsiBins);
// Counts per bin of `sample` given edges (len(edges) + 1 bins).
std::vector<int64_t> bin_counts(const Multiset& sample, const std::vector<double>& edges);
double psi(const std::vector<int64_t>& reference_counts, const std::vector<int64_t>& current_counts,
           double epsilon = kPsiEpsilon);
double ks_statistic(const Multiset& a, const Multiset& b);
// "none" (< 0.1), "moderate" (< 0.25) or "significant".
std::string psi_level(double psi_value);

struct FeatureDrift {
  std::string name;
  bool categorical = false;
  int64_t reference_rows = 0;
  int64_t current_rows = 0;
  std::vector<double> edges;  // numeric only
  std::vector<double> categories;  // categorical only
  std::vector<int64_t> reference_counts;
  std::vector<int64_t> current_counts;
  double psi = 0.0;
  double ks = 0.0;
  std::string level;
};
// Drift on token distributions: features of token sequences for Batch::features /
// reference_features: "token_id" (every id, to be listed as categorical in the drift metric's
// options) and "length" (tokens per sequence, numeric).
std::map<std::string, std::vector<double>> token_features(
    const std::vector<std::vector<int64_t>>& sequences);

FeatureDrift feature_drift(const std::string& name, const Multiset& reference,
                           const Multiset& current, bool categorical);

}  // namespace conflux::evaluator
