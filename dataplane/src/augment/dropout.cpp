// Token dropout: each content token (id < 256) is deleted with probability `rate`.
#include "conflux/dataplane/ops.h"

namespace conflux::dataplane {
namespace {
class Dropout final : public AugmentOp {
 public:
  const char* name() const override { return "dropout"; }
  Role role() const override { return Role::Tokens; }
  std::string summary() const override { return "delete each token with probability rate"; }
  std::vector<ParamSpec> params() const override {
    return {{"rate", 0.1, 0.0, 1.0, "probability that a token is deleted"}};
  }
  void apply_tokens(std::vector<int32_t>& t, RandomSource& rng, const Params& p) const override {
    const double rate = p.at("rate");
    size_t o = 0;
    for (size_t i = 0; i < t.size(); ++i)
      if (t[i] >= 256 || !rng.bernoulli(rate)) t[o++] = t[i];
    t.resize(o);
  }
};
}  // namespace
const AugmentOp& dropout_op() {
  static Dropout op;
  return op;
}
}  // namespace conflux::dataplane
