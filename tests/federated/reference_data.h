// Loading tests/federated/reference.json (gen_reference.py) into federated types.
#pragma once

#include "conflux/federated/weights.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <stdexcept>
#include <string>

namespace conflux::federated::testing {

inline const nlohmann::json& reference() {
  static const nlohmann::json j = [] {
    std::ifstream in(CONFLUX_FEDERATED_REFERENCE);
    if (!in) throw std::runtime_error(std::string("cannot open ") + CONFLUX_FEDERATED_REFERENCE);
    return nlohmann::json::parse(in);
  }();
  return j;
}

inline Weights to_weights(const nlohmann::json& list) {
  Weights w;
  for (const auto& t : list) {
    NamedTensor n{t.at("name").get<std::string>(), t.at("shape").get<std::vector<int64_t>>(), {}};
    for (const auto& v : t.at("values")) n.values.push_back(static_cast<float>(v.get<double>()));
    w.push_back(std::move(n));
  }
  return w;
}

// The reference's values as doubles (FedAdam's Flower output is float64).
inline std::vector<double> flat_doubles(const nlohmann::json& list) {
  std::vector<double> out;
  for (const auto& t : list)
    for (const auto& v : t.at("values")) out.push_back(v.get<double>());
  return out;
}

inline std::vector<float> flat(const Weights& w) {
  std::vector<float> out;
  for (const auto& t : w) out.insert(out.end(), t.values.begin(), t.values.end());
  return out;
}

}  // namespace conflux::federated::testing
