// Worker: the participant's end of the wire protocol (what `conflux-worker` runs). Connects a
// DEALER out to the coordinator (CURVE by default), says hello (identity, task kinds, a summary
// of its local data — never the data), runs up to `slots` tasks at once through the
// ExecutorRegistry, each on its own thread, while the protocol thread heartbeats, returns
// results, and reconnects with exponential backoff when the coordinator goes silent or restarts
// (a new coordinator instance id, or an UNKNOWN_SESSION error, makes it say hello again).
//
// Per task: a task beyond its executor's own concurrency (TaskExecutor::slots) waits in a local
// queue; CANCEL and the task's deadline_ms stop it (ERROR TASK_CANCELLED / DEADLINE_EXCEEDED);
// a failure carries its kind (executor.h) so the coordinator knows whether to retry. Shared
// inputs are cached by key, least recently used evicted first, up to shared_cache_bytes. After
// the welcome the coordinator's heartbeat interval, silence limit and chunk size apply.
//
// Shutdown (stop flag, e.g. from SIGTERM): running tasks get up to drain_timeout to finish and
// their results are sent; the rest are cancelled and explicitly abandoned (ERROR
// TASK_ABANDONED each), then BYE. run() returns 0 after that. An executor that ignores
// cancellation is left on a detached thread holding only shared state, so run() never hangs.
// Contract: run() is called once, from one thread.
#pragma once

#include <conflux/protocol/executor.h>
#include <conflux/protocol/link.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

namespace conflux::protocol {

struct WorkerOptions {
  std::string connect;                   // tcp://host:port
  bool insecure = false;
  std::string server_public_key;         // Z85 (required unless insecure)
  std::string public_key, secret_key;    // our Z85 keypair (required unless insecure)
  std::string name = "worker";           // display name; identity when insecure
  std::string data_path;                 // dataset directory (summary sent in hello)
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds server_dead_after{5000};  // silence before reconnecting
  std::chrono::milliseconds hello_retry{1000};         // resend hello until welcomed
  std::chrono::milliseconds backoff_min{100}, backoff_max{5000};
  std::chrono::milliseconds drain_timeout{10000};      // on stop: wait this long for the task
  std::chrono::milliseconds give_up_after{0};          // exit 3 if no coordinator this long (0 = never)
  bool exit_on_bye = false;              // return 0 when the coordinator says bye
  uint32_t slots = 1;                    // tasks run at once (advertised in hello)
  uint64_t shared_cache_bytes = 1ull << 30;  // LRU cache of shared inputs (advertised)
  LinkOptions link;
  // Where the worker registers and updates the conflux_worker_* series (docs/operations.md):
  // tasks started / completed / failed by task and error kind, busy slots, connection state,
  // wire bytes. Null: none. Must outlive the Worker.
  metrics::Registry* metrics = nullptr;
};

// Secure mode from files: the coordinator's NAME.pub and this worker's NAME.key.
void load_worker_keys(WorkerOptions* options, const std::string& server_public_key_file,
                      const std::string& secret_key_file);

class Worker {
 public:
  Worker(WorkerOptions options, std::shared_ptr<const ExecutorRegistry> executors);
  ~Worker();
  // Runs until `stop` becomes true (returns 0), the coordinator says bye with exit_on_bye
  // (0), or give_up_after passes without a coordinator (kExitComm).
  int run(const std::atomic<bool>& stop);
  // For tests and logs.
  uint64_t tasks_done() const { return tasks_done_; }
  uint64_t sessions() const { return sessions_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint64_t tasks_done_ = 0;
  uint64_t sessions_ = 0;
};

// Summary of a dataset directory for hello (manifest.json: rows, fields, digest); empty
// summary with extra["error"] if it cannot be read. Never reads or sends rows.
wire::DataSummary summarize_dataset(const std::string& path);

}  // namespace conflux::protocol
