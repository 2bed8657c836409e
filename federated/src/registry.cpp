// The strategy registry: the one place where strategy names map to their parameters.
// To add a strategy: write src/strategy_<name>.cpp with a StrategyParams (bind + make), declare
// its factory in internal.h, and add a row here (docs/federated.md says how it is tested).
#include "conflux/core/error.h"
#include "internal.h"

#include <fmt/format.h>

namespace conflux::federated {

const std::vector<StrategyInfo>& strategy_registry() {
  static const std::vector<StrategyInfo> table = {
      {"fedavg", "weighted mean by examples (McMahan et al. 2017)", detail::fedavg_params},
      {"fedavgm", "FedAvg with server momentum (Hsu et al. 2019)", detail::fedavgm_params},
      {"fedprox", "FedAvg aggregation; clients add mu/2 ||w - w_g||^2 (Li et al. 2020)", detail::fedprox_params},
      {"fedadagrad", "server Adagrad on the FedAvg delta (Reddi et al. 2021)", detail::fedadagrad_params},
      {"fedadam", "server Adam on the FedAvg delta (Reddi et al. 2021)", detail::fedadam_params},
      {"fedyogi", "server Yogi on the FedAvg delta (Reddi et al. 2021)", detail::fedyogi_params},
      {"median", "coordinate-wise median (Yin et al. 2018)", detail::median_params},
      {"trimmed_avg", "coordinate-wise trimmed mean, beta cut per end (Yin et al. 2018)", detail::trimmed_avg_params},
      {"krum", "Krum / Multi-Krum selection (Blanchard et al. 2017)", detail::krum_params},
      {"bulyan", "Krum selection + trimmed coordinates (El Mhamdi et al. 2018)", detail::bulyan_params},
  };
  return table;
}

std::vector<std::string> strategy_names() {
  std::vector<std::string> names;
  for (const auto& s : strategy_registry()) names.push_back(s.name);
  return names;
}

std::unique_ptr<StrategyParams> strategy_params(const std::string& name) {
  for (const auto& s : strategy_registry())
    if (s.name == name) return s.params();
  CONFLUX_THROW(ConfigError, "unknown strategy '{}' (known: {})", name, fmt::join(strategy_names(), ", "));
}

std::unique_ptr<Strategy> make_strategy(const std::string& name, StrategyParams& bound) {
  ConfigBinder dump(ConfigBinder::Mode::Dump, nullptr);
  bound.bind(dump);
  std::unique_ptr<Strategy> s = bound.make();
  // The effective parameters without the "strategy.<name>." prefix.
  const nlohmann::json all = nlohmann::json::parse(dump.to_json());
  const nlohmann::json* p = &all;
  for (const char* key : {"strategy", name.c_str()})
    if (p->is_object() && p->contains(key)) p = &p->at(key);
  s->params_ = p == &all ? nlohmann::json::object() : *p;
  return s;
}

std::unique_ptr<Strategy> make_strategy(const std::string& name, std::shared_ptr<ConfigDocument> doc) {
  std::unique_ptr<StrategyParams> params = strategy_params(name);
  ConfigBinder load(ConfigBinder::Mode::Load, doc);
  params->bind(load);
  load.finish();
  return make_strategy(name, *params);
}

std::unique_ptr<Strategy> make_strategy(const std::string& name, const std::vector<std::string>& overrides) {
  return make_strategy(name, parse_config_text("", "--set", overrides));
}

}  // namespace conflux::federated
