// Random masking (BERT-style): each content token (id < 256) becomes the mask id with
// probability `rate`; special tokens (eos) are left alone.
#include "conflux/dataplane/manifest.h"
#include "conflux/dataplane/ops.h"

#include <cmath>

namespace conflux::dataplane {
namespace {
class Mask final : public AugmentOp {
 public:
  const char* name() const override { return "mask"; }
  Role role() const override { return Role::Tokens; }
  bool length_preserving() const override { return true; }
  std::string summary() const override { return "replace each token with the mask id (258) with probability rate"; }
  std::vector<ParamSpec> params() const override {
    return {{"rate", 0.15, 0.0, 1.0, "probability that a token is masked"}};
  }
  void apply_tokens(std::vector<int32_t>& t, RandomSource& rng, const Params& p) const override {
    // Geometric skipping: the gap between masked content tokens is Geometric(rate), so one
    // random draw per masked token instead of one per token (same distribution).
    const double rate = p.at("rate");
    if (rate <= 0) return;
    const double inv_log = rate >= 1 ? 0 : 1.0 / std::log1p(-rate);
    size_t i = 0;
    while (true) {
      uint64_t skip = rate >= 1 ? 0 : static_cast<uint64_t>(std::floor(std::log(rng.uniform_open()) * inv_log));
      // Advance over `skip` content tokens.
      while (i < t.size() && (t[i] >= 256 || skip > 0)) {
        if (t[i] < 256) --skip;
        ++i;
      }
      if (i >= t.size()) return;
      t[i++] = kMaskId;
    }
  }
};
}  // namespace
const AugmentOp& mask_op() {
  static Mask op;
  return op;
}
}  // namespace conflux::dataplane
