// Distributed evaluation as a job on the job layer: the plan (rows split into tasks), the run
// (on conflux-worker processes through protocol::TaskDispatcher, or across MPI ranks), the exact
// merge of the tasks' statistics and the outputs (report.json, report.html, config.toml,
// run.json, generations.jsonl) written atomically. `conflux evaluate` only parses its arguments,
// calls run_evaluation() and prints; federated rounds reuse the same pieces.
//
// Determinism: every split of the rows (1 worker, K workers, N ranks, retries) gives
// byte-identical reports: tasks own fixed windows (evaluate_task.h) and merging is exact.
// Thread safety: one evaluation per process at a time (it may own the MPI process grid).
#pragma once

#include <conflux/core/config.h>
#include <conflux/core/metrics_exporter.h>
#include <conflux/core/process_grid.h>
#include <conflux/evaluator/report.h>
#include <conflux/tasks/evaluate_task.h>

#include <string>
#include <vector>

namespace conflux::tasks {

// The `[evaluate]`, `[server]`, `[generation]` and `[output]` sections of an evaluation config.
struct EvaluateConfig {
  std::string checkpoint, dataset, output_dir = "eval-out";
  std::vector<std::string> metrics{"perplexity", "ece"};
  std::string split = "validation";  // validation | train | all (choose_rows in evaluate_job.cpp)
  // The checkpoint whose training run's held-out windows decide `split` ("": `checkpoint`); lets
  // two checkpoints be compared on the same rows (conflux monitor: old and fine-tuned model on the
  // fine-tuning run's validation rows).
  std::string split_checkpoint;
  int64_t rows_per_task = 64, context = 0, batch_size = 8;
  int threads = 1;
  std::string endpoint = "tcp://127.0.0.1:5555", key, allow;
  bool insecure = false;
  int workers = 1;
  double wait_s = 60, timeout_s = 600, task_deadline_s = 0;
  int max_attempts = 3, heartbeat_ms = 1000, dead_after_ms = 5000;
  GenerationParams generation;
  GridConfig grid;  // [comm] timeout_s, shm: the process grid of --mpi
  metrics::MetricsConfig metrics_endpoint;  // [metrics] listen: the coordinator's Prometheus endpoint

  void bind(ConfigBinder& b);
};

struct EvaluateOutput {
  bool written = false;               // false on MPI ranks other than 0
  evaluator::Report report;
  std::vector<std::string> paths;     // report.json, report.html
};

// Runs the evaluation described by `cfg` and writes its outputs (rank 0). `effective_toml` and
// `effective_json` are the config as loaded (saved beside the report). With `grid`, the tasks
// are split across its ranks (no workers); without, they go to connected workers. Throws
// CommError when tasks cannot complete (naming each and why), ConfigError/DataError on bad input.
// With `metrics` (rank 0), the run registers and updates conflux_evaluate_* and, with workers,
// the dispatcher's conflux_coordinator_* series in it (docs/operations.md).
EvaluateOutput run_evaluation(const EvaluateConfig& cfg, const std::string& effective_toml,
                              const std::string& effective_json, ProcessGrid* grid,
                              metrics::Registry* metrics = nullptr);

}  // namespace conflux::tasks
