// Helpers for the socket-level protocol tests: keys, short-deadline options, a thread that
// drives a TaskDispatcher while the test thread plays a (possibly hostile) client, and a raw
// client that can send hand-crafted frames. Every wait is bounded.
#pragma once

#include "test_util.h"

#include <conflux/protocol/dispatcher.h>
#include <conflux/protocol/server.h>
#include <conflux/protocol/keys.h>
#include <conflux/protocol/worker.h>

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

namespace conflux::protocol::test {

using namespace std::chrono_literals;

struct TestKeys {
  CurveKeyPair server = generate_keypair();
  CurveKeyPair alice = generate_keypair();
  CurveKeyPair bob = generate_keypair();
  CurveKeyPair mallory = generate_keypair();  // not in the allow-list
  std::shared_ptr<AllowList> allow = [this] {
    auto a = std::make_shared<AllowList>();
    a->add(alice.public_key, "alice");
    a->add(bob.public_key, "bob");
    return a;
  }();
};

inline ServerOptions server_options(const TestKeys& k) {
  ServerOptions o;
  o.bind = "tcp://127.0.0.1:*";
  o.secret_key = k.server.secret_key;
  o.allow = k.allow;
  o.job_id = "test-job";
  o.heartbeat_interval = 100ms;
  o.dead_after = 1500ms;
  o.link.chunk_bytes = 1 << 20;
  return o;
}

inline WorkerOptions worker_options(const std::string& endpoint, const TestKeys& k,
                                    const CurveKeyPair& me, const std::string& name) {
  WorkerOptions o;
  o.connect = endpoint;
  o.server_public_key = k.server.public_key;
  o.public_key = me.public_key;
  o.secret_key = me.secret_key;
  o.name = name;
  o.heartbeat_interval = 100ms;
  o.server_dead_after = 1500ms;
  o.hello_retry = 300ms;
  o.backoff_min = 50ms;
  o.backoff_max = 500ms;
  o.link.chunk_bytes = 1 << 20;
  return o;
}

// An in-process worker on its own thread.
class WorkerThread {
 public:
  explicit WorkerThread(WorkerOptions o,
                        const std::function<void(ExecutorRegistry&)>& extra = {}) {
    auto reg = std::make_shared<ExecutorRegistry>();
    register_builtin_executors(*reg);
    if (extra) extra(*reg);
    worker_ = std::make_unique<Worker>(std::move(o), reg);
    thread_ = std::thread([this] { rc_ = worker_->run(stop_); });
  }
  ~WorkerThread() { stop(); }
  int stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    return rc_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::unique_ptr<Worker> worker_;
  std::thread thread_;
  int rc_ = -1;
};

// Drives a dispatcher on a background thread; the test thread inspects it through with().
class Pump {
 public:
  explicit Pump(TaskDispatcher& d) : d_(d), thread_([this] { loop(); }) {}
  ~Pump() {
    stop_.store(true);
    thread_.join();
  }
  template <typename F>
  auto with(F f) {
    std::lock_guard<std::mutex> lock(mu_);
    return f();
  }
  // Waits (bounded) until pred() holds under the lock.
  template <typename F>
  bool wait_until(F pred, std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (with(pred)) return true;
      std::this_thread::sleep_for(10ms);
    }
    return with(pred);
  }

 private:
  void loop() {
    while (!stop_.load()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        d_.step(20ms);
      }
      std::this_thread::sleep_for(1ms);
    }
  }
  TaskDispatcher& d_;
  std::mutex mu_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A client socket under full test control: sends hand-made frames, reads validated replies.
class RawClient {
 public:
  RawClient(const std::string& endpoint, const TestKeys& k, const CurveKeyPair* me,
            uint64_t instance = 0, uint64_t first_sequence = 1)
      : instance_(instance ? instance : random_instance_id()), seq_(first_sequence) {
    zmq::socket_t s(ctx_, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    if (me) {
      s.set(zmq::sockopt::curve_serverkey, k.server.public_key);
      s.set(zmq::sockopt::curve_publickey, me->public_key);
      s.set(zmq::sockopt::curve_secretkey, me->secret_key);
    }
    s.connect(endpoint);
    link_ = std::make_unique<Link>(std::move(s), "", LinkOptions(), instance_);
  }
  zmq::socket_t& socket() { return link_->socket(); }
  Link& link() { return *link_; }
  uint64_t instance() const { return instance_; }
  uint64_t next_sequence() const { return seq_; }

  // Encodes `m` with our own sequence counter (or a forced one) and returns the wire frames.
  std::vector<std::string> frames_of(Message m, uint64_t force_seq = 0) {
    m.header.set_version(kProtocolVersion);
    m.header.set_instance(instance_);
    uint64_t s = force_seq ? force_seq : seq_;
    auto wires = encode(m, 1 << 20, &s);
    if (!force_seq) seq_ = s;
    EXPECT_EQ(wires.size(), 1u);
    std::vector<std::string> out{wires[0].header};
    for (auto& f : wires[0].frames) out.emplace_back(reinterpret_cast<const char*>(f.data), f.size);
    return out;
  }
  void send_raw(const std::vector<std::string>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      socket().send(zmq::buffer(frames[i]),
                    i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  void send(Message m, uint64_t force_seq = 0) { send_raw(frames_of(std::move(m), force_seq)); }
  // The next message that is not a heartbeat, within `timeout`.
  std::optional<Message> expect(std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      auto in = link_->receive(50ms);
      if (in && in->message && in->message->header.type() != wire::HEARTBEAT) return in->message;
    }
    return std::nullopt;
  }

 private:
  zmq::context_t ctx_{1};
  uint64_t instance_;
  uint64_t seq_;
  std::unique_ptr<Link> link_;
};

inline Message hello_message(const std::string& sender, std::vector<std::string> kinds = {}) {
  Message m;
  m.header.set_type(wire::HELLO);
  m.header.set_sender(sender);
  m.header.mutable_hello()->set_name("raw");
  for (auto& k : kinds) m.header.mutable_hello()->add_task_kinds(k);
  return m;
}

inline Message heartbeat_message(const std::string& sender) {
  Message m;
  m.header.set_type(wire::HEARTBEAT);
  m.header.set_sender(sender);
  m.header.mutable_heartbeat();
  return m;
}

inline TaskSpec sum_task(DType dt, std::vector<int64_t> shape, int n, uint64_t seed,
                         const std::string& params = "{}") {
  TaskSpec t;
  t.kind = "reduce_sum";
  t.params = params;
  for (int i = 0; i < n; ++i) {
    t.inputs.push_back(make_tensor("x" + std::to_string(i), dt, shape, seed * 100 + i));
  }
  return t;
}

}  // namespace conflux::protocol::test
