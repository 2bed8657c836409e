// Sequence length: empty, too short (< min_tokens) or too long (> max_tokens) in content tokens
// (ids < 256, so the eos marker does not count).
#include "conflux/dataplane/ops.h"

namespace conflux::dataplane {
namespace {
class Length final : public Validator {
 public:
  const char* name() const override { return "length"; }
  std::vector<std::string> reasons() const override { return {"empty", "too_short", "too_long"}; }
  bool enabled(const ValidateConfig& c) const override { return true; }
  bool applies(const Kinds& k) const override { return k.tokens; }
  std::string check(const RowView& r, const ValidateConfig& c) const override {
    if (r.content_tokens < 0) return "";
    if (r.content_tokens == 0) return "empty";
    if (c.min_tokens > 0 && r.content_tokens < c.min_tokens) return "too_short";
    if (c.max_tokens > 0 && r.content_tokens > c.max_tokens) return "too_long";
    return "";
  }
};
}  // namespace
const Validator& length_validator() {
  static Length v;
  return v;
}
}  // namespace conflux::dataplane
