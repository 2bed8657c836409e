// Mixup (Zhang et al. 2018): x = lam * x + (1 - lam) * partner with lam ~ Beta(alpha, alpha); the
// label becomes the partner's when lam < 0.5. The partner is another kept record of the same
// aligned block of kPlanBlock input rows, chosen by the record's own random stream, so the
// choice does not depend on the number of ranks.
#include "conflux/dataplane/ops.h"

namespace conflux::dataplane {
namespace {
class Mixup final : public AugmentOp {
 public:
  const char* name() const override { return "mixup"; }
  Role role() const override { return Role::Features; }
  std::string summary() const override { return "convex mix with a partner record, lam ~ Beta(alpha, alpha)"; }
  std::vector<ParamSpec> params() const override {
    return {{"alpha", 0.2, 1e-6, 1e6, "Beta distribution parameter"}};
  }
  void apply_features(FeatureRecord& r, RandomSource& rng, const Params& p) const override {
    if (!r.partner) return;
    const double a = p.at("alpha");
    const double lam = sample_beta(rng, a, a);
    for (int64_t i = 0; i < r.dim; ++i)
      r.x[i] = static_cast<float>(lam * r.x[i] + (1.0 - lam) * r.partner[i]);
    if (r.label && lam < 0.5) *r.label = r.partner_label;
  }
};
}  // namespace
const AugmentOp& mixup_op() {
  static Mixup op;
  return op;
}
}  // namespace conflux::dataplane
