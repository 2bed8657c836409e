// Random crop / window: a record longer than `length` tokens is cut to a window of `length`
// tokens at a uniformly random start.
#include "conflux/dataplane/ops.h"

namespace conflux::dataplane {
namespace {
class Crop final : public AugmentOp {
 public:
  const char* name() const override { return "crop"; }
  Role role() const override { return Role::Tokens; }
  std::string summary() const override { return "keep a random window of `length` tokens"; }
  std::vector<ParamSpec> params() const override {
    return {{"length", 128, 1, 1e12, "window length in tokens"}};
  }
  void apply_tokens(std::vector<int32_t>& t, RandomSource& rng, const Params& p) const override {
    const size_t len = static_cast<size_t>(p.at("length"));
    if (t.size() <= len) return;
    size_t start = static_cast<size_t>(rng.below(t.size() - len + 1));
    t.erase(t.begin() + static_cast<std::ptrdiff_t>(start + len), t.end());
    t.erase(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(start));
  }
};
}  // namespace
const AugmentOp& crop_op() {
  static Crop op;
  return op;
}
}  // namespace conflux::dataplane
