// fedavgm: FedAvg with server momentum (Hsu et al. 2019; Flower's FedAvgM). With the pseudo
// gradient g = w_global - fedavg, momentum m = beta * m + g (m = g in the first round), the new
// global is w_global - lr * m. With lr = 1 and momentum 0 there is no server optimizer and the
// result is FedAvg's (as in Flower, which then skips the subtraction). float32 throughout, like
// Flower's numpy code. State: the momentum tensors ("momentum/<tensor>").
#include "internal.h"

namespace conflux::federated::detail {

namespace {

struct FedAvgMParams final : StrategyParams {
  double server_learning_rate = 1.0;
  double server_momentum = 0.0;
  void bind(ConfigBinder& b) override {
    b.field("strategy.fedavgm.server_learning_rate", server_learning_rate, "server-side learning rate").min(0);
    b.field("strategy.fedavgm.server_momentum", server_momentum, "server-side momentum factor").min(0);
  }
  std::unique_ptr<Strategy> make() const override;
};

class FedAvgM final : public Strategy {
 public:
  explicit FedAvgM(const FedAvgMParams& p) : Strategy("fedavgm"), p_(p) {}

 private:
  bool server_opt() const { return p_.server_momentum != 0.0 || p_.server_learning_rate != 1.0; }
  bool needs_global() const override { return server_opt(); }
  void on_begin() override { sum_.reset(); }
  void on_add(ClientResult&& r) override { sum_.add(r.weights, r.num_examples); }
  Weights on_finish(const Weights* global) override {
    Weights avg = sum_.mean();
    if (!server_opt()) return avg;
    const float lr = static_cast<float>(p_.server_learning_rate);
    const float beta = static_cast<float>(p_.server_momentum);
    const bool use_momentum = p_.server_momentum > 0.0;
    const bool first = momentum_.empty();
    if (use_momentum) momentum_.ensure(layout());
    for (size_t k = 0; k < avg.size(); ++k) {
      const float* w = (*global)[k].values.data();
      float* out = avg[k].values.data();
      float* m = use_momentum ? momentum_.tensors[k].values.data() : nullptr;
      for (size_t i = 0, n = avg[k].values.size(); i < n; ++i) {
        float g = w[i] - out[i];
        if (m != nullptr) g = m[i] = first ? g : beta * m[i] + g;
        out[i] = w[i] - lr * g;
      }
    }
    return avg;
  }
  void save_tensors(Weights& out) const override { momentum_.save(out); }
  void load_tensors(const Weights& in) override { momentum_.load(in); }
  void on_reset() override { momentum_.tensors.clear(); }

  FedAvgMParams p_;
  WeightedSum sum_;
  TensorState momentum_{"momentum", {}};
};

std::unique_ptr<Strategy> FedAvgMParams::make() const { return std::make_unique<FedAvgM>(*this); }

}  // namespace

std::unique_ptr<StrategyParams> fedavgm_params() { return std::make_unique<FedAvgMParams>(); }

}  // namespace conflux::federated::detail
