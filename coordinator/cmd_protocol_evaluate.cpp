// `conflux evaluate eval.toml [--mpi]`: distributed evaluation of a GPT checkpoint on a tokens
// dataset, with connected conflux-worker processes or across MPI ranks. This file only parses the
// arguments and prints; the plan, the run and the outputs are tasks::run_evaluation
// (tasks/include/conflux/tasks/evaluate_job.h). Needs the tasks library
// (CONFLUX_HAVE_EVALUATE_TASK).
#ifdef CONFLUX_HAVE_EVALUATE_TASK

#include "conflux/cli/cli.h"
#include "conflux/core/process_grid.h"
#include "conflux/tasks/evaluate_job.h"

#include <memory>

namespace {

using conflux::tasks::EvaluateConfig;

CONFLUX_CONFIG_SCHEMA("evaluate", "distributed evaluation (conflux evaluate)", EvaluateConfig);

int evaluate(const conflux::cli::Args& args) {
  std::string config;
  bool mpi = false, json = false;
  namespace po = conflux::cli::po;
  po::options_description o("options");
  o.add_options()("config", po::value(&config)->required(), "evaluation config (TOML)")(
      "mpi", po::bool_switch(&mpi), "no workers: split the tasks across the MPI ranks")(
      "set", po::value<std::vector<std::string>>()->composing(), "override a config key, a.b=c")(
      "json", po::bool_switch(&json), "print the report as JSON");
  conflux::cli::add_metrics_listen_option(o);
  po::positional_options_description pos;
  pos.add("config", 1);
  po::variables_map vm;
  if (!conflux::cli::parse(args, o, &pos, vm,
                           {"evaluate", "CONFIG.toml [--mpi] [--set a.b=c] [--metrics-listen HOST:PORT] [--json]",
                            "Evaluates a checkpoint on a tokens dataset (perplexity, token accuracy, "
                            "ECE, temperature calibration; BLEU, ROUGE-L and distinct-n of greedy "
                            "continuations of dataset prompts) with connected conflux-worker "
                            "processes, or across MPI ranks with --mpi, and writes report.json and "
                            "report.html. The coordinator (rank 0) serves Prometheus metrics on "
                            "metrics.listen / --metrics-listen (docs/operations.md).",
                            "conflux evaluate eval.toml   (or: mpirun -np 2 conflux evaluate eval.toml --mpi)"}))
    return 0;
  std::string toml, effective_json;
  const auto cfg = conflux::load_config<EvaluateConfig>(config, conflux::cli::overrides(vm), &toml,
                                                        &effective_json);
  conflux::cli::check_metrics_listen(cfg.metrics_endpoint, vm);
  std::unique_ptr<conflux::ProcessGrid> grid;
  if (mpi) grid = std::make_unique<conflux::ProcessGrid>(cfg.grid.options());
  // The coordinator (rank 0 with --mpi) serves the metrics.
  const auto metrics = conflux::cli::start_metrics(cfg.metrics_endpoint, vm, "evaluate", !grid || grid->world_rank() == 0);
  const auto out = conflux::tasks::run_evaluation(cfg, toml, effective_json, grid.get(), metrics.get());
  metrics.final_scrape(cfg.metrics_endpoint);
  if (!out.written) return 0;
  const auto& report = out.report;
  const auto& paths = out.paths;
  std::string text;
  for (const auto& r : report.results) text += r.line + "\n";
  text += "report: " + paths.at(0) + " and " + paths.at(1);
  conflux::cli::emit(json, report.to_json().dump(), text);
  return 0;
}

CONFLUX_VERB("evaluate", "evaluate a checkpoint with workers or MPI ranks, write report.json/html",
             evaluate);

}  // namespace

#endif  // CONFLUX_HAVE_EVALUATE_TASK
