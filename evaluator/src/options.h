// Internal: reading a metric's JSON options with defaults, type checks and unknown-key errors.
#pragma once

#include "conflux/core/error.h"

#include <nlohmann/json.hpp>

#include <set>
#include <string>

namespace conflux::evaluator::detail {

// Reads options[key] as T (or `fallback`), writing the effective value into `normalized`, so the
// normalized options (stored in Stats::config) always list every option explicitly.
template <typename T>
T option(const std::string& metric, const nlohmann::json& options, const std::string& key,
         const T& fallback, nlohmann::json& normalized) {
  T value = fallback;
  if (options.is_object() && options.contains(key)) {
    try {
      value = options.at(key).get<T>();
    } catch (const nlohmann::json::exception& e) {
      CONFLUX_THROW(ConfigError, "metric '{}': option '{}' has the wrong type ({}): {}", metric,
                    key, options.at(key).dump(), e.what());
    }
  }
  normalized[key] = value;
  return value;
}

// Throws ConfigError if `options` has a key outside `known`.
inline void reject_unknown(const std::string& metric, const nlohmann::json& options,
                           const std::set<std::string>& known) {
  if (options.is_null()) return;
  if (!options.is_object())
    CONFLUX_THROW(ConfigError, "metric '{}': options must be a JSON object, got {}", metric,
                  options.dump());
  for (const auto& [key, v] : options.items()) {
    if (!known.count(key)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      CONFLUX_THROW(ConfigError, "metric '{}': unknown option '{}' (known: {})", metric, key,
                    list.empty() ? "none" : list);
    }
  }
}

}  // namespace conflux::evaluator::detail
