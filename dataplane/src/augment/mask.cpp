// Random masking (BERT-style): each content token (id < 256) becomes the mask id with
// probability `rate`; special tokens (eos) are left alone.
#include "conflux/dataplane/manifest.h"
#include "conflux/dataplane/ops.h"
#include "fast_random.h"

#include <algorithm>
#include <cmath>

namespace conflux::dataplane {
namespace {
class Mask final : public AugmentOp {
 public:
  const char* name() const override { return "mask"; }
  Role role() const override { return Role::Tokens; }
  bool length_preserving() const override { return true; }
  std::string summary() const override { return "replace each token with the mask id (258) with probability rate"; }
  std::vector<ParamSpec> params() const override {
    return {{"rate", 0.15, 0.0, 1.0, "probability that a token is masked"}};
  }
  void apply_tokens(std::vector<int32_t>& t, RandomSource& rng, const Params& p) const override {
    apply_tokens_in_place(t.data(), static_cast<int64_t>(t.size()), rng, p);
  }
  void apply_tokens_in_place(int32_t* t, int64_t n, RandomSource& rng, const Params& p) const override {
    // One 32-bit draw per token (token i uses word i of the record's draws), compared with
    // rate * 2^32: branch-free and vectorised; P(mask) = floor(rate 2^32) / 2^32.
    const double rate = p.at("rate");
    if (rate <= 0 || n <= 0) return;
    const uint64_t threshold =
        rate >= 1 ? (uint64_t{1} << 32) : static_cast<uint64_t>(std::floor(rate * 4294967296.0));
    if (auto* rs = dynamic_cast<RowStream*>(&rng)) {  // the row stream: draws fused into the pass
      mask_stream(t, static_cast<size_t>(n), *rs, threshold, kMaskId);
      return;
    }
    constexpr int64_t kBlock = 1024;  // tokens per batch of draws
    uint64_t bits[kBlock / 2];
    for (int64_t i = 0; i < n; i += kBlock) {
      const int64_t m = std::min(kBlock, n - i);
      fill_u64(rng, bits, static_cast<size_t>((m + 1) / 2));
      mask_tokens(t + i, static_cast<size_t>(m), reinterpret_cast<const uint32_t*>(bits), threshold, kMaskId);
    }
  }
};
}  // namespace
const AugmentOp& mask_op() {
  static Mask op;
  return op;
}
}  // namespace conflux::dataplane
