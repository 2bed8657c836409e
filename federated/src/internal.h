// Internal building blocks shared by the strategy files: the running weighted sum (Flower's
// `aggregate`), per-tensor server state (moments, momentum) and its naming, the held results of
// the robust strategies, Krum's pairwise distances, and the registry's factories.
#pragma once

#include "conflux/core/config.h"
#include "conflux/federated/strategy.h"

#include <functional>
#include <memory>
#include <vector>

namespace conflux::federated::detail {

// Flower's aggregate(): sum_i(w_i * n_i) / sum_i(n_i), in float32 operation by operation as numpy
// does it (w * float32(n), then left-to-right adds, then / float32(total)), so the result is the
// same float32 bits. Folds one result at a time: memory is one model.
class WeightedSum {
 public:
  void reset() { sum_.clear(); total_ = 0; }
  void add(const Weights& w, uint64_t num_examples);
  // The same, but the first result's buffers become the sum (scaled in place: no allocation, no
  // zero fill); later results are folded in and dropped.
  void add(Weights&& w, uint64_t num_examples);
  bool empty() const { return total_ == 0; }
  Weights mean() const;
  // mean() computed in the sum's own buffers, which it hands over; the sum is reset.
  Weights take_mean();

 private:
  Weights sum_;
  uint64_t total_ = 0;
};

// Per-tensor server state named "<prefix>/<tensor>" (e.g. "m/fc.weight").
struct TensorState {
  std::string prefix;
  Weights tensors;  // empty until first used; then in the layout's order
  bool empty() const { return tensors.empty(); }
  void zeros_like(const Weights& layout);
  // Zeros if empty, else checks the held (loaded) tensors against `layout` (DataError).
  void ensure(const Weights& layout);
  void save(Weights& out) const;
  // Takes this prefix's tensors from `in` (none: stays empty).
  void load(const Weights& in);
};

// The robust strategies' base: holds every result of the round (O(clients x model)).
class HoldingStrategy : public Strategy {
 public:
  using Strategy::Strategy;

 protected:
  void on_begin() override { held_.clear(); }
  void on_add(ClientResult&& r) override { held_.push_back(std::move(r)); }
  std::vector<const Weights*> held_weights() const;
  std::vector<ClientResult> held_;
};

// Krum's score ingredients: squared L2 distances between held results, in double, filled as
// results arrive (each add costs one pass over the new result per held one).
class Distances {
 public:
  void reset() { d_.clear(); }
  void add(const std::vector<ClientResult>& held_before, const Weights& incoming);
  double at(size_t i, size_t j) const { return d_[i][j]; }

 private:
  std::vector<std::vector<double>> d_;
};

// Krum and Bulyan: hold every result and the distances between them, filled as results arrive.
class KrumFamily : public HoldingStrategy {
 public:
  using HoldingStrategy::HoldingStrategy;

 protected:
  void on_begin() override {
    HoldingStrategy::on_begin();
    dist_.reset();
  }
  void on_add(ClientResult&& r) override {
    dist_.add(held_, r.weights);
    HoldingStrategy::on_add(std::move(r));
  }
  Distances dist_;
};

// Flower's aggregate_krum over the results `alive` (indices into all results): each one's score
// is the sum of its max(1, n - f - 2) smallest distances to the others; returns the indices in
// ascending score order (ties by index).
std::vector<size_t> krum_ranking(const Distances& d, const std::vector<size_t>& alive, int64_t num_malicious);

// Element-wise over held results: out[t][j] = fn(column, n) where column holds result i's value
// of tensor t, element j (fn may reorder the column).
Weights coordinatewise(const std::vector<const Weights*>& results, const Weights& layout,
                       const std::function<float(float* column, size_t n)>& fn);

// numpy's median of float32 values: the middle value, or the float32 mean of the two middle ones.
float median_f32(float* v, size_t n);

std::unique_ptr<StrategyParams> fedavg_params();
std::unique_ptr<StrategyParams> fedavgm_params();
std::unique_ptr<StrategyParams> fedprox_params();
std::unique_ptr<StrategyParams> fedadagrad_params();
std::unique_ptr<StrategyParams> fedadam_params();
std::unique_ptr<StrategyParams> fedyogi_params();
std::unique_ptr<StrategyParams> median_params();
std::unique_ptr<StrategyParams> trimmed_avg_params();
std::unique_ptr<StrategyParams> krum_params();
std::unique_ptr<StrategyParams> bulyan_params();

}  // namespace conflux::federated::detail
