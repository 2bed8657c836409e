// Quality heuristic: word-count bounds (min_words, max_words; 0 disables a bound).
#include "conflux/dataplane/ops.h"
#include "words.h"

namespace conflux::dataplane {
namespace {
class WordCount final : public Validator {
 public:
  const char* name() const override { return "word_count"; }
  std::vector<std::string> reasons() const override { return {"too_few_words", "too_many_words"}; }
  bool enabled(const ValidateConfig& c) const override { return c.min_words > 0 || c.max_words > 0; }
  bool applies(const Kinds& k) const override { return k.text; }
  std::string check(const RowView& r, const ValidateConfig& c) const override {
    if (!r.has_text) return "";
    auto w = word_stats(r.text);
    if (c.min_words > 0 && w.words < c.min_words) return "too_few_words";
    if (c.max_words > 0 && w.words > c.max_words) return "too_many_words";
    return "";
  }
};
}  // namespace
const Validator& word_count_validator() {
  static WordCount v;
  return v;
}
}  // namespace conflux::dataplane
