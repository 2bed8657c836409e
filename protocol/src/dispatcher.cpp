// TaskDispatcher: batches, targeted and cohort tasks, slots, the shared-input cache mirror,
// completion policies, cancellation and stale-result rejection. See dispatcher.h for the model.
#include <conflux/protocol/dispatcher.h>

#include <conflux/core/error.h>
#include <conflux/core/log.h>
#include <conflux/core/metrics_registry.h>

#include <algorithm>

namespace conflux::protocol {
namespace {

using std::chrono::milliseconds;

class SteadyClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
};

milliseconds since(const Clock& c, Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(c.now() - t);
}

bool offers(const WorkerInfo& w, const std::string& kind) {
  const auto& kinds = w.hello.task_kinds();
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

size_t capacity(const WorkerInfo& w) { return std::max<size_t>(1, w.hello.slots()); }

// A label value from a display name: "lost worker" -> "lost_worker".
std::string slug(const char* name) {
  std::string s(name);
  std::replace(s.begin(), s.end(), ' ', '_');
  return s;
}

}  // namespace

// The conflux_coordinator_* series (docs/operations.md lists them).
struct TaskDispatcher::Metrics {
  explicit Metrics(metrics::Registry& r)
      : dispatched(r.counter("conflux_coordinator_task_attempts", "task attempts sent to workers")),
        completed(r.counter_family("conflux_coordinator_tasks_completed", "tasks completed with an accepted result",
                                   {"task"})),
        attempts_failed(r.counter_family("conflux_coordinator_task_attempts_failed",
                                         "task attempts that failed, by error kind (retried or not)", {"error"})),
        missing(r.counter_family("conflux_coordinator_tasks_missing",
                                 "tasks that ended without a result, by reason", {"reason"})),
        in_flight(r.gauge("conflux_coordinator_tasks_in_flight",
                          "task attempts running on workers (cancelled ones until the worker answers)")),
        queued(r.gauge("conflux_coordinator_tasks_queued", "tasks waiting for a worker with a free slot")),
        workers(r.gauge("conflux_coordinator_workers_connected", "workers with a live session")),
        slots(r.gauge("conflux_coordinator_worker_slots", "task slots of the connected workers")),
        joins(r.counter("conflux_coordinator_worker_joins", "worker sessions started (hello)")),
        losses(r.counter_family("conflux_coordinator_worker_losses",
                                "worker sessions ended, by reason (left: said bye; died: went silent)",
                                {"reason"})),
        stale(r.counter("conflux_coordinator_stale_results", "results rejected as stale (closed batch, old attempt)")) {
    for (const char* reason : {"left", "died"}) losses.labels({reason});
    for (auto why : {Missing::Failed, Missing::Lost, Missing::Cancelled, Missing::Unassigned})
      missing.labels({slug(missing_name(why))});
  }
  metrics::Counter& dispatched;
  metrics::Family<metrics::Counter>&completed, &attempts_failed, &missing;
  metrics::Gauge &in_flight, &queued, &workers, &slots;
  metrics::Counter& joins;
  metrics::Family<metrics::Counter>& losses;
  metrics::Counter& stale;
};

const Clock& Clock::steady() {
  static const SteadyClock clock;
  return clock;
}

uint64_t SharedInputs::bytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors) n += t.byte_length();
  return n;
}

const char* missing_name(Missing m) {
  switch (m) {
    case Missing::Failed: return "failed";
    case Missing::Lost: return "lost";
    case Missing::Cancelled: return "cancelled";
    case Missing::Unassigned: return "never started";
  }
  return "?";
}

const char* task_error_kind_name(TaskErrorKind k) {
  switch (k) {
    case TaskErrorKind::None: return "none";
    case TaskErrorKind::Data: return "data";
    case TaskErrorKind::Config: return "config";
    case TaskErrorKind::Internal: return "internal";
    case TaskErrorKind::Resource: return "resource";
    case TaskErrorKind::Cancelled: return "cancelled";
    case TaskErrorKind::Lost: return "lost worker";
    case TaskErrorKind::Invalid: return "invalid result";
    case TaskErrorKind::Deadline: return "deadline";
  }
  return "?";
}

TaskErrorKind from_wire(wire::TaskErrorKind k) {
  switch (k) {
    case wire::KIND_DATA: return TaskErrorKind::Data;
    case wire::KIND_CONFIG: return TaskErrorKind::Config;
    case wire::KIND_RESOURCE: return TaskErrorKind::Resource;
    case wire::KIND_CANCELLED: return TaskErrorKind::Cancelled;
    default: return TaskErrorKind::Internal;  // INTERNAL, or a peer that does not say
  }
}

bool retryable(TaskErrorKind k) { return k != TaskErrorKind::Data && k != TaskErrorKind::Config; }

std::string BatchReport::describe() const {
  std::string s = fmt::format("{} of {} task(s) succeeded (needed {}), closed: {}", succeeded,
                              tasks, needed, closed_because);
  for (const auto& m : missing) {
    s += fmt::format("; task {} (index {}): {}", m.task_id, m.index, missing_name(m.why));
    if (!m.detail.empty()) s += ": " + m.detail;
  }
  return s;
}

TaskDispatcher::TaskDispatcher(WorkerPool& pool, DispatcherOptions options, const Clock& clock)
    : pool_(pool), options_(options), clock_(clock) {
  if (options_.max_attempts == 0) options_.max_attempts = 1;
  if (options_.metrics) metrics_ = std::make_unique<Metrics>(*options_.metrics);
}

TaskDispatcher::~TaskDispatcher() = default;

void TaskDispatcher::refresh_gauges() {
  if (!metrics_) return;
  size_t in_flight = 0, slots = 0, queued = 0;
  for (const auto& [id, w] : workers_) in_flight += w.in_flight.size();
  for (const auto& [id, w] : pool_.workers()) slots += capacity(w);
  for (uint64_t id : queue_) {
    auto it = tasks_.find(id);
    queued += it != tasks_.end() && it->second.state == State::Queued;
  }
  metrics_->in_flight.set(static_cast<double>(in_flight));
  metrics_->queued.set(static_cast<double>(queued));
  metrics_->workers.set(static_cast<double>(pool_.workers().size()));
  metrics_->slots.set(static_cast<double>(slots));
}

// ---------------------------------------------------------------- batches

uint64_t TaskDispatcher::open(BatchSpec spec, ResultSink sink) {
  for (const auto& t : spec.tasks) {
    if (t.kind.empty()) CONFLUX_THROW(UsageError, "a task needs a kind");
  }
  if (spec.quorum > spec.tasks.size()) {
    CONFLUX_THROW(UsageError, "a batch of {} task(s) cannot need a quorum of {}",
                  spec.tasks.size(), spec.quorum);
  }
  const uint64_t id = next_batch_++;
  Batch& b = batches_[id];
  b.sink = std::move(sink);
  b.opened = clock_.now();
  std::vector<TaskSpec> specs = std::move(spec.tasks);
  b.spec = std::move(spec);
  for (size_t i = 0; i < specs.size(); ++i) {
    const uint64_t tid = next_task_++;
    Task& t = tasks_[tid];
    t.id = tid;
    t.batch = id;
    t.index = i;
    t.spec = std::move(specs[i]);
    t.spec.round = b.spec.round;
    b.task_ids.push_back(tid);
    queue_.push_back(tid);
    if (metrics_) metrics_->completed.labels({t.spec.kind});  // the series exists from 0
  }
  check_close(b, id);  // an empty batch is complete at once
  refresh_gauges();
  return id;
}

bool TaskDispatcher::is_open(uint64_t batch) const {
  auto it = batches_.find(batch);
  return it != batches_.end() && !it->second.closed;
}

void TaskDispatcher::close(uint64_t batch, const std::string& why) {
  if (is_open(batch)) close_batch(batch, why);
}

BatchReport TaskDispatcher::take_report(uint64_t batch) {
  auto it = batches_.find(batch);
  if (it == batches_.end()) CONFLUX_THROW(UsageError, "no batch {}", batch);
  if (!it->second.closed) CONFLUX_THROW(UsageError, "batch {} is still open", batch);
  BatchReport r = std::move(it->second.report);
  for (uint64_t tid : it->second.task_ids) tasks_.erase(tid);
  batches_.erase(it);
  return r;
}

BatchReport TaskDispatcher::run_batch(BatchSpec batch, ResultSink sink, milliseconds timeout) {
  const auto until = clock_.now() + timeout;
  const uint64_t id = open(std::move(batch), std::move(sink));
  while (is_open(id)) {
    const auto now = clock_.now();
    if (now >= until) {
      close_batch(id, fmt::format("timeout of {} ms passed", timeout.count()));
      break;
    }
    step(std::min(std::chrono::duration_cast<milliseconds>(until - now), milliseconds(200)));
  }
  return take_report(id);
}

uint32_t TaskDispatcher::max_attempts(const Batch& b) const {
  return b.spec.max_attempts ? b.spec.max_attempts : options_.max_attempts;
}

milliseconds TaskDispatcher::attempt_deadline(const Task& t) const {
  if (t.spec.deadline.count() > 0) return t.spec.deadline;
  const Batch& b = batches_.at(t.batch);
  if (b.spec.attempt_deadline.count() > 0) return b.spec.attempt_deadline;
  return options_.default_deadline;
}

void TaskDispatcher::check_close(Batch& b, uint64_t id) {
  if (b.closed || b.implicit) return;
  const size_t n = b.task_ids.size();
  const size_t needed = b.spec.quorum ? b.spec.quorum : n;
  if (b.finished == n) return close_batch(id, "all tasks finished");
  if (b.spec.close_at_quorum && b.succeeded >= needed) return close_batch(id, "quorum reached");
  if (b.succeeded + (n - b.finished) < needed) close_batch(id, "quorum unreachable");
}

void TaskDispatcher::close_batch(uint64_t id, const std::string& why) {
  Batch& b = batches_.at(id);
  b.closed = true;
  BatchReport& r = b.report;
  r.tasks = b.task_ids.size();
  r.succeeded = b.succeeded;
  r.needed = b.spec.quorum ? b.spec.quorum : r.tasks;
  r.quorum_met = r.succeeded >= r.needed;
  r.closed_because = why;
  r.elapsed = since(clock_, b.opened);
  for (uint64_t tid : b.task_ids) {
    Task& t = tasks_.at(tid);
    if (t.state == State::Running) {
      send_cancel(t.worker, t.id, t.attempts, "batch closed: " + why);
      t.state = State::Missing;
      t.missing = MissingTask{t.id, t.index, Missing::Cancelled, TaskErrorKind::Cancelled,
                              t.worker, t.attempts, "still running on " + t.worker + " when the batch closed (" + why + ")"};
    } else if (t.state == State::Queued) {
      t.state = State::Missing;
      std::string detail = t.missing.detail.empty()
                               ? "no worker of the cohort with kind " + t.spec.kind + " was free"
                               : "waiting for another attempt; last: " + t.missing.detail;
      t.missing = MissingTask{t.id, t.index, Missing::Unassigned, t.missing.error_kind,
                              t.worker, t.attempts, detail};
    }
    if (t.state == State::Missing) r.missing.push_back(t.missing);
  }
  log::write(r.quorum_met ? log::Level::Info : log::Level::Warn,
             fmt::format("protocol: batch {} closed ({}): {} of {} task(s) succeeded", id, why,
                         r.succeeded, r.tasks));
}

// ---------------------------------------------------------------- the implicit batch

uint64_t TaskDispatcher::implicit_batch() {
  if (implicit_ == 0) {
    implicit_ = next_batch_++;
    Batch& b = batches_[implicit_];
    b.implicit = true;
    b.opened = clock_.now();
  }
  return implicit_;
}

uint64_t TaskDispatcher::submit(TaskSpec spec) {
  if (spec.kind.empty()) CONFLUX_THROW(UsageError, "a task needs a kind");
  const uint64_t bid = implicit_batch();
  Batch& b = batches_.at(bid);
  const uint64_t tid = next_task_++;
  Task& t = tasks_[tid];
  t.id = tid;
  t.batch = bid;
  t.index = b.task_ids.size();
  t.spec = std::move(spec);
  b.task_ids.push_back(tid);
  queue_.push_back(tid);
  return tid;
}

std::vector<TaskOutcome> TaskDispatcher::run(milliseconds timeout) {
  const auto until = clock_.now() + timeout;
  auto pending = [&] {
    std::vector<const Task*> out;
    if (implicit_ == 0) return out;
    for (uint64_t tid : batches_.at(implicit_).task_ids) {
      const Task& t = tasks_.at(tid);
      if (t.state == State::Queued || t.state == State::Running) out.push_back(&t);
    }
    return out;
  };
  for (;;) {
    const auto left = pending();
    if (left.empty()) break;
    const auto now = clock_.now();
    if (now >= until) {
      std::string names;
      for (const Task* t : left) {
        names += fmt::format(" {}({}{})", t->id, t->spec.kind,
                             t->state == State::Queued ? ", queued" : ", on " + t->worker);
      }
      CONFLUX_THROW(CommError, "{} task(s) unfinished after {} ms with {} live worker(s):{}",
                    left.size(), timeout.count(), pool_.workers().size(), names);
    }
    step(std::min(std::chrono::duration_cast<milliseconds>(until - now), milliseconds(200)));
  }
  std::vector<TaskOutcome> out = std::move(implicit_outcomes_);
  implicit_outcomes_.clear();
  if (implicit_) {
    for (uint64_t tid : batches_.at(implicit_).task_ids) tasks_.erase(tid);
    batches_.erase(implicit_);
    implicit_ = 0;
  }
  std::sort(out.begin(), out.end(),
            [](const TaskOutcome& a, const TaskOutcome& b) { return a.task_id < b.task_id; });
  return out;
}

// ---------------------------------------------------------------- task bookkeeping

void TaskDispatcher::task_finished(Task& t) {
  Batch& b = batches_.at(t.batch);
  ++b.finished;
  check_close(b, t.batch);
}

void TaskDispatcher::succeed(Task& t, Message& m) {
  const auto& h = m.header;
  t.state = State::Done;
  Batch& b = batches_.at(t.batch);
  ++b.succeeded;
  if (metrics_) metrics_->completed.labels({t.spec.kind}).inc();
  if (b.implicit) {
    TaskOutcome o;
    o.task_id = t.id;
    o.ok = true;
    o.worker = t.worker;
    o.attempts = t.attempts;
    o.outputs = std::move(m.tensors);
    o.summary = h.result().summary();
    if (on_complete) on_complete(o);
    implicit_outcomes_.push_back(std::move(o));
  } else if (b.sink) {
    TaskResult r;
    r.task_id = t.id;
    r.index = t.index;
    r.worker = t.worker;
    r.attempts = t.attempts;
    r.elapsed_ms = h.result().elapsed_ms();
    r.outputs = std::move(m.tensors);
    r.summary = h.result().summary();
    b.sink(std::move(r));
  }
  log::debug("protocol: task {} done by {} (attempt {}, {} ms on the worker)", t.id, t.worker,
             t.attempts, h.result().elapsed_ms());
  task_finished(t);
}

void TaskDispatcher::mark_missing(Task& t, Missing why, TaskErrorKind kind,
                                  const std::string& detail) {
  t.state = State::Missing;
  t.missing = MissingTask{t.id, t.index, why, kind, t.spec.target.empty() ? t.worker : t.spec.target,
                          t.attempts, detail};
  log::warn("protocol: task {} ({}) {}: {}", t.id, t.spec.kind, missing_name(why), detail);
  if (metrics_) metrics_->missing.labels({slug(missing_name(why))}).inc();
  Batch& b = batches_.at(t.batch);
  if (b.implicit) {
    TaskOutcome o;
    o.task_id = t.id;
    o.worker = t.worker;
    o.attempts = t.attempts;
    o.error = detail;
    o.error_kind = kind;
    if (on_complete) on_complete(o);
    implicit_outcomes_.push_back(std::move(o));
  }
  task_finished(t);
}

void TaskDispatcher::attempt_failed(Task& t, TaskErrorKind kind, const std::string& why,
                                    bool charge) {
  t.state = State::Queued;
  if (!charge && t.attempts > 0) --t.attempts;  // not the task's fault
  t.missing.detail = why;
  t.missing.error_kind = kind;
  if (metrics_) metrics_->attempts_failed.labels({slug(task_error_kind_name(kind))}).inc();
  const Batch& b = batches_.at(t.batch);
  if (!retryable(kind)) return mark_missing(t, Missing::Failed, kind, why);
  if (t.attempts >= max_attempts(b)) {
    return mark_missing(t, Missing::Failed, kind,
                        fmt::format("gave up after {} attempt(s); last: {}", t.attempts, why));
  }
  log::info("protocol: task {} re-queued ({})", t.id, why);
  queue_.push_front(t.id);
}

// ---------------------------------------------------------------- events

void TaskDispatcher::step(milliseconds timeout) {
  assign();
  for (ServerEvent& ev : pool_.poll(timeout)) apply(ev);
  enforce_deadlines();
  assign();
  refresh_gauges();
}

bool TaskDispatcher::wait_for_workers(size_t n, milliseconds timeout) {
  const auto until = clock_.now() + timeout;
  while (pool_.workers().size() < n) {
    const auto now = clock_.now();
    if (now >= until) return false;
    step(std::min(std::chrono::duration_cast<milliseconds>(until - now), milliseconds(100)));
  }
  return true;
}

void TaskDispatcher::apply(ServerEvent& ev) {
  if (on_event) on_event(ev);
  if (metrics_) {
    if (ev.kind == ServerEvent::Joined) metrics_->joins.inc();
    if (ev.kind == ServerEvent::Died) metrics_->losses.labels({"died"}).inc();
    if (ev.kind == ServerEvent::Left) metrics_->losses.labels({"left"}).inc();
  }
  switch (ev.kind) {
    case ServerEvent::Joined:
      worker_gone(ev.worker, "started a new session");  // nothing of an old session survives
      workers_[ev.worker];
      return;
    case ServerEvent::Reconnected:
      return worker_reconnected(ev.worker);
    case ServerEvent::Died:
      return worker_gone(ev.worker, "died: " + ev.reason);
    case ServerEvent::Left:
      return worker_gone(ev.worker, "left: " + ev.reason);
    case ServerEvent::TaskError:
      return on_task_error(ev.worker, ev.message);
    case ServerEvent::Result:
      return on_result(ev.worker, ev.message);
  }
}

void TaskDispatcher::worker_gone(const std::string& worker, const std::string& why) {
  auto it = workers_.find(worker);
  if (it == workers_.end()) return;
  const auto in_flight = std::move(it->second.in_flight);
  workers_.erase(it);
  for (const auto& [tid, attempt] : in_flight) {
    auto tt = tasks_.find(tid);
    if (tt == tasks_.end()) continue;
    Task& t = tt->second;
    if (t.state != State::Running || t.worker != worker || t.attempts != attempt) continue;
    const std::string text = fmt::format("worker {} {}", worker, why);
    if (!t.spec.target.empty()) {
      mark_missing(t, Missing::Lost, TaskErrorKind::Lost, text);
    } else {
      attempt_failed(t, TaskErrorKind::Lost, text);
    }
  }
}

// The worker's old connection may have swallowed what was sent to it: send every attempt it is
// running again (same task id and attempt, shared inputs attached; the worker ignores a task it
// already has), and stop counting cancelled attempts against its slots (it may never have seen
// them, so it may never answer for them). Its cache mirror is unknown now: start it afresh.
void TaskDispatcher::worker_reconnected(const std::string& worker) {
  auto it = workers_.find(worker);
  if (it == workers_.end()) return;
  WorkerState& ws = it->second;
  ws.cache.clear();
  ws.cache_bytes = 0;
  const auto in_flight = ws.in_flight;
  for (const auto& [tid, attempt] : in_flight) {
    auto tt = tasks_.find(tid);
    const bool running = tt != tasks_.end() && tt->second.state == State::Running &&
                         tt->second.worker == worker && tt->second.attempts == attempt;
    if (!running) {
      ws.in_flight.erase({tid, attempt});
      continue;
    }
    log::info("protocol: task {} attempt {} sent again to {} (it reconnected)", tid, attempt, worker);
    send_task(tt->second, worker, /*resend=*/true);
  }
}

void TaskDispatcher::free_slot(const std::string& worker, uint64_t task_id, uint32_t attempt) {
  auto it = workers_.find(worker);
  if (it == workers_.end()) return;
  it->second.in_flight.erase({task_id, attempt});
}

void TaskDispatcher::on_task_error(const std::string& worker, const Message& m) {
  const auto& h = m.header;
  const auto& e = h.error();
  free_slot(worker, h.task_id(), e.attempt());
  const auto code = e.code();
  if (code == wire::TASK_ABANDONED || code == wire::SHUTTING_DOWN) {
    auto w = workers_.find(worker);
    if (w != workers_.end()) w->second.draining = true;  // it is leaving: give it nothing new
  }
  auto tt = tasks_.find(h.task_id());
  if (tt == tasks_.end()) return;
  Task& t = tt->second;
  if (t.state != State::Running || t.worker != worker || t.attempts != e.attempt()) {
    return;  // about an attempt we no longer wait for (e.g. the answer to our CANCEL)
  }
  const std::string text =
      fmt::format("worker {}: {}: {}", worker, error_code_name(code), e.message());
  switch (code) {
    case wire::UNKNOWN_SHARED: {
      auto w = workers_.find(worker);
      if (w != workers_.end()) {
        w->second.cache.remove_if([&](const auto& c) { return c.first == t.spec.shared->key; });
      }
      return attempt_failed(t, TaskErrorKind::Resource, "worker " + worker + " lacks the shared inputs",
                            false);
    }
    case wire::WORKER_BUSY:
      return attempt_failed(t, TaskErrorKind::Resource, text, false);
    case wire::TASK_ABANDONED:
    case wire::SHUTTING_DOWN:
      if (!t.spec.target.empty()) return mark_missing(t, Missing::Lost, TaskErrorKind::Lost, text);
      return attempt_failed(t, TaskErrorKind::Cancelled, text, false);
    case wire::DEADLINE_EXCEEDED:
      return attempt_failed(t, TaskErrorKind::Deadline, text);
    case wire::UNKNOWN_KIND:
      return attempt_failed(t, TaskErrorKind::Resource, text);
    default:
      return attempt_failed(t, from_wire(e.kind()), text);
  }
}

void TaskDispatcher::on_result(const std::string& worker, Message& m) {
  const auto& h = m.header;
  free_slot(worker, h.task_id(), h.result().attempt());
  auto stale = [&](const std::string& why) {
    ++stale_results_;
    if (metrics_) metrics_->stale.inc();
    log::warn("protocol: result for task {} from {} rejected as stale: {}", h.task_id(), worker, why);
    Message e = make_error(wire::STALE_RESULT, why, h.sequence());
    e.header.set_task_id(h.task_id());
    e.header.set_round(h.round());
    e.header.mutable_error()->set_attempt(h.result().attempt());
    pool_.send(worker, std::move(e));
  };
  auto tt = tasks_.find(h.task_id());
  if (tt == tasks_.end()) return stale("no such task (its batch or round has closed)");
  Task& t = tt->second;
  if (batches_.at(t.batch).closed) return stale("its batch or round has closed");
  if (t.state != State::Running) return stale("the task is no longer running");
  if (t.worker != worker) return stale("the task is not assigned to this worker");
  if (h.result().attempt() != t.attempts) return stale("result of an earlier attempt");
  if (h.round() != t.spec.round || h.job_id() != pool_.job_id() ||
      h.result().kind() != t.spec.kind) {
    return attempt_failed(t, TaskErrorKind::Invalid,
                          fmt::format("worker {} returned a result for a different round, job or kind",
                                      worker));
  }
  if (t.spec.validate) {
    std::string why = t.spec.validate(m);
    if (!why.empty()) {
      return attempt_failed(t, TaskErrorKind::Invalid,
                            fmt::format("invalid result from {}: {}", worker, why));
    }
  }
  succeed(t, m);
}

void TaskDispatcher::enforce_deadlines() {
  const auto now = clock_.now();
  std::vector<uint64_t> expired;
  for (auto& [id, b] : batches_) {
    if (!b.closed && !b.implicit && b.spec.deadline.count() > 0 && now - b.opened >= b.spec.deadline)
      expired.push_back(id);
  }
  for (uint64_t id : expired) {
    close_batch(id, fmt::format("deadline of {} ms passed", batches_.at(id).spec.deadline.count()));
  }
  for (auto& [id, t] : tasks_) {
    if (t.state != State::Running) continue;
    const milliseconds d = attempt_deadline(t);
    if (d.count() == 0 || now - t.started <= d) continue;
    // The worker keeps the slot until it answers the CANCEL; a late result is stale.
    send_cancel(t.worker, t.id, t.attempts, "attempt deadline passed");
    attempt_failed(t, TaskErrorKind::Deadline,
                   fmt::format("deadline of {} ms passed on worker {}", d.count(), t.worker));
  }
}

// ---------------------------------------------------------------- assignment

size_t TaskDispatcher::slots_in_use(const std::string& worker) const {
  auto it = workers_.find(worker);
  return it == workers_.end() ? 0 : it->second.in_flight.size();
}

std::optional<std::string> TaskDispatcher::assignee(uint64_t id) const {
  auto it = tasks_.find(id);
  if (it == tasks_.end() || it->second.state != State::Running) return std::nullopt;
  return it->second.worker;
}

size_t TaskDispatcher::unfinished() const {
  size_t n = 0;
  for (const auto& [id, t] : tasks_) {
    if ((t.state == State::Queued || t.state == State::Running) && !batches_.at(t.batch).closed) ++n;
  }
  return n;
}

void TaskDispatcher::assign() {
  size_t scans = queue_.size();
  while (!queue_.empty() && scans-- > 0) {
    const uint64_t id = queue_.front();
    queue_.pop_front();
    auto tt = tasks_.find(id);
    if (tt == tasks_.end() || tt->second.state != State::Queued) continue;
    if (!try_assign(tt->second)) queue_.push_back(id);
  }
}

bool TaskDispatcher::try_assign(Task& t) {
  const Batch& b = batches_.at(t.batch);
  if (b.closed) return true;
  const auto& live = pool_.workers();
  auto has_room = [&](const std::string& id, const WorkerInfo& w) {
    const WorkerState& s = workers_[id];
    return !s.draining && s.in_flight.size() < capacity(w);
  };
  if (!t.spec.target.empty()) {
    auto it = live.find(t.spec.target);
    if (it == live.end()) {
      mark_missing(t, Missing::Lost, TaskErrorKind::Lost,
                   "worker " + t.spec.target + " is not connected");
      return true;
    }
    if (!offers(it->second, t.spec.kind)) {
      mark_missing(t, Missing::Failed, TaskErrorKind::Config,
                   "worker " + t.spec.target + " has no executor for kind " + t.spec.kind);
      return true;
    }
    if (!has_room(it->first, it->second)) return false;
    send_task(t, it->first);
    return true;
  }
  // A retry goes to a worker that has not tried the task whenever one is connected, waiting
  // for it to have a free slot rather than going back to a worker where the task failed.
  bool fresh_exists = false;
  for (const auto& [wid, w] : live) {
    if (offers(w, t.spec.kind) && (!b.spec.cohort || b.spec.cohort(w)) && !t.tried.count(wid) &&
        !workers_[wid].draining) {
      fresh_exists = true;
    }
  }
  const std::string* pick = nullptr;
  size_t pick_free = 0;
  for (const auto& [wid, w] : live) {
    if (!offers(w, t.spec.kind) || !has_room(wid, w)) continue;
    if (b.spec.cohort && !b.spec.cohort(w)) continue;
    if (fresh_exists && t.tried.count(wid)) continue;
    const size_t free = capacity(w) - workers_[wid].in_flight.size();
    if (!pick || free > pick_free) {  // the most free slots; ties by identity order
      pick = &wid;
      pick_free = free;
    }
  }
  if (!pick) return false;
  send_task(t, *pick);
  return true;
}

bool TaskDispatcher::cache_holds(WorkerState& w, const std::string& key) {
  for (auto it = w.cache.begin(); it != w.cache.end(); ++it) {
    if (it->first == key) {
      w.cache.splice(w.cache.begin(), w.cache, it);  // touch: most recent
      return true;
    }
  }
  return false;
}

void TaskDispatcher::cache_insert(WorkerState& w, uint64_t cap, const std::string& key,
                                  uint64_t bytes, const std::string& replaces) {
  // The same rule as the worker's cache (worker.cpp): drop the entries `replaces` supersedes,
  // replace, put first, evict the least recently used entries until the total fits; an entry
  // larger than the cache is not kept.
  w.cache.remove_if([&](const auto& c) {
    return c.first == key || (!replaces.empty() && c.first.compare(0, replaces.size(), replaces) == 0);
  });
  if (bytes > cap) return;
  w.cache.emplace_front(key, bytes);
  uint64_t total = 0;
  for (const auto& c : w.cache) total += c.second;
  while (total > cap) {
    total -= w.cache.back().second;
    w.cache.pop_back();
  }
}

void TaskDispatcher::send_task(Task& t, const std::string& worker, bool resend) {
  const WorkerInfo& info = pool_.workers().at(worker);
  WorkerState& ws = workers_[worker];
  Message task;
  task.header.set_type(wire::TASK);
  task.header.set_task_id(t.id);
  task.header.set_round(t.spec.round);
  auto* body = task.header.mutable_task();
  body->set_kind(t.spec.kind);
  const uint32_t attempt = resend ? t.attempts : t.attempts + 1;
  body->set_attempt(attempt);
  body->set_params(t.spec.params);
  body->set_deadline_ms(static_cast<uint32_t>(attempt_deadline(t).count()));
  bool attach = false;
  if (t.spec.shared) {
    body->set_shared_key(t.spec.shared->key);
    attach = !cache_holds(ws, t.spec.shared->key);
    if (attach) {
      task.tensors = t.spec.shared->tensors;
      body->set_shared_count(static_cast<uint32_t>(t.spec.shared->tensors.size()));
      body->set_shared_replaces(t.spec.shared->replaces);
    }
  }
  task.tensors.insert(task.tensors.end(), t.spec.inputs.begin(), t.spec.inputs.end());
  t.attempts = attempt;
  t.tried.insert(worker);
  t.worker = worker;
  if (!pool_.send(worker, std::move(task))) {
    ws.in_flight.erase({t.id, attempt});
    ws.cache.remove_if([&](const auto& c) { return t.spec.shared && c.first == t.spec.shared->key; });
    return attempt_failed(t, TaskErrorKind::Lost, fmt::format("could not send to worker {}", worker));
  }
  if (attach) {
    cache_insert(ws, info.hello.shared_cache_bytes(), t.spec.shared->key, t.spec.shared->bytes(),
                 t.spec.shared->replaces);
    ++shared_sends_;
  }
  if (resend) return;  // the attempt keeps its start time and deadline
  t.state = State::Running;
  t.started = clock_.now();
  ws.in_flight.insert({t.id, t.attempts});
  if (metrics_) metrics_->dispatched.inc();
  log::debug("protocol: task {} ({}) attempt {} -> {}", t.id, t.spec.kind, t.attempts, worker);
}

void TaskDispatcher::send_cancel(const std::string& worker, uint64_t task_id, uint32_t attempt,
                                 const std::string& why) {
  Message c;
  c.header.set_type(wire::CANCEL);
  c.header.set_task_id(task_id);
  auto tt = tasks_.find(task_id);
  if (tt != tasks_.end()) c.header.set_round(tt->second.spec.round);
  c.header.mutable_cancel()->set_attempt(attempt);
  c.header.mutable_cancel()->set_reason(why);
  if (pool_.send(worker, std::move(c))) ++cancels_sent_;
}

}  // namespace conflux::protocol
