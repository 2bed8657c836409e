// Softmax confidence/NLL of a row, ECE binning, and temperature fitting (see calibration.h).
#include "conflux/evaluator/calibration.h"

#include "conflux/core/error.h"

#include <cmath>

namespace conflux::evaluator {
namespace {

// kUnit: temperature is 1, so x / temperature is x exactly and the divisions are skipped (the
// perplexity path: one row per predicted token).
template <typename T, bool kUnit>
RowScore score_row_impl(const T* row, int64_t classes, int64_t target, double temperature) {
  if (classes <= 0) CONFLUX_THROW(DataError, "a score row needs at least one class");
  if (target < 0 || target >= classes)
    CONFLUX_THROW(DataError, "target class {} is out of range [0, {})", target, classes);
  const auto scaled = [&](int64_t j) {
    return kUnit ? static_cast<double>(row[j]) : static_cast<double>(row[j]) / temperature;
  };
  double m = -INFINITY;
  int64_t arg = 0;
  for (int64_t j = 0; j < classes; ++j) {
    const double a = scaled(j);
    if (!std::isfinite(a)) CONFLUX_THROW(DataError, "score {} of a row is not finite ({})", j, a);
    if (a > m) {
      m = a;
      arg = j;
    }
  }
  double s = 0.0;
  for (int64_t j = 0; j < classes; ++j) s += std::exp(scaled(j) - m);
  RowScore r;
  r.confidence = 1.0 / s;
  r.predicted = arg;
  r.nll = m + std::log(s) - scaled(target);
  return r;
}

template <typename T>
RowScore score_row_any(const T* row, int64_t classes, int64_t target, double temperature) {
  return temperature == 1.0 ? score_row_impl<T, true>(row, classes, target, temperature)
                            : score_row_impl<T, false>(row, classes, target, temperature);
}

// Mean gradient and curvature of the NLL in beta = 1/T over rows [target, z...].
void nll_derivatives(const std::vector<const std::vector<double>*>& rows, double beta, double* g,
                     double* h) {
  double gs = 0.0, hs = 0.0;
  for (const auto* rec : rows) {
    const auto& r = *rec;
    const size_t c = r.size() - 1;
    const auto target = static_cast<size_t>(r[0]);
    double m = -INFINITY;
    for (size_t j = 0; j < c; ++j) m = std::max(m, beta * r[1 + j]);
    double s = 0.0, mean = 0.0;
    for (size_t j = 0; j < c; ++j) {
      const double w = std::exp(beta * r[1 + j] - m);
      s += w;
      mean += w * r[1 + j];
    }
    mean /= s;
    double var = 0.0;
    for (size_t j = 0; j < c; ++j) {
      const double d = r[1 + j] - mean;
      var += std::exp(beta * r[1 + j] - m) / s * d * d;
    }
    gs += mean - r[1 + target];
    hs += var;
  }
  *g = gs / static_cast<double>(rows.size());
  *h = hs / static_cast<double>(rows.size());
}

}  // namespace

RowScore score_row(const float* row, int64_t classes, int64_t target, double temperature) {
  return score_row_any(row, classes, target, temperature);
}
RowScore score_row(const double* row, int64_t classes, int64_t target, double temperature) {
  return score_row_any(row, classes, target, temperature);
}

int ece_bin(double confidence) {
  const double step = 1.0 / kEceBins;
  for (int i = 0; i < kEceBins - 1; ++i)
    if (confidence <= (i + 1) * step) return i;
  return kEceBins - 1;
}

TemperatureFit fit_temperature(const std::vector<const std::vector<double>*>& rows) {
  if (rows.empty()) CONFLUX_THROW(DataError, "temperature scaling needs at least one held-out row");
  for (const auto* r : rows)
    if (r->size() < 2) CONFLUX_THROW(DataError, "a held-out row has no scores");
  double lo = 1.0 / kMaxTemperature, hi = 1.0 / kMinTemperature;
  double g = 0.0, h = 0.0;
  TemperatureFit fit;
  nll_derivatives(rows, lo, &g, &h);
  if (g >= 0) {  // NLL increases from the smallest beta: the largest temperature wins
    fit.temperature = kMaxTemperature;
    fit.gradient = g;
    return fit;
  }
  nll_derivatives(rows, hi, &g, &h);
  if (g <= 0) {  // still decreasing at the largest beta: the smallest temperature wins
    fit.temperature = kMinTemperature;
    fit.gradient = g;
    return fit;
  }
  double beta = 1.0;
  for (fit.iterations = 1; fit.iterations <= 200; ++fit.iterations) {
    nll_derivatives(rows, beta, &g, &h);
    if (g == 0) break;
    if (g < 0) lo = beta;
    else hi = beta;
    double next = (h > 0) ? beta - g / h : 0.5 * (lo + hi);
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);  // safeguard: bisect
    const bool done = std::fabs(next - beta) <= 1e-14 * beta || hi - lo <= 1e-14 * hi;
    beta = next;
    if (done) break;
  }
  nll_derivatives(rows, beta, &g, &h);
  fit.gradient = g;
  fit.temperature = 1.0 / beta;
  return fit;
}

}  // namespace conflux::evaluator
