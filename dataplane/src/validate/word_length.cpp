// Quality heuristic: mean word length bounds (min/max_mean_word_length; 0 disables a bound).
#include "conflux/dataplane/ops.h"
#include "words.h"

namespace conflux::dataplane {
namespace {
class WordLength final : public Validator {
 public:
  const char* name() const override { return "word_length"; }
  std::vector<std::string> reasons() const override { return {"mean_word_length"}; }
  bool enabled(const ValidateConfig& c) const override {
    return c.min_mean_word_length > 0 || c.max_mean_word_length > 0;
  }
  bool applies(const Kinds& k) const override { return k.text; }
  std::string check(const RowView& r, const ValidateConfig& c) const override {
    if (!r.has_text) return "";
    auto w = word_stats(r.text);
    if (w.words == 0) return "";
    double mean = static_cast<double>(w.letters) / w.words;
    if ((c.min_mean_word_length > 0 && mean < c.min_mean_word_length) ||
        (c.max_mean_word_length > 0 && mean > c.max_mean_word_length))
      return "mean_word_length";
    return "";
  }
};
}  // namespace
const Validator& word_length_validator() {
  static WordLength v;
  return v;
}
}  // namespace conflux::dataplane
