// TaskDispatcher policies over real sockets (CURVE on 127.0.0.1) with in-process workers: data
// errors final and internal ones retried elsewhere, deadlines re-dispatching and late results
// refused, result validation hooks, tasks of a kind no worker offers timing out with a clear
// error, shared inputs, targeted tasks, quorum + deadline with stragglers cancelled, slots.
// The same policies step by step without sockets: jobs_test.cpp.
#include "net_util.h"

#include <conflux/core/error.h>

using namespace conflux;
using namespace conflux::protocol;
using namespace conflux::protocol::test;

// A coordinator with two in-process workers, alice and bob, both connected.
struct TwoWorkers : ::testing::Test {
  TestKeys k;
  Server server{server_options(k)};
  TaskDispatcher d{server};
  WorkerThread alice{worker_options(server.endpoint(), k, k.alice, "alice")};
  WorkerThread bob{worker_options(server.endpoint(), k, k.bob, "bob")};
  void SetUp() override { ASSERT_TRUE(d.wait_for_workers(2, 30s)); }
};

TEST(ProtocolDispatch, DataErrorIsNotRetried) {
  TestKeys k;
  Server server(server_options(k));
  TaskDispatcher d(server, DispatcherOptions{2, std::chrono::milliseconds(0)});
  WorkerThread alice(worker_options(server.endpoint(), k, k.alice, "alice"));
  WorkerThread bob(worker_options(server.endpoint(), k, k.bob, "bob"));
  ASSERT_TRUE(d.wait_for_workers(2, 30s));
  TaskSpec bad;
  bad.kind = "reduce_sum";
  bad.inputs = {make_tensor("a", DType::F32, {4}, 1), make_tensor("b", DType::F32, {5}, 2)};
  d.submit(bad);
  TaskSpec good = sum_task(DType::I32, {10}, 2, 3);
  d.submit(good);
  auto out = d.run(30s);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_FALSE(out[0].ok);
  EXPECT_EQ(out[0].attempts, 1u);  // bad inputs stay bad on another worker
  EXPECT_EQ(out[0].error_kind, TaskErrorKind::Data);
  EXPECT_NE(out[0].error.find("differs in dtype or shape"), std::string::npos) << out[0].error;
  ASSERT_TRUE(out[1].ok) << out[1].error;
  EXPECT_TRUE(out[1].outputs[0].equals(reduce_sum(good.inputs)));
}

TEST(ProtocolDispatch, DeadlineRedispatchesAndLateResultsAreRefused) {
  TestKeys k;
  Server server(server_options(k));
  TaskDispatcher d(server, DispatcherOptions{2, std::chrono::milliseconds(0)});
  WorkerThread alice(worker_options(server.endpoint(), k, k.alice, "alice"));
  WorkerThread bob(worker_options(server.endpoint(), k, k.bob, "bob"));
  ASSERT_TRUE(d.wait_for_workers(2, 30s));
  TaskSpec slow = sum_task(DType::F64, {8}, 2, 4, R"({"delay_ms": 1200})");
  slow.deadline = 300ms;
  d.submit(slow);
  auto out = d.run(30s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].ok);
  EXPECT_EQ(out[0].attempts, 2u);  // alice, then bob, each past the deadline
  EXPECT_NE(out[0].error.find("deadline of 300 ms passed"), std::string::npos) << out[0].error;
  EXPECT_EQ(out[0].error_kind, TaskErrorKind::Deadline);
  // Both workers finish late; their results are refused, and they become free again.
  TaskSpec next = sum_task(DType::F64, {8}, 3, 5);
  d.submit(next);
  d.submit(next);
  auto out2 = d.run(30s);
  ASSERT_EQ(out2.size(), 2u);
  for (auto& o : out2) {
    ASSERT_TRUE(o.ok) << o.error;
    EXPECT_EQ(o.attempts, 1u);
    EXPECT_TRUE(o.outputs[0].equals(reduce_sum(next.inputs)));
  }
}

TEST(ProtocolDispatch, ValidationHookRejectsAResultAndTheTaskIsRetried) {
  TestKeys k;
  Server server(server_options(k));
  TaskDispatcher d(server);
  WorkerThread alice(worker_options(server.endpoint(), k, k.alice, "alice"));
  TaskSpec spec = sum_task(DType::U8, {12}, 2, 6);
  int calls = 0;
  spec.validate = [&](const Message& r) -> std::string {
    ++calls;
    if (r.tensors.size() != 1 || r.tensors[0].name() != "sum") return "expected one tensor 'sum'";
    return calls == 1 ? "first result rejected by the test" : "";
  };
  d.submit(spec);
  auto out = d.run(30s);
  ASSERT_TRUE(out.at(0).ok) << out[0].error;
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(out[0].attempts, 2u);
  EXPECT_TRUE(out[0].outputs[0].equals(reduce_sum(spec.inputs)));
}

TEST(ProtocolDispatch, KindNoWorkerOffersTimesOutNamingTheTask) {
  TestKeys k;
  Server server(server_options(k));
  TaskDispatcher d(server);
  WorkerThread alice(worker_options(server.endpoint(), k, k.alice, "alice"));
  ASSERT_TRUE(d.wait_for_workers(1, 30s));
  TaskSpec spec;
  spec.kind = "evaluate";  // not registered in this worker
  d.submit(spec);
  try {
    d.run(500ms);
    FAIL() << "run() returned";
  } catch (const CommError& e) {
    EXPECT_NE(e.message().find("1(evaluate, queued)"), std::string::npos) << e.message();
  }
}

TEST_F(TwoWorkers, SharedInputsTravelOncePerWorker) {
  auto model = std::make_shared<SharedInputs>();
  model->key = "model-step-100";
  model->tensors = {make_tensor("w1", DType::F32, {300, 1000}, 1),  // 1.2 MB: chunked
                    make_tensor("w2", DType::F32, {300, 1000}, 2)};
  std::vector<TaskSpec> specs;
  for (int i = 0; i < 8; ++i) {
    TaskSpec s = sum_task(DType::F32, {300, 1000}, 1, 10 + i);
    s.shared = model;
    specs.push_back(s);
    d.submit(s);
  }
  auto out = d.run(60s);
  std::set<std::string> workers;
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_TRUE(out[i].ok) << out[i].error;
    std::vector<Tensor> all = model->tensors;
    all.push_back(specs[i].inputs[0]);
    EXPECT_TRUE(out[i].outputs[0].equals(reduce_sum(all))) << i;
    EXPECT_EQ(out[i].summary, R"({"elements":300000,"inputs":3})");
    workers.insert(out[i].worker);
  }
  EXPECT_EQ(d.shared_sends(), workers.size());  // once per worker that ran tasks, not per task
}

TEST(ProtocolDispatch, WorkerWithoutTheSharedInputsGetsThemResent) {
  TestKeys k;
  Server server(server_options(k));
  TaskDispatcher d(server);
  Pump pump(d);
  RawClient c(server.endpoint(), k, &k.bob);
  Message hello = hello_message("", {"reduce_sum"});
  hello.header.mutable_hello()->set_shared_cache_bytes(1 << 20);  // we say we cache
  c.send(std::move(hello));
  auto w = c.expect(5s);
  ASSERT_TRUE(w && w->header.type() == wire::WELCOME);
  auto model = std::make_shared<SharedInputs>();
  model->key = "m";
  model->tensors = {make_tensor("w", DType::I64, {6}, 1)};
  TaskSpec s = sum_task(DType::I64, {6}, 1, 2);
  s.shared = model;
  auto reply = [&](const Message& task, std::vector<Tensor> all) {
    Message r;
    r.header.set_type(wire::RESULT);
    r.header.set_job_id("test-job");
    r.header.set_task_id(task.header.task_id());
    r.header.mutable_result()->set_kind("reduce_sum");
    r.header.mutable_result()->set_attempt(task.header.task().attempt());
    r.tensors.push_back(reduce_sum(all));
    c.send(std::move(r));
  };
  pump.with([&] { d.submit(s); return d.submit(s); });
  auto t1 = c.expect(5s);
  ASSERT_TRUE(t1 && t1->header.type() == wire::TASK);
  EXPECT_EQ(t1->header.task().shared_key(), "m");
  ASSERT_EQ(t1->header.task().shared_count(), 1u);
  ASSERT_EQ(t1->tensors.size(), 2u);
  reply(*t1, t1->tensors);
  auto t2 = c.expect(5s);
  ASSERT_TRUE(t2 && t2->header.type() == wire::TASK);
  EXPECT_EQ(t2->header.task().shared_count(), 0u);  // we are believed to hold "m"
  ASSERT_EQ(t2->tensors.size(), 1u);
  // Pretend we lost it: the coordinator resends the task with the shared inputs attached.
  Message e = make_error(wire::UNKNOWN_SHARED, "lost the cache");
  e.header.set_job_id("test-job");
  e.header.set_task_id(t2->header.task_id());
  e.header.mutable_error()->set_attempt(t2->header.task().attempt());
  c.send(std::move(e));
  auto t3 = c.expect(5s);
  ASSERT_TRUE(t3 && t3->header.type() == wire::TASK);
  EXPECT_EQ(t3->header.task_id(), t2->header.task_id());
  EXPECT_EQ(t3->header.task().shared_count(), 1u);
  EXPECT_EQ(t3->header.task().attempt(), 1u);  // a cache miss is not charged as an attempt
  reply(*t3, t3->tensors);
  ASSERT_TRUE(pump.wait_until([&] { return d.unfinished() == 0; }, 10s));
  EXPECT_EQ(pump.with([&] { return d.shared_sends(); }), 2u);
}

// An executor that fails with an internal error on one named worker and sums elsewhere.
class FailsOn : public TaskExecutor {
 public:
  FailsOn(std::string me, std::string bad) : me_(std::move(me)), bad_(std::move(bad)) {}
  TaskOutput execute(const TaskContext& ctx) override {
    if (me_ == bad_) CONFLUX_THROW(InternalError, "flaky on {}", me_);
    TaskOutput out;
    out.tensors.push_back(reduce_sum(ctx.inputs));
    return out;
  }

 private:
  std::string me_, bad_;
};

TEST(ProtocolDispatch, InternalErrorIsRetriedOnAnotherWorker) {
  TestKeys k;
  Server server(server_options(k));
  TaskDispatcher d(server);
  auto flaky = [](std::string me) {
    return [me](ExecutorRegistry& r) { r.add("flaky", std::make_shared<FailsOn>(me, "alice")); };
  };
  WorkerThread alice(worker_options(server.endpoint(), k, k.alice, "alice"), flaky("alice"));
  ASSERT_TRUE(d.wait_for_workers(1, 30s));
  WorkerThread bob(worker_options(server.endpoint(), k, k.bob, "bob"), flaky("bob"));
  ASSERT_TRUE(d.wait_for_workers(2, 30s));
  TaskSpec t = sum_task(DType::I64, {5}, 2, 4);
  t.kind = "flaky";
  t.target = "alice";  // first on alice, where it fails ...
  BatchSpec b;
  b.tasks = {t};
  std::vector<TaskResult> got;
  BatchReport r = d.run_batch(b, [&](TaskResult&& x) { got.push_back(std::move(x)); }, 30s);
  ASSERT_EQ(r.missing.size(), 1u);  // ... and a targeted task is never run elsewhere
  EXPECT_EQ(r.missing[0].error_kind, TaskErrorKind::Internal);
  EXPECT_EQ(r.missing[0].attempts, 3u);  // retried on alice, its only possible worker
  EXPECT_NE(r.missing[0].detail.find("flaky on alice"), std::string::npos) << r.missing[0].detail;
  t.target.clear();  // untargeted: the retry goes to bob
  b.tasks = {t, t};
  r = d.run_batch(b, [&](TaskResult&& x) { got.push_back(std::move(x)); }, 30s);
  EXPECT_TRUE(r.quorum_met) << r.describe();
  ASSERT_EQ(got.size(), 2u);
  for (auto& g : got) {
    EXPECT_EQ(g.worker, "bob");
    EXPECT_TRUE(g.outputs.at(0).equals(reduce_sum(t.inputs)));
  }
}

TEST_F(TwoWorkers, TargetedTasksRunOnTheirOwnWorker) {
  BatchSpec b;
  std::vector<std::string> targets{"bob", "bob", "alice", "bob", "alice"};
  for (size_t i = 0; i < targets.size(); ++i) {
    TaskSpec t = sum_task(DType::F32, {64}, 2, 30 + i);
    t.target = targets[i];
    b.tasks.push_back(t);
  }
  b.round = 7;
  const auto specs = b.tasks;
  std::vector<TaskResult> got;
  BatchReport r = d.run_batch(b, [&](TaskResult&& x) { got.push_back(std::move(x)); }, 30s);
  ASSERT_TRUE(r.quorum_met) << r.describe();
  EXPECT_EQ(r.closed_because, "all tasks finished");
  ASSERT_EQ(got.size(), targets.size());
  for (const auto& g : got) {
    EXPECT_EQ(g.worker, targets.at(g.index));
    EXPECT_TRUE(g.outputs.at(0).equals(reduce_sum(specs[g.index].inputs)));
  }
}

TEST_F(TwoWorkers, QuorumAndDeadlineCancelTheStraggler) {
  TaskSpec fast = sum_task(DType::I32, {8}, 2, 1);
  fast.target = "alice";
  TaskSpec slow = sum_task(DType::I32, {8}, 2, 2, R"({"delay_ms": 60000})");
  slow.target = "bob";
  BatchSpec b;
  b.tasks = {fast, slow};
  b.quorum = 1;
  b.deadline = 1500ms;
  size_t results = 0;
  BatchReport r = d.run_batch(b, [&](TaskResult&&) { ++results; }, 60s);
  EXPECT_TRUE(r.quorum_met);
  EXPECT_EQ(results, 1u);
  EXPECT_EQ(r.closed_because, "deadline of 1500 ms passed");
  ASSERT_EQ(r.missing.size(), 1u);
  EXPECT_EQ(r.missing[0].why, Missing::Cancelled);
  EXPECT_EQ(r.missing[0].worker, "bob");
  EXPECT_EQ(d.cancels_sent(), 1u);
  // bob stops the cancelled task and answers for it, which frees its slot (bounded wait).
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (d.slots_in_use("bob") > 0 && std::chrono::steady_clock::now() < until) d.step(50ms);
  EXPECT_EQ(d.slots_in_use("bob"), 0u);
  // and it is free for the next round at once.
  b.tasks = {fast};
  b.tasks[0].target = "bob";
  r = d.run_batch(b, [&](TaskResult&&) { ++results; }, 30s);
  EXPECT_TRUE(r.quorum_met) << r.describe();
}

TEST(ProtocolDispatch, WorkerRunsAsManyTasksAsItHasSlots) {
  TestKeys k;
  Server server(server_options(k));
  TaskDispatcher d(server);
  WorkerOptions o = worker_options(server.endpoint(), k, k.alice, "alice");
  o.slots = 3;
  WorkerThread alice(o);
  ASSERT_TRUE(d.wait_for_workers(1, 30s));
  EXPECT_EQ(server.workers().at("alice").hello.slots(), 3u);
  BatchSpec b;
  for (int i = 0; i < 4; ++i) b.tasks.push_back(sum_task(DType::F64, {16}, 2, 50 + i, R"({"delay_ms": 800})"));
  size_t most = 0;
  const uint64_t id = d.open(b, [](TaskResult&&) {});
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (d.is_open(id) && std::chrono::steady_clock::now() < until) {
    d.step(20ms);
    most = std::max(most, d.slots_in_use("alice"));
  }
  EXPECT_EQ(most, 3u);  // three at once, never four
  EXPECT_TRUE(d.take_report(id).quorum_met);
}

// The worker's side of Task.shared_replaces (a real Worker over CURVE, the test sending tasks by
// hand): caching "global-r2" with replaces = "global-" drops "global-r1", so a task naming r1
// without attaching it is answered UNKNOWN_SHARED, while r2 and an entry of another family
// ("data") are still served from the cache.
TEST(ProtocolDispatch, WorkerDropsTheSharedInputsANewEntryReplaces) {
  TestKeys k;
  Server server(server_options(k));
  WorkerThread alice(worker_options(server.endpoint(), k, k.alice, "alice"));
  std::string id;
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (id.empty() && std::chrono::steady_clock::now() < until)
    for (auto& e : server.poll(50ms))
      if (e.kind == ServerEvent::Joined) id = e.worker;
  ASSERT_FALSE(id.empty()) << "the worker did not join";
  uint64_t next_id = 1;
  // Sends a reduce_sum task over `own` naming shared `key` (attached when `attach`); returns the
  // worker's answer: RESULT or ERROR.
  auto ask = [&](const std::string& key, bool attach, const std::string& replaces) -> Message {
    Message m;
    m.header.set_type(wire::TASK);
    m.header.set_task_id(next_id++);
    auto* t = m.header.mutable_task();
    t->set_kind("reduce_sum");
    t->set_attempt(1);
    t->set_params("{}");
    t->set_shared_key(key);
    if (attach) {
      m.tensors.push_back(make_tensor("w", DType::I64, {4}, 7));
      t->set_shared_count(1);
      t->set_shared_replaces(replaces);
    }
    m.tensors.push_back(make_tensor("x", DType::I64, {4}, 1));
    EXPECT_TRUE(server.send(id, std::move(m)));
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline)
      for (auto& e : server.poll(50ms))
        if (e.kind == ServerEvent::Result || e.kind == ServerEvent::TaskError) return std::move(e.message);
    ADD_FAILURE() << "no answer for shared key " << key;
    return Message{};
  };
  EXPECT_EQ(ask("data", true, "").header.type(), wire::RESULT);
  EXPECT_EQ(ask("global-r1", true, "global-").header.type(), wire::RESULT);
  EXPECT_EQ(ask("global-r1", false, "").header.type(), wire::RESULT) << "r1 is cached";
  EXPECT_EQ(ask("global-r2", true, "global-").header.type(), wire::RESULT);
  const Message gone = ask("global-r1", false, "");
  ASSERT_EQ(gone.header.type(), wire::ERROR);
  EXPECT_EQ(gone.header.error().code(), wire::UNKNOWN_SHARED) << gone.header.error().message();
  EXPECT_EQ(ask("global-r2", false, "").header.type(), wire::RESULT) << "r2 is cached";
  EXPECT_EQ(ask("data", false, "").header.type(), wire::RESULT) << "another family stays cached";
}
