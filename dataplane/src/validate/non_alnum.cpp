// Quality heuristic (NeMo Curator's NonAlphaNumericFilter): the share of bytes that are neither
// ASCII alphanumerics nor whitespace; rows above max_non_alnum_ratio are dropped.
#include "conflux/dataplane/ops.h"

#include <cctype>

namespace conflux::dataplane {
namespace {
class NonAlnum final : public Validator {
 public:
  const char* name() const override { return "non_alnum"; }
  std::vector<std::string> reasons() const override { return {"non_alnum_ratio"}; }
  bool enabled(const ValidateConfig& c) const override { return c.max_non_alnum_ratio < 1.0; }
  bool applies(const Kinds& k) const override { return k.text; }
  std::string check(const RowView& r, const ValidateConfig& c) const override {
    if (!r.has_text || r.text.empty()) return "";
    size_t bad = 0;
    for (unsigned char ch : r.text)
      if (!std::isalnum(ch) && !std::isspace(ch) && ch < 0x80) ++bad;
    return static_cast<double>(bad) / r.text.size() > c.max_non_alnum_ratio ? "non_alnum_ratio" : "";
  }
};
}  // namespace
const Validator& non_alnum_validator() {
  static NonAlnum v;
  return v;
}
}  // namespace conflux::dataplane
