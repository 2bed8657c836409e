// `conflux monitor MONITOR.toml`: drift of a new data batch against the serving checkpoint's
// training data; above the threshold, fine-tune, evaluate old and new, promote if better by a
// margin. The config ([monitor], [drift], [retrain], [promote]) and the verb; the work is in
// monitor/drift.cpp and monitor/retrain.cpp (contract: conflux/cli/monitor.h). Torch-free: train
// and evaluate run as child processes.
#include "conflux/cli/cli.h"
#include "conflux/cli/monitor.h"
#include "conflux/core/atomic_file.h"
#include "conflux/core/error.h"
#include "conflux/core/log.h"

#include <fmt/format.h>

#include <filesystem>
#include <iostream>

namespace conflux::monitor {

void MonitorConfig::bind(ConfigBinder& b) {
  b.field("monitor.current", current, "symbolic link to the serving checkpoint's step directory (swapped "
          "on promotion)").required();
  b.field("monitor.data", data, "the new batch: a Conflux dataset directory").required();
  b.field("monitor.output", output, "drift.json, metrics.prom, promotions.jsonl and retrain-*/ runs");
  b.field("drift.psi_threshold", psi_threshold, "drift if a feature's PSI reaches this (0.25: significant)").min(0);
  b.field("drift.ks_threshold", ks_threshold, "drift if a feature's KS statistic reaches this").range(0, 1);
  b.field("drift.chunk_rows", chunk_rows, "dataset rows read at a time").min(1);
  b.field("retrain.enabled", retrain, "fine-tune and consider promotion when drift is detected");
  b.field("retrain.ranks", ranks, "MPI ranks of the fine-tuning run (mpirun -np; 1: no mpirun)").range(1, 1024);
  b.field("retrain.steps", steps, "optimizer steps of the fine-tuning run").min(1);
  b.field("retrain.lr", lr, "peak learning rate of the fine-tuning run").range(0, 10);
  b.field("retrain.config", train_config, "training config file (\"\": the serving checkpoint's own, from "
          "its lineage)");
  b.field("retrain.set", train_set, "extra overrides of the fine-tuning run, a.b=c (applied last)");
  b.field("retrain.mpirun", mpirun, "MPI launcher for ranks > 1");
  b.field("retrain.submit", submit, "run the fine-tuning and both evaluations as `conflux pipeline submit` job "
          "chains on Slurm and wait for them (false: locally, under retrain.mpirun)");
  b.field("retrain.wait_s", wait_s, "with submit: how long to wait for the jobs before giving up (they keep "
          "running)").range(1, 30 * 86400.0);
  b.field("retrain.poll_s", poll_s, "with submit: seconds between `conflux pipeline status` polls").range(0.1, 3600);
  b.field("retrain.partition", partition, "with submit: the Slurm partition of the jobs (\"\": the default)");
  b.field("retrain.time_limit", time_limit, "with submit: the jobs' time limit, Slurm syntax (\"\": the partition's)");
  b.field("promote.metric", metric, "evaluation metric compared on the new batch's held-out rows");
  b.field("promote.lower_is_better", lower_is_better, "true for perplexity and losses");
  b.field("promote.margin", margin, "relative improvement required (0.02: new < old * 0.98)").range(0, 1);
  b.field("promote.eval_ranks", eval_ranks, "MPI ranks of each evaluation").range(1, 1024);
}

}  // namespace conflux::monitor

namespace {

namespace fs = std::filesystem;
namespace mon = conflux::monitor;
using conflux::cli::Args;
namespace po = conflux::cli::po;

int monitor(const Args& args) {
  std::string file;
  bool json = false;
  po::options_description o("options");
  o.add_options()("config", po::value(&file)->required(), "monitor config (TOML)")(
      "set", po::value<std::vector<std::string>>()->composing(), "override a key: --set a.b=c (repeatable)")(
      "json", po::bool_switch(&json), "print the outcome as JSON");
  po::positional_options_description pos;
  pos.add("config", 1);
  po::variables_map vm;
  if (!conflux::cli::parse(args, o, &pos, vm,
                           {"monitor", "MONITOR.toml [--set a.b=c ...] [--json]",
                            "Drift (PSI and KS of the token distribution and per-document features) of "
                            "monitor.data against the dataset the checkpoint behind the monitor.current link "
                            "was trained on; writes drift.json and metrics.prom (Prometheus text) to "
                            "monitor.output. On drift (and retrain.enabled) fine-tunes that checkpoint on "
                            "the new data, scores old and new on the new data's held-out rows, and swaps "
                            "the link to the new checkpoint only if it is better by promote.margin "
                            "(promotions.jsonl records each decision). Exit 0 for every outcome.",
                            "conflux monitor monitor.toml --set drift.psi_threshold=0.1"}))
    return 0;
  std::string toml;
  const auto cfg = conflux::load_config<mon::MonitorConfig>(file, conflux::cli::overrides(vm), &toml);
  const mon::DriftOutcome drift = mon::measure_drift(cfg);
  fs::create_directories(cfg.output);
  conflux::write_file_atomic(cfg.output + "/monitor.toml", toml);
  nlohmann::json result = drift.to_json(cfg);
  conflux::write_file_atomic(cfg.output + "/drift.json", result.dump(2) + "\n");
  conflux::write_file_atomic(cfg.output + "/metrics.prom", mon::prometheus_text(cfg, drift, nullptr));

  std::string text = fmt::format("{:<18} {:>9} {:>9}  {}\n", "feature", "PSI", "KS", "shift");
  for (const auto& f : drift.features)
    text += fmt::format("{:<18} {:>9.4f} {:>9.4f}  {}\n", f.name, f.psi, f.ks, f.level);
  if (!drift.detected()) {
    text += fmt::format("no drift: every feature is under PSI {} and KS {}\n", cfg.psi_threshold, cfg.ks_threshold);
  } else {
    text += "drift detected: ";
    for (size_t i = 0; i < drift.triggers.size(); ++i) text += (i ? "; " : "") + drift.triggers[i];
    text += "\n";
    if (!cfg.retrain) {
      text += "retraining is off (retrain.enabled = false)\n";
    } else {
      const mon::RetrainOutcome r = mon::retrain_and_promote(cfg, drift);
      conflux::write_file_atomic(cfg.output + "/metrics.prom", mon::prometheus_text(cfg, drift, &r));
      result["retrain"] = {{"run_dir", r.run_dir},           {"old", r.old_checkpoint},
                           {"new", r.new_checkpoint},        {"old_score", r.old_score},
                           {"new_score", r.new_score},       {"promoted", r.promoted},
                           {"reason", r.reason}};
      text += fmt::format("fine-tuned: {}\n{}: serving {:.6g}, candidate {:.6g}\n{}: {}\n", r.new_checkpoint,
                          cfg.metric, r.old_score, r.new_score, r.promoted ? "PROMOTED" : "kept the serving checkpoint",
                          r.reason);
    }
  }
  text += fmt::format("outputs: {}", fs::absolute(cfg.output).lexically_normal().string());
  conflux::cli::emit(json, result.dump(), text);
  return 0;
}

CONFLUX_VERB("monitor", "drift of a new data batch against the serving model's training data; retrain and "
             "promote if better", monitor);
CONFLUX_CONFIG_SCHEMA("monitor", "drift monitoring and retraining (conflux monitor)", mon::MonitorConfig);

}  // namespace
