// Internal: the FedOpt family (Reddi et al. 2021, "Adaptive Federated Optimization"; Flower's
// FedOpt subclasses): the FedAvg of the round gives delta = fedavg - w_global, the server keeps
// first and second moments m and v, and a per-strategy rule (FedAdagrad, FedAdam, FedYogi) steps
// w_global. Parameters and defaults are Flower's (eta, eta_l, beta_1, beta_2, tau); eta_l is the
// clients' learning rate, recorded for them and unused here. State: "m/<tensor>", "v/<tensor>".
//
// A rule is a class with `void begin(const FedOptValues&, uint64_t server_round)` and
// `float step(float w, float delta, float& m, float& v) const` (m and v updated in place).
#pragma once

#include "internal.h"

namespace conflux::federated::detail {

struct FedOptValues {
  std::string name;
  double eta, eta_l, beta_1, beta_2, tau;
  bool has_betas;  // FedAdagrad fixes beta_1 = beta_2 = 0 (not parameters)
};

// Declares strategy.<name>.{eta, eta_l, beta_1, beta_2, tau}.
void bind_fedopt(ConfigBinder& b, FedOptValues& v);

// The round shared by the family: FedAvg fold, delta, moments (the global must be given).
class FedOptBase : public Strategy {
 public:
  explicit FedOptBase(const FedOptValues& v) : Strategy(v.name), v_(v) {}

 protected:
  bool needs_global() const override { return true; }
  void on_begin() override { sum_.reset(); }
  void on_add(ClientResult&& r) override { sum_.add(r.weights, r.num_examples); }
  void save_tensors(Weights& out) const override;
  void load_tensors(const Weights& in) override;
  void on_reset() override;
  // The FedAvg of the round, with m and v ready (zeros in the first round).
  Weights begin_finish();

  FedOptValues v_;
  WeightedSum sum_;
  TensorState m_{"m", {}}, v_state_{"v", {}};
};

template <typename Rule>
class FedOpt final : public FedOptBase {
 public:
  using FedOptBase::FedOptBase;

 private:
  Weights on_finish(const Weights* global) override {
    Weights next = begin_finish();
    Rule rule;
    rule.begin(v_, server_round());
    for (size_t k = 0; k < next.size(); ++k) {
      const float* w = (*global)[k].values.data();
      float* m = m_.tensors[k].values.data();
      float* v = v_state_.tensors[k].values.data();
      float* out = next[k].values.data();
      for (size_t i = 0, n = next[k].values.size(); i < n; ++i)
        out[i] = rule.step(w[i], out[i] - w[i], m[i], v[i]);  // numpy: fedavg - current, float32
    }
    return next;
  }
};

template <typename Rule>
struct FedOptParams final : StrategyParams {
  FedOptValues v;
  explicit FedOptParams(FedOptValues defaults) : v(std::move(defaults)) {}
  void bind(ConfigBinder& b) override { bind_fedopt(b, v); }
  std::unique_ptr<Strategy> make() const override { return std::make_unique<FedOpt<Rule>>(v); }
};

}  // namespace conflux::federated::detail
