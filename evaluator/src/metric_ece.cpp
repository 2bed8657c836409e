// Metric "ece": expected calibration error with 15 equal-width confidence bins (calibration.h),
// from logits rows at a fixed temperature (option temperature, default 1). Rows whose target is
// ignore_index are skipped. Stats per bin: counts "count", "correct"; sums "confidence".
// Reports ECE, accuracy, and the reliability diagram (per-bin accuracy and mean confidence).
#include "conflux/evaluator/calibration.h"
#include "factories.h"
#include "options.h"

#include <cstdio>

namespace conflux::evaluator::detail {

// Shared with metric_calibration.cpp: ECE and the reliability-diagram JSON from bin stats.
nlohmann::json reliability_json(const std::vector<int64_t>& count, const std::vector<int64_t>& correct,
                                const std::vector<ExactSum>& confidence, double* ece_out) {
  int64_t n = 0;
  for (auto c : count) n += c;
  double ece = 0.0;
  nlohmann::json bins = nlohmann::json::array();
  for (int b = 0; b < kEceBins; ++b) {
    ExactSum gap = confidence[b];
    gap += -static_cast<double>(correct[b]);  // exact: sum(conf) - sum(correct)
    if (n > 0) ece += std::fabs(gap.value()) / static_cast<double>(n);
    const double cnt = static_cast<double>(count[b]);
    bins.push_back({{"lower", b * (1.0 / kEceBins)},
                    {"upper", b + 1 == kEceBins ? 1.0 : (b + 1) * (1.0 / kEceBins)},
                    {"count", count[b]},
                    {"accuracy", number(count[b] ? static_cast<double>(correct[b]) / cnt : std::nan(""))},
                    {"confidence", number(count[b] ? confidence[b].value() / cnt : std::nan(""))}});
  }
  *ece_out = n ? ece : std::nan("");
  return bins;
}

namespace {

class Ece final : public Metric {
 public:
  InputKind inputs() const override { return InputKind::Tokens; }
  Ece(nlohmann::json options, double temperature)
      : Metric("ece", std::move(options)), temperature_(temperature) {}

  Stats partial(const Batch& batch) const override {
    batch.validate();
    Stats s = empty();
    auto& count = s.counts_of("count", kEceBins);
    auto& correct = s.counts_of("correct", kEceBins);
    auto& conf = s.sums_of("confidence", kEceBins);
    const auto& L = batch.logits;
    for (int64_t r = 0; r < L.rows; ++r) {
      const int64_t t = batch.targets[static_cast<size_t>(r)];
      if (t == batch.ignore_index) continue;
      const RowScore rs = score_row(L.row(r), L.classes, t, temperature_);
      const int b = ece_bin(rs.confidence);
      ++count[b];
      correct[b] += (rs.predicted == t);
      conf[b] += rs.confidence;
    }
    return s;
  }

  Result finalize(const Stats& stats) const override {
    check_stats(stats);
    Stats z = stats;
    const auto& count = z.counts_of("count", kEceBins);
    const auto& correct = z.counts_of("correct", kEceBins);
    const auto& conf = z.sums_of("confidence", kEceBins);
    double ece = 0.0;
    auto bins = reliability_json(count, correct, conf, &ece);
    int64_t n = 0, right = 0;
    for (int b = 0; b < kEceBins; ++b) {
      n += count[b];
      right += correct[b];
    }
    const double acc = n ? static_cast<double>(right) / static_cast<double>(n) : std::nan("");
    Result r;
    r.metric = name();
    r.primary = "ece";
    r.value = ece;
    r.detail = {{"ece", number(ece)}, {"accuracy", number(acc)}, {"rows", n},
                {"temperature", temperature_}, {"bins", bins}};
    char buf[128];
    std::snprintf(buf, sizeof buf, "ECE = %.4f accuracy = %.4f (rows = %lld, 15 bins, T = %g)", ece,
                  acc, static_cast<long long>(n), temperature_);
    r.line = buf;
    return r;
  }

 private:
  double temperature_;
};

}  // namespace

std::unique_ptr<Metric> make_ece(const nlohmann::json& options) {
  reject_unknown("ece", options, {"temperature"});
  nlohmann::json norm = nlohmann::json::object();
  const double t = option<double>("ece", options, "temperature", 1.0, norm);
  if (!(t > 0) || !std::isfinite(t))
    CONFLUX_THROW(ConfigError, "metric 'ece': temperature must be positive, got {}", t);
  return std::make_unique<Ece>(norm, t);
}

}  // namespace conflux::evaluator::detail
