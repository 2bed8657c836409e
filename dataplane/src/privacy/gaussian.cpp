// Gaussian mechanism on feature vectors: L2 clipping to C, noise N(0, sigma^2) per coordinate,
// sigma calibrated for sensitivity 2C (analytic by default, classic on request).
#include "conflux/core/error.h"
#include "conflux/core/privacy.h"
#include "conflux/dataplane/privacy_ops.h"

namespace conflux::dataplane {
namespace {

class Gaussian final : public DpMechanism {
 public:
  const char* name() const override { return "gaussian"; }
  Role role() const override { return Role::Features; }
  Calibration calibrate(const DpFieldConfig& cfg) const override {
    Calibration c;
    c.sensitivity = 2.0 * cfg.clip;
    if (cfg.calibration == "classic")
      c.scale = privacy::gaussian_sigma_classic(cfg.epsilon, cfg.delta, c.sensitivity);
    else if (cfg.calibration == "analytic")
      c.scale = privacy::gaussian_sigma_analytic(cfg.epsilon, cfg.delta, c.sensitivity);
    else
      CONFLUX_THROW(ConfigError, "privacy: calibration '{}' unknown (analytic | classic)", cfg.calibration);
    return c;
  }
  void apply_features(float* x, int64_t dim, const DpFieldConfig& cfg, const Calibration& cal,
                      RandomSource& rng) const override {
    clip_l2(x, dim, cfg.clip);
    add_gaussian_noise(x, dim, cal.scale, rng);
  }
};

}  // namespace
const DpMechanism& gaussian_mechanism() {
  static Gaussian m;
  return m;
}
}  // namespace conflux::dataplane
