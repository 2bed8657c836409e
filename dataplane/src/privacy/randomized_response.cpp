// k-ary randomized response for labels: keep the label with probability e^eps / (e^eps + k - 1),
// else report one of the other k - 1 labels uniformly at random.
#include "conflux/core/error.h"
#include "conflux/core/privacy.h"
#include "conflux/dataplane/privacy_ops.h"

namespace conflux::dataplane {
namespace {

class RandomizedResponse final : public DpMechanism {
 public:
  const char* name() const override { return "randomized_response"; }
  Role role() const override { return Role::Label; }
  Calibration calibrate(const DpFieldConfig& cfg) const override {
    if (cfg.classes < 2)
      CONFLUX_THROW(ConfigError, "randomized response needs at least 2 classes (got {})", cfg.classes);
    Calibration c;
    c.classes = cfg.classes;
    c.keep_probability = privacy::randomized_response_keep_probability(cfg.epsilon, static_cast<int>(cfg.classes));
    return c;
  }
  void apply_label(int64_t* label, const Calibration& cal, RandomSource& rng) const override {
    if (*label < 0 || *label >= cal.classes)
      CONFLUX_THROW(DataError, "randomized response: label {} is outside [0, {})", *label, cal.classes);
    if (rng.bernoulli(cal.keep_probability)) return;
    int64_t other = static_cast<int64_t>(rng.below(static_cast<uint64_t>(cal.classes - 1)));
    *label = other >= *label ? other + 1 : other;
  }
};

}  // namespace
const DpMechanism& randomized_response_mechanism() {
  static RandomizedResponse m;
  return m;
}
}  // namespace conflux::dataplane
