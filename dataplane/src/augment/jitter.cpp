// Gaussian jitter: adds N(0, sigma^2) to every feature.
#include "conflux/dataplane/ops.h"
#include "conflux/dataplane/privacy_ops.h"

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
    add_gaussian_noise(r.x, r.dim, p.at("sigma"), rng);
  }
};
}  // namespace
const AugmentOp& jitter_op() {
  static Jitter op;
  return op;
}
}  // namespace conflux::dataplane
