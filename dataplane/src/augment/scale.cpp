// Random scaling: multiplies the whole feature vector by a factor drawn uniformly from [min, max].
#include "conflux/dataplane/ops.h"

namespace conflux::dataplane {
namespace {
class Scale final : public AugmentOp {
 public:
  const char* name() const override { return "scale"; }
  Role role() const override { return Role::Features; }
  std::string summary() const override { return "multiply the features by U(min, max)"; }
  std::vector<ParamSpec> params() const override {
    return {{"min", 0.9, -1e12, 1e12, "smallest factor"}, {"max", 1.1, -1e12, 1e12, "largest factor"}};
  }
  void apply_features(FeatureRecord& r, RandomSource& rng, const Params& p) const override {
    const double f = p.at("min") + (p.at("max") - p.at("min")) * rng.uniform();
    for (int64_t i = 0; i < r.dim; ++i) r.x[i] = static_cast<float>(r.x[i] * f);
  }
};
}  // namespace
const AugmentOp& scale_op() {
  static Scale op;
  return op;
}
}  // namespace conflux::dataplane
