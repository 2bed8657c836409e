// TaskDispatcher: the coordinator's work queue on top of a Server. Tasks (a kind, JSON params,
// input tensors, a round) are queued, assigned one at a time to idle live workers that have an
// executor for the kind, and collected with validation: a result counts only if it comes from
// the worker currently assigned, for the same task id, attempt, round and job. A task whose
// worker dies, leaves, abandons it, fails it, misses its deadline or returns an invalid result
// is re-dispatched (preferring workers that have not tried it) until max_attempts dispatches,
// then reported as failed. Designed for evaluation fan-out now and federated rounds later
// (per-round task batches, large tensor payloads, workers that come and go).
//
// Contract: single-threaded, like the Server it drives. run() never waits past its timeout.
#pragma once

#include <conflux/protocol/server.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace conflux::protocol {

// Inputs common to many tasks (a model for evaluation, the global model of a round): sent to a
// worker once per session and cached there under `key` (one entry per worker). Keys must be
// unique per content.
struct SharedInputs {
  std::string key;
  std::vector<Tensor> tensors;
};

struct TaskSpec {
  std::string kind;                   // executor name on the worker
  std::string params = "{}";          // JSON object passed to the executor
  std::vector<Tensor> inputs;         // sent zero-copy, chunked when large
  std::shared_ptr<const SharedInputs> shared;  // optional, see SharedInputs
  uint64_t round = 0;                 // federated round (0 for evaluation)
  std::chrono::milliseconds deadline{0};  // per attempt; 0 = DispatcherOptions default
  // Optional extra validation of a result; return "" to accept, else the reason to reject.
  std::function<std::string(const Message& result)> validate;
};

struct TaskOutcome {
  uint64_t task_id = 0;
  bool ok = false;
  std::string worker;                 // who produced the accepted result
  uint32_t attempts = 0;              // dispatches made
  std::vector<Tensor> outputs;
  std::string summary;                // the executor's JSON summary
  std::string error;                  // why it failed (when !ok)
};

struct DispatcherOptions {
  uint32_t max_attempts = 3;
  std::chrono::milliseconds default_deadline{0};  // 0 = no deadline
};

class TaskDispatcher {
 public:
  explicit TaskDispatcher(Server& server, DispatcherOptions options = DispatcherOptions());

  uint64_t submit(TaskSpec spec);
  // One round of the event loop: poll the server for up to `timeout`, apply events, assign
  // queued tasks to idle workers, enforce deadlines.
  void step(std::chrono::milliseconds timeout);
  // Steps until every submitted task is finished; returns their outcomes in task-id order and
  // clears them. Throws CommError naming the unfinished tasks if `timeout` passes first.
  std::vector<TaskOutcome> run(std::chrono::milliseconds timeout);
  // Steps until at least `n` workers are connected; false on timeout.
  bool wait_for_workers(size_t n, std::chrono::milliseconds timeout);

  size_t unfinished() const { return tasks_.size() - finished_count_; }
  size_t live_workers() const { return server_.workers().size(); }
  // How many times shared inputs were attached to a task message (once per worker and key,
  // plus resends after UNKNOWN_SHARED).
  uint64_t shared_sends() const { return shared_sends_; }
  // The worker running the current attempt of task `id`, if it is running.
  std::optional<std::string> assignee(uint64_t id) const;
  // Called for every finished task (before run() returns it) and every server event.
  std::function<void(const TaskOutcome&)> on_complete;
  std::function<void(const ServerEvent&)> on_event;

 private:
  struct TaskState {
    TaskSpec spec;
    TaskOutcome outcome;
    bool finished = false;
    std::string assigned;             // worker running the current attempt, "" if queued
    std::chrono::steady_clock::time_point started;
    std::set<std::string> tried;
  };
  void apply(ServerEvent& ev);
  void assign();
  void enforce_deadlines();
  void retry(uint64_t id, const std::string& why, bool charge = true);
  void finish(uint64_t id, bool ok, const std::string& error);
  void on_result(const std::string& worker, Message& m);

  Server& server_;
  DispatcherOptions options_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, TaskState> tasks_;
  std::deque<uint64_t> queue_;
  std::map<std::string, uint64_t> busy_;  // worker -> task it is (or may still be) running
  size_t finished_count_ = 0;
  std::map<std::string, std::string> worker_shared_;  // worker -> shared key it holds
  std::set<std::string> draining_;  // workers that said they are shutting down
  uint64_t shared_sends_ = 0;
};

}  // namespace conflux::protocol
