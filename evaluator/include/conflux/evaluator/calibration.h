// Calibration math: softmax confidence, 15-bin expected calibration error, temperature fitting.
//
// Definitions (docs/evaluation.md): for a row of logits z (float32, computed in float64) and a
// temperature T, a_j = z_j / T, m = max_j a_j, s = sum_j exp(a_j - m) (in class order);
// confidence = 1 / s (the max softmax probability), prediction = the first argmax,
// NLL = m + log(s) - a_target. ECE uses 15 equal-width bins (i/15, (i+1)/15] on confidence:
// ECE = sum_b |sum_{rows in b} correct - sum_{rows in b} confidence| / N.
// Temperature scaling minimises the mean NLL over T; the objective is convex in beta = 1/T, which
// is found by safeguarded Newton on [1/100, 1/0.01] (bisection whenever Newton leaves the
// bracket). Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <vector>

namespace conflux::evaluator {

inline constexpr int kEceBins = 15;
inline constexpr double kMinTemperature = 0.01;
inline constexpr double kMaxTemperature = 100.0;

struct RowScore {
  double confidence = 0.0;
  int64_t predicted = 0;
  double nll = 0.0;
};
// `row` has `classes` float scores; throws DataError if the target is out of range or a score is
// not finite.
RowScore score_row(const float* row, int64_t classes, int64_t target, double temperature = 1.0);
RowScore score_row(const double* row, int64_t classes, int64_t target, double temperature = 1.0);

// Bin of a confidence in (0, 1]: the i with i/15 < c <= (i+1)/15 (boundaries i * (1.0/15.0)).
int ece_bin(double confidence);

struct TemperatureFit {
  double temperature = 1.0;
  int iterations = 0;
  double gradient = 0.0;  // d(mean NLL)/d(beta) at the optimum (0 unless at a bound)
};
// rows: each is [target, z_0 .. z_{C-1}] (the calibration metric's record layout).
TemperatureFit fit_temperature(const std::vector<const std::vector<double>*>& rows);

}  // namespace conflux::evaluator
