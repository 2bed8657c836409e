// Fault tests with real conflux-worker processes (fork/exec) against an in-process coordinator
// on 127.0.0.1: a worker SIGKILLed mid-task (the task finishes elsewhere with the identical
// result), a coordinator process crash and restart on the same port (workers reconnect and
// finish the work; also in the middle of tasks, which the workers then cancel), and SIGTERM (the task is abandoned explicitly or drained, exit code 0, the
// coordinator is told). All waits are bounded; leftover children are killed in TearDown.
#include "net_util.h"
#include "scratch_dir.h"

#include <conflux/core/error.h>
#include <conflux/protocol/keys.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

using namespace conflux;
using namespace conflux::protocol;
using namespace conflux::protocol::test;

namespace {

// One line from a child's status pipe, or "timeout" after `timeout` (bounded wait).
std::string read_line(int fd, std::chrono::milliseconds timeout) {
  std::string line;
  auto until = std::chrono::steady_clock::now() + timeout;
  char c;
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) == 1) {
      if (::read(fd, &c, 1) != 1) break;
      if (c == '\n') return line;
      line += c;
    }
  }
  return "timeout";
}

class ProtocolProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = conflux::test::make_scratch_dir("conflux-proc-");
    server_keys_ = generate_keypair();
    write_keypair(dir_ + "/coordinator", server_keys_, "coordinator", false);
    allow_ = std::make_shared<AllowList>();
    for (const char* n : {"alice", "bob", "carol"}) {
      auto kp = generate_keypair();
      write_keypair(dir_ + "/" + n, kp, n, false);
      allow_->add(kp.public_key, n);
    }
    write_keypair(dir_ + "/mallory", generate_keypair(), "mallory", false);  // not allowed
  }
  void TearDown() override {
    for (auto& [name, pid] : pids_) {
      if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
    if (HasFailure()) {
      for (auto& [name, pid] : pids_) {
        std::ifstream in(dir_ + "/" + name + ".log");
        std::stringstream s;
        s << in.rdbuf();
        std::cerr << "---- " << name << ".log ----\n" << s.str().substr(s.str().size() > 4000 ? s.str().size() - 4000 : 0);
      }
    }
  }

  ServerOptions options(const std::string& bind = "tcp://127.0.0.1:*") {
    ServerOptions o;
    o.bind = bind;
    {
      std::ofstream a(dir_ + "/allow.txt");
      for (const char* n : {"alice", "bob", "carol"}) {
        std::ifstream pub(dir_ + "/" + n + ".pub");
        a << pub.rdbuf();
      }
    }
    load_server_keys(&o, dir_ + "/coordinator.key", dir_ + "/allow.txt");  // the files keygen wrote
    EXPECT_EQ(o.secret_key, server_keys_.secret_key);
    EXPECT_EQ(o.allow->size(), 3u);
    o.job_id = "proc-job";
    o.heartbeat_interval = 100ms;
    o.dead_after = 1000ms;
    o.link.chunk_bytes = 1 << 20;
    return o;
  }

  pid_t spawn(const std::string& name, const std::string& endpoint,
              std::vector<std::string> extra = {}) {
    std::vector<std::string> args{CONFLUX_WORKER_BIN, "--connect", endpoint,
                                  "--server-key", dir_ + "/coordinator.pub",
                                  "--key", dir_ + "/" + name + ".key", "--name", name,
                                  "--heartbeat-ms", "100", "--dead-after-ms", "1200",
                                  "--chunk-mib", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return spawn_command(name, args);
  }

  pid_t spawn_command(const std::string& name, const std::vector<std::string>& args) {
    std::string log = dir_ + "/" + name + ".log";
    pid_t pid = ::fork();
    if (pid == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      _exit(127);
    }
    pids_[name] = pid;
    return pid;
  }

  // Exit status of `pid` within `timeout`, or -1.
  static int wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      int st = 0;
      if (::waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      std::this_thread::sleep_for(20ms);
    }
    return -1;
  }

  std::string dir_;
  CurveKeyPair server_keys_;
  std::shared_ptr<AllowList> allow_;
  std::map<std::string, pid_t> pids_;
};

// Steps the dispatcher until `pred` holds (bounded).
template <typename F>
bool step_until(TaskDispatcher& d, F pred, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    d.step(20ms);
  }
  return true;
}

}  // namespace

TEST_F(ProtocolProcess, WorkerKilledMidTaskFinishesElsewhereIdentically) {
  Server server(options());
  TaskDispatcher d(server);
  spawn("alice", server.endpoint());
  spawn("bob", server.endpoint());
  ASSERT_TRUE(d.wait_for_workers(2, 60s));
  TaskSpec spec = sum_task(DType::F32, {3, 400'000}, 3, 21, R"({"delay_ms": 1500})");
  uint64_t id = d.submit(spec);
  ASSERT_TRUE(step_until(d, [&] { return d.assignee(id).has_value(); }, 10s));
  std::string victim = *d.assignee(id);
  ASSERT_EQ(::kill(pids_.at(victim), SIGKILL), 0);
  auto out = d.run(60s);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].ok) << out[0].error;
  EXPECT_NE(out[0].worker, victim);
  EXPECT_EQ(out[0].attempts, 2u);
  EXPECT_TRUE(out[0].outputs.at(0).equals(reduce_sum(spec.inputs)));
  // The same task on the survivor without faults gives the same bytes.
  TaskSpec again = spec;
  again.params = "{}";
  d.submit(again);
  auto out2 = d.run(60s);
  ASSERT_TRUE(out2.at(0).ok);
  EXPECT_TRUE(out2[0].outputs.at(0).equals(out[0].outputs.at(0)));
}

TEST_F(ProtocolProcess, CoordinatorCrashAndRestartWorkersReconnect) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t coord = ::fork();
  if (coord == 0) {  // first coordinator: serve two tasks, report, then wait to be killed
    ::close(fds[0]);
    int rc = 1;
    try {
      Server server(options());
      std::string ep = server.endpoint() + "\n";
      (void)!::write(fds[1], ep.data(), ep.size());
      TaskDispatcher d(server);
      if (d.wait_for_workers(2, 60s)) {
        TaskSpec a = sum_task(DType::I64, {1000}, 2, 1), b = sum_task(DType::F16, {1000}, 2, 2);
        d.submit(a);
        d.submit(b);
        auto out = d.run(60s);
        bool ok = out.size() == 2 && out[0].ok && out[1].ok &&
                  out[0].outputs[0].equals(reduce_sum(a.inputs)) &&
                  out[1].outputs[0].equals(reduce_sum(b.inputs));
        (void)!::write(fds[1], ok ? "done\n" : "fail\n", 5);
        for (int i = 0; i < 6000; ++i) server.poll(10ms);  // until SIGKILL (60 s bound)
      }
    } catch (...) {
    }
    _exit(rc);
  }
  ::close(fds[1]);
  std::string endpoint = read_line(fds[0], 30s);
  ASSERT_EQ(endpoint.rfind("tcp://127.0.0.1:", 0), 0u) << endpoint;
  spawn("alice", endpoint);
  spawn("bob", endpoint);
  EXPECT_EQ(read_line(fds[0], 90s), "done");
  ::kill(coord, SIGKILL);  // a crash: no bye, no goodbye heartbeats
  ::waitpid(coord, nullptr, 0);
  ::close(fds[0]);

  Server server(options(endpoint));  // same port
  ASSERT_EQ(server.endpoint(), endpoint);
  TaskDispatcher d(server);
  std::vector<TaskSpec> specs;
  for (int i = 0; i < 4; ++i) specs.push_back(sum_task(DType::F64, {5000}, 3, 40 + i));
  for (auto& s : specs) d.submit(s);
  auto out = d.run(90s);
  ASSERT_EQ(out.size(), 4u);
  std::set<std::string> who;
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_TRUE(out[i].ok) << out[i].error;
    EXPECT_TRUE(out[i].outputs.at(0).equals(reduce_sum(specs[i].inputs)));
    who.insert(out[i].worker);
  }
  EXPECT_TRUE(d.wait_for_workers(2, 30s));
  // The same worker processes, reconnected (not restarted).
  EXPECT_EQ(::waitpid(pids_.at("alice"), nullptr, WNOHANG), 0);
  EXPECT_EQ(::waitpid(pids_.at("bob"), nullptr, WNOHANG), 0);
}

// The coordinator crashes while both workers are in the middle of (long, cancellable) tasks.
// The restarted coordinator allows ONE attempt per task: a worker that refused the new tasks as
// "busy" with its orphaned old task would fail them. The workers must cancel the old tasks on
// the new coordinator's welcome, run the new tasks (parked until the old ones stopped), and
// never drop their process.
TEST_F(ProtocolProcess, CoordinatorCrashMidTaskWorkersCancelOrphansAndServeTheNewOne) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t coord = ::fork();
  if (coord == 0) {  // first coordinator: hand out two 60 s tasks, report, wait to be killed
    ::close(fds[0]);
    try {
      Server server(options());
      std::string ep = server.endpoint() + "\n";
      (void)!::write(fds[1], ep.data(), ep.size());
      TaskDispatcher d(server);
      if (d.wait_for_workers(2, 60s)) {
        uint64_t a = d.submit(sum_task(DType::F32, {100}, 2, 7, R"({"delay_ms": 60000})"));
        uint64_t b = d.submit(sum_task(DType::F32, {100}, 2, 8, R"({"delay_ms": 60000})"));
        if (step_until(d, [&] { return d.assignee(a) && d.assignee(b); }, 30s)) {
          for (int i = 0; i < 50; ++i) d.step(10ms);  // the tasks reach the workers
          (void)!::write(fds[1], "running\n", 8);
        }
        for (int i = 0; i < 6000; ++i) d.step(10ms);  // until SIGKILL (60 s bound)
      }
    } catch (...) {
    }
    _exit(1);
  }
  ::close(fds[1]);
  std::string endpoint = read_line(fds[0], 30s);
  ASSERT_EQ(endpoint.rfind("tcp://127.0.0.1:", 0), 0u) << endpoint;
  spawn("alice", endpoint);
  spawn("bob", endpoint);
  ASSERT_EQ(read_line(fds[0], 90s), "running");
  ::kill(coord, SIGKILL);
  ::waitpid(coord, nullptr, 0);
  ::close(fds[0]);

  Server server(options(endpoint));
  DispatcherOptions one;
  one.max_attempts = 1;
  TaskDispatcher d(server, one);
  ASSERT_TRUE(d.wait_for_workers(2, 30s));
  std::vector<TaskSpec> specs;
  for (int i = 0; i < 4; ++i) specs.push_back(sum_task(DType::F64, {1000}, 2, 60 + i));
  for (auto& sp : specs) d.submit(sp);
  auto out = d.run(60s);
  ASSERT_EQ(out.size(), 4u);
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_TRUE(out[i].ok) << out[i].error;
    EXPECT_EQ(out[i].attempts, 1u);
    EXPECT_TRUE(out[i].outputs.at(0).equals(reduce_sum(specs[i].inputs)));
  }
  EXPECT_EQ(::waitpid(pids_.at("alice"), nullptr, WNOHANG), 0);
  EXPECT_EQ(::waitpid(pids_.at("bob"), nullptr, WNOHANG), 0);
  for (const char* n : {"alice", "bob"}) {
    std::ifstream in(dir_ + "/" + n + ".log");
    std::stringstream log;
    log << in.rdbuf();
    EXPECT_NE(log.str().find("cancelling task"), std::string::npos) << n;
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A worker that cannot get in says why within seconds, and --give-up-after means what it says:
// a key missing from the allow-list, and a wrong coordinator public key.
TEST_F(ProtocolProcess, RefusedHandshakeIsNamedAndGiveUpIsPrompt) {
  Server server(options());
  pid_t mallory = spawn("mallory", server.endpoint(), {"--give-up-after", "3"});
  // Bob holds the wrong coordinator key: his own public key in place of the coordinator's.
  std::vector<std::string> args{CONFLUX_WORKER_BIN, "--connect", server.endpoint(),
                                "--server-key", dir_ + "/bob.pub", "--key", dir_ + "/bob.key",
                                "--give-up-after", "3"};
  pid_t bob = spawn_command("bob", args);
  // A hang check (not a timing threshold): both must be gone long before 60 s.
  const auto until = std::chrono::steady_clock::now() + 60s;
  int rc_m = -1, rc_b = -1;
  while ((rc_m < 0 || rc_b < 0) && std::chrono::steady_clock::now() < until) {
    server.poll(50ms);
    if (rc_m < 0) rc_m = wait_exit(mallory, 1ms);
    if (rc_b < 0) rc_b = wait_exit(bob, 1ms);
  }
  EXPECT_EQ(rc_m, conflux::kExitComm);
  EXPECT_EQ(rc_b, conflux::kExitComm);
  const std::string m = read_file(dir_ + "/mallory.log"), b = read_file(dir_ + "/bob.log");
  EXPECT_NE(m.find("refused this worker's key"), std::string::npos) << m;
  EXPECT_NE(m.find(server.endpoint()), std::string::npos) << m;
  EXPECT_NE(m.find("giving up"), std::string::npos) << m;
  EXPECT_NE(b.find("does not match the coordinator's"), std::string::npos) << b;
  EXPECT_TRUE(server.workers().empty());
}

// The job layer with real conflux-worker processes: targeted tasks, a round that closes at its
// quorum, the straggler cancelled (it answers, freeing its slot), and its stale late result.
TEST_F(ProtocolProcess, RoundClosesAtQuorumAndTheStragglerIsCancelled) {
  Server server(options());
  TaskDispatcher d(server);
  spawn("alice", server.endpoint(), {"--slots", "2"});
  spawn("bob", server.endpoint());
  ASSERT_TRUE(d.wait_for_workers(2, 60s));
  EXPECT_EQ(server.workers().at("alice").hello.slots(), 2u);
  BatchSpec b;
  for (int i = 0; i < 2; ++i) {
    TaskSpec t = sum_task(DType::F32, {1000}, 3, 70 + i);
    t.target = "alice";
    b.tasks.push_back(t);
  }
  TaskSpec slow = sum_task(DType::F32, {1000}, 3, 72, R"({"delay_ms": 60000})");
  slow.target = "bob";
  b.tasks.push_back(slow);
  b.quorum = 2;
  b.close_at_quorum = true;
  b.round = 3;
  const auto specs = b.tasks;
  std::vector<TaskResult> got;
  BatchReport r = d.run_batch(b, [&](TaskResult&& x) { got.push_back(std::move(x)); }, 60s);
  EXPECT_EQ(r.closed_because, "quorum reached");
  ASSERT_EQ(got.size(), 2u);
  for (const auto& g : got) {
    EXPECT_EQ(g.worker, "alice");
    EXPECT_TRUE(g.outputs.at(0).equals(reduce_sum(specs[g.index].inputs)));
  }
  ASSERT_EQ(r.missing.size(), 1u);
  EXPECT_EQ(r.missing[0].why, Missing::Cancelled);
  ASSERT_TRUE(step_until(d, [&] { return d.slots_in_use("bob") == 0; }, 30s));
  std::ifstream in(dir_ + "/bob.log");
  std::stringstream log;
  log << in.rdbuf();
  EXPECT_NE(log.str().find("cancelled"), std::string::npos) << log.str();
}

TEST_F(ProtocolProcess, SigtermAbandonsTaskExplicitlyAndExitsZero) {
  Server server(options());
  TaskDispatcher d(server);
  std::vector<ServerEvent> events;
  d.on_event = [&](const ServerEvent& e) { events.push_back(e); };
  pid_t alice = spawn("alice", server.endpoint(), {"--drain-timeout", "0.2"});
  ASSERT_TRUE(d.wait_for_workers(1, 60s));
  TaskSpec spec = sum_task(DType::I32, {10000}, 2, 5, R"({"delay_ms": 4000})");
  uint64_t id = d.submit(spec);
  ASSERT_TRUE(step_until(d, [&] { return d.assignee(id).has_value(); }, 10s));
  ASSERT_EQ(::kill(alice, SIGTERM), 0);
  auto left = [&] {
    for (auto& e : events) {
      if (e.kind == ServerEvent::Left && e.worker == "alice") return true;
    }
    return false;
  };
  ASSERT_TRUE(step_until(d, left, 15s));
  EXPECT_EQ(wait_exit(alice, 15s), 0);
  bool abandoned = false;
  for (auto& e : events) {
    if (e.kind == ServerEvent::TaskError && e.message.header.task_id() == id &&
        e.message.header.error().code() == wire::TASK_ABANDONED) {
      abandoned = true;
    }
  }
  EXPECT_TRUE(abandoned);
  EXPECT_FALSE(d.assignee(id).has_value());  // back in the queue, not waiting on alice
  // Another worker picks it up and runs it in full.
  spawn("bob", server.endpoint());
  auto out = d.run(90s);
  ASSERT_TRUE(out.at(0).ok) << out[0].error;
  EXPECT_EQ(out[0].worker, "bob");
  EXPECT_EQ(out[0].attempts, 1u);  // an abandoned attempt is not the task's fault
  EXPECT_TRUE(out[0].outputs.at(0).equals(reduce_sum(spec.inputs)));
}

TEST_F(ProtocolProcess, SigtermDrainsRunningTaskThenExitsZero) {
  Server server(options());
  TaskDispatcher d(server);
  std::vector<ServerEvent> events;
  d.on_event = [&](const ServerEvent& e) { events.push_back(e); };
  pid_t carol = spawn("carol", server.endpoint(), {"--drain-timeout", "30"});
  ASSERT_TRUE(d.wait_for_workers(1, 60s));
  TaskSpec spec = sum_task(DType::BF16, {777}, 4, 8, R"({"delay_ms": 700})");
  uint64_t id = d.submit(spec);
  ASSERT_TRUE(step_until(d, [&] { return d.assignee(id).has_value(); }, 10s));
  ASSERT_EQ(::kill(carol, SIGTERM), 0);
  auto out = d.run(30s);
  ASSERT_TRUE(out.at(0).ok) << out[0].error;
  EXPECT_EQ(out[0].worker, "carol");
  EXPECT_EQ(out[0].attempts, 1u);
  EXPECT_TRUE(out[0].outputs.at(0).equals(reduce_sum(spec.inputs)));
  auto left = [&] {
    for (auto& e : events) {
      if (e.kind == ServerEvent::Left && e.worker == "carol") return true;
    }
    return false;
  };
  ASSERT_TRUE(step_until(d, left, 15s));
  EXPECT_EQ(wait_exit(carol, 15s), 0);
}

TEST_F(ProtocolProcess, PythonClientWrittenFromTheDocsCompletesTasks) {
  Server server(options());
  TaskDispatcher d(server);
  pid_t py = spawn_command("alice", {"/usr/bin/python3", CONFLUX_PY_CLIENT, server.endpoint(),
                                     dir_ + "/coordinator.pub", dir_ + "/alice.key", "4"});
  std::vector<TaskSpec> specs{sum_task(DType::F32, {3, 600'000}, 3, 61),  // inputs chunked
                              sum_task(DType::I64, {17, 3}, 2, 62),
                              sum_task(DType::F16, {999}, 4, 63),
                              sum_task(DType::U8, {4, 4, 4}, 5, 64)};
  for (auto& s : specs) d.submit(s);
  auto out = d.run(120s);
  ASSERT_EQ(out.size(), specs.size());
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_TRUE(out[i].ok) << out[i].error;
    EXPECT_EQ(out[i].worker, "alice");
    EXPECT_TRUE(out[i].outputs.at(0).equals(reduce_sum(specs[i].inputs))) << "task " << i;
  }
  EXPECT_EQ(out[0].summary, R"({"inputs": 3, "elements": 1800000})");
  EXPECT_EQ(wait_exit(py, 30s), 0);
  EXPECT_EQ(server.rejected_messages(), 0u);
}

TEST_F(ProtocolProcess, ExitOnByeAndGiveUpWithoutCoordinator) {
  std::string endpoint;
  {
    Server server(options());
    endpoint = server.endpoint();
    TaskDispatcher d(server);
    pid_t bob = spawn("bob", endpoint, {"--exit-on-bye"});
    ASSERT_TRUE(d.wait_for_workers(1, 60s));
    server.shutdown("evaluation finished");
    EXPECT_EQ(wait_exit(bob, 20s), 0);
  }
  // Nobody listens on that port any more: the worker gives up with exit code 3.
  pid_t carol = spawn("carol", endpoint, {"--give-up-after", "1"});
  EXPECT_EQ(wait_exit(carol, 30s), 3);
}
