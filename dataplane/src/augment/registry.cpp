// The one list of augmentation ops (add an op: one file plus one line here) and the samplers
// they share.
#include "conflux/core/error.h"
#include "conflux/dataplane/ops.h"

#include <algorithm>

#include <cmath>

namespace conflux::dataplane {

const AugmentOp& mask_op();
const AugmentOp& span_op();
const AugmentOp& crop_op();
const AugmentOp& dropout_op();
const AugmentOp& jitter_op();
const AugmentOp& scale_op();
const AugmentOp& mixup_op();

const std::vector<const AugmentOp*>& augment_registry() {
  static const std::vector<const AugmentOp*> r = {&mask_op(),   &span_op(),  &crop_op(), &dropout_op(),
                                                  &jitter_op(), &scale_op(), &mixup_op()};
  return r;
}

void AugmentOp::apply_tokens_in_place(int32_t* tokens, int64_t n, RandomSource& rng, const Params& p) const {
  std::vector<int32_t> t(tokens, tokens + n);
  apply_tokens(t, rng, p);
  if (static_cast<int64_t>(t.size()) != n)
    CONFLUX_THROW(InternalError, "augment op '{}' changed the length of a record in place ({} -> {})", name(), n,
                  t.size());
  std::copy(t.begin(), t.end(), tokens);
}

const AugmentOp* find_augment(const std::string& name) {
  for (auto* op : augment_registry())
    if (name == op->name()) return op;
  return nullptr;
}

double sample_gamma(RandomSource& rng, double shape) {
  if (shape < 1.0) {  // boost: Gamma(a) = Gamma(a + 1) * U^(1/a)
    double u = rng.uniform_open();
    return sample_gamma(rng, shape + 1.0) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x, v;
    do {
      x = rng.normal();
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    double u = rng.uniform_open();
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}

double sample_beta(RandomSource& rng, double a, double b) {
  double x = sample_gamma(rng, a), y = sample_gamma(rng, b);
  return x + y > 0 ? x / (x + y) : 0.5;
}

}  // namespace conflux::dataplane
