// `conflux federate fl.toml`: federated-learning rounds with connected conflux-worker
// participants (tasks/include/conflux/tasks/federate_job.h). This file only parses the arguments
// and prints; sampling, rounds, aggregation, privacy accounting, round checkpoints and resume are
// tasks::run_federation. Needs the tasks library (CONFLUX_HAVE_EVALUATE_TASK).
#ifdef CONFLUX_HAVE_EVALUATE_TASK

#include "conflux/cli/cli.h"
#include "conflux/tasks/federate_job.h"

#include <nlohmann/json.hpp>

namespace {

using conflux::tasks::FederateConfig;

CONFLUX_CONFIG_SCHEMA("federate", "federated-learning rounds (conflux federate)", FederateConfig);

int federate(const conflux::cli::Args& args) {
  std::string config;
  bool json = false;
  namespace po = conflux::cli::po;
  po::options_description o("options");
  o.add_options()("config", po::value(&config)->required(), "federation config (TOML)")(
      "set", po::value<std::vector<std::string>>()->composing(), "override a config key, a.b=c")(
      "json", po::bool_switch(&json), "print the outcome as JSON");
  conflux::cli::add_metrics_listen_option(o);
  po::positional_options_description pos;
  pos.add("config", 1);
  po::variables_map vm;
  if (!conflux::cli::parse(args, o, &pos, vm,
                           {"federate", "CONFIG.toml [--set a.b=c] [--metrics-listen HOST:PORT] [--json]",
                            "Runs federated-learning rounds: each round samples connected conflux-worker "
                            "participants, has each train the global GPT on its own data (task 'fit'), "
                            "aggregates their updates with the configured strategy (or DP-FedAvg with "
                            "privacy.enabled) and writes the new global model as a checkpoint. Restarted "
                            "with the same config it resumes after the last complete round. One JSON line "
                            "per round goes to output.dir/rounds.jsonl. Prometheus metrics on metrics.listen / "
                            "--metrics-listen (docs/operations.md).",
                            "conflux federate fl.toml   (participants: conflux-worker --data DIR ...)"}))
    return 0;
  std::string toml, effective_json;
  const auto cfg = conflux::load_config<FederateConfig>(config, conflux::cli::overrides(vm), &toml, &effective_json);
  conflux::cli::check_metrics_listen(cfg.metrics_endpoint, vm);
  const auto metrics = conflux::cli::start_metrics(cfg.metrics_endpoint, vm, "federate");
  const auto out = conflux::tasks::run_federation(cfg, toml, effective_json, metrics.get());
  metrics.final_scrape(cfg.metrics_endpoint);
  nlohmann::json j = {{"rounds", out.rounds_completed}, {"status", out.status}, {"checkpoint", out.checkpoint}};
  if (cfg.dp_enabled) j["epsilon"] = out.epsilon;
  std::string text = "federate: " + out.status + " after round " + std::to_string(out.rounds_completed) +
                     "; global model: " + out.checkpoint;
  if (cfg.dp_enabled) text += "; epsilon " + std::to_string(out.epsilon);
  conflux::cli::emit(json, j.dump(), text);
  return 0;
}

CONFLUX_VERB("federate", "federated-learning rounds with conflux-worker participants", federate);

}  // namespace

#endif  // CONFLUX_HAVE_EVALUATE_TASK
