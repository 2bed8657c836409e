// Metric "fairness": any registered metric computed separately for each value of the batch's
// group labels, plus the largest gap between groups of the inner metric's headline value.
// Options: metric (inner metric name, required), options (inner metric options, default {}).
// Stats: one child Stats of the inner metric per group label.
#include "factories.h"
#include "options.h"

#include <cstdio>

namespace conflux::evaluator::detail {
namespace {

class Fairness final : public Metric {
 public:
  InputKind inputs() const override { return inner_->inputs(); }
  Fairness(nlohmann::json options, std::unique_ptr<Metric> inner)
      : Metric("fairness", std::move(options)), inner_(std::move(inner)) {}

  Stats partial(const Batch& batch) const override {
    batch.validate();
    const size_t n = batch.num_examples();
    if (batch.groups.size() != n)
      CONFLUX_THROW(DataError, "fairness: batch has {} examples but {} group labels", n,
                    batch.groups.size());
    std::map<std::string, std::vector<size_t>> members;
    for (size_t i = 0; i < n; ++i) members[batch.groups[i]].push_back(i);
    Stats s = empty();
    for (const auto& [group, idx] : members) s.children[group] = inner_->partial(batch.select(idx));
    return s;
  }

  Result finalize(const Stats& stats) const override {
    check_stats(stats);
    Result r;
    r.metric = name();
    r.primary = "gap";
    nlohmann::json groups = nlohmann::json::object();
    std::string hi, lo;
    double vhi = 0, vlo = 0;
    for (const auto& [group, child] : stats.children) {
      const Result g = inner_->finalize(child);
      groups[group] = g.to_json();
      if (!std::isfinite(g.value)) continue;
      if (hi.empty() || g.value > vhi) { vhi = g.value; hi = group; }
      if (lo.empty() || g.value < vlo) { vlo = g.value; lo = group; }
    }
    const double gap = hi.empty() ? std::nan("") : vhi - vlo;
    r.value = gap;
    r.detail = {{"inner_metric", inner_->name()}, {"inner_primary", ""}, {"groups", groups},
                {"gap", number(gap)}, {"max_group", hi}, {"min_group", lo},
                {"max_value", number(vhi)}, {"min_value", number(vlo)}};
    if (!stats.children.empty())
      r.detail["inner_primary"] = inner_->finalize(stats.children.begin()->second).primary;
    char buf[256];
    std::snprintf(buf, sizeof buf, "fairness(%s): %zu groups, gap = %.4f (max %s = %.4f, min %s = %.4f)",
                  inner_->name().c_str(), stats.children.size(), gap, hi.c_str(), vhi, lo.c_str(), vlo);
    r.line = buf;
    return r;
  }

 private:
  std::unique_ptr<Metric> inner_;
};

}  // namespace

std::unique_ptr<Metric> make_fairness(const nlohmann::json& options) {
  reject_unknown("fairness", options, {"metric", "options"});
  nlohmann::json norm = nlohmann::json::object();
  const auto inner_name = option<std::string>("fairness", options, "metric", "", norm);
  if (inner_name.empty() || inner_name == "fairness")
    CONFLUX_THROW(ConfigError, "metric 'fairness': option 'metric' must name another metric");
  const auto inner_opts =
      option<nlohmann::json>("fairness", options, "options", nlohmann::json::object(), norm);
  auto inner = make_metric(inner_name, inner_opts);
  norm["options"] = inner->options();  // normalized, so equal configs compare equal
  return std::make_unique<Fairness>(norm, std::move(inner));
}

}  // namespace conflux::evaluator::detail
