// TaskDispatcher: the job layer both evaluation fan-out and federated rounds stand on. It hands
// tasks to workers of a WorkerPool (the Server, or a scripted pool in tests) in *batches*, each
// with its own completion policy, and streams results to a sink that takes ownership of them.
//
// The model, step by step:
//  a. open(batch, sink) queues the batch's tasks. A task either targets one worker (by its
//     authenticated identity: a federated participant's own data) or may run on any worker of
//     the batch's cohort that offers its kind.
//  b. Each step() polls the pool, applies events, enforces deadlines and assigns queued tasks
//     to workers with a free slot (Hello.slots; a cancelled task holds its slot until the worker
//     answers for it). Shared inputs (a model) travel once per worker while the worker's LRU
//     cache (mirrored here from Hello.shared_cache_bytes) holds them.
//  c. A result is accepted only from the worker running the task's current attempt, for an open
//     batch, the same job, round and kind, and if the task's validator accepts it; it is then
//     moved into the sink, so the coordinator holds one result plus the caller's aggregate.
//     Anything else is answered STALE_RESULT and dropped.
//  d. Failures by kind: a DATA or CONFIG error ends the task (another attempt cannot help);
//     INTERNAL and RESOURCE errors, invalid results, deadlines and lost workers are retried up
//     to max_attempts (untargeted tasks prefer workers that have not tried them); a targeted
//     task whose worker dies or leaves is reported lost, never run elsewhere.
//  e. A batch closes when every task has finished, when its quorum is reached and it closes at
//     quorum, when the quorum can no longer be reached, at its deadline, or by close(). Closing
//     sends CANCEL for every running attempt; the report says why each missing task is missing.
//
// For simple callers, submit() + run() keep a one-batch-of-everything interface: the tasks go to
// an implicit batch whose outcomes run() returns in task-id order.
//
// Contract: single-threaded, like the pool it drives. No call waits past its timeout; with a
// scripted pool and a manual clock nothing waits at all.
#pragma once

#include <conflux/protocol/worker_pool.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace conflux::metrics {
class Registry;
}

namespace conflux::protocol {

// Inputs common to many tasks (a model for evaluation, the global model of a round): sent to a
// worker once and cached there under `key` (LRU by bytes). Keys must be unique per content.
struct SharedInputs {
  std::string key;
  std::vector<Tensor> tensors;
  // Non-empty: caching these drops the worker's other entries whose keys start with it (a new
  // round's model superseding the old ones), on the worker and in the coordinator's mirror.
  std::string replaces;
  uint64_t bytes() const;
};

struct TaskSpec {
  std::string kind;                   // executor name on the worker
  std::string params = "{}";          // JSON object passed to the executor
  std::vector<Tensor> inputs;         // sent zero-copy, chunked when large
  std::shared_ptr<const SharedInputs> shared;  // optional, see SharedInputs
  std::string target;                 // a worker identity, or "" for any worker of the cohort
  uint64_t round = 0;                 // federated round (0 for evaluation); batches set it
  std::chrono::milliseconds deadline{0};  // per attempt; 0 = the batch's / options' default
  // Optional extra validation of a result; return "" to accept, else the reason to reject.
  std::function<std::string(const Message& result)> validate;
};

// Why a task of a closed batch has no result.
enum class Missing {
  Failed,     // its last attempt failed (see error_kind), or it ran out of attempts
  Lost,       // targeted, and its worker died, left or was never connected
  Cancelled,  // still running when the batch closed (quorum reached, deadline, close())
  Unassigned, // never started: no worker of the cohort with the kind had a free slot
};
const char* missing_name(Missing m);

// Error kinds as they travel (wire::TaskErrorKind) plus the dispatcher's own.
enum class TaskErrorKind { None, Data, Config, Internal, Resource, Cancelled, Lost, Invalid, Deadline };
const char* task_error_kind_name(TaskErrorKind k);
TaskErrorKind from_wire(wire::TaskErrorKind k);
// DATA and CONFIG failures do not improve with another attempt.
bool retryable(TaskErrorKind k);

// A result, moved into the sink as it arrives.
struct TaskResult {
  uint64_t task_id = 0;
  size_t index = 0;                   // position of the task in its batch
  std::string worker;
  uint32_t attempts = 0;
  uint64_t elapsed_ms = 0;            // the executor's own wall time
  std::vector<Tensor> outputs;
  std::string summary;                // the executor's JSON summary
};
using ResultSink = std::function<void(TaskResult&&)>;

struct MissingTask {
  uint64_t task_id = 0;
  size_t index = 0;
  Missing why = Missing::Unassigned;
  TaskErrorKind error_kind = TaskErrorKind::None;
  std::string worker;                 // target, or the worker of the last attempt
  uint32_t attempts = 0;
  std::string detail;                 // human-readable reason
};

struct BatchReport {
  size_t tasks = 0;
  size_t succeeded = 0;
  size_t needed = 0;                  // the quorum that applied
  bool quorum_met = false;
  std::string closed_because;         // "all tasks finished", "quorum reached", "deadline", ...
  std::vector<MissingTask> missing;   // in task order
  std::chrono::milliseconds elapsed{0};
  // "3 of 4 task(s) succeeded (needed 3); task 2 (index 1): lost: worker bob died: ..."
  std::string describe() const;
};

struct BatchSpec {
  std::vector<TaskSpec> tasks;
  uint64_t round = 0;                 // stamped on every task of the batch
  size_t quorum = 0;                  // successes needed; 0 = every task
  bool close_at_quorum = false;       // close (cancelling the rest) once the quorum is reached
  std::chrono::milliseconds deadline{0};  // from open(); 0 = none
  std::chrono::milliseconds attempt_deadline{0};  // default per attempt; 0 = options' default
  uint32_t max_attempts = 0;          // 0 = options' default
  // Workers that may run untargeted tasks (e.g. one participant group); empty = any.
  std::function<bool(const WorkerInfo&)> cohort;
};

struct DispatcherOptions {
  uint32_t max_attempts = 3;
  std::chrono::milliseconds default_deadline{0};  // per attempt; 0 = no deadline
  // Where the dispatcher registers and updates the conflux_coordinator_* task and worker series
  // (docs/operations.md): tasks in flight and queued, completed by task kind, failed attempts by
  // error kind, missing tasks by reason, workers and slots connected. Null: none. Must outlive
  // the dispatcher.
  metrics::Registry* metrics = nullptr;
};

// The outcome of a task of the implicit batch (submit()/run()).
struct TaskOutcome {
  uint64_t task_id = 0;
  bool ok = false;
  std::string worker;
  uint32_t attempts = 0;
  std::vector<Tensor> outputs;
  std::string summary;
  std::string error;                  // why it failed (when !ok)
  TaskErrorKind error_kind = TaskErrorKind::None;
};

class TaskDispatcher {
 public:
  explicit TaskDispatcher(WorkerPool& pool, DispatcherOptions options = DispatcherOptions(),
                          const Clock& clock = Clock::steady());
  ~TaskDispatcher();

  // ---- batches ----
  // Queues the batch; returns its id. The sink is called (from step()) once per success.
  uint64_t open(BatchSpec batch, ResultSink sink);
  bool is_open(uint64_t batch) const;
  // Closes the batch now (CANCEL to its running attempts) with `why` as the reason.
  void close(uint64_t batch, const std::string& why);
  // The report of a closed batch; forgets the batch. Throws UsageError if it is still open.
  BatchReport take_report(uint64_t batch);
  // open() + step() until it closes; `timeout` bounds the wait (the batch closes at it).
  BatchReport run_batch(BatchSpec batch, ResultSink sink, std::chrono::milliseconds timeout);

  // ---- the implicit batch ----
  uint64_t submit(TaskSpec spec);
  // Steps until every submitted task finished; returns outcomes in task-id order. Throws
  // CommError naming the unfinished tasks if `timeout` passes first.
  std::vector<TaskOutcome> run(std::chrono::milliseconds timeout);
  // Called for every finished task of the implicit batch (before run() returns it).
  std::function<void(const TaskOutcome&)> on_complete;

  // ---- the event loop ----
  // One round: poll the pool for up to `timeout`, apply events, enforce deadlines, assign.
  void step(std::chrono::milliseconds timeout);
  // Steps until at least `n` workers are connected; false on timeout.
  bool wait_for_workers(size_t n, std::chrono::milliseconds timeout);
  std::function<void(const ServerEvent&)> on_event;

  // ---- introspection (tests, progress, logs) ----
  size_t unfinished() const;            // unfinished tasks in open batches
  size_t live_workers() const { return pool_.workers().size(); }
  uint64_t shared_sends() const { return shared_sends_; }
  uint64_t cancels_sent() const { return cancels_sent_; }
  uint64_t stale_results() const { return stale_results_; }
  // Worker running the current attempt of task `id`, if it is running.
  std::optional<std::string> assignee(uint64_t id) const;
  // Attempts in flight on `worker`, cancelled ones included (they hold their slot).
  size_t slots_in_use(const std::string& worker) const;

 private:
  enum class State { Queued, Running, Done, Missing };
  struct Task {
    uint64_t id = 0, batch = 0;
    size_t index = 0;
    TaskSpec spec;
    State state = State::Queued;
    std::string worker;               // current (or last) attempt's worker
    uint32_t attempts = 0;
    Clock::time_point started;
    std::set<std::string> tried;
    MissingTask missing;              // filled when state == Missing
  };
  struct Batch {
    BatchSpec spec;                   // tasks moved out into tasks_
    ResultSink sink;
    std::vector<uint64_t> task_ids;
    Clock::time_point opened;
    size_t succeeded = 0, finished = 0;
    bool closed = false, implicit = false;
    BatchReport report;
  };
  // What the dispatcher believes a worker holds: attempts in flight and its shared cache.
  struct WorkerState {
    std::set<std::pair<uint64_t, uint32_t>> in_flight;  // (task id, attempt), cancelled too
    std::list<std::pair<std::string, uint64_t>> cache;  // LRU mirror, most recent first
    uint64_t cache_bytes = 0;
    bool draining = false;            // said it is shutting down: give it nothing new
  };

  void apply(ServerEvent& ev);
  void on_result(const std::string& worker, Message& m);
  void on_task_error(const std::string& worker, const Message& m);
  void worker_gone(const std::string& worker, const std::string& why);
  void worker_reconnected(const std::string& worker);
  void enforce_deadlines();
  void assign();
  bool try_assign(Task& t);
  void send_task(Task& t, const std::string& worker, bool resend = false);
  void send_cancel(const std::string& worker, uint64_t task_id, uint32_t attempt,
                   const std::string& why);
  void free_slot(const std::string& worker, uint64_t task_id, uint32_t attempt);
  bool cache_holds(WorkerState& w, const std::string& key);
  void cache_insert(WorkerState& w, uint64_t capacity, const std::string& key, uint64_t bytes,
                    const std::string& replaces);
  // Task bookkeeping.
  void attempt_failed(Task& t, TaskErrorKind kind, const std::string& why, bool charge = true);
  void succeed(Task& t, Message& m);
  void mark_missing(Task& t, Missing why, TaskErrorKind kind, const std::string& detail);
  void task_finished(Task& t);
  void check_close(Batch& b, uint64_t id);
  void close_batch(uint64_t id, const std::string& why);
  uint32_t max_attempts(const Batch& b) const;
  std::chrono::milliseconds attempt_deadline(const Task& t) const;
  uint64_t implicit_batch();
  void refresh_gauges();

  struct Metrics;  // dispatcher.cpp
  WorkerPool& pool_;
  DispatcherOptions options_;
  const Clock& clock_;
  uint64_t next_task_ = 1, next_batch_ = 1;
  std::map<uint64_t, Task> tasks_;
  std::map<uint64_t, Batch> batches_;
  std::deque<uint64_t> queue_;
  std::map<std::string, WorkerState> workers_;
  uint64_t implicit_ = 0;             // id of the open implicit batch, 0 if none
  std::vector<TaskOutcome> implicit_outcomes_;
  uint64_t shared_sends_ = 0, cancels_sent_ = 0, stale_results_ = 0;
  std::unique_ptr<Metrics> metrics_;  // with options.metrics only
};

}  // namespace conflux::protocol
