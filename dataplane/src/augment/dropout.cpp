// Token dropout: each content token (id < 256) is deleted with probability `rate`.
#include "conflux/dataplane/ops.h"

#include <cmath>

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
    // Geometric skipping as in mask.cpp: one draw per deleted token.
    const double rate = p.at("rate");
    if (rate <= 0) return;
    const double inv_log = rate >= 1 ? 0 : 1.0 / std::log1p(-rate);
    size_t o = 0, i = 0;
    while (i < t.size()) {
      uint64_t skip = rate >= 1 ? 0 : static_cast<uint64_t>(std::floor(std::log(rng.uniform_open()) * inv_log));
      while (i < t.size() && (t[i] >= 256 || skip > 0)) {
        if (t[i] < 256) --skip;
        t[o++] = t[i++];
      }
      if (i < t.size()) ++i;  // delete this content token
    }
    t.resize(o);
  }
};
}  // namespace
const AugmentOp& dropout_op() {
  static Dropout op;
  return op;
}
}  // namespace conflux::dataplane
