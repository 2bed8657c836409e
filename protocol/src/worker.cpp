// Worker: session, task execution on a separate thread, heartbeats, reconnection with backoff
// and the drain-or-abandon shutdown. See worker.h for the contract.
//
// Coordinator restart while a task runs: the task belongs to the old coordinator instance, whose
// dispatcher is gone. On the welcome of a new instance the worker cancels it (its result would
// be dropped anyway); a task the new coordinator sends before the cancelled one has stopped is
// parked and started as soon as it has, instead of being refused as "busy" (which would charge
// the new coordinator an attempt for no fault of the task).
#include <conflux/protocol/worker.h>

#include <conflux/core/error.h>
#include <conflux/core/log.h>
#include <conflux/protocol/keys.h>

#include <thread>

namespace conflux::protocol {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// State shared by the protocol thread and the executor thread; outlives both if needed.
struct Job {
  TaskContext ctx;
  std::shared_ptr<TaskExecutor> executor;
  std::atomic<bool> cancel{false};
  std::atomic<bool> done{false};
  TaskOutput output;
  std::string error;
  uint64_t server_instance = 0;
  Clock::time_point started;
};

void execute(const std::shared_ptr<Job>& job) {
  try {
    job->output = job->executor->execute(job->ctx);
  } catch (const Error& e) {
    job->error = e.message();
  } catch (const std::exception& e) {
    job->error = e.what();
  } catch (...) {
    job->error = "unknown exception";
  }
  job->done.store(true);
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
  std::string identity, job_id;
  Clock::time_point last_heard, next_heartbeat, next_hello, last_welcomed;
  milliseconds backoff;
  std::shared_ptr<Job> job;
  std::thread thread;
  struct Parked {                      // a task waiting for a cancelled previous-instance job
    TaskContext ctx;
    std::shared_ptr<TaskExecutor> executor;
  };
  std::unique_ptr<Parked> parked;
  std::string shared_key;              // cached shared inputs (one entry)
  std::vector<Tensor> shared;
  Worker* owner = nullptr;

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
    s.connect(opt.connect);
    uint64_t next_seq = link ? link->next_sequence() : 1;
    link = std::make_unique<Link>(std::move(s), opt.insecure ? opt.name : "", opt.link, instance);
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
    h->set_slots(1);
    h->set_max_chunk_bytes(opt.link.limits.max_frame_bytes);
    if (!opt.data_path.empty()) *h->mutable_data() = summarize_dataset(opt.data_path);
    h->set_software("conflux-worker 0.1.0");
    link->send("", std::move(m));
    next_hello = Clock::now() + opt.hello_retry;
  }

  void send_heartbeat() {
    Message m;
    m.header.set_type(wire::HEARTBEAT);
    m.header.set_job_id(job_id);
    m.header.mutable_heartbeat()->set_busy(job != nullptr || parked != nullptr);
    if (parked) m.header.mutable_heartbeat()->set_current_task(parked->ctx.task_id);
    else if (job) m.header.mutable_heartbeat()->set_current_task(job->ctx.task_id);
    link->send("", std::move(m));
    next_heartbeat = Clock::now() + opt.heartbeat_interval;
  }

  void send_task_error(const TaskContext& ctx, ErrorCode code, const std::string& text) {
    Message e = make_error(code, text);
    e.header.set_job_id(ctx.job_id);
    e.header.set_task_id(ctx.task_id);
    e.header.set_round(ctx.round);
    e.header.mutable_error()->set_attempt(ctx.attempt);
    link->send("", std::move(e));
  }

  void start_task(Message& m) {
    const auto& h = m.header;
    TaskContext ctx;
    ctx.job_id = h.job_id();
    ctx.task_id = h.task_id();
    ctx.round = h.round();
    ctx.attempt = h.task().attempt();
    ctx.kind = h.task().kind();
    ctx.params = h.task().params();
    ctx.inputs = std::move(m.tensors);
    ctx.data_path = opt.data_path;
    if (stopping) return send_task_error(ctx, wire::SHUTTING_DOWN, "worker is shutting down");
    const bool orphan_running = job && job->server_instance != server_instance;
    if ((job && !orphan_running) || parked)
      return send_task_error(ctx, wire::TASK_FAILED, "worker is busy with another task");
    if (h.job_id() != job_id || h.task_id() == 0) {
      return send_task_error(ctx, wire::UNKNOWN_TASK, "task for another job, or task id 0");
    }
    auto exec = executors->find(ctx.kind);
    if (!exec) return send_task_error(ctx, wire::UNKNOWN_KIND, "no executor for kind " + ctx.kind);
    const auto& t = h.task();
    if (!t.shared_key().empty()) {
      if (t.shared_count() > ctx.inputs.size()) {
        return send_task_error(ctx, wire::MALFORMED, "shared_count exceeds the tensors sent");
      }
      if (t.shared_count() > 0) {
        shared.assign(ctx.inputs.begin(), ctx.inputs.begin() + t.shared_count());
        ctx.inputs.erase(ctx.inputs.begin(), ctx.inputs.begin() + t.shared_count());
        shared_key = t.shared_key();
      } else if (shared_key != t.shared_key()) {
        return send_task_error(ctx, wire::UNKNOWN_SHARED,
                               "no cached shared inputs under key " + t.shared_key());
      }
      ctx.shared = shared;
    }
    if (orphan_running) {
      log::info("worker: task {} waits for cancelled task {} of the previous coordinator to stop",
                ctx.task_id, job->ctx.task_id);
      parked = std::make_unique<Parked>(Parked{std::move(ctx), std::move(exec)});
      return;
    }
    launch(std::move(ctx), std::move(exec));
  }

  void launch(TaskContext ctx, std::shared_ptr<TaskExecutor> exec) {
    job = std::make_shared<Job>();
    job->ctx = std::move(ctx);
    job->ctx.cancel = &job->cancel;
    job->executor = std::move(exec);
    job->server_instance = server_instance;
    job->started = Clock::now();
    log::info("worker: task {} ({}, attempt {}) started", job->ctx.task_id, job->ctx.kind,
              job->ctx.attempt);
    thread = std::thread([j = job] { execute(j); });
  }

  // Sends the finished job's result (or failure) and clears it.
  void complete_job() {
    if (thread.joinable()) thread.join();
    std::shared_ptr<Job> j = std::move(job);
    job.reset();
    if (j->server_instance != server_instance) {
      log::warn("worker: task {} belonged to a previous coordinator instance; result dropped",
                j->ctx.task_id);
      return;
    }
    if (!j->error.empty()) {
      log::warn("worker: task {} failed: {}", j->ctx.task_id, j->error);
      return send_task_error(j->ctx, wire::TASK_FAILED, j->error);
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
    if (!link->send("", std::move(r))) log::warn("worker: could not send result of task {}", j->ctx.task_id);
    owner->tasks_done_++;
    log::info("worker: task {} done", j->ctx.task_id);
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
      case wire::WELCOME:
        if (h.instance() != server_instance) {  // a new coordinator session: drop the cache
          shared_key.clear();
          shared.clear();
          parked.reset();  // sent by an earlier instance: nobody waits for it any more
        }
        if (job && job->server_instance != h.instance() && !job->cancel.load()) {
          log::info("worker: cancelling task {} of the previous coordinator {:016x}",
                    job->ctx.task_id, job->server_instance);
          job->cancel.store(true);
        }
        welcomed = true;
        server_instance = h.instance();
        identity = h.welcome().identity();
        job_id = h.job_id();
        link->set_sender(identity);
        backoff = opt.backoff_min;
        last_welcomed = Clock::now();
        owner->sessions_++;
        log::info("worker: welcomed by coordinator {:016x} as '{}' (job {})", server_instance,
                  identity, job_id);
        return;
      case wire::HEARTBEAT:
        return;
      case wire::TASK:
        if (!welcomed || h.instance() != server_instance) return;
        return start_task(m);
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
        link->send("", std::move(e));
      }
    }
  }

  void pump(milliseconds wait) {
    if (auto in = link->receive(wait)) {
      if (in->message) handle(*in->message);
    }
  }

  int shutdown(const char* why) {
    stopping = true;
    uint64_t abandoned = 0;
    if (job) {
      log::info("worker: stopping; giving task {} up to {} ms to finish", job->ctx.task_id,
                opt.drain_timeout.count());
      auto until = Clock::now() + opt.drain_timeout;
      while (!job->done.load() && Clock::now() < until) {
        if (Clock::now() >= next_heartbeat && welcomed) send_heartbeat();
        pump(milliseconds(20));
      }
      if (job && job->done.load()) {
        complete_job();
      } else if (job) {
        abandoned = job->ctx.task_id;
        job->cancel.store(true);
        log::warn("worker: abandoning task {}", abandoned);
        send_task_error(job->ctx, wire::TASK_ABANDONED, "worker shutting down; task abandoned");
        thread.detach();  // it holds only the shared Job
        job.reset();
      }
    }
    if (parked) {
      send_task_error(parked->ctx, wire::TASK_ABANDONED, "worker shutting down; task abandoned");
      if (!abandoned) abandoned = parked->ctx.task_id;
      parked.reset();
    }
    Message bye;
    bye.header.set_type(wire::BYE);
    bye.header.set_job_id(job_id);
    bye.header.mutable_bye()->set_reason(why);
    bye.header.mutable_bye()->set_abandoned_task(abandoned);
    link->send("", std::move(bye));
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
  impl_->owner = this;
}

Worker::~Worker() {
  if (impl_ && impl_->job) {
    impl_->job->cancel.store(true);
    if (impl_->thread.joinable()) impl_->thread.detach();
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
    auto now = Clock::now();
    if (w.job && w.job->done.load()) w.complete_job();
    if (!w.job && w.parked) {
      auto p = std::move(w.parked);
      w.launch(std::move(p->ctx), std::move(p->executor));
    }
    if (!w.welcomed && now >= w.next_hello) w.send_hello();
    if (w.welcomed && now >= w.next_heartbeat) w.send_heartbeat();
    if (now - w.last_heard > w.opt.server_dead_after) {
      log::warn("worker: no word from the coordinator for {} ms; reconnecting in {} ms",
                w.opt.server_dead_after.count(), w.backoff.count());
      auto until = Clock::now() + w.backoff;
      while (Clock::now() < until && !stop.load()) std::this_thread::sleep_for(milliseconds(10));
      w.backoff = std::min(w.backoff * 2, w.opt.backoff_max);
      w.connect();
      w.send_hello();
      continue;
    }
    if (w.opt.give_up_after.count() > 0 && !w.welcomed &&
        now - w.last_welcomed > w.opt.give_up_after) {
      log::error("worker: no coordinator for {} ms; giving up", w.opt.give_up_after.count());
      w.shutdown("no coordinator");
      return kExitComm;
    }
    w.pump(milliseconds(20));
  }
}

}  // namespace conflux::protocol
