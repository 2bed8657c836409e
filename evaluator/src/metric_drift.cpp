// Metric "drift": per-feature PSI and two-sample KS between reference_features and features
// (drift.h). Stats: value multisets "ref:<feature>" and "cur:<feature>" (exact; merging is a
// multiset union). Options: categorical (list of feature names binned one bin per value, e.g.
// token ids; default none). Reports every feature seen, sorted by name, and the largest PSI.
#include "conflux/evaluator/drift.h"
#include "factories.h"
#include "options.h"

#include <cstdio>
#include <set>

namespace conflux::evaluator::detail {

nlohmann::json drift_json(const FeatureDrift& f) {
  nlohmann::json j = {{"feature", f.name},
                      {"categorical", f.categorical},
                      {"psi", f.psi},
                      {"ks", f.ks},
                      {"level", f.level},
                      {"reference_rows", f.reference_rows},
                      {"current_rows", f.current_rows},
                      {"reference_counts", f.reference_counts},
                      {"current_counts", f.current_counts}};
  if (f.categorical) j["categories"] = f.categories;
  else j["edges"] = f.edges;
  return j;
}

namespace {

void add_values(Multiset& dst, const std::string& feature, const std::vector<double>& v) {
  for (double x : v) {
    if (!std::isfinite(x))
      CONFLUX_THROW(DataError, "drift: feature '{}' has a non-finite value ({})", feature, x);
    ++dst[x == 0.0 ? 0.0 : x];  // -0.0 and 0.0 are one value
  }
}

class Drift final : public Metric {
 public:
  InputKind inputs() const override { return InputKind::Features; }
  Drift(nlohmann::json options, std::set<std::string> categorical)
      : Metric("drift", std::move(options)), categorical_(std::move(categorical)) {}

  Stats partial(const Batch& batch) const override {
    batch.validate();
    Stats s = empty();
    for (const auto& [name, v] : batch.reference_features) add_values(s.values["ref:" + name], name, v);
    for (const auto& [name, v] : batch.features) add_values(s.values["cur:" + name], name, v);
    return s;
  }

  Result finalize(const Stats& stats) const override {
    check_stats(stats);
    std::set<std::string> names;
    for (const auto& [key, m] : stats.values) names.insert(key.substr(4));
    Result r;
    r.metric = name();
    r.primary = "max_psi";
    nlohmann::json features = nlohmann::json::array();
    double max_psi = 0.0;
    std::string worst;
    for (const auto& f : names) {
      const auto ref = stats.values.find("ref:" + f);
      const auto cur = stats.values.find("cur:" + f);
      if (ref == stats.values.end() || cur == stats.values.end())
        CONFLUX_THROW(DataError, "drift: feature '{}' appears only in the {} data", f,
                      ref == stats.values.end() ? "current" : "reference");
      const FeatureDrift d = feature_drift(f, ref->second, cur->second, categorical_.count(f) > 0);
      features.push_back(drift_json(d));
      if (worst.empty() || d.psi > max_psi) {
        max_psi = d.psi;
        worst = f;
      }
    }
    r.value = max_psi;
    r.detail = {{"features", features}, {"max_psi", max_psi}, {"max_psi_feature", worst},
                {"level", psi_level(max_psi)}, {"epsilon", kPsiEpsilon},
                {"thresholds", {kPsiModerate, kPsiSignificant}}};
    char buf[200];
    std::snprintf(buf, sizeof buf, "drift: %zu features, max PSI = %.4f (%s, %s)", names.size(),
                  max_psi, worst.c_str(), psi_level(max_psi).c_str());
    r.line = buf;
    return r;
  }

 private:
  std::set<std::string> categorical_;
};

}  // namespace

std::unique_ptr<Metric> make_drift(const nlohmann::json& options) {
  reject_unknown("drift", options, {"categorical"});
  nlohmann::json norm = nlohmann::json::object();
  auto cat = option<std::set<std::string>>("drift", options, "categorical", {}, norm);
  return std::make_unique<Drift>(norm, cat);
}

}  // namespace conflux::evaluator::detail
