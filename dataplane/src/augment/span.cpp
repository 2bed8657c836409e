// Span corruption (T5-style): spans of content tokens, mean length `mean_length`, covering about
// `rate` of the tokens, are each replaced by a single mask id. A span starts at an uncorrupted
// position with probability rate / mean_length and has length 1 + Poisson-like geometric tail
// (geometric with mean `mean_length`).
#include "conflux/dataplane/manifest.h"
#include "conflux/dataplane/ops.h"

namespace conflux::dataplane {
namespace {
class Span final : public AugmentOp {
 public:
  const char* name() const override { return "span"; }
  Role role() const override { return Role::Tokens; }
  std::string summary() const override {
    return "replace spans (mean length mean_length, ~rate of tokens) by one mask id each";
  }
  std::vector<ParamSpec> params() const override {
    return {{"rate", 0.15, 0.0, 1.0, "expected share of tokens inside corrupted spans"},
            {"mean_length", 3.0, 1.0, 1e6, "mean span length in tokens"}};
  }
  void apply_tokens(std::vector<int32_t>& t, RandomSource& rng, const Params& p) const override {
    const double rate = p.at("rate"), mean = p.at("mean_length");
    const double start_p = std::min(1.0, rate / mean), cont_p = 1.0 - 1.0 / mean;
    std::vector<int32_t> out;
    out.reserve(t.size());
    for (size_t i = 0; i < t.size();) {
      if (t[i] < 256 && rng.bernoulli(start_p)) {
        out.push_back(kMaskId);
        ++i;
        while (i < t.size() && t[i] < 256 && rng.bernoulli(cont_p)) ++i;
      } else {
        out.push_back(t[i++]);
      }
    }
    t.swap(out);
  }
};
}  // namespace
const AugmentOp& span_op() {
  static Span op;
  return op;
}
}  // namespace conflux::dataplane
