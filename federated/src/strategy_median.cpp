// median: the coordinate-wise median of the clients' weights, example counts ignored (Yin et al.
// 2018; Flower's FedMedian / aggregate_median, i.e. numpy's median: the mean of the two middle
// values for an even count). Holds every result of the round.
#include "internal.h"

namespace conflux::federated::detail {

namespace {

class Median final : public HoldingStrategy {
 public:
  Median() : HoldingStrategy("median") {}

 private:
  Weights on_finish(const Weights*) override {
    return coordinatewise(held_weights(), layout(), median_f32);
  }
};

struct MedianParams final : StrategyParams {
  void bind(ConfigBinder&) override {}  // no parameters
  std::unique_ptr<Strategy> make() const override { return std::make_unique<Median>(); }
};

}  // namespace

std::unique_ptr<StrategyParams> median_params() { return std::make_unique<MedianParams>(); }

}  // namespace conflux::federated::detail
