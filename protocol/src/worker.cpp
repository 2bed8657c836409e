// Worker: session, task execution on task threads (up to `slots`), cancellation, deadlines,
// the shared-input LRU cache, heartbeats, reconnection with backoff and the drain-or-abandon
// shutdown. See worker.h for the contract.
//
// Every TASK the worker accepts gets exactly one answer while the session lasts: a RESULT, or an
// ERROR with the task's id and attempt (failed, cancelled, deadline, abandoned, busy). The
// coordinator frees the slot on that answer, so the two sides agree on what is in flight.
//
// Coordinator restart while tasks run: they belong to the old coordinator instance, whose
// dispatcher is gone. On the welcome of a new instance the worker cancels them (their results
// would be dropped anyway). They keep counting against their executor's concurrency until they
// stop, so a task of the same kind sent by the new coordinator waits in the local queue instead
// of running beside a cancelled one or being refused.
#include <conflux/protocol/worker.h>

#include <conflux/core/error.h>
#include <conflux/core/log.h>
#include <conflux/core/metrics_registry.h>
#include <conflux/protocol/keys.h>

#include <cstdlib>
#include <cstring>
#include <list>
#include <optional>
#include <set>
#include <thread>

namespace conflux::protocol {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

enum class StopReason { None, Cancelled, Deadline, Shutdown };

// State shared by the protocol thread and a task thread; outlives both if needed.
struct Job {
  TaskContext ctx;
  std::shared_ptr<TaskExecutor> executor;
  std::atomic<bool> cancel{false};
  std::atomic<bool> done{false};
  TaskOutput output;
  std::string error;
  wire::TaskErrorKind error_kind = wire::KIND_INTERNAL;
  uint64_t server_instance = 0;
  Clock::time_point received, started;
  milliseconds deadline{0};           // 0 = none; counted from receipt
  StopReason stop = StopReason::None;  // why we asked it to stop (protocol thread only)
  std::thread thread;                  // protocol thread only
};

void execute(Job* job) {
  try {
    job->output = job->executor->execute(job->ctx);
  } catch (const Error& e) {
    job->error = e.message();
    job->error_kind = classify_task_error(e);
  } catch (const std::exception& e) {
    job->error = e.what();
    job->error_kind = classify_task_error(e);
  } catch (...) {
    job->error = "unknown exception";
  }
  job->done.store(true);
}

struct CacheEntry {
  std::string key;
  std::vector<Tensor> tensors;
  uint64_t bytes = 0;
};

// The conflux_worker_* series (docs/operations.md lists them).
struct WorkerMetrics {
  WorkerMetrics(metrics::Registry& r, uint32_t slots)
      : started(r.counter_family("conflux_worker_tasks_started", "tasks started on this worker", {"task"})),
        completed(r.counter_family("conflux_worker_tasks_completed", "tasks whose result was sent", {"task"})),
        failed(r.counter_family("conflux_worker_tasks_failed",
                                "tasks answered with an error, by task and error kind (data, config, internal, "
                                "resource, cancelled, deadline, abandoned, busy)",
                                {"task", "error"})),
        busy(r.gauge("conflux_worker_slots_busy", "task slots taken (running or waiting for their executor)")),
        running(r.gauge("conflux_worker_tasks_running", "tasks running on their own thread")),
        connected(r.gauge("conflux_worker_connected", "1 while a coordinator has welcomed this worker, else 0")),
        sessions(r.counter("conflux_worker_sessions", "sessions with a coordinator (welcomes)")) {
    r.gauge("conflux_worker_slots", "task slots of this worker (--slots)").set(std::max<uint32_t>(1, slots));
  }
  metrics::Family<metrics::Counter>&started, &completed, &failed;
  metrics::Gauge &busy, &running, &connected;
  metrics::Counter& sessions;
};

const char* failure_label(ErrorCode code, wire::TaskErrorKind kind) {
  switch (code) {
    case wire::TASK_CANCELLED: return "cancelled";
    case wire::DEADLINE_EXCEEDED: return "deadline";
    case wire::TASK_ABANDONED:
    case wire::SHUTTING_DOWN: return "abandoned";
    case wire::WORKER_BUSY: return "busy";
    default: break;
  }
  switch (kind) {
    case wire::KIND_DATA: return "data";
    case wire::KIND_CONFIG: return "config";
    case wire::KIND_RESOURCE: return "resource";
    case wire::KIND_CANCELLED: return "cancelled";
    default: return "internal";
  }
}

}  // namespace

struct Worker::Impl {
  WorkerOptions opt;
  std::shared_ptr<const ExecutorRegistry> executors;
  zmq::context_t context{1};
  std::unique_ptr<Link> link;
  uint64_t instance = random_instance_id();
  bool welcomed = false;
  bool bye_received = false;
  bool stopping = false;
  uint64_t server_instance = 0;
  uint64_t coordinator_max_chunk = 0;  // from the welcome
  milliseconds heartbeat_interval, server_dead_after;  // ours until the welcome sets them
  std::string identity, job_id;
  Clock::time_point last_heard, next_heartbeat, next_hello, last_welcomed;
  milliseconds backoff;
  std::list<std::shared_ptr<Job>> running;  // started, in start order
  std::list<std::shared_ptr<Job>> waiting;  // accepted, waiting for their kind's concurrency
  // (task id, attempt) of every task accepted from the current coordinator instance: a task
  // sent again after a reconnect (dispatcher.h) is run once.
  std::set<std::pair<uint64_t, uint32_t>> accepted_tasks;
  std::list<CacheEntry> cache;              // most recently used first
  std::unique_ptr<zmq::socket_t> monitor;   // handshake events of the current connection
  uint64_t connections = 0;
  bool handshake_ok = false;                // on the current connection
  std::string handshake_problem;            // why the coordinator is unreachable, if known
  // Test hook (tests/federated/replay_process_test.py): with CONFLUX_TEST_REPLAY_RESULTS=1 in the
  // environment the worker re-sends its previous RESULT (old task id, attempt and round, fresh
  // wire sequence) just before each new one, as a replaying participant would; the coordinator
  // must answer STALE_RESULT and leave it out. Never set outside tests.
  const bool replay_results = [] {
    const char* v = std::getenv("CONFLUX_TEST_REPLAY_RESULTS");
    return v && std::string(v) == "1";
  }();
  std::optional<Message> last_result;       // kept only with replay_results
  bool handshake_refused = false;           // the coordinator said our key is not allowed
  Clock::time_point next_problem_log;
  Worker* owner = nullptr;
  std::unique_ptr<WorkerMetrics> metrics;  // with WorkerOptions::metrics only

  // Task kinds as labels: only this worker's executors' names (the coordinator's text is not
  // trusted to bound the series).
  std::string task_label(const std::string& kind) const {
    return executors->find(kind) ? kind : std::string("unknown");
  }
  void update_gauges() {
    if (!metrics) return;
    metrics->busy.set(static_cast<double>(accepted()));
    metrics->running.set(static_cast<double>(running.size()));
    metrics->connected.set(welcomed ? 1 : 0);
  }

  bool send(Message m) { return link->send("", std::move(m), coordinator_max_chunk); }

  void connect() {
    zmq::socket_t s(context, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(std::max(
                                        opt.link.limits.max_frame_bytes, opt.link.limits.max_header_bytes)));
    s.set(zmq::sockopt::reconnect_ivl, static_cast<int>(opt.backoff_min.count()));
    s.set(zmq::sockopt::reconnect_ivl_max, static_cast<int>(opt.backoff_max.count()));
    s.set(zmq::sockopt::sndhwm, 10000);
    s.set(zmq::sockopt::rcvhwm, 10000);
    if (!opt.insecure) {
      s.set(zmq::sockopt::curve_serverkey, opt.server_public_key);
      s.set(zmq::sockopt::curve_publickey, opt.public_key);
      s.set(zmq::sockopt::curve_secretkey, opt.secret_key);
    }
    // Handshake events name the reason a secure connection fails (a key not in the allow-list,
    // a wrong coordinator public key) within seconds instead of a silent timeout.
    const std::string mon = fmt::format("inproc://conflux-worker-monitor-{:016x}-{}", instance,
                                        ++connections);
    monitor = start_monitor(context, s, mon,
                            ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_DISCONNECTED);
    handshake_ok = false;
    s.connect(opt.connect);
    uint64_t next_seq = link ? link->next_sequence() : 1;
    link = std::make_unique<Link>(std::move(s), opt.insecure ? opt.name : "", opt.link, instance);
    // Until a coordinator has welcomed us a send must not block for long: with no completed
    // connection a DEALER send waits for one (the full send timeout used to delay give-up).
    link->socket().set(zmq::sockopt::sndtimeo, 200);
    link->set_next_sequence(next_seq);
    welcomed = false;
    last_heard = Clock::now();
    next_hello = Clock::now();
  }

  void send_hello() {
    Message m;
    m.header.set_type(wire::HELLO);
    auto* h = m.header.mutable_hello();
    h->set_name(opt.name);
    for (const auto& k : executors->kinds()) h->add_task_kinds(k);
    h->set_slots(std::max<uint32_t>(1, opt.slots));
    h->set_max_chunk_bytes(opt.link.limits.max_frame_bytes);
    h->set_shared_cache_bytes(opt.shared_cache_bytes);
    if (!opt.data_path.empty()) *h->mutable_data() = summarize_dataset(opt.data_path);
    h->set_software("conflux-worker 0.2.0");
    send(std::move(m));
    next_hello = Clock::now() + opt.hello_retry;
  }

  void send_heartbeat() {
    Message m;
    m.header.set_type(wire::HEARTBEAT);
    m.header.set_job_id(job_id);
    m.header.mutable_heartbeat();
    send(std::move(m));
    next_heartbeat = Clock::now() + heartbeat_interval;
  }

  void send_task_error(const TaskContext& ctx, ErrorCode code, wire::TaskErrorKind kind,
                       const std::string& text) {
    Message e = make_error(code, text);
    e.header.set_job_id(ctx.job_id);
    e.header.set_task_id(ctx.task_id);
    e.header.set_round(ctx.round);
    e.header.mutable_error()->set_attempt(ctx.attempt);
    e.header.mutable_error()->set_kind(kind);
    send(std::move(e));
    if (metrics) metrics->failed.labels({task_label(ctx.kind), failure_label(code, kind)}).inc();
  }

  // Tasks of the current coordinator instance (accepted and not yet answered).
  size_t accepted() const {
    size_t n = waiting.size();
    for (const auto& j : running) n += j->server_instance == server_instance;
    return n;
  }

  size_t running_of_kind(const std::string& kind) const {
    size_t n = 0;
    for (const auto& j : running) n += j->ctx.kind == kind;
    return n;
  }

  // The LRU rule the coordinator mirrors (dispatcher.cpp cache_insert): drop the entries
  // `replaces` (a key prefix) supersedes, replace, put first, evict least recently used until the
  // total fits; an entry larger than the cache is not kept.
  void cache_put(const std::string& key, std::vector<Tensor> tensors, const std::string& replaces) {
    cache.remove_if([&](const CacheEntry& c) {
      return c.key == key || (!replaces.empty() && c.key.compare(0, replaces.size(), replaces) == 0);
    });
    uint64_t bytes = 0;
    for (const auto& t : tensors) bytes += t.byte_length();
    if (bytes > opt.shared_cache_bytes) return;
    cache.push_front(CacheEntry{key, std::move(tensors), bytes});
    uint64_t total = 0;
    for (const auto& c : cache) total += c.bytes;
    while (total > opt.shared_cache_bytes) {
      total -= cache.back().bytes;
      cache.pop_back();
    }
  }

  const std::vector<Tensor>* cache_get(const std::string& key) {
    for (auto it = cache.begin(); it != cache.end(); ++it) {
      if (it->key == key) {
        cache.splice(cache.begin(), cache, it);
        return &cache.front().tensors;
      }
    }
    return nullptr;
  }

  void start_task(Message& m) {
    const auto& h = m.header;
    auto job = std::make_shared<Job>();
    TaskContext& ctx = job->ctx;
    ctx.job_id = h.job_id();
    ctx.task_id = h.task_id();
    ctx.round = h.round();
    ctx.attempt = h.task().attempt();
    ctx.kind = h.task().kind();
    ctx.params = h.task().params();
    ctx.inputs = std::move(m.tensors);
    ctx.data_path = opt.data_path;
    job->received = Clock::now();
    job->deadline = milliseconds(h.task().deadline_ms());
    job->server_instance = server_instance;
    // The shared-input cache first, so that it changes exactly as the coordinator's mirror
    // does, whatever happens to the task afterwards.
    const auto& t = h.task();
    if (!t.shared_key().empty()) {
      if (t.shared_count() > ctx.inputs.size()) {
        return send_task_error(ctx, wire::MALFORMED, wire::KIND_DATA,
                               "shared_count exceeds the tensors sent");
      }
      if (t.shared_count() > 0) {
        ctx.shared.assign(ctx.inputs.begin(), ctx.inputs.begin() + t.shared_count());
        ctx.inputs.erase(ctx.inputs.begin(), ctx.inputs.begin() + t.shared_count());
        cache_put(t.shared_key(), ctx.shared, t.shared_replaces());
      } else if (const auto* held = cache_get(t.shared_key())) {
        ctx.shared = *held;
      } else {
        return send_task_error(ctx, wire::UNKNOWN_SHARED, wire::KIND_RESOURCE,
                               "no cached shared inputs under key " + t.shared_key());
      }
    }
    if (accepted_tasks.count({ctx.task_id, ctx.attempt})) {
      log::debug("worker: task {} attempt {} received again (after a reconnect); already have it", ctx.task_id,
                 ctx.attempt);
      return;
    }
    if (stopping) {
      return send_task_error(ctx, wire::SHUTTING_DOWN, wire::KIND_CANCELLED,
                             "worker is shutting down");
    }
    if (h.job_id() != job_id || h.task_id() == 0) {
      return send_task_error(ctx, wire::UNKNOWN_TASK, wire::KIND_CONFIG,
                             "task for another job, or task id 0");
    }
    job->executor = executors->find(ctx.kind);
    if (!job->executor) {
      return send_task_error(ctx, wire::UNKNOWN_KIND, wire::KIND_CONFIG,
                             "no executor for kind " + ctx.kind);
    }
    if (accepted() >= std::max<uint32_t>(1, opt.slots)) {
      return send_task_error(ctx, wire::WORKER_BUSY, wire::KIND_RESOURCE,
                             fmt::format("all {} slot(s) are taken", std::max<uint32_t>(1, opt.slots)));
    }
    accepted_tasks.insert({ctx.task_id, ctx.attempt});
    waiting.push_back(std::move(job));
    launch_waiting();
  }

  // Starts waiting tasks whose executor has room, in arrival order.
  void launch_waiting() {
    for (auto it = waiting.begin(); it != waiting.end();) {
      auto& j = *it;
      if (running_of_kind(j->ctx.kind) >= std::max<uint32_t>(1, j->executor->slots())) {
        ++it;
        continue;
      }
      j->ctx.cancel = &j->cancel;
      j->started = Clock::now();
      log::info("worker: task {} ({}, attempt {}) started", j->ctx.task_id, j->ctx.kind,
                j->ctx.attempt);
      j->thread = std::thread([raw = j.get(), keep = j] { execute(raw); });
      if (metrics) metrics->started.labels({j->ctx.kind}).inc();
      running.push_back(std::move(j));
      it = waiting.erase(it);
    }
  }

  void stop_job(Job& j, StopReason why) {
    if (j.stop == StopReason::None) j.stop = why;
    j.cancel.store(true);
  }

  // Sends the finished job's answer and forgets it.
  void complete(const std::shared_ptr<Job>& j) {
    if (j->thread.joinable()) j->thread.join();
    if (j->server_instance != server_instance) {
      log::info("worker: task {} belonged to a previous coordinator instance; result dropped",
                j->ctx.task_id);
      return;
    }
    if (!j->error.empty()) {
      switch (j->stop) {
        case StopReason::Cancelled:
          return send_task_error(j->ctx, wire::TASK_CANCELLED, wire::KIND_CANCELLED,
                                 "cancelled by the coordinator");
        case StopReason::Deadline:
          return send_task_error(j->ctx, wire::DEADLINE_EXCEEDED, wire::KIND_CANCELLED,
                                 fmt::format("deadline of {} ms passed on the worker",
                                             j->deadline.count()));
        case StopReason::Shutdown:
          return send_task_error(j->ctx, wire::TASK_ABANDONED, wire::KIND_CANCELLED,
                                 "worker shutting down; task abandoned");
        case StopReason::None:
          break;
      }
      log::warn("worker: task {} failed: {}", j->ctx.task_id, j->error);
      return send_task_error(j->ctx, wire::TASK_FAILED, j->error_kind, j->error);
    }
    Message r;
    r.header.set_type(wire::RESULT);
    r.header.set_job_id(j->ctx.job_id);
    r.header.set_task_id(j->ctx.task_id);
    r.header.set_round(j->ctx.round);
    auto* b = r.header.mutable_result();
    b->set_kind(j->ctx.kind);
    b->set_attempt(j->ctx.attempt);
    b->set_summary(j->output.summary);
    b->set_elapsed_ms(static_cast<uint64_t>(
        std::chrono::duration_cast<milliseconds>(Clock::now() - j->started).count()));
    r.tensors = std::move(j->output.tensors);
    if (replay_results) {
      if (last_result) {
        log::warn("worker: test hook: replaying the result of task {} (round {})", last_result->header.task_id(),
                  last_result->header.round());
        send(*last_result);
      }
      last_result = r;  // tensors share their buffers: no copy of the weights
    }
    if (!send(std::move(r))) log::warn("worker: could not send result of task {}", j->ctx.task_id);
    owner->tasks_done_++;
    if (metrics) metrics->completed.labels({j->ctx.kind}).inc();
    log::info("worker: task {} done", j->ctx.task_id);
  }

  // Answers finished jobs, enforces deadlines, starts waiting tasks.
  void tend_jobs() {
    const auto now = Clock::now();
    for (auto it = running.begin(); it != running.end();) {
      auto& j = *it;
      if (j->done.load()) {
        auto keep = std::move(j);
        it = running.erase(it);
        complete(keep);
        continue;
      }
      if (j->deadline.count() > 0 && now - j->received > j->deadline && j->stop == StopReason::None) {
        log::warn("worker: task {} ran past its deadline of {} ms; stopping it", j->ctx.task_id,
                  j->deadline.count());
        stop_job(*j, StopReason::Deadline);
      }
      ++it;
    }
    for (auto it = waiting.begin(); it != waiting.end();) {
      auto& j = *it;
      if (j->deadline.count() > 0 && now - j->received > j->deadline) {
        send_task_error(j->ctx, wire::DEADLINE_EXCEEDED, wire::KIND_CANCELLED,
                        fmt::format("deadline of {} ms passed on the worker before a slot was free",
                                    j->deadline.count()));
        it = waiting.erase(it);
      } else {
        ++it;
      }
    }
    launch_waiting();
  }

  void cancel_task(const Message& m) {
    const uint64_t id = m.header.task_id();
    const uint32_t attempt = m.header.cancel().attempt();
    for (auto& j : running) {
      if (j->ctx.task_id == id && j->ctx.attempt == attempt && j->server_instance == server_instance) {
        log::info("worker: task {} cancelled: {}", id, m.header.cancel().reason());
        return stop_job(*j, StopReason::Cancelled);
      }
    }
    for (auto it = waiting.begin(); it != waiting.end(); ++it) {
      if ((*it)->ctx.task_id == id && (*it)->ctx.attempt == attempt) {
        send_task_error((*it)->ctx, wire::TASK_CANCELLED, wire::KIND_CANCELLED,
                        "cancelled by the coordinator before it started");
        waiting.erase(it);
        return;
      }
    }
    // Not ours (already answered): nothing to do.
  }

  void handle(Message& m) {
    const auto& h = m.header;
    last_heard = Clock::now();
    if (welcomed && h.instance() != server_instance) {
      log::info("worker: coordinator instance changed ({:016x} -> {:016x}); saying hello again",
                server_instance, h.instance());
      welcomed = false;
      send_hello();
    }
    switch (h.type()) {
      case wire::WELCOME: {
        if (h.instance() != server_instance) {  // a new coordinator session: drop its state
          cache.clear();
          waiting.clear();  // sent by an earlier instance: nobody waits for them any more
          for (auto& j : running) {
            if (j->server_instance != h.instance() && j->stop == StopReason::None) {
              log::info("worker: cancelling task {} of the previous coordinator {:016x}",
                        j->ctx.task_id, j->server_instance);
              stop_job(*j, StopReason::Cancelled);
            }
          }
        }
        welcomed = true;
        if (server_instance != h.instance()) accepted_tasks.clear();
        server_instance = h.instance();
        const auto& w = h.welcome();
        identity = w.identity();
        job_id = h.job_id();
        if (w.heartbeat_interval_ms() > 0) heartbeat_interval = milliseconds(w.heartbeat_interval_ms());
        if (w.dead_after_ms() > 0) server_dead_after = milliseconds(w.dead_after_ms());
        coordinator_max_chunk = w.max_chunk_bytes();
        link->socket().set(zmq::sockopt::sndtimeo, static_cast<int>(opt.link.send_timeout.count()));
        handshake_problem.clear();
        handshake_refused = false;
        link->set_sender(identity);
        backoff = opt.backoff_min;
        last_welcomed = Clock::now();
        owner->sessions_++;
        if (metrics) metrics->sessions.inc();
        log::info("worker: welcomed by coordinator {:016x} as '{}' (job {}; heartbeat {} ms)",
                  server_instance, identity, job_id, heartbeat_interval.count());
        return;
      }
      case wire::HEARTBEAT:
        return;
      case wire::TASK:
        if (!welcomed || h.instance() != server_instance) return;
        return start_task(m);
      case wire::CANCEL:
        if (!welcomed || h.instance() != server_instance) return;
        return cancel_task(m);
      case wire::ERROR:
        log::warn("worker: coordinator reports {}: {}", error_code_name(h.error().code()),
                  h.error().message());
        if (h.error().code() == wire::UNKNOWN_SESSION) {
          welcomed = false;
          send_hello();
        }
        return;
      case wire::BYE:
        log::info("worker: coordinator said bye: {}", h.bye().reason());
        welcomed = false;
        bye_received = true;
        return;
      default: {
        Message e = make_error(wire::BAD_TYPE, "a coordinator may not send this type", h.sequence());
        send(std::move(e));
      }
    }
  }

  // Reads the connection monitor: logs why a handshake failed, naming the endpoint.
  void read_monitor() {
    if (!monitor) return;
    while (auto e = next_monitor_event(*monitor)) {
      const uint16_t id = e->id;
      const uint32_t value = e->value;
      std::string problem;
      switch (id) {
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
          handshake_ok = true;
          continue;
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
          problem = fmt::format("the coordinator at {} refused this worker's key (status {}): it "
                                "is not in the coordinator's allow-list", opt.connect, value);
          break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
          problem = fmt::format("the handshake with {} failed with a protocol error ({:#x}): is it "
                                "a Conflux coordinator, in the same security mode?", opt.connect, value);
          break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        case ZMQ_EVENT_DISCONNECTED:
          if (handshake_ok || opt.insecure) continue;
          problem = fmt::format("the coordinator at {} closed the connection during the CURVE "
                                "handshake: the coordinator public key given to this worker "
                                "(--server-key) does not match the coordinator's", opt.connect);
          break;
        default:
          continue;
      }
      // A refused key is followed by a disconnect: keep the more precise reason.
      if (handshake_refused && id != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) continue;
      handshake_refused = handshake_refused || id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
      if (problem != handshake_problem || Clock::now() >= next_problem_log) {
        log::error("worker: {}", problem);
        next_problem_log = Clock::now() + std::chrono::seconds(30);
      }
      handshake_problem = problem;
    }
  }

  void pump(milliseconds wait) {
    if (auto in = link->receive(wait)) {
      if (in->message) handle(*in->message);
    }
  }

  bool all_done() const {
    for (const auto& j : running)
      if (!j->done.load()) return false;
    return true;
  }

  int shutdown(const char* why) {
    stopping = true;
    for (auto& j : waiting) {
      send_task_error(j->ctx, wire::TASK_ABANDONED, wire::KIND_CANCELLED,
                      "worker shutting down; task abandoned");
    }
    waiting.clear();
    if (!running.empty()) {
      log::info("worker: stopping; giving {} task(s) up to {} ms to finish", running.size(),
                opt.drain_timeout.count());
      const auto until = Clock::now() + opt.drain_timeout;
      while (!all_done() && Clock::now() < until) {
        if (Clock::now() >= next_heartbeat && welcomed) send_heartbeat();
        pump(milliseconds(20));
      }
      for (auto& j : running) {
        if (j->done.load()) {
          complete(j);
          continue;
        }
        log::warn("worker: abandoning task {}", j->ctx.task_id);
        stop_job(*j, StopReason::Shutdown);
        if (j->server_instance == server_instance) {
          send_task_error(j->ctx, wire::TASK_ABANDONED, wire::KIND_CANCELLED,
                          "worker shutting down; task abandoned");
        }
        j->thread.detach();  // it holds only its shared Job
      }
      running.clear();
    }
    Message bye;
    bye.header.set_type(wire::BYE);
    bye.header.set_job_id(job_id);
    bye.header.mutable_bye()->set_reason(why);
    send(std::move(bye));
    link->socket().set(zmq::sockopt::linger, 2000);  // let the bye leave
    link.reset();
    return kExitOk;
  }
};

void load_worker_keys(WorkerOptions* o, const std::string& server_public_key_file,
                      const std::string& secret_key_file) {
  o->insecure = false;
  o->server_public_key = read_public_key_file(server_public_key_file);
  auto kp = read_secret_key_file(secret_key_file);
  o->public_key = kp.public_key;
  o->secret_key = kp.secret_key;
}

Worker::Worker(WorkerOptions options, std::shared_ptr<const ExecutorRegistry> executors)
    : impl_(std::make_unique<Impl>()) {
  if (!options.insecure) {
    if (!is_z85_key(options.server_public_key) || !is_z85_key(options.public_key) ||
        !is_z85_key(options.secret_key)) {
      CONFLUX_THROW(ConfigError, "worker needs Z85 server public key and its own keypair "
                                 "(or insecure mode)");
    }
  }
  if (options.connect.empty()) CONFLUX_THROW(ConfigError, "worker needs an endpoint to connect to");
  impl_->opt = std::move(options);
  impl_->executors = std::move(executors);
  impl_->backoff = impl_->opt.backoff_min;
  impl_->heartbeat_interval = impl_->opt.heartbeat_interval;
  impl_->server_dead_after = impl_->opt.server_dead_after;
  impl_->owner = this;
  if (impl_->opt.metrics) {
    impl_->metrics = std::make_unique<WorkerMetrics>(*impl_->opt.metrics, impl_->opt.slots);
    impl_->opt.link.metrics = register_link_metrics(*impl_->opt.metrics, "conflux_worker");
    for (const auto& k : impl_->executors->kinds()) {  // the series exist from 0
      impl_->metrics->started.labels({k});
      impl_->metrics->completed.labels({k});
    }
  }
}

Worker::~Worker() {
  if (!impl_) return;
  for (auto& j : impl_->running) {
    j->cancel.store(true);
    if (j->thread.joinable()) j->thread.detach();
  }
}

int Worker::run(const std::atomic<bool>& stop) {
  Impl& w = *impl_;
  w.connect();
  const auto started = Clock::now();
  w.last_welcomed = started;
  for (;;) {
    if (stop.load()) return w.shutdown("worker stopping (signal)");
    if (w.bye_received && w.opt.exit_on_bye) return w.shutdown("coordinator said bye");
    w.tend_jobs();
    w.update_gauges();
    w.read_monitor();
    auto now = Clock::now();
    if (w.opt.give_up_after.count() > 0 && !w.welcomed &&
        now - w.last_welcomed > w.opt.give_up_after) {
      log::error("worker: no coordinator for {} ms; giving up{}", w.opt.give_up_after.count(),
                 w.handshake_problem.empty() ? "" : ": " + w.handshake_problem);
      w.shutdown("no coordinator");
      return kExitComm;
    }
    if (!w.welcomed && now >= w.next_hello) w.send_hello();
    if (w.welcomed && now >= w.next_heartbeat) w.send_heartbeat();
    if (now - w.last_heard > w.server_dead_after) {
      log::warn("worker: no word from the coordinator for {} ms; reconnecting in {} ms",
                w.server_dead_after.count(), w.backoff.count());
      auto until = Clock::now() + w.backoff;
      if (w.opt.give_up_after.count() > 0) until = std::min(until, w.last_welcomed + w.opt.give_up_after);
      while (Clock::now() < until && !stop.load()) std::this_thread::sleep_for(milliseconds(10));
      w.backoff = std::min(w.backoff * 2, w.opt.backoff_max);
      w.connect();
      w.send_hello();
      continue;
    }
    w.pump(milliseconds(20));
  }
}

}  // namespace conflux::protocol
