// TaskExecutor: what a worker runs for a task of a given kind, and the registry the worker
// binary fills. Executors plug in by kind string ("reduce_sum" built in; "evaluate", "fit" ...
// registered by the evaluator/trainer integration) without touching the protocol code.
//
// Contract: execute() runs on a task thread of the worker while the protocol thread keeps
// heartbeating; up to slots() tasks of one kind run at once (so execute() must be safe to call
// that many times concurrently; the default, 1, needs no care). It must poll ctx.cancelled() in
// long loops and return (or throw) soon after it turns true: the coordinator cancels stragglers,
// deadlines stop tasks, and the worker gives tasks back on SIGTERM. A thrown error becomes a
// TASK_FAILED error whose kind tells the coordinator whether to retry: DataError -> data,
// ConfigError/UsageError/PrivacyError -> config (neither is retried), IoError/CommError/
// std::bad_alloc -> resource, anything else -> internal. Inputs are read-only and stay valid
// during execute(); outputs are moved out.
#pragma once

#include <conflux/protocol/message.h>
#include <conflux/protocol/tensor.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace conflux::protocol {

struct TaskContext {
  std::string job_id;
  uint64_t task_id = 0;
  uint64_t round = 0;
  uint32_t attempt = 0;
  std::string kind;
  std::string params;                    // JSON object from the coordinator
  std::vector<Tensor> inputs;            // this task's own inputs
  std::vector<Tensor> shared;            // shared inputs (cached per worker), may be empty
  std::string data_path;                 // the worker's --data dataset ("" if none)
  const std::atomic<bool>* cancel = nullptr;
  bool cancelled() const { return cancel && cancel->load(); }
};

struct TaskOutput {
  std::vector<Tensor> tensors;
  std::string summary = "{}";            // JSON object (metric stats, counts, ...)
};

class TaskExecutor {
 public:
  virtual ~TaskExecutor() = default;
  virtual TaskOutput execute(const TaskContext& ctx) = 0;
  // How many tasks of this kind may run at once in one worker.
  virtual uint32_t slots() const { return 1; }
};

// The wire kind of a failure thrown by an executor (see the contract above).
wire::TaskErrorKind classify_task_error(const std::exception& e);

class ExecutorRegistry {
 public:
  // Registers (or replaces) the executor for `kind`.
  void add(const std::string& kind, std::shared_ptr<TaskExecutor> executor);
  std::shared_ptr<TaskExecutor> find(const std::string& kind) const;
  std::vector<std::string> kinds() const;

 private:
  std::map<std::string, std::shared_ptr<TaskExecutor>> by_kind_;
};

// Built-in executors (tests, smoke checks, protocol benchmarks):
//  "reduce_sum": shared inputs then inputs, x_1..x_n, of one dtype and shape -> output "sum"
//   with the element-wise sum, folded left to right; floats in their own precision (bf16/f16 accumulate in float32
//   and round once), integers wrap modulo 2^bits. Summary: {"inputs": n, "elements": numel}.
//   Params {"delay_ms": d} sleep in 10 ms steps first (cancellable), to test faults.
void register_builtin_executors(ExecutorRegistry& registry);

// The reduce_sum computation itself (also used by tests as the local reference).
Tensor reduce_sum(const std::vector<Tensor>& inputs);

}  // namespace conflux::protocol
