// `conflux drift REFERENCE CURRENT`: Population Stability Index and two-sample KS statistic per
// feature between two CSV feature tables (header row of names; one column per feature).
#include "conflux/cli/cli.h"
#include "conflux/core/error.h"
#include "conflux/evaluator/drift.h"
#include "conflux/evaluator/feature_table.h"
#include "conflux/evaluator/metric.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <set>

namespace {

using conflux::cli::Args;
namespace po = conflux::cli::po;
namespace ev = conflux::evaluator;

int drift(const Args& args) {
  std::string ref_path, cur_path;
  std::vector<std::string> categorical;
  bool json = false;
  po::options_description o("options");
  o.add_options()("reference", po::value(&ref_path)->required(), "reference CSV (e.g. training data)")(
      "current", po::value(&cur_path)->required(), "current CSV (e.g. production data)")(
      "categorical", po::value(&categorical)->composing(),
      "a feature binned one bin per value, e.g. token ids (repeatable)")(
      "json", po::bool_switch(&json), "print the full result as JSON");
  po::positional_options_description pos;
  pos.add("reference", 1).add("current", 1);
  po::variables_map vm;
  if (!conflux::cli::parse(args, o, &pos, vm,
                           {"drift", "REFERENCE CURRENT [--categorical NAME...] [--json]",
                            "Population Stability Index (10 bins from reference deciles, empty "
                            "bins at 1e-4; < 0.1 none, 0.1-0.25 moderate, >= 0.25 significant) and "
                            "the two-sample Kolmogorov-Smirnov statistic for every feature present "
                            "in both CSV files.",
                            "conflux drift train_features.csv prod_features.csv --categorical token"}))
    return 0;
  const ev::FeatureTable ref = ev::read_feature_csv(ref_path);
  const ev::FeatureTable cur = ev::read_feature_csv(cur_path);
  ev::Batch b;
  std::set<std::string> cur_names(cur.names.begin(), cur.names.end());
  for (size_t k = 0; k < ref.names.size(); ++k) {
    if (!cur_names.count(ref.names[k]))
      CONFLUX_THROW(DataError, "feature '{}' is in '{}' but not in '{}'", ref.names[k], ref_path, cur_path);
    b.reference_features[ref.names[k]] = ref.columns[k];
  }
  for (size_t k = 0; k < cur.names.size(); ++k) {
    if (!b.reference_features.count(cur.names[k]))
      CONFLUX_THROW(DataError, "feature '{}' is in '{}' but not in '{}'", cur.names[k], cur_path, ref_path);
    b.features[cur.names[k]] = cur.columns[k];
  }
  for (const auto& c : categorical)
    if (!b.features.count(c)) CONFLUX_THROW(UsageError, "--categorical {}: no such feature", c);
  auto metric = ev::make_metric("drift", {{"categorical", categorical}});
  const ev::Result r = metric->finalize(metric->partial(b));
  std::string text = fmt::format("{:<24} {:>10} {:>10}  {}\n", "feature", "PSI", "KS", "shift");
  for (const auto& f : r.detail.at("features"))
    text += fmt::format("{:<24} {:>10.4f} {:>10.4f}  {}\n", f.at("feature").get<std::string>(),
                        f.at("psi").get<double>(), f.at("ks").get<double>(),
                        f.at("level").get<std::string>());
  text += r.line;
  conflux::cli::emit(json, r.detail.dump(), text);
  return 0;
}

CONFLUX_VERB("drift", "PSI and KS drift per feature between two CSV feature tables", drift);

}  // namespace
