// Quality heuristic (Gopher / NeMo Curator RepeatedLinesFilter): the share of non-empty lines
// that repeat an earlier line of the same record; rows above max_repeated_line_ratio are dropped.
#include "conflux/dataplane/ops.h"

#include <unordered_set>

namespace conflux::dataplane {
namespace {
class RepeatedLines final : public Validator {
 public:
  const char* name() const override { return "repeated_lines"; }
  std::vector<std::string> reasons() const override { return {"repeated_lines"}; }
  bool enabled(const ValidateConfig& c) const override { return c.max_repeated_line_ratio < 1.0; }
  bool applies(const Kinds& k) const override { return k.text; }
  std::string check(const RowView& r, const ValidateConfig& c) const override {
    if (!r.has_text) return "";
    std::unordered_set<std::string_view> seen;
    size_t lines = 0, repeats = 0, pos = 0;
    while (pos < r.text.size()) {
      size_t nl = r.text.find('\n', pos);
      if (nl == std::string_view::npos) nl = r.text.size();
      auto line = r.text.substr(pos, nl - pos);
      pos = nl + 1;
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      ++lines;
      if (!seen.insert(line).second) ++repeats;
    }
    return lines > 0 && static_cast<double>(repeats) / lines > c.max_repeated_line_ratio ? "repeated_lines" : "";
  }
};
}  // namespace
const Validator& repeated_lines_validator() {
  static RepeatedLines v;
  return v;
}
}  // namespace conflux::dataplane
