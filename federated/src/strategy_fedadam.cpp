// fedadam (Reddi et al. 2021 with Adam; Flower's FedAdam): m = b1 m + (1 - b1) delta,
// v = b2 v + (1 - b2) delta^2, w = w + eta_t m / (sqrt(v) + tau) with Flower's bias-corrected
// eta_t = eta sqrt(1 - b2^(t+1)) / (1 - b1^(t+1)), t the 1-based round. The moments are float32
// as in Flower's first round; the step is computed in double (Flower's eta_t is a float64
// scalar, which makes its weights float64) and stored as float32.
#include "fedopt.h"

#include <cmath>

namespace conflux::federated::detail {

namespace {

struct Adam {
  float b1 = 0, one_minus_b1 = 0, b2 = 0, one_minus_b2 = 0, tau = 0;
  double eta_t = 0;
  void begin(const FedOptValues& p, uint64_t round) {
    b1 = static_cast<float>(p.beta_1);
    one_minus_b1 = static_cast<float>(1 - p.beta_1);
    b2 = static_cast<float>(p.beta_2);
    one_minus_b2 = static_cast<float>(1 - p.beta_2);
    tau = static_cast<float>(p.tau);
    const double t = static_cast<double>(round) + 1.0;
    eta_t = p.eta * std::sqrt(1 - std::pow(p.beta_2, t)) / (1 - std::pow(p.beta_1, t));
  }
  float step(float w, float d, float& m, float& v) const {
    m = b1 * m + one_minus_b1 * d;
    v = b2 * v + one_minus_b2 * (d * d);
    return static_cast<float>(static_cast<double>(w) +
                              eta_t * static_cast<double>(m) / static_cast<double>(std::sqrt(v) + tau));
  }
};

}  // namespace

std::unique_ptr<StrategyParams> fedadam_params() {
  return std::make_unique<FedOptParams<Adam>>(FedOptValues{"fedadam", 1e-1, 1e-1, 0.9, 0.99, 1e-9, true});
}

}  // namespace conflux::federated::detail
