// fedyogi (Reddi et al. 2021 with Yogi; Flower's FedYogi): m = b1 m + (1 - b1) delta,
// v = v - (1 - b2) delta^2 sign(v - delta^2), w = w + eta m / (sqrt(v) + tau). float32 operation
// by operation as Flower's numpy code.
#include "fedopt.h"

#include <cmath>

namespace conflux::federated::detail {

namespace {

float sign(float x) { return x > 0 ? 1.0f : x < 0 ? -1.0f : 0.0f; }

struct Yogi {
  float eta = 0, b1 = 0, one_minus_b1 = 0, one_minus_b2 = 0, tau = 0;
  void begin(const FedOptValues& p, uint64_t) {
    eta = static_cast<float>(p.eta);
    b1 = static_cast<float>(p.beta_1);
    one_minus_b1 = static_cast<float>(1 - p.beta_1);
    one_minus_b2 = static_cast<float>(1.0 - p.beta_2);
    tau = static_cast<float>(p.tau);
  }
  float step(float w, float d, float& m, float& v) const {
    m = b1 * m + one_minus_b1 * d;
    const float d2 = d * d;
    v = v - one_minus_b2 * d2 * sign(v - d2);
    return w + eta * m / (std::sqrt(v) + tau);
  }
};

}  // namespace

std::unique_ptr<StrategyParams> fedyogi_params() {
  return std::make_unique<FedOptParams<Yogi>>(FedOptValues{"fedyogi", 1e-2, 0.0316, 0.9, 0.99, 1e-3, true});
}

}  // namespace conflux::federated::detail
