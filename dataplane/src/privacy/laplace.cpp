// Laplace mechanism on feature vectors: L1 clipping to C, noise Laplace(0, 2C / eps) per coordinate.
#include "conflux/core/privacy.h"
#include "conflux/dataplane/privacy_ops.h"

namespace conflux::dataplane {
namespace {

class Laplace final : public DpMechanism {
 public:
  const char* name() const override { return "laplace"; }
  Role role() const override { return Role::Features; }
  Calibration calibrate(const DpFieldConfig& cfg) const override {
    Calibration c;
    c.sensitivity = 2.0 * cfg.clip;
    c.scale = privacy::laplace_scale(cfg.epsilon, c.sensitivity);
    return c;
  }
  void apply_features(float* x, int64_t dim, const DpFieldConfig& cfg, const Calibration& cal,
                      RandomSource& rng) const override {
    clip_l1(x, dim, cfg.clip);
    for (int64_t i = 0; i < dim; ++i) x[i] = static_cast<float>(x[i] + rng.laplace(cal.scale));
  }
};

}  // namespace
const DpMechanism& laplace_mechanism() {
  static Laplace m;
  return m;
}
}  // namespace conflux::dataplane
