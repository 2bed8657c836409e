// Socket-level protocol tests on 127.0.0.1 (ports picked by the OS): tensor round trips of every
// dtype incl. chunked payloads through CURVE, the ZAP allow-list rejecting an unknown key at
// the transport, identity spoofing, and malformed/hostile input answered with errors while the
// coordinator keeps serving.
#include "net_util.h"

#include <conflux/core/error.h>

#include <zmq.h>

#include <fstream>

using namespace conflux;
using namespace conflux::protocol;
using namespace conflux::protocol::test;

namespace {

void expect_outputs_match(const TaskOutcome& o, const TaskSpec& spec) {
  ASSERT_TRUE(o.ok) << o.error;
  ASSERT_EQ(o.outputs.size(), 1u);
  EXPECT_TRUE(o.outputs[0].equals(reduce_sum(spec.inputs))) << "task " << o.task_id;
}

}  // namespace

TEST(ProtocolNet, RoundTripEveryDtypeWithCurve) {
  TestKeys k;
  Server server(server_options(k));
  TaskDispatcher d(server);
  char tmpl[] = "/tmp/conflux-net-XXXXXX";
  ASSERT_TRUE(mkdtemp(tmpl));
  std::ofstream(std::string(tmpl) + "/manifest.json")
      << R"({"format_version":1,"schema":[{"name":"tokens"}],"shards":[{"rows":7},{"rows":5}]})";
  WorkerOptions wo = worker_options(server.endpoint(), k, k.alice, "alice");
  wo.data_path = tmpl;
  WorkerThread alice(wo);
  std::vector<TaskSpec> specs;
  uint64_t seed = 1;
  for (DType dt : all_dtypes()) specs.push_back(sum_task(dt, {257, 33}, 3, seed++));
  specs.push_back(sum_task(DType::F32, {3, 1'000'003}, 3, seed++));  // ~12 MB each: chunked both ways
  specs.push_back(sum_task(DType::BF16, {2, 700'001}, 2, seed++));
  specs.push_back(sum_task(DType::I64, {0, 5}, 2, seed++));          // empty tensors
  for (auto& s : specs) d.submit(s);
  auto out = d.run(120s);
  ASSERT_EQ(out.size(), specs.size());
  for (size_t i = 0; i < out.size(); ++i) {
    expect_outputs_match(out[i], specs[i]);
    EXPECT_EQ(out[i].worker, "alice");
    EXPECT_EQ(out[i].attempts, 1u);
  }
  EXPECT_EQ(out[0].summary, R"({"elements":8481,"inputs":3})");
  // The hello carried a summary of alice's data (counts and names), not the data.
  const wire::Hello& hello = server.workers().at("alice").hello;
  EXPECT_EQ(hello.data().rows(), 12u);
  EXPECT_EQ(hello.data().fields(0), "tokens");
  EXPECT_EQ(hello.task_kinds(0), "reduce_sum");
  (void)!system(("rm -rf " + std::string(tmpl)).c_str());
  EXPECT_EQ(server.rejected_messages(), 0u);
}

TEST(ProtocolNet, UnknownKeyRejectedAtTransportAndNeverSeesATask) {
  TestKeys k;
  Server server(server_options(k));
  TaskDispatcher d(server);
  TaskSpec spec = sum_task(DType::F32, {16}, 2, 7);
  uint64_t id = d.submit(spec);
  RawClient mallory(server.endpoint(), k, &k.mallory);
  mallory.send(hello_message("", {"reduce_sum"}));
  std::vector<ServerEvent> seen;
  d.on_event = [&](const ServerEvent& e) { seen.push_back(e); };
  for (int i = 0; i < 20; ++i) d.step(100ms);  // 2 s of serving with mallory knocking
  EXPECT_TRUE(seen.empty());
  EXPECT_EQ(server.workers().size(), 0u);
  EXPECT_GE(server.rejected_keys(), 1u);
  EXPECT_TRUE(d.assignee(id) == std::nullopt);
  EXPECT_FALSE(mallory.expect(200ms).has_value());  // no welcome, no task, nothing
  // The task completes as soon as an allowed worker connects.
  WorkerThread bob(worker_options(server.endpoint(), k, k.bob, "bob"));
  auto out = d.run(30s);
  ASSERT_EQ(out.size(), 1u);
  expect_outputs_match(out[0], spec);
  EXPECT_EQ(out[0].worker, "bob");
}

TEST(ProtocolNet, HandshakeFailureVisibleToRejectedClient) {
  TestKeys k;
  Server server(server_options(k));
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::curve_serverkey, k.server.public_key);
  s.set(zmq::sockopt::curve_publickey, k.mallory.public_key);
  s.set(zmq::sockopt::curve_secretkey, k.mallory.secret_key);
  ASSERT_EQ(zmq_socket_monitor(s.handle(), "inproc://mon-reject", ZMQ_EVENT_HANDSHAKE_FAILED_AUTH), 0);
  zmq::socket_t mon(ctx, zmq::socket_type::pair);
  mon.connect("inproc://mon-reject");
  s.connect(server.endpoint());
  bool failed_auth = false;
  int status = 0;
  for (int i = 0; i < 50 && !failed_auth; ++i) {
    server.poll(20ms);
    zmq::message_t ev;
    if (mon.recv(ev, zmq::recv_flags::dontwait)) {
      uint16_t event;
      int32_t value;
      std::memcpy(&event, ev.data(), 2);
      std::memcpy(&value, static_cast<const char*>(ev.data()) + 2, 4);
      zmq::message_t addr;
      (void)mon.recv(addr);
      if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        failed_auth = true;
        status = value;
      }
    }
  }
  EXPECT_TRUE(failed_auth);
  EXPECT_EQ(status, 400);  // ZAP said no
  EXPECT_GE(server.rejected_keys(), 1u);
  zmq_socket_monitor(s.handle(), nullptr, 0);
}

TEST(ProtocolNet, IdentityCannotBeSpoofed) {
  TestKeys k;
  Server server(server_options(k));
  TaskDispatcher d(server);
  WorkerThread alice(worker_options(server.endpoint(), k, k.alice, "alice"));
  TaskSpec slow = sum_task(DType::I32, {64}, 2, 3, R"({"delay_ms": 800})");
  uint64_t id = d.submit(slow);
  std::vector<TaskOutcome> done;
  d.on_complete = [&](const TaskOutcome& o) { done.push_back(o); };
  Pump pump(d);
  ASSERT_TRUE(pump.wait_until([&] { return d.assignee(id) == std::optional<std::string>("alice"); }, 20s));

  RawClient bob(server.endpoint(), k, &k.bob);
  bob.send(hello_message("alice"));  // claims alice's identity with bob's key
  auto reply = bob.expect(5s);
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->header.type(), wire::ERROR);
  EXPECT_EQ(reply->header.error().code(), wire::IDENTITY_MISMATCH);
  bob.send(hello_message(""));  // the server names bob by his key
  reply = bob.expect(5s);
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->header.type(), wire::WELCOME);
  EXPECT_EQ(reply->header.welcome().identity(), "bob");
  // Bob posts a result for alice's task, claiming to be alice, then as himself.
  for (std::string sender : {"alice", "bob"}) {
    Message r;
    r.header.set_type(wire::RESULT);
    r.header.set_sender(sender);
    r.header.set_job_id("test-job");
    r.header.set_task_id(id);
    r.header.mutable_result()->set_kind("reduce_sum");
    r.header.mutable_result()->set_attempt(1);
    r.tensors.push_back(Tensor::allocate("sum", DType::I32, {64}));
    std::memset(r.tensors[0].mutable_data(), 0, 256);
    bob.send(std::move(r));
    reply = bob.expect(5s);
    ASSERT_TRUE(reply);
    ASSERT_EQ(reply->header.type(), wire::ERROR);
    EXPECT_EQ(reply->header.error().code(),
              sender == "alice" ? wire::IDENTITY_MISMATCH : wire::STALE_RESULT);
  }
  ASSERT_TRUE(pump.wait_until([&] { return !done.empty(); }, 20s));
  pump.with([&] {
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].worker, "alice");
    expect_outputs_match(done[0], slow);
  });
}

TEST(ProtocolNet, MalformedInputGetsErrorsAndServerKeepsServing) {
  TestKeys k;
  ServerOptions so = server_options(k);
  so.link.limits.max_frame_bytes = 1 << 20;  // also ZMQ_MAXMSGSIZE
  Server server(so);
  TaskDispatcher d(server);
  Pump pump(d);
  RawClient c(server.endpoint(), k, &k.bob);
  auto expect_error = [&](ErrorCode code, const char* what) {
    auto m = c.expect(5s);
    ASSERT_TRUE(m) << what << ": no reply";
    ASSERT_EQ(m->header.type(), wire::ERROR) << what;
    EXPECT_EQ(m->header.error().code(), code)
        << what << ": " << error_code_name(m->header.error().code()) << " "
        << m->header.error().message();
  };
  // Random bytes.
  c.send_raw({std::string("\x13\x37\xde\xad\xbe\xef random bytes \xff\x00", 23)});
  expect_error(wire::MALFORMED, "random bytes");
  c.send_raw({std::string(50, '\xff'), "more junk"});
  expect_error(wire::MALFORMED, "junk frames");
  // Wrong version.
  {
    auto f = c.frames_of(hello_message(""));
    wire::Header h;
    h.ParseFromString(f[0]);
    h.set_version(9);
    f[0] = h.SerializeAsString();
    c.send_raw(f);
    expect_error(wire::UNSUPPORTED_VERSION, "wrong version");
  }
  // A proper session so that later rejections are about the message, not the session.
  c.send(hello_message(""));
  auto w = c.expect(5s);
  ASSERT_TRUE(w);
  ASSERT_EQ(w->header.type(), wire::WELCOME);
  Message result;
  result.header.set_type(wire::RESULT);
  result.header.set_job_id("test-job");
  result.header.set_task_id(99);
  result.header.mutable_result()->set_kind("reduce_sum");
  result.tensors = {make_tensor("a", DType::F32, {1000}, 1), make_tensor("b", DType::U8, {77}, 2)};
  // Truncated: last frame missing.
  {
    auto f = c.frames_of(result);
    f.pop_back();
    c.send_raw(f);
    expect_error(wire::SIZE_MISMATCH, "truncated frames");
  }
  // Declared sizes that lie: a frame shorter than declared.
  {
    auto f = c.frames_of(result);
    f[1].resize(f[1].size() - 3);
    c.send_raw(f);
    expect_error(wire::SIZE_MISMATCH, "short frame");
  }
  // Shape and byte length disagree.
  {
    auto f = c.frames_of(result);
    wire::Header h;
    h.ParseFromString(f[0]);
    h.mutable_tensors(0)->set_shape(0, 999);
    f[0] = h.SerializeAsString();
    c.send_raw(f);
    expect_error(wire::BAD_SHAPE, "shape lies");
  }
  // Unknown dtype.
  {
    auto f = c.frames_of(result);
    wire::Header h;
    h.ParseFromString(f[0]);
    h.mutable_tensors(1)->set_dtype(static_cast<wire::DType>(77));
    f[0] = h.SerializeAsString();
    c.send_raw(f);
    expect_error(wire::BAD_DTYPE, "bad dtype");
  }
  // Huge declared size (4 TiB of float32, consistent shape).
  {
    auto f = c.frames_of(result);
    wire::Header h;
    h.ParseFromString(f[0]);
    h.mutable_tensors(0)->set_shape(0, int64_t{1} << 40);
    h.mutable_tensors(0)->set_byte_length(uint64_t{4} << 40);
    f[0] = h.SerializeAsString();
    c.send_raw(f);
    expect_error(wire::TOO_LARGE, "huge size");
  }
  // Replayed sequence number: an accepted heartbeat sent again byte for byte.
  {
    auto f = c.frames_of(heartbeat_message(""));
    c.send_raw(f);
    c.send_raw(f);
    expect_error(wire::STALE, "replay");
    auto old = c.frames_of(heartbeat_message(""), 1);  // sequence 1 again
    c.send_raw(old);
    expect_error(wire::STALE, "stale sequence");
  }
  // A result for a task nobody assigned.
  c.send(result);
  expect_error(wire::STALE_RESULT, "unassigned task");
  // A type a worker may not send.
  {
    Message t;
    t.header.set_type(wire::TASK);
    t.header.mutable_task()->set_kind("reduce_sum");
    c.send(t);
    expect_error(wire::BAD_TYPE, "worker sends task");
  }
  // A frame over ZMQ_MAXMSGSIZE: ZeroMQ drops the connection (no reply possible).
  c.send_raw({c.frames_of(heartbeat_message(""))[0], std::string(2 << 20, 'x')});
  EXPECT_GE(pump.with([&] { return server.rejected_messages(); }), 10u);
  // The coordinator still serves: a real worker completes a real task.
  TaskSpec spec = sum_task(DType::F64, {100}, 3, 5);
  pump.with([&] { return d.submit(spec); });
  WorkerThread alice(worker_options(server.endpoint(), k, k.alice, "alice"));
  ASSERT_TRUE(pump.wait_until([&] { return d.unfinished() == 0; }, 30s));
}

TEST(ProtocolNet, SameWorkerInstanceReconnectingKeepsItsTask) {
  TestKeys k;
  Server server(server_options(k));
  TaskDispatcher d(server);
  std::vector<TaskOutcome> done;
  std::vector<ServerEvent> events;
  d.on_complete = [&](const TaskOutcome& o) { done.push_back(o); };
  d.on_event = [&](const ServerEvent& e) { events.push_back(e); };
  Pump pump(d);
  TaskSpec spec = sum_task(DType::F32, {50}, 2, 13);
  auto first = std::make_unique<RawClient>(server.endpoint(), k, &k.bob);
  first->send(hello_message("", {"reduce_sum"}));
  auto w = first->expect(5s);
  ASSERT_TRUE(w && w->header.type() == wire::WELCOME);
  uint64_t id = pump.with([&] { return d.submit(spec); });
  auto task = first->expect(5s);
  ASSERT_TRUE(task && task->header.type() == wire::TASK);
  ASSERT_EQ(task->header.task_id(), id);
  // Same process (instance), new connection, sequence numbers continuing.
  RawClient second(server.endpoint(), k, &k.bob, first->instance(), first->next_sequence());
  first.reset();
  second.send(hello_message("", {"reduce_sum"}));
  w = second.expect(5s);
  ASSERT_TRUE(w && w->header.type() == wire::WELCOME);
  Message r;
  r.header.set_type(wire::RESULT);
  r.header.set_job_id("test-job");
  r.header.set_task_id(id);
  r.header.mutable_result()->set_kind("reduce_sum");
  r.header.mutable_result()->set_attempt(1);
  r.tensors.push_back(reduce_sum(task->tensors));
  second.send(std::move(r));
  ASSERT_TRUE(pump.wait_until([&] { return !done.empty(); }, 10s));
  pump.with([&] {
    EXPECT_EQ(done[0].worker, "bob");
    EXPECT_EQ(done[0].attempts, 1u);
    expect_outputs_match(done[0], spec);
    for (auto& e : events) EXPECT_NE(e.kind, ServerEvent::Died) << e.reason;
  });
}

TEST(ProtocolNet, InsecureModeWorksOnlyWhenBothSidesSayIt) {
  ServerOptions so;
  so.insecure = true;
  so.heartbeat_interval = 100ms;
  so.job_id = "test-job";
  Server server(so);
  TaskDispatcher d(server);
  WorkerOptions wo;
  wo.connect = server.endpoint();
  wo.insecure = true;
  wo.name = "plain";
  wo.heartbeat_interval = 100ms;
  WorkerThread w(wo);
  TaskSpec spec = sum_task(DType::U8, {33}, 4, 9);
  d.submit(spec);
  auto out = d.run(30s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker, "plain");
  expect_outputs_match(out[0], spec);
  // A secure server refuses to start without keys.
  ServerOptions bad;
  EXPECT_THROW(Server s(bad), ConfigError);
}
