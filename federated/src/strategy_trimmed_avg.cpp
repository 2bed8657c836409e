// trimmed_avg: the coordinate-wise mean after cutting int(beta * n) of the lowest and of the
// highest values (Yin et al. 2018; Flower's FedTrimmedAvg / aggregate_trimmed_avg, scipy's
// trim_mean), example counts ignored. The kept values are summed in double and the mean rounded
// to float32 (Flower sums in float32 in numpy's partition order; the two agree to a few ulps).
// Holds every result of the round.
#include "internal.h"

#include "conflux/core/error.h"

#include <algorithm>

namespace conflux::federated::detail {

namespace {

struct TrimmedAvgParams final : StrategyParams {
  double beta = 0.2;
  void bind(ConfigBinder& b) override {
    b.field("strategy.trimmed_avg.beta", beta, "fraction cut from each end, in [0, 0.5)").range(0, 0.5);
  }
  std::unique_ptr<Strategy> make() const override;
};

class TrimmedAvg final : public HoldingStrategy {
 public:
  explicit TrimmedAvg(double beta) : HoldingStrategy("trimmed_avg"), beta_(beta) {}

 private:
  Weights on_finish(const Weights*) override {
    const size_t n = held_.size();
    const size_t low = static_cast<size_t>(beta_ * static_cast<double>(n));  // Python's int()
    const size_t high = n - low;
    return coordinatewise(held_weights(), layout(), [&](float* v, size_t count) {
      std::nth_element(v, v + low, v + count);
      if (high < count) std::nth_element(v + low, v + high, v + count);
      double s = 0;
      for (size_t i = low; i < high; ++i) s += v[i];
      return static_cast<float>(s / static_cast<double>(high - low));
    });
  }
  double beta_;
};

std::unique_ptr<Strategy> TrimmedAvgParams::make() const {
  if (beta >= 0.5)
    CONFLUX_THROW(ConfigError, "strategy.trimmed_avg.beta must be below 0.5 (got {}): nothing would be left",
                  beta);
  return std::make_unique<TrimmedAvg>(beta);
}

}  // namespace

std::unique_ptr<StrategyParams> trimmed_avg_params() { return std::make_unique<TrimmedAvgParams>(); }

}  // namespace conflux::federated::detail
