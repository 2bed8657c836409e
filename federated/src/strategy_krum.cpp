// krum: Byzantine-robust selection (Blanchard et al. 2017; Flower's Krum / aggregate_krum). Each
// result's score is the sum of squared L2 distances to its max(1, n - f - 2) nearest others
// (f = num_malicious); Krum returns the weights of the lowest score, Multi-Krum (to_keep > 0) the
// FedAvg (weighted by examples) of the to_keep lowest, summed in Flower's order (descending
// score). Holds every result and the n x n distances, computed in double as results arrive.
#include "internal.h"

#include "conflux/core/error.h"

#include <algorithm>

namespace conflux::federated::detail {

namespace {

struct KrumParams final : StrategyParams {
  int64_t num_malicious = 0;
  int64_t to_keep = 0;
  void bind(ConfigBinder& b) override {
    b.field("strategy.krum.num_malicious", num_malicious, "number of malicious clients tolerated (f)").min(0);
    b.field("strategy.krum.to_keep", to_keep, "Multi-Krum: average the to_keep best results (0: Krum)").min(0);
  }
  std::unique_ptr<Strategy> make() const override;
};

class Krum final : public KrumFamily {
 public:
  explicit Krum(const KrumParams& p) : KrumFamily("krum"), p_(p) {}

 private:
  Weights on_finish(const Weights*) override {
    const size_t n = held_.size();
    if (static_cast<uint64_t>(p_.to_keep) > n)
      CONFLUX_THROW(DataError, "krum: to_keep is {} but the round has only {} results", p_.to_keep, n);
    std::vector<size_t> all(n);
    for (size_t i = 0; i < n; ++i) all[i] = i;
    const std::vector<size_t> ranked = krum_ranking(dist_, all, p_.num_malicious);
    if (p_.to_keep == 0) return std::move(held_[ranked.front()].weights);
    WeightedSum sum;
    for (size_t k = static_cast<size_t>(p_.to_keep); k-- > 0;)
      sum.add(held_[ranked[k]].weights, held_[ranked[k]].num_examples);
    return sum.mean();
  }
  KrumParams p_;
};

std::unique_ptr<Strategy> KrumParams::make() const { return std::make_unique<Krum>(*this); }

}  // namespace

std::unique_ptr<StrategyParams> krum_params() { return std::make_unique<KrumParams>(); }

}  // namespace conflux::federated::detail
