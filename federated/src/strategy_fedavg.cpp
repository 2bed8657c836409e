// fedavg: the weighted mean of the clients' weights, weighted by their example counts
// (McMahan et al. 2017; Flower's FedAvg / aggregate). Folds each result in on arrival.
#include "internal.h"

namespace conflux::federated::detail {

namespace {

class FedAvg final : public Strategy {
 public:
  explicit FedAvg(std::string name = "fedavg") : Strategy(std::move(name)) {}

 private:
  void on_begin() override { sum_.reset(); }
  void on_add(ClientResult&& r) override { sum_.add(std::move(r.weights), r.num_examples); }
  Weights on_finish(const Weights*) override { return sum_.take_mean(); }
  WeightedSum sum_;
};

struct FedAvgParams final : StrategyParams {
  void bind(ConfigBinder&) override {}  // no parameters
  std::unique_ptr<Strategy> make() const override { return std::make_unique<FedAvg>(); }
};

// FedProx (Li et al. 2020) changes only the clients' objective (+ mu/2 * ||w - w_global||^2);
// the server aggregates exactly as FedAvg. proximal_mu is recorded in params() for the clients.
struct FedProxParams final : StrategyParams {
  double proximal_mu = 0;
  void bind(ConfigBinder& b) override {
    b.field("strategy.fedprox.proximal_mu", proximal_mu,
            "weight mu of the clients' proximal term mu/2 * ||w - w_global||^2 (Flower requires it)")
        .min(0)
        .required();
  }
  std::unique_ptr<Strategy> make() const override { return std::make_unique<FedAvg>("fedprox"); }
};

}  // namespace

std::unique_ptr<StrategyParams> fedavg_params() { return std::make_unique<FedAvgParams>(); }
std::unique_ptr<StrategyParams> fedprox_params() { return std::make_unique<FedProxParams>(); }

}  // namespace conflux::federated::detail
