// MetricSet: several metrics evaluated, merged and reported together (see metric_set.h).
#include "conflux/evaluator/metric_set.h"

#include "conflux/core/error.h"

namespace conflux::evaluator {

using nlohmann::json;

MetricSet::MetricSet(const json& specs) {
  if (!specs.is_array() || specs.empty())
    CONFLUX_THROW(ConfigError, "a metric set needs a non-empty list of metric specs, got {}", specs.dump());
  size_t i = 0;
  for (const auto& spec : specs) {
    if (!spec.is_object() || !spec.contains("metric") || !spec.at("metric").is_string())
      CONFLUX_THROW(ConfigError, "metric spec {} ({}) needs a string field 'metric'", i, spec.dump());
    for (const auto& [k, v] : spec.items())
      if (k != "metric" && k != "name" && k != "options")
        CONFLUX_THROW(ConfigError, "metric spec {}: unknown field '{}' (known: metric, name, options)", i, k);
    const auto metric = spec.at("metric").get<std::string>();
    const auto name = spec.contains("name") ? spec.at("name").get<std::string>() : metric;
    if (metrics_.count(name))
      CONFLUX_THROW(ConfigError, "metric spec {}: name '{}' is used twice (give one a 'name')", i, name);
    metrics_[name] = make_metric(metric, spec.value("options", json::object()));
    names_.push_back(name);
    ++i;
  }
}

const Metric& MetricSet::metric(const std::string& name) const {
  auto it = metrics_.find(name);
  if (it == metrics_.end()) CONFLUX_THROW(ConfigError, "no metric named '{}' in this set", name);
  return *it->second;
}

json MetricSet::specs() const {
  json out = json::array();
  for (const auto& n : names_)
    out.push_back({{"name", n}, {"metric", metrics_.at(n)->name()}, {"options", metrics_.at(n)->options()}});
  return out;
}

SetStats MetricSet::empty() const {
  SetStats s;
  for (const auto& n : names_) s[n] = metrics_.at(n)->empty();
  return s;
}

SetStats MetricSet::partial(const Batch& batch) const {
  SetStats s;
  for (const auto& n : names_) {
    const Metric& m = *metrics_.at(n);
    s[n] = batch_has(batch, m.inputs()) ? m.partial(batch) : m.empty();
  }
  return s;
}

void MetricSet::merge_into(SetStats& into, const SetStats& from) {
  if (into.size() != from.size())
    CONFLUX_THROW(DataError, "cannot merge metric sets of {} and {} metrics", into.size(), from.size());
  for (const auto& [name, st] : from) {
    auto it = into.find(name);
    if (it == into.end()) CONFLUX_THROW(DataError, "cannot merge metric sets: '{}' is missing", name);
    evaluator::merge_into(it->second, st);
  }
}

std::vector<Result> MetricSet::finalize(const SetStats& stats) const {
  std::vector<Result> out;
  for (const auto& n : names_) {
    auto it = stats.find(n);
    if (it == stats.end()) CONFLUX_THROW(DataError, "metric set stats lack '{}'", n);
    Result r = metrics_.at(n)->finalize(it->second);
    if (n != r.metric) r.detail["name"] = n;
    out.push_back(std::move(r));
  }
  return out;
}

Report MetricSet::report(const SetStats& stats, const json& meta) const {
  Report rep;
  rep.meta = meta;
  rep.results = finalize(stats);
  return rep;
}

json MetricSet::to_json(const SetStats& stats) {
  json j = json::object();
  for (const auto& [n, s] : stats) j[n] = s.to_json();
  return j;
}

SetStats MetricSet::from_json(const json& j) {
  if (!j.is_object()) CONFLUX_THROW(DataError, "metric set stats must be a JSON object");
  SetStats s;
  for (const auto& [n, v] : j.items()) s[n] = Stats::from_json(v);
  return s;
}

std::vector<uint8_t> MetricSet::to_bytes(const SetStats& stats) { return json::to_cbor(to_json(stats)); }

SetStats MetricSet::from_bytes(const std::vector<uint8_t>& bytes) {
  check_cbor_structure(bytes);
  json j;
  try {
    j = json::from_cbor(bytes);
  } catch (const json::exception& e) {
    CONFLUX_THROW(DataError, "metric set stats are not valid CBOR ({} bytes): {}", bytes.size(), e.what());
  }
  return from_json(j);
}

}  // namespace conflux::evaluator
