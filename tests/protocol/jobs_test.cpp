// The job layer's policies on the WorkerPool interface, with a scripted pool and a manual clock:
// no sockets, no sleeps. Each test plays the workers' side by hand (joins, results, errors,
// deaths) and checks what the dispatcher sends and what reaches the sink and the report.
// The same policies over real sockets and processes: dispatch_test.cpp, process_test.cpp.
#include <conflux/core/error.h>
#include <conflux/core/metrics_registry.h>
#include <conflux/protocol/dispatcher.h>

#include <gtest/gtest.h>

#include <deque>

namespace conflux::protocol {
namespace {

using namespace std::chrono_literals;

class ManualClock final : public Clock {
 public:
  time_point now() const override { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }

 private:
  time_point now_{};
};

struct Sent {
  std::string worker;
  Message msg;
};

// A WorkerPool whose events the test scripts and whose sends it records.
class ScriptedPool final : public WorkerPool {
 public:
  std::vector<ServerEvent> poll(std::chrono::milliseconds) override {
    std::vector<ServerEvent> out(events_.begin(), events_.end());
    events_.clear();
    return out;
  }
  bool send(const std::string& worker, Message msg) override {
    if (!workers_.count(worker)) return false;
    msg.header.set_job_id(job_);
    sent.push_back(Sent{worker, std::move(msg)});
    return true;
  }
  const std::map<std::string, WorkerInfo>& workers() const override { return workers_; }
  const std::string& job_id() const override { return job_; }

  void join(const std::string& id, uint32_t slots = 1, uint64_t cache_bytes = 0,
            std::vector<std::string> kinds = {"k"}) {
    WorkerInfo w;
    w.identity = id;
    w.hello.set_slots(slots);
    w.hello.set_shared_cache_bytes(cache_bytes);
    for (auto& k : kinds) w.hello.add_task_kinds(k);
    workers_[id] = w;
    events_.push_back(ServerEvent{ServerEvent::Joined, id, {}, ""});
  }
  void die(const std::string& id) {
    workers_.erase(id);
    events_.push_back(ServerEvent{ServerEvent::Died, id, {}, "heartbeat deadline passed"});
  }
  // A RESULT for the given TASK message, carrying one tensor "out" with `value`.
  void result(const Sent& task, int64_t value = 1, uint32_t attempt = 0) {
    Message r;
    r.header.set_type(wire::RESULT);
    r.header.set_job_id(job_);
    r.header.set_task_id(task.msg.header.task_id());
    r.header.set_round(task.msg.header.round());
    r.header.mutable_result()->set_kind(task.msg.header.task().kind());
    r.header.mutable_result()->set_attempt(attempt ? attempt : task.msg.header.task().attempt());
    r.header.mutable_result()->set_summary("{}");
    r.tensors.push_back(Tensor::from_vector("out", DType::I64, {1}, std::vector<int64_t>{value}));
    events_.push_back(ServerEvent{ServerEvent::Result, task.worker, std::move(r), ""});
  }
  void error(const Sent& task, ErrorCode code, wire::TaskErrorKind kind, const std::string& text) {
    Message e = make_error(code, text);
    e.header.set_job_id(job_);
    e.header.set_task_id(task.msg.header.task_id());
    e.header.mutable_error()->set_attempt(task.msg.header.task().attempt());
    e.header.mutable_error()->set_kind(kind);
    events_.push_back(ServerEvent{ServerEvent::TaskError, task.worker, std::move(e), ""});
  }
  // Sent messages of one type, in order, removed from the record.
  std::vector<Sent> take(MessageType type) {
    std::vector<Sent> out;
    for (auto it = sent.begin(); it != sent.end();) {
      if (it->msg.header.type() == type) {
        out.push_back(std::move(*it));
        it = sent.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }

  std::deque<Sent> sent;

 private:
  std::string job_ = "job";
  std::map<std::string, WorkerInfo> workers_;
  std::deque<ServerEvent> events_;
};

TaskSpec task(std::string target = "") {
  TaskSpec t;
  t.kind = "k";
  t.target = std::move(target);
  return t;
}

int64_t value_of(const TaskResult& r) {
  int64_t v;
  std::memcpy(&v, r.outputs.at(0).data(), 8);
  return v;
}

struct Fixture : ::testing::Test {
  ScriptedPool pool;
  ManualClock clock;
  TaskDispatcher d{pool, DispatcherOptions{3, 0ms}, clock};
  std::vector<TaskResult> results;
  ResultSink sink = [this](TaskResult&& r) { results.push_back(std::move(r)); };
  void step() { d.step(0ms); }
  // One single-task batch per entry of `order` (each naming those shared inputs), run to its end
  // on the one joined worker; returns the TASK headers as sent.
  std::vector<wire::Task> send_one_task_each(const std::vector<std::shared_ptr<SharedInputs>>& order) {
    std::vector<wire::Task> out;
    for (const auto& s : order) {
      TaskSpec t = task();
      t.shared = s;
      BatchSpec b;
      b.tasks = {t};
      const uint64_t id = d.open(std::move(b), sink);
      step();
      auto sent = pool.take(wire::TASK);
      EXPECT_EQ(sent.size(), 1u);
      if (sent.empty()) break;
      EXPECT_EQ(sent[0].msg.header.task().shared_key(), s->key);
      out.push_back(sent[0].msg.header.task());
      pool.result(sent[0]);
      step();
      d.take_report(id);
    }
    return out;
  }
};

TEST_F(Fixture, TargetedTasksRunOnlyOnTheirWorkerAndAreLostWithIt) {
  pool.join("alice");
  pool.join("bob");
  step();
  BatchSpec b;
  b.tasks = {task("alice"), task("bob")};
  const uint64_t id = d.open(std::move(b), sink);
  step();
  auto sent = pool.take(wire::TASK);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].worker, "alice");
  EXPECT_EQ(sent[1].worker, "bob");
  pool.result(sent[0], 7);
  pool.die("bob");  // bob is lost: its task must not go to alice
  step();
  EXPECT_TRUE(pool.take(wire::TASK).empty());
  ASSERT_FALSE(d.is_open(id));
  const BatchReport r = d.take_report(id);
  EXPECT_FALSE(r.quorum_met);
  EXPECT_EQ(r.succeeded, 1u);
  ASSERT_EQ(r.missing.size(), 1u);
  EXPECT_EQ(r.missing[0].index, 1u);
  EXPECT_EQ(r.missing[0].why, Missing::Lost);
  EXPECT_EQ(r.missing[0].worker, "bob");
  EXPECT_NE(r.missing[0].detail.find("worker bob died"), std::string::npos) << r.missing[0].detail;
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].index, 0u);
  EXPECT_EQ(value_of(results[0]), 7);
}

TEST_F(Fixture, TargetNotConnectedIsLostAtOnce) {
  pool.join("alice");
  step();
  BatchSpec b;
  b.tasks = {task("carol")};
  const uint64_t id = d.open(std::move(b), sink);
  step();
  EXPECT_TRUE(pool.take(wire::TASK).empty());
  const BatchReport r = d.take_report(id);
  ASSERT_EQ(r.missing.size(), 1u);
  EXPECT_EQ(r.missing[0].why, Missing::Lost);
  EXPECT_EQ(r.missing[0].detail, "worker carol is not connected");
}

TEST_F(Fixture, QuorumWithDeadlineClosesWithWhatItHasAndCancelsStragglers) {
  for (auto w : {"a", "b", "c", "d"}) pool.join(w);
  step();
  BatchSpec b;
  b.tasks = {task("a"), task("b"), task("c"), task("d")};
  b.quorum = 2;
  b.deadline = 10s;
  b.round = 5;
  const uint64_t id = d.open(std::move(b), sink);
  step();
  auto sent = pool.take(wire::TASK);
  ASSERT_EQ(sent.size(), 4u);
  for (auto& s : sent) EXPECT_EQ(s.msg.header.round(), 5u);
  pool.result(sent[0], 1);
  pool.result(sent[2], 3);
  step();
  EXPECT_TRUE(d.is_open(id));  // quorum reached, but the batch waits for all until the deadline
  clock.advance(9999ms);
  step();
  EXPECT_TRUE(d.is_open(id));
  clock.advance(1ms);
  step();
  ASSERT_FALSE(d.is_open(id));
  auto cancels = pool.take(wire::CANCEL);
  ASSERT_EQ(cancels.size(), 2u);
  EXPECT_EQ(cancels[0].worker, "b");
  EXPECT_EQ(cancels[1].worker, "d");
  EXPECT_EQ(cancels[0].msg.header.task_id(), sent[1].msg.header.task_id());
  EXPECT_EQ(cancels[0].msg.header.cancel().attempt(), 1u);
  const BatchReport r = d.take_report(id);
  EXPECT_TRUE(r.quorum_met);
  EXPECT_EQ(r.needed, 2u);
  EXPECT_EQ(r.closed_because, "deadline of 10000 ms passed");
  ASSERT_EQ(r.missing.size(), 2u);
  EXPECT_EQ(r.missing[0].why, Missing::Cancelled);
  EXPECT_EQ(r.missing[1].index, 3u);
  EXPECT_EQ(r.elapsed, 10000ms);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(value_of(results[0]) + value_of(results[1]), 4);
  // The straggler's late result is stale: refused, and its slot is free again.
  pool.result(sent[1], 2);
  step();
  auto stale = pool.take(wire::ERROR);
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_EQ(stale[0].worker, "b");
  EXPECT_EQ(stale[0].msg.header.error().code(), wire::STALE_RESULT);
  EXPECT_EQ(d.stale_results(), 1u);
  EXPECT_EQ(results.size(), 2u);
  EXPECT_EQ(d.slots_in_use("b"), 0u);
  EXPECT_EQ(d.slots_in_use("d"), 1u);  // d has not answered its CANCEL yet
}

TEST_F(Fixture, CloseAtQuorumAndUnreachableQuorum) {
  for (auto w : {"a", "b", "c"}) pool.join(w);
  step();
  BatchSpec b;
  b.tasks = {task("a"), task("b"), task("c")};
  b.quorum = 2;
  b.close_at_quorum = true;
  const uint64_t first = d.open(std::move(b), sink);
  step();
  auto sent = pool.take(wire::TASK);
  pool.result(sent[1]);
  pool.result(sent[2]);
  step();
  ASSERT_FALSE(d.is_open(first));
  auto r = d.take_report(first);
  EXPECT_EQ(r.closed_because, "quorum reached");
  EXPECT_EQ(pool.take(wire::CANCEL).size(), 1u);
  // Next round: two of three fail with data errors, so a quorum of 2 cannot be reached.
  pool.error(sent[0], wire::TASK_CANCELLED, wire::KIND_CANCELLED, "cancelled");  // frees a
  step();
  BatchSpec b2;
  b2.tasks = {task("a"), task("b"), task("c")};
  b2.quorum = 2;
  b2.round = 2;
  const uint64_t second = d.open(std::move(b2), sink);
  step();
  sent = pool.take(wire::TASK);
  ASSERT_EQ(sent.size(), 3u);
  pool.error(sent[0], wire::TASK_FAILED, wire::KIND_DATA, "row 3 has token 999");
  pool.error(sent[1], wire::TASK_FAILED, wire::KIND_CONFIG, "bad lr");
  step();
  ASSERT_FALSE(d.is_open(second));
  r = d.take_report(second);
  EXPECT_EQ(r.closed_because, "quorum unreachable");
  EXPECT_FALSE(r.quorum_met);
  ASSERT_EQ(r.missing.size(), 3u);
  EXPECT_EQ(r.missing[0].why, Missing::Failed);
  EXPECT_EQ(r.missing[0].error_kind, TaskErrorKind::Data);
  EXPECT_EQ(r.missing[1].error_kind, TaskErrorKind::Config);
  EXPECT_EQ(r.missing[2].why, Missing::Cancelled);
  EXPECT_TRUE(pool.take(wire::TASK).empty());  // data and config errors are not retried
}

TEST_F(Fixture, ErrorKindsDecideRetries) {
  pool.join("a");
  pool.join("b");
  step();
  BatchSpec b;
  b.tasks = {task(), task()};
  const uint64_t id = d.open(std::move(b), sink);
  step();
  auto sent = pool.take(wire::TASK);
  ASSERT_EQ(sent.size(), 2u);
  // Internal on one worker: retried, preferring the other worker; resource: retried too.
  pool.error(sent[0], wire::TASK_FAILED, wire::KIND_INTERNAL, "segfault-ish");
  pool.error(sent[1], wire::TASK_FAILED, wire::KIND_RESOURCE, "out of memory");
  step();
  auto again = pool.take(wire::TASK);
  ASSERT_EQ(again.size(), 2u);
  for (const auto& a : again) {  // each goes to the worker that has not tried it
    const Sent& before = a.msg.header.task_id() == sent[0].msg.header.task_id() ? sent[0] : sent[1];
    EXPECT_NE(a.worker, before.worker);
    EXPECT_EQ(a.msg.header.task().attempt(), 2u);
  }
  // A busy worker or a missing cache entry costs no attempt.
  pool.error(again[0], wire::WORKER_BUSY, wire::KIND_RESOURCE, "busy");
  pool.result(again[1], 5);
  step();
  auto third = pool.take(wire::TASK);
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].msg.header.task().attempt(), 2u);
  pool.error(third[0], wire::TASK_FAILED, wire::KIND_INTERNAL, "again");
  step();
  auto fourth = pool.take(wire::TASK);
  ASSERT_EQ(fourth.size(), 1u);
  EXPECT_EQ(fourth[0].msg.header.task().attempt(), 3u);
  pool.error(fourth[0], wire::TASK_FAILED, wire::KIND_INTERNAL, "and again");
  step();
  ASSERT_FALSE(d.is_open(id));
  auto r = d.take_report(id);
  ASSERT_EQ(r.missing.size(), 1u);
  EXPECT_EQ(r.missing[0].attempts, 3u);
  EXPECT_EQ(r.missing[0].error_kind, TaskErrorKind::Internal);
  EXPECT_NE(r.missing[0].detail.find("gave up after 3 attempt(s); last:"), std::string::npos);
  EXPECT_NE(r.missing[0].detail.find("and again"), std::string::npos);
}

// DispatcherOptions::metrics: the conflux_coordinator_* series follow the dispatcher's state.
TEST(DispatcherMetrics, SeriesFollowTasksWorkersAndFailures) {
  ScriptedPool pool;
  ManualClock clock;
  metrics::Registry reg;
  DispatcherOptions o{3, 0ms};
  o.metrics = &reg;
  TaskDispatcher d(pool, o, clock);
  auto text = [&] { return reg.render(metrics::Format::Prometheus); };
  pool.join("a", 2);
  pool.join("b", 1);
  d.step(0ms);
  BatchSpec b;
  b.tasks = {task(), task(), task(), task("c")};  // c never connects: lost at once
  b.quorum = 2;
  std::vector<TaskResult> results;
  const uint64_t id = d.open(std::move(b), [&](TaskResult&& r) { results.push_back(std::move(r)); });
  d.step(0ms);
  auto sent = pool.take(wire::TASK);
  ASSERT_EQ(sent.size(), 3u);
  const std::string t = text();
  EXPECT_NE(t.find("conflux_coordinator_tasks_in_flight 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("conflux_coordinator_tasks_queued 0\n"), std::string::npos) << t;
  EXPECT_NE(t.find("conflux_coordinator_workers_connected 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("conflux_coordinator_worker_slots 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("conflux_coordinator_worker_joins_total 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("conflux_coordinator_task_attempts_total 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("conflux_coordinator_tasks_completed_total{task=\"k\"} 0\n"), std::string::npos) << t;
  EXPECT_NE(t.find("conflux_coordinator_tasks_missing_total{reason=\"lost\"} 1\n"), std::string::npos) << t;
  // One result, one data error (not retried), one worker death (retried on a), then success.
  pool.result(sent[0]);
  pool.error(sent[1], wire::TASK_FAILED, wire::KIND_DATA, "bad rows");
  const Sent* on_b = sent[2].worker == "b" ? &sent[2] : sent[1].worker == "b" ? &sent[1] : &sent[0];
  ASSERT_EQ(on_b, &sent[2]) << "expected the third task on b";
  pool.die("b");
  d.step(0ms);
  auto again = pool.take(wire::TASK);
  ASSERT_EQ(again.size(), 1u);
  pool.result(again[0]);
  d.step(0ms);
  ASSERT_FALSE(d.is_open(id));
  const std::string u = text();
  EXPECT_NE(u.find("conflux_coordinator_tasks_completed_total{task=\"k\"} 2\n"), std::string::npos) << u;
  EXPECT_NE(u.find("conflux_coordinator_task_attempts_failed_total{error=\"data\"} 1\n"), std::string::npos) << u;
  EXPECT_NE(u.find("conflux_coordinator_task_attempts_failed_total{error=\"lost_worker\"} 1\n"), std::string::npos)
      << u;
  EXPECT_NE(u.find("conflux_coordinator_tasks_missing_total{reason=\"failed\"} 1\n"), std::string::npos) << u;
  EXPECT_NE(u.find("conflux_coordinator_worker_losses_total{reason=\"died\"} 1\n"), std::string::npos) << u;
  EXPECT_NE(u.find("conflux_coordinator_task_attempts_total 4\n"), std::string::npos) << u;
  EXPECT_NE(u.find("conflux_coordinator_tasks_in_flight 0\n"), std::string::npos) << u;
  EXPECT_NE(u.find("conflux_coordinator_workers_connected 1\n"), std::string::npos) << u;
  EXPECT_EQ(results.size(), 2u);
}

TEST_F(Fixture, UntargetedTaskOfADeadWorkerIsRetriedElsewhere) {
  pool.join("a");
  step();
  BatchSpec b;
  b.tasks = {task()};
  const uint64_t id = d.open(std::move(b), sink);
  step();
  auto sent = pool.take(wire::TASK);
  ASSERT_EQ(sent.size(), 1u);
  pool.die("a");
  pool.join("b");
  step();
  auto again = pool.take(wire::TASK);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].worker, "b");
  pool.result(again[0], 9);
  step();
  EXPECT_TRUE(d.take_report(id).quorum_met);
  EXPECT_EQ(results.at(0).attempts, 2u);
}

TEST_F(Fixture, SlotsBoundTasksInFlightAndCancelledTasksHoldTheirSlot) {
  pool.join("a", 2);
  step();
  BatchSpec b;
  b.tasks = {task(), task(), task(), task()};
  b.attempt_deadline = 1s;
  const uint64_t id = d.open(std::move(b), sink);
  step();
  auto sent = pool.take(wire::TASK);
  ASSERT_EQ(sent.size(), 2u);  // two slots
  EXPECT_EQ(d.slots_in_use("a"), 2u);
  for (auto& s : sent) EXPECT_EQ(s.msg.header.task().deadline_ms(), 1000u);
  pool.result(sent[0]);
  step();
  auto more = pool.take(wire::TASK);
  ASSERT_EQ(more.size(), 1u);
  // The second task passes its deadline: CANCEL, and it keeps its slot until a answers.
  clock.advance(1001ms);
  step();
  EXPECT_EQ(pool.take(wire::CANCEL).size(), 2u);  // sent[1] and more[0] both expired
  EXPECT_TRUE(pool.take(wire::TASK).empty());
  EXPECT_EQ(d.slots_in_use("a"), 2u);
  pool.error(sent[1], wire::TASK_CANCELLED, wire::KIND_CANCELLED, "cancelled");
  step();
  auto retried = pool.take(wire::TASK);
  ASSERT_EQ(retried.size(), 1u);
  EXPECT_EQ(retried[0].msg.header.task().attempt(), 2u);
  EXPECT_TRUE(d.is_open(id));
}

TEST_F(Fixture, CohortRestrictsUntargetedTasks) {
  pool.join("a");
  pool.join("b");
  step();
  BatchSpec b;
  b.tasks = {task(), task()};
  b.cohort = [](const WorkerInfo& w) { return w.identity == "b"; };
  d.open(std::move(b), sink);
  step();
  auto sent = pool.take(wire::TASK);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].worker, "b");
  pool.result(sent[0]);
  step();
  sent = pool.take(wire::TASK);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].worker, "b");
}

TEST_F(Fixture, SharedInputsFollowTheWorkersLruCache) {
  pool.join("a", 1, 100);  // room for 100 bytes of shared inputs
  step();
  auto shared = [](const std::string& key, int64_t n) {
    auto s = std::make_shared<SharedInputs>();
    s->key = key;
    s->tensors = {Tensor::allocate("w", DType::U8, {n})};
    return s;
  };
  auto m1 = shared("m1", 60), m2 = shared("m2", 30), m3 = shared("m3", 50);
  std::vector<std::shared_ptr<SharedInputs>> order{m1, m2, m1, m3, m2, m1, shared("big", 101)};
  std::vector<uint32_t> attached;
  for (const auto& task_header : send_one_task_each(order)) attached.push_back(task_header.shared_count());
  // m1 sent; m2 sent (90 bytes held); m1 cached; m3 evicts m2 (LRU) -> m1+m3 = 110 > 100, so m1
  // goes too; m2 sent again; m1 sent again; "big" exceeds the cache and is sent every time.
  EXPECT_EQ(attached, (std::vector<uint32_t>{1, 1, 0, 1, 1, 1, 1}));
  EXPECT_EQ(d.shared_sends(), 6u);
}

// SharedInputs::replaces (a key prefix): caching a new round's model drops the older ones, in the
// coordinator's mirror as on the worker, so the next task naming an old key carries it again
// while an entry of another family stays cached.
TEST_F(Fixture, SharedInputsReplaceTheirFamily) {
  pool.join("a", 1, 1000);
  step();
  auto shared = [](const std::string& key, const std::string& replaces) {
    auto s = std::make_shared<SharedInputs>();
    s->key = key;
    s->replaces = replaces;
    s->tensors = {Tensor::allocate("w", DType::U8, {10})};
    return s;
  };
  auto other = shared("data", ""), r1 = shared("global-r1", "global-"), r2 = shared("global-r2", "global-");
  std::vector<std::shared_ptr<SharedInputs>> order{other, r1, r2, r1, other, r2};
  std::vector<uint32_t> attached;
  std::vector<std::string> replaces;
  for (const auto& task_header : send_one_task_each(order)) {
    attached.push_back(task_header.shared_count());
    replaces.push_back(task_header.shared_replaces());
  }
  // data sent; r1 sent; r2 sent (drops r1); r1 sent again (drops r2); data still cached; r2 again.
  EXPECT_EQ(attached, (std::vector<uint32_t>{1, 1, 1, 1, 0, 1}));
  EXPECT_EQ(replaces, (std::vector<std::string>{"", "global-", "global-", "global-", "", "global-"}));
}

TEST_F(Fixture, ImplicitBatchKeepsSubmitAndRun) {
  pool.join("a");
  step();
  const uint64_t t1 = d.submit(task());
  step();
  auto sent = pool.take(wire::TASK);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(d.assignee(t1), std::optional<std::string>("a"));
  pool.result(sent[0], 3);
  auto out = d.run(1s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].ok);
  EXPECT_EQ(out[0].task_id, t1);
  EXPECT_EQ(d.unfinished(), 0u);
}

TEST_F(Fixture, AQuorumLargerThanTheBatchIsAUsageError) {
  BatchSpec b;
  b.tasks = {task()};
  b.quorum = 2;
  EXPECT_THROW(d.open(std::move(b), sink), UsageError);
}

}  // namespace
}  // namespace conflux::protocol
