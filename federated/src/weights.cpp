// Weights checks shared by every strategy and file reader (weights.h).
#include "conflux/federated/weights.h"

#include "conflux/core/error.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <unordered_map>

namespace conflux::federated {

size_t numel(const std::vector<int64_t>& shape, const std::string& what) {
  size_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) CONFLUX_THROW(DataError, "{}: negative dimension in shape {}", what, shape_string(shape));
    if (d != 0 && n > std::numeric_limits<size_t>::max() / static_cast<size_t>(d))
      CONFLUX_THROW(DataError, "{}: shape {} overflows", what, shape_string(shape));
    n *= static_cast<size_t>(d);
  }
  return n;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

namespace {

// Index of the first NaN or Inf in v[0, n), or n. Every update is scanned once on arrival, so this
// runs at memory speed: blocks are tested branch-free (all exponent bits set = not finite; the
// loop vectorizes) and only a block that has one is searched element by element.
size_t first_non_finite(const float* v, size_t n) {
  constexpr size_t kBlock = 4096;
  constexpr uint32_t kExponent = 0x7f800000u;
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t e = std::min(n, b + kBlock);
    uint32_t bad = 0;
    for (size_t i = b; i < e; ++i) {
      uint32_t bits;
      std::memcpy(&bits, v + i, sizeof bits);
      bad |= static_cast<uint32_t>((bits & kExponent) == kExponent);
    }
    if (bad)
      for (size_t i = b; i < e; ++i)
        if (!std::isfinite(v[i])) return i;
  }
  return n;
}

}  // namespace

void check_weights(const Weights& w, const std::string& source) {
  for (const NamedTensor& t : w) {
    const size_t n = numel(t.shape, fmt::format("{}: tensor '{}'", source, t.name));
    if (t.values.size() != n)
      CONFLUX_THROW(DataError, "{}: tensor '{}' has {} values for shape {}", source, t.name,
                    t.values.size(), shape_string(t.shape));
    const size_t i = first_non_finite(t.values.data(), n);
    if (i < n)
      CONFLUX_THROW(DataError, "{}: tensor '{}' has {} at index {}", source, t.name,
                    std::isnan(t.values[i]) ? "NaN" : "Inf", i);
  }
}

void match_layout(Weights& w, const Weights& layout, const std::string& source, const std::string& layout_name) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < w.size(); ++i)
    if (!index.emplace(w[i].name, i).second)
      CONFLUX_THROW(DataError, "{}: tensor '{}' appears twice", source, w[i].name);
  Weights ordered;
  ordered.reserve(layout.size());
  for (const NamedTensor& want : layout) {
    auto it = index.find(want.name);
    if (it == index.end())
      CONFLUX_THROW(DataError, "{}: tensor '{}' is missing ({} has it, shape {})", source, want.name, layout_name,
                    shape_string(want.shape));
    NamedTensor& got = w[it->second];
    if (got.shape != want.shape)
      CONFLUX_THROW(DataError, "{}: tensor '{}' has shape {}, {}'s is {}", source, want.name,
                    shape_string(got.shape), layout_name, shape_string(want.shape));
    ordered.push_back(std::move(got));
    index.erase(it);
  }
  if (!index.empty()) {
    // Report the first extra tensor in the result's own order.
    size_t first = w.size();
    for (const auto& [name, i] : index) first = std::min(first, i);
    CONFLUX_THROW(DataError, "{}: tensor '{}' is not in {}", source, w[first].name, layout_name);
  }
  w = std::move(ordered);
}

size_t weight_bytes(const Weights& w) {
  size_t n = 0;
  for (const NamedTensor& t : w) n += t.values.size() * sizeof(float);
  return n;
}

namespace {

constexpr size_t kLanes = 8;

// lane[k] += (x[j] - y[j])^2 for j = k mod 8 (y null: x[j]^2).
void add_squares(const float* x, const float* y, size_t n, double* lane) {
  size_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (size_t k = 0; k < kLanes; ++k) {
      const double d = static_cast<double>(x[j + k]) - (y ? static_cast<double>(y[j + k]) : 0.0);
      lane[k] += d * d;
    }
  for (; j < n; ++j) {
    const double d = static_cast<double>(x[j]) - (y ? static_cast<double>(y[j]) : 0.0);
    lane[j % kLanes] += d * d;
  }
}

double root_of_lanes(const double* lane) {
  return std::sqrt(((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7])));
}

}  // namespace

double l2_distance(const Weights& a, const Weights& b) {
  double lane[kLanes] = {};
  for (size_t i = 0; i < a.size(); ++i) add_squares(a[i].values.data(), b[i].values.data(), a[i].values.size(), lane);
  return root_of_lanes(lane);
}

double l2_norm(const float* x, size_t n) {
  double lane[kLanes] = {};
  add_squares(x, nullptr, n, lane);
  return root_of_lanes(lane);
}

}  // namespace conflux::federated
