// bulyan (El Mhamdi et al. 2018; Flower's Bulyan / aggregate_bulyan with its default first rule,
// Krum): select theta = n - 2f results by repeated Krum on those not yet selected, then for each
// coordinate average the beta = theta - 2f selected values closest to their median (|w - median|
// in float32 as Flower; the mean in double, rounded to float32). Needs n >= 4f + 3. Flower's
// Bulyan with a Multi-Krum first rule (to_keep > 0) fails (an average is never one of the
// results), so to_keep must be 0 here. Holds every result and the n x n distances.
#include "internal.h"

#include "conflux/core/error.h"

#include <algorithm>
#include <cmath>

namespace conflux::federated::detail {

namespace {

struct BulyanParams final : StrategyParams {
  int64_t num_malicious = 0;
  int64_t to_keep = 0;
  void bind(ConfigBinder& b) override {
    b.field("strategy.bulyan.num_malicious", num_malicious, "number of malicious clients tolerated (f)").min(0);
    b.field("strategy.bulyan.to_keep", to_keep,
            "the Krum selection's to_keep; must be 0 (Multi-Krum returns averages Bulyan cannot select)")
        .range(0, 0);
  }
  std::unique_ptr<Strategy> make() const override;
};

class Bulyan final : public KrumFamily {
 public:
  explicit Bulyan(const BulyanParams& p) : KrumFamily("bulyan"), p_(p) {}

 private:
  Weights on_finish(const Weights*) override {
    const size_t n = held_.size();
    const size_t f = static_cast<size_t>(p_.num_malicious);
    if (n < 4 * f + 3)
      CONFLUX_THROW(DataError, "bulyan with num_malicious {} needs at least {} results (4f + 3), got {}", f,
                    4 * f + 3, n);
    const size_t theta = n - 2 * f, beta = theta - 2 * f;
    std::vector<size_t> alive(n);
    for (size_t i = 0; i < n; ++i) alive[i] = i;
    std::vector<const Weights*> selected;
    for (size_t s = 0; s < theta; ++s) {
      const size_t best = krum_ranking(dist_, alive, p_.num_malicious).front();
      selected.push_back(&held_[best].weights);
      alive.erase(std::find(alive.begin(), alive.end(), best));
    }
    std::vector<float> copy, dist;
    std::vector<size_t> order;
    return coordinatewise(selected, layout(), [&](float* v, size_t count) {
      copy.assign(v, v + count);
      const float med = median_f32(copy.data(), count);
      dist.resize(count);
      order.resize(count);
      for (size_t i = 0; i < count; ++i) {
        dist[i] = std::fabs(med - v[i]);
        order[i] = i;
      }
      std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(beta - 1), order.end(),
                       [&](size_t a, size_t b) { return dist[a] < dist[b]; });
      double s = 0;
      for (size_t i = 0; i < beta; ++i) s += v[order[i]];
      return static_cast<float>(s / static_cast<double>(beta));
    });
  }
  BulyanParams p_;
};

std::unique_ptr<Strategy> BulyanParams::make() const { return std::make_unique<Bulyan>(*this); }

}  // namespace

std::unique_ptr<StrategyParams> bulyan_params() { return std::make_unique<BulyanParams>(); }

}  // namespace conflux::federated::detail
