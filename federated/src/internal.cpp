// The shared building blocks of internal.h.
#include "internal.h"

#include "conflux/core/error.h"

#include <algorithm>
#include <numeric>

namespace conflux::federated::detail {

void WeightedSum::add(const Weights& w, uint64_t num_examples) {
  const float n = static_cast<float>(num_examples);
  if (sum_.empty()) {  // numpy: weighted = layer * n; the first is the reduce's start value
    sum_.reserve(w.size());
    for (const NamedTensor& t : w) {
      NamedTensor s{t.name, t.shape, std::vector<float>(t.values.size())};
      for (size_t i = 0; i < t.values.size(); ++i) s.values[i] = t.values[i] * n;
      sum_.push_back(std::move(s));
    }
  } else {
    for (size_t k = 0; k < w.size(); ++k) {
      float* s = sum_[k].values.data();
      const float* x = w[k].values.data();
      const size_t m = w[k].values.size();
      for (size_t i = 0; i < m; ++i) s[i] += x[i] * n;
    }
  }
  total_ += num_examples;
}

void WeightedSum::add(Weights&& w, uint64_t num_examples) {
  if (!sum_.empty()) return add(static_cast<const Weights&>(w), num_examples);
  const float n = static_cast<float>(num_examples);
  sum_ = std::move(w);
  for (NamedTensor& t : sum_)
    for (float& v : t.values) v *= n;  // the same float32 product as the copying add
  total_ += num_examples;
}

namespace {

void divide(Weights& w, uint64_t total_examples) {
  const float total = static_cast<float>(total_examples);
  for (NamedTensor& t : w)
    for (float& v : t.values) v /= total;
}

}  // namespace

Weights WeightedSum::mean() const {
  Weights out = sum_;
  divide(out, total_);
  return out;
}

Weights WeightedSum::take_mean() {
  Weights out = std::move(sum_);
  divide(out, total_);
  reset();
  return out;
}

void TensorState::zeros_like(const Weights& layout) {
  tensors.clear();
  for (const NamedTensor& t : layout)
    tensors.push_back({t.name, t.shape, std::vector<float>(numel(t.shape, t.name), 0.0f)});
}

void TensorState::ensure(const Weights& layout) {
  if (tensors.empty())
    zeros_like(layout);
  else
    match_layout(tensors, layout, "strategy state '" + prefix + "'");
}

void TensorState::save(Weights& out) const {
  for (const NamedTensor& t : tensors) out.push_back({prefix + "/" + t.name, t.shape, t.values});
}

void TensorState::load(const Weights& in) {
  tensors.clear();
  const std::string p = prefix + "/";
  for (const NamedTensor& t : in)
    if (t.name.compare(0, p.size(), p) == 0) tensors.push_back({t.name.substr(p.size()), t.shape, t.values});
}

std::vector<const Weights*> HoldingStrategy::held_weights() const {
  std::vector<const Weights*> w;
  for (const ClientResult& r : held_) w.push_back(&r.weights);
  return w;
}

void Distances::add(const std::vector<ClientResult>& held_before, const Weights& incoming) {
  const size_t n = held_before.size();
  std::vector<double> row(n + 1, 0.0);
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (size_t k = 0; k < incoming.size(); ++k) {
      const float* a = held_before[i].weights[k].values.data();
      const float* b = incoming[k].values.data();
      for (size_t j = 0, m = incoming[k].values.size(); j < m; ++j) {
        const double diff = static_cast<double>(a[j]) - static_cast<double>(b[j]);
        s += diff * diff;
      }
    }
    row[i] = s;
    d_[i].push_back(s);
  }
  d_.push_back(std::move(row));
}

std::vector<size_t> krum_ranking(const Distances& d, const std::vector<size_t>& alive, int64_t num_malicious) {
  const int64_t n = static_cast<int64_t>(alive.size());
  const size_t closest = static_cast<size_t>(std::max<int64_t>(1, n - num_malicious - 2));
  std::vector<double> score(alive.size());
  std::vector<double> others;
  for (size_t a = 0; a < alive.size(); ++a) {
    others.clear();
    for (size_t b = 0; b < alive.size(); ++b)
      if (b != a) others.push_back(d.at(alive[a], alive[b]));
    const size_t k = std::min(closest, others.size());
    std::partial_sort(others.begin(), others.begin() + static_cast<std::ptrdiff_t>(k), others.end());
    score[a] = std::accumulate(others.begin(), others.begin() + static_cast<std::ptrdiff_t>(k), 0.0);
  }
  std::vector<size_t> order(alive.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return score[x] < score[y]; });
  for (size_t& o : order) o = alive[o];
  return order;
}

Weights coordinatewise(const std::vector<const Weights*>& results, const Weights& layout,
                       const std::function<float(float* column, size_t n)>& fn) {
  const size_t n = results.size();
  Weights out;
  out.reserve(layout.size());
  std::vector<float> column(n);
  for (size_t k = 0; k < layout.size(); ++k) {
    const size_t m = numel(layout[k].shape, layout[k].name);
    NamedTensor t{layout[k].name, layout[k].shape, std::vector<float>(m)};
    std::vector<const float*> src(n);
    for (size_t i = 0; i < n; ++i) src[i] = (*results[i])[k].values.data();
    for (size_t j = 0; j < m; ++j) {
      for (size_t i = 0; i < n; ++i) column[i] = src[i][j];
      t.values[j] = fn(column.data(), n);
    }
    out.push_back(std::move(t));
  }
  return out;
}

float median_f32(float* v, size_t n) {
  const size_t mid = n / 2;
  std::nth_element(v, v + mid, v + n);
  if (n % 2 == 1) return v[mid];
  const float lower = *std::max_element(v, v + mid);
  return (lower + v[mid]) / 2.0f;
}

}  // namespace conflux::federated::detail
