// The "evaluate" task: token metrics (perplexity + token accuracy, ECE, calibration) and text
// metrics of greedy generations (bleu, rouge_l, distinct; generation.h) of a GPT checkpoint on a
// row range of a tokens dataset, as mergeable evaluator Stats. Shared by
// conflux-worker (the task executor) and `conflux evaluate --mpi` (each rank runs its tasks).
//
// Token metrics run only when the metric set has one (InputKind::Tokens); text metrics need
// `generation` params and get one example per prompted row of the task (example id = row).
//
// Windows: the dataset's rows are concatenated into one token stream of N tokens (as in
// training). With context T, window w starts at stream position s = w*T and predicts positions
// s+1 .. s+L from inputs s .. s+L-1, L = min(T, N-1-s); every position 1..N-1 is predicted
// exactly once. A task of rows [begin, end) owns the windows whose start lies in its rows' token
// span [offset(begin), offset(end)), so any partition of the rows into tasks evaluates the same
// windows. Every forward pass has the same shape (batch_size, T): short windows are padded at the
// end (padding targets ignored) and a short last batch is filled with padding rows, so a
// window's logits do not depend on which task or batch it landed in; with the same thread count
// everywhere (`threads`, default 1) results are bit-identical for any split. Example ids given
// to the metrics are the stream positions of the targets.
//
// The model arrives by path: params.checkpoint names a checkpoint step directory the worker can
// read (shared file system or a copy at the same path). Thread safety: one EvaluateTask per
// thread; it caches the last model and dataset it opened.
#pragma once

#include <conflux/tasks/generation.h>

#include <conflux/evaluator/metric_set.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace conflux::tasks {

struct EvaluateParams {
  std::string checkpoint;            // checkpoint step directory (absolute path)
  int64_t row_begin = 0, row_end = 0;  // rows [row_begin, row_end) of the worker's dataset
  std::vector<std::string> metrics{"perplexity"};  // metric names (metric_specs)
  int64_t context = 0;               // window length T; 0 = the model's context
  int64_t batch_size = 8;            // windows per forward pass
  int threads = 1;                   // torch intra-op threads (keep equal on every participant)
  std::string manifest_sha256;       // expected SHA-256 of the dataset's manifest.json ("" = any)
  int64_t checkpoint_step = -1;      // expected trainer step of the checkpoint (-1 = any)
  std::optional<GenerationParams> generation;  // required when a metric reads text

  // Declared once: the JSON on the wire is read and written by these bindings (ConfigBinder
  // rules: types, ranges, unknown keys; errors are ConfigErrors naming the key).
  void bind(ConfigBinder& b);
  std::string to_json() const;
  static EvaluateParams from_json(const std::string& text);
};

// MetricSet specs for metric names: [{"metric": name}, ...].
nlohmann::json metric_specs(const std::vector<std::string>& names);

struct EvaluateResult {
  evaluator::SetStats stats;
  int64_t windows = 0;
  int64_t tokens = 0;                // predicted positions
  int64_t checkpoint_step = 0;
  std::string manifest_sha256;
  std::vector<GeneratedExample> generations;  // in row order (text metrics only)
  int64_t skipped_rows = 0;          // rows due for a prompt but too short
  nlohmann::json summary() const;    // the task's JSON summary (without the stats)
};

class EvaluateTask {
 public:
  EvaluateTask();
  ~EvaluateTask();
  EvaluateTask(const EvaluateTask&) = delete;
  EvaluateTask& operator=(const EvaluateTask&) = delete;

  // Evaluates rows [p.row_begin, p.row_end) of the dataset at `data_dir`. Polls `cancel` between
  // batches and throws CommError("evaluate task cancelled") when it turns true.
  EvaluateResult run(const EvaluateParams& p, const std::string& data_dir,
                     const std::atomic<bool>* cancel = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The checkpoint step directory for `path`: `path` itself when it holds trainer_state.json,
// else the newest complete step under it. Throws UsageError when there is none.
std::string resolve_checkpoint(const std::string& path);

}  // namespace conflux::tasks
