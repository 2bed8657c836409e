// `conflux monitor MONITOR.toml`: drift of a new batch of data against the data the serving
// checkpoint was trained on, and, above the threshold, fine-tune -> evaluate old and new ->
// promote only if better by a margin.
//
// Inputs: [monitor] current, a symbolic link to the serving checkpoint's step directory (its
// lineage.json names the training dataset and its manifest SHA-256), and [monitor] data, the new
// batch (a Conflux dataset directory).
//
// Drift (monitor_drift.cpp): both datasets are read in row chunks with the dataplane reader and
// profiled: the token distribution (categorical, one bin per token id) and per-document features
// (length in tokens; for byte-level datasets also mean word length and the shares of
// non-alphanumeric, upper-case and digit bytes). Each feature's PSI and KS come from the
// evaluator's drift math (evaluator/drift.h, the same as `conflux drift`). Drift is detected when
// any feature has PSI >= drift.psi_threshold or KS >= drift.ks_threshold. Outputs, written
// atomically under [monitor] output: drift.json and metrics.prom (Prometheus text format 0.0.4,
// for node_exporter's textfile collector).
//
// Retrain (monitor_retrain.cpp), when drift is detected and retrain.enabled: `conflux train` as
// a child process (under mpirun with retrain.ranks) with the serving checkpoint's own training
// config (from its lineage; or retrain.config) changed to start from the serving weights
// (checkpoint.init_from) on the new data, then `conflux evaluate --mpi` of the old and the new
// checkpoint on the rows the fine-tuning run held out (the same rows for both:
// evaluate.split_checkpoint), then promotion iff the new score beats the old by promote.margin
// (relative): the `current` link is replaced atomically (a new link under a temp name renamed
// over it). Every decision is appended to promotions.jsonl with both scores.
//
// Errors: bad input (a missing link, lineage field, dataset, a reference dataset that changed
// since training) is a ConfigError/DataError naming the file or key (exit 1); a child that fails
// is an IoError naming the command and its log file. Outcomes (no drift, drift, promoted, not
// promoted) are exit 0. Not thread-safe (one monitor run per process); two concurrent runs on the
// same output directory are not supported.
#pragma once

#include "conflux/core/config.h"
#include "conflux/evaluator/drift.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace conflux::monitor {

struct MonitorConfig {
  std::string current;          // [monitor] current: link to the serving checkpoint step dir
  std::string data;             // [monitor] data: the new batch (dataset directory)
  std::string output = "monitor-out";
  double psi_threshold = 0.25;  // [drift]
  double ks_threshold = 0.2;
  int64_t chunk_rows = 4096;    // rows read at a time
  bool retrain = true;          // [retrain] enabled
  int ranks = 1;
  int64_t steps = 50;
  double lr = 1e-3;
  std::string train_config;     // "": the serving checkpoint's lineage config
  std::vector<std::string> train_set;  // extra a.b=c overrides of the fine-tuning run
  std::string mpirun = "mpirun";
  // retrain.submit: the fine-tuning run and both evaluations as `conflux pipeline submit` job
  // chains on Slurm (the monitor waits up to wait_s, polling every poll_s).
  bool submit = false;
  double wait_s = 86400, poll_s = 5;
  std::string partition, time_limit;  // sbatch -p / -t of those jobs ("": Slurm's defaults)
  std::string metric = "perplexity";  // [promote]
  bool lower_is_better = true;
  double margin = 0.02;
  int eval_ranks = 1;

  void bind(ConfigBinder& b);
};

// What one dataset is, for drift.json.
struct DatasetInfo {
  std::string dir;              // absolute
  std::string manifest_sha256;
  int64_t rows = 0;
  int64_t tokens = 0;
};

struct DriftOutcome {
  std::string checkpoint;       // serving step directory (resolved link)
  DatasetInfo reference, current;
  std::vector<evaluator::FeatureDrift> features;
  std::vector<std::string> triggers;  // "token_id: PSI 0.81 >= 0.25", ...
  bool detected() const { return !triggers.empty(); }
  nlohmann::json to_json(const MonitorConfig& c) const;
};

// Resolves monitor.current and its lineage, profiles both datasets and compares them.
DriftOutcome measure_drift(const MonitorConfig& c);

struct RetrainOutcome {
  std::string old_checkpoint, new_checkpoint;
  double old_score = 0, new_score = 0;
  bool promoted = false;
  std::string reason;           // why (not) promoted
  std::string run_dir;          // logs and child outputs
};

// Fine-tunes, evaluates both, promotes or not, appends to promotions.jsonl.
RetrainOutcome retrain_and_promote(const MonitorConfig& c, const DriftOutcome& drift);

// metrics.prom text (Prometheus 0.0.4) for the drift result and, when given, the retrain result.
std::string prometheus_text(const MonitorConfig& c, const DriftOutcome& drift,
                            const RetrainOutcome* retrain);

// The effective config JSON of a run (lineage "config") as TOML text that the config loader
// reads back to the same values: tables become [a.b] headers, arrays of tables inline tables.
std::string json_config_to_toml(const nlohmann::json& config);

}  // namespace conflux::monitor
