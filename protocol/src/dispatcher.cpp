// TaskDispatcher: queueing, assignment, validation of results, retries and deadlines.
#include <conflux/protocol/dispatcher.h>

#include <conflux/core/error.h>
#include <conflux/core/log.h>

#include <algorithm>

namespace conflux::protocol {
namespace {
using Clock = std::chrono::steady_clock;
}

TaskDispatcher::TaskDispatcher(Server& server, DispatcherOptions options)
    : server_(server), options_(options) {
  if (options_.max_attempts == 0) options_.max_attempts = 1;
}

uint64_t TaskDispatcher::submit(TaskSpec spec) {
  if (spec.kind.empty()) CONFLUX_THROW(UsageError, "a task needs a kind");
  uint64_t id = next_id_++;
  TaskState st;
  if (spec.deadline.count() == 0) spec.deadline = options_.default_deadline;
  st.spec = std::move(spec);
  st.outcome.task_id = id;
  tasks_.emplace(id, std::move(st));
  queue_.push_back(id);
  return id;
}

void TaskDispatcher::step(std::chrono::milliseconds timeout) {
  assign();
  for (ServerEvent& ev : server_.poll(timeout)) apply(ev);
  enforce_deadlines();
  assign();
}

std::vector<TaskOutcome> TaskDispatcher::run(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (unfinished() > 0) {
    auto now = Clock::now();
    if (now >= deadline) {
      std::string pending;
      for (auto& [id, t] : tasks_) {
        if (!t.finished) {
          pending += fmt::format(" {}({}{})", id, t.spec.kind,
                                 t.assigned.empty() ? ", queued" : ", on " + t.assigned);
        }
      }
      CONFLUX_THROW(CommError, "{} task(s) unfinished after {} ms with {} live worker(s):{}",
                    unfinished(), timeout.count(), server_.workers().size(), pending);
    }
    step(std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now),
                  std::chrono::milliseconds(200)));
  }
  std::vector<TaskOutcome> out;
  for (auto& [id, t] : tasks_) out.push_back(std::move(t.outcome));
  tasks_.clear();
  finished_count_ = 0;
  return out;
}

bool TaskDispatcher::wait_for_workers(size_t n, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (server_.workers().size() < n) {
    auto now = Clock::now();
    if (now >= deadline) return false;
    step(std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now),
                  std::chrono::milliseconds(100)));
  }
  return true;
}

std::optional<std::string> TaskDispatcher::assignee(uint64_t id) const {
  auto it = tasks_.find(id);
  if (it == tasks_.end() || it->second.assigned.empty()) return std::nullopt;
  return it->second.assigned;
}

void TaskDispatcher::finish(uint64_t id, bool ok, const std::string& error) {
  TaskState& t = tasks_.at(id);
  if (t.finished) return;
  t.finished = true;
  t.assigned.clear();
  t.outcome.ok = ok;
  t.outcome.error = error;
  ++finished_count_;
  if (!ok) log::warn("protocol: task {} ({}) failed: {}", id, t.spec.kind, error);
  if (on_complete) on_complete(t.outcome);
}

void TaskDispatcher::retry(uint64_t id, const std::string& why, bool charge) {
  TaskState& t = tasks_.at(id);
  if (t.finished) return;
  t.assigned.clear();
  if (!charge && t.outcome.attempts > 0) --t.outcome.attempts;  // not the task's fault
  if (t.outcome.attempts >= options_.max_attempts) {
    finish(id, false, fmt::format("gave up after {} attempt(s); last: {}", t.outcome.attempts, why));
    return;
  }
  log::info("protocol: task {} re-queued ({})", id, why);
  queue_.push_front(id);
}

void TaskDispatcher::apply(ServerEvent& ev) {
  if (on_event) on_event(ev);
  if (ev.kind == ServerEvent::Joined || ev.kind == ServerEvent::Died ||
      ev.kind == ServerEvent::Left) {
    worker_shared_.erase(ev.worker);  // a new session starts with an empty cache
    draining_.erase(ev.worker);
  }
  switch (ev.kind) {
    case ServerEvent::Joined:
      return;
    case ServerEvent::Died:
    case ServerEvent::Left: {
      auto it = busy_.find(ev.worker);
      if (it == busy_.end()) return;
      uint64_t id = it->second;
      busy_.erase(it);
      auto tt = tasks_.find(id);
      if (tt != tasks_.end() && tt->second.assigned == ev.worker) {
        retry(id, fmt::format("worker {} {}: {}", ev.worker,
                              ev.kind == ServerEvent::Died ? "died" : "left", ev.reason));
      }
      return;
    }
    case ServerEvent::TaskError: {
      const auto& h = ev.message.header;
      auto it = busy_.find(ev.worker);
      if (it != busy_.end() && it->second == h.task_id()) busy_.erase(it);
      auto tt = tasks_.find(h.task_id());
      if (tt == tasks_.end() || tt->second.assigned != ev.worker ||
          h.error().attempt() != tt->second.outcome.attempts) {
        return;  // about an attempt we no longer wait for
      }
      if (h.error().code() == wire::TASK_ABANDONED || h.error().code() == wire::SHUTTING_DOWN) {
        draining_.insert(ev.worker);  // it is leaving: give it nothing new
      }
      if (h.error().code() == wire::UNKNOWN_SHARED) {
        worker_shared_.erase(ev.worker);
        retry(h.task_id(), fmt::format("worker {} lacks the shared inputs", ev.worker), false);
        return;
      }
      retry(h.task_id(), fmt::format("worker {}: {}: {}", ev.worker,
                                     error_code_name(h.error().code()), h.error().message()));
      return;
    }
    case ServerEvent::Result:
      on_result(ev.worker, ev.message);
      return;
  }
}

void TaskDispatcher::on_result(const std::string& worker, Message& m) {
  const auto& h = m.header;
  auto it = busy_.find(worker);
  if (it != busy_.end() && it->second == h.task_id()) busy_.erase(it);
  auto tt = tasks_.find(h.task_id());
  auto stale = [&](const std::string& why) {
    log::warn("protocol: result for task {} from {} ignored: {}", h.task_id(), worker, why);
    Message e = make_error(wire::UNKNOWN_TASK, why, h.sequence());
    e.header.set_task_id(h.task_id());
    server_.send(worker, std::move(e));
  };
  if (tt == tasks_.end() || tt->second.finished) return stale("no such unfinished task");
  TaskState& t = tt->second;
  if (t.assigned != worker) return stale("task is not assigned to this worker");
  if (h.result().attempt() != t.outcome.attempts) return stale("result of an earlier attempt");
  if (h.round() != t.spec.round || h.job_id() != server_.job_id() ||
      h.result().kind() != t.spec.kind) {
    return retry(h.task_id(), fmt::format("worker {} returned a result for a different round, "
                                          "job or kind", worker));
  }
  if (t.spec.validate) {
    std::string why = t.spec.validate(m);
    if (!why.empty()) return retry(h.task_id(), fmt::format("invalid result from {}: {}", worker, why));
  }
  t.outcome.worker = worker;
  t.outcome.outputs = std::move(m.tensors);
  t.outcome.summary = h.result().summary();
  finish(h.task_id(), true, "");
}

void TaskDispatcher::enforce_deadlines() {
  auto now = Clock::now();
  for (auto& [id, t] : tasks_) {
    if (t.finished || t.assigned.empty() || t.spec.deadline.count() == 0) continue;
    if (now - t.started > t.spec.deadline) {
      // The worker stays marked busy until it reports; its late result will be refused.
      retry(id, fmt::format("deadline of {} ms passed on worker {}", t.spec.deadline.count(),
                            t.assigned));
    }
  }
}

void TaskDispatcher::assign() {
  // Drop bookkeeping for workers that are gone.
  for (auto it = busy_.begin(); it != busy_.end();) {
    it = server_.workers().count(it->first) ? std::next(it) : busy_.erase(it);
  }
  size_t scans = queue_.size();
  while (!queue_.empty() && scans-- > 0) {
    uint64_t id = queue_.front();
    queue_.pop_front();
    TaskState& t = tasks_.at(id);
    if (t.finished) continue;
    const std::string* pick = nullptr;
    bool pick_fresh = false;
    for (const auto& [wid, w] : server_.workers()) {
      if (busy_.count(wid) || draining_.count(wid)) continue;
      const auto& kinds = w.hello.task_kinds();
      if (std::find(kinds.begin(), kinds.end(), t.spec.kind) == kinds.end()) continue;
      bool fresh = !t.tried.count(wid);
      if (!pick || (fresh && !pick_fresh)) {
        pick = &wid;
        pick_fresh = fresh;
      }
    }
    if (!pick) {
      queue_.push_back(id);
      continue;
    }
    std::string worker = *pick;
    Message task;
    task.header.set_type(wire::TASK);
    task.header.set_task_id(id);
    task.header.set_round(t.spec.round);
    auto* b = task.header.mutable_task();
    b->set_kind(t.spec.kind);
    b->set_attempt(t.outcome.attempts + 1);
    b->set_params(t.spec.params);
    b->set_deadline_ms(static_cast<uint32_t>(t.spec.deadline.count()));
    if (t.spec.shared) {
      b->set_shared_key(t.spec.shared->key);
      auto held = worker_shared_.find(worker);
      if (held == worker_shared_.end() || held->second != t.spec.shared->key) {
        task.tensors = t.spec.shared->tensors;
        b->set_shared_count(static_cast<uint32_t>(t.spec.shared->tensors.size()));
        worker_shared_[worker] = t.spec.shared->key;
        ++shared_sends_;
      }
    }
    task.tensors.insert(task.tensors.end(), t.spec.inputs.begin(), t.spec.inputs.end());
    ++t.outcome.attempts;
    t.tried.insert(worker);
    if (!server_.send(worker, std::move(task))) {
      retry(id, fmt::format("could not send to worker {}", worker));
      continue;
    }
    t.assigned = worker;
    t.started = Clock::now();
    busy_[worker] = id;
    log::debug("protocol: task {} ({}) attempt {} -> {}", id, t.spec.kind, t.outcome.attempts, worker);
  }
}

}  // namespace conflux::protocol
