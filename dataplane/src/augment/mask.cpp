// Random masking (BERT-style): each content token (id < 256) becomes the mask id with
// probability `rate`; special tokens (eos) are left alone.
#include "conflux/dataplane/manifest.h"
#include "conflux/dataplane/ops.h"

namespace conflux::dataplane {
namespace {
class Mask final : public AugmentOp {
 public:
  const char* name() const override { return "mask"; }
  Role role() const override { return Role::Tokens; }
  std::string summary() const override { return "replace each token with the mask id (258) with probability rate"; }
  std::vector<ParamSpec> params() const override {
    return {{"rate", 0.15, 0.0, 1.0, "probability that a token is masked"}};
  }
  void apply_tokens(std::vector<int32_t>& t, RandomSource& rng, const Params& p) const override {
    const double rate = p.at("rate");
    for (auto& v : t)
      if (v < 256 && rng.bernoulli(rate)) v = kMaskId;
  }
};
}  // namespace
const AugmentOp& mask_op() {
  static Mask op;
  return op;
}
}  // namespace conflux::dataplane
