// Gaussian jitter: adds N(0, sigma^2) to every feature.
#include "conflux/dataplane/ops.h"

namespace conflux::dataplane {
namespace {
class Jitter final : public AugmentOp {
 public:
  const char* name() const override { return "jitter"; }
  Role role() const override { return Role::Features; }
  std::string summary() const override { return "add Gaussian noise N(0, sigma^2) to each feature"; }
  std::vector<ParamSpec> params() const override {
    return {{"sigma", 0.01, 0.0, 1e12, "standard deviation of the jitter"}};
  }
  void apply_features(FeatureRecord& r, RandomSource& rng, const Params& p) const override {
    const double s = p.at("sigma");
    for (int64_t i = 0; i < r.dim; ++i) r.x[i] = static_cast<float>(r.x[i] + s * rng.normal());
  }
};
}  // namespace
const AugmentOp& jitter_op() {
  static Jitter op;
  return op;
}
}  // namespace conflux::dataplane
