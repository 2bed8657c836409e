// fedadagrad (Reddi et al. 2021, Algorithm 2 with Adagrad; Flower's FedAdagrad): m = delta,
// v = v + delta^2, w = w + eta * m / (sqrt(v) + tau). float32 operation by operation as Flower's
// numpy code (beta_1 = 0, so m = 0 * m + 1 * delta).
#include "fedopt.h"

#include <cmath>

namespace conflux::federated::detail {

namespace {

struct Adagrad {
  float eta = 0, tau = 0;
  void begin(const FedOptValues& p, uint64_t) {
    eta = static_cast<float>(p.eta);
    tau = static_cast<float>(p.tau);
  }
  float step(float w, float d, float& m, float& v) const {
    m = 0.0f * m + 1.0f * d;
    v = v + d * d;
    return w + eta * m / (std::sqrt(v) + tau);
  }
};

}  // namespace

std::unique_ptr<StrategyParams> fedadagrad_params() {
  return std::make_unique<FedOptParams<Adagrad>>(FedOptValues{"fedadagrad", 1e-1, 1e-1, 0.0, 0.0, 1e-9, false});
}

}  // namespace conflux::federated::detail
