// Protocol throughput: 100 MB tensor payloads over tcp loopback, Conflux wire protocol (header,
// validation, chunking, reassembly) against raw ZeroMQ (one zero-copy frame per payload, no
// header, no checks), both without and with CURVE, interleaved in the same run. Reports GB/s
// per configuration (median of --trials) and the ratios Conflux / raw.
//   bench_protocol [--mib 100] [--reps 8] [--trials 3] [--chunk-mib 8] [--json]
#include <conflux/protocol/keys.h>
#include <conflux/protocol/link.h>

#include <zmq.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace conflux;
using namespace conflux::protocol;
using Clock = std::chrono::steady_clock;

namespace {

struct Config {
  uint64_t bytes = 100ull << 20;
  int reps = 8;
  int trials = 3;
  uint64_t chunk = 8ull << 20;
  bool json = false;
};

struct Pair {
  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
  zmq::socket_t dealer{ctx, zmq::socket_type::dealer};
  Pair(bool curve) {
    for (auto* s : {&router, &dealer}) {
      s->set(zmq::sockopt::linger, 0);
      s->set(zmq::sockopt::sndhwm, 0);
      s->set(zmq::sockopt::rcvhwm, 0);
    }
    if (curve) {
      auto server = generate_keypair(), client = generate_keypair();
      router.set(zmq::sockopt::curve_server, 1);
      router.set(zmq::sockopt::curve_secretkey, server.secret_key);
      dealer.set(zmq::sockopt::curve_serverkey, server.public_key);
      dealer.set(zmq::sockopt::curve_publickey, client.public_key);
      dealer.set(zmq::sockopt::curve_secretkey, client.secret_key);
    }
    router.bind("tcp://127.0.0.1:*");
    dealer.connect(router.get(zmq::sockopt::last_endpoint));
  }
};

std::shared_ptr<std::vector<uint8_t>> payload(uint64_t bytes) {
  auto p = std::make_shared<std::vector<uint8_t>>(bytes);
  for (uint64_t i = 0; i < bytes; ++i) (*p)[i] = static_cast<uint8_t>(i * 2654435761u >> 13);
  return p;
}

void no_free(void*, void*) {}

// Raw ZeroMQ: DEALER sends `reps` single-frame zero-copy messages; ROUTER receives them.
double raw_gbps(const Config& c, bool curve, const std::shared_ptr<std::vector<uint8_t>>& buf) {
  Pair p(curve);
  p.dealer.send(zmq::str_buffer("warm"));
  zmq::message_t id, m;
  (void)p.router.recv(id);
  (void)p.router.recv(m);
  auto t0 = Clock::now();
  std::thread sender([&] {
    for (int r = 0; r < c.reps; ++r) {
      p.dealer.send(zmq::message_t(buf->data(), buf->size(), no_free, nullptr), zmq::send_flags::none);
    }
  });
  uint64_t got = 0;
  for (int r = 0; r < c.reps; ++r) {
    (void)p.router.recv(id);
    (void)p.router.recv(m);
    got += m.size();
  }
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  sender.join();
  if (got != c.bytes * c.reps) throw std::runtime_error("raw: short receive");
  return static_cast<double>(got) / s / 1e9;
}

// Conflux: a RESULT message with one float32 tensor per rep through two Links (encode,
// chunking, validation, sequence guard, reassembly on receive).
double conflux_gbps(const Config& c, bool curve, uint64_t chunk,
                    const std::shared_ptr<std::vector<uint8_t>>& buf) {
  Pair p(curve);
  LinkOptions lo;
  lo.chunk_bytes = chunk;
  lo.limits.max_frame_bytes = std::max<uint64_t>(chunk, 1 << 20);
  Link tx(std::move(p.dealer), "bench", lo, random_instance_id());
  Link rx(std::move(p.router), "coordinator", lo, random_instance_id());
  auto make = [&] {
    Message m;
    m.header.set_type(wire::RESULT);
    m.header.set_task_id(1);
    m.header.mutable_result()->set_kind("bench");
    m.tensors.push_back(Tensor::adopt("payload", DType::F32, {static_cast<int64_t>(c.bytes / 4)},
                                      buf, buf->data(), c.bytes));
    return m;
  };
  Message warm;
  warm.header.set_type(wire::HEARTBEAT);
  warm.header.mutable_heartbeat();
  tx.send("", warm);
  while (!rx.receive(std::chrono::milliseconds(1000))) {
  }
  auto t0 = Clock::now();
  std::thread sender([&] {
    for (int r = 0; r < c.reps; ++r) tx.send("", make());
  });
  uint64_t got = 0;
  int complete = 0;
  auto give_up = Clock::now() + std::chrono::seconds(300);
  while (complete < c.reps && Clock::now() < give_up) {
    auto in = rx.receive(std::chrono::milliseconds(1000));
    if (in && in->message) {
      got += in->message->tensors.at(0).byte_length();
      ++complete;
    } else if (in && in->error) {
      throw std::runtime_error("conflux: rejected " + in->error->message);
    }
  }
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  sender.join();
  if (got != c.bytes * c.reps) throw std::runtime_error("conflux: short receive");
  return static_cast<double>(got) / s / 1e9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::stoull(argv[++i]) : 0ull; };
    if (a == "--mib") c.bytes = next() << 20;
    else if (a == "--reps") c.reps = static_cast<int>(next());
    else if (a == "--trials") c.trials = static_cast<int>(next());
    else if (a == "--chunk-mib") c.chunk = next() << 20;
    else if (a == "--json") c.json = true;
    else {
      std::cerr << "usage: bench_protocol [--mib N] [--reps N] [--trials N] [--chunk-mib N] [--json]\n";
      return 2;
    }
  }
  if (c.bytes == 0 || c.bytes % 4 || c.reps < 1 || c.trials < 1 || c.chunk == 0) {
    std::cerr << "bench_protocol: sizes must be positive (payload a multiple of 4 bytes)\n";
    return 2;
  }
  auto buf = payload(c.bytes);
  const char* names[] = {"raw_plain", "conflux_plain", "conflux_plain_unchunked",
                         "raw_curve", "conflux_curve", "conflux_curve_unchunked"};
  std::vector<std::vector<double>> gbps(6);
  const uint64_t whole = c.bytes + (1 << 20);  // one frame per payload
  for (int t = 0; t < c.trials; ++t) {  // interleaved, so machine noise hits all alike
    gbps[0].push_back(raw_gbps(c, false, buf));
    gbps[1].push_back(conflux_gbps(c, false, c.chunk, buf));
    gbps[2].push_back(conflux_gbps(c, false, whole, buf));
    gbps[3].push_back(raw_gbps(c, true, buf));
    gbps[4].push_back(conflux_gbps(c, true, c.chunk, buf));
    gbps[5].push_back(conflux_gbps(c, true, whole, buf));
  }
  double m[6];
  for (int i = 0; i < 6; ++i) m[i] = median(gbps[i]);
  if (c.json) {
    std::printf("{\"payload_mib\": %llu, \"reps\": %d, \"trials\": %d, \"chunk_mib\": %llu",
                static_cast<unsigned long long>(c.bytes >> 20), c.reps, c.trials,
                static_cast<unsigned long long>(c.chunk >> 20));
    for (int i = 0; i < 6; ++i) std::printf(", \"%s_gbps\": %.3f", names[i], m[i]);
    std::printf(", \"ratio_plain\": %.3f, \"ratio_curve\": %.3f, \"ratio_plain_unchunked\": %.3f, "
                "\"ratio_curve_unchunked\": %.3f}\n",
                m[1] / m[0], m[4] / m[3], m[2] / m[0], m[5] / m[3]);
    return 0;
  }
  std::printf("payload %llu MiB x %d reps, median of %d trials, Conflux chunk %llu MiB\n",
              static_cast<unsigned long long>(c.bytes >> 20), c.reps, c.trials,
              static_cast<unsigned long long>(c.chunk >> 20));
  std::printf("%-26s %8s\n", "configuration", "GB/s");
  for (int i = 0; i < 6; ++i) std::printf("%-26s %8.3f\n", names[i], m[i]);
  std::printf("ratio conflux/raw plain %.3f (unchunked %.3f), CURVE %.3f (unchunked %.3f)\n",
              m[1] / m[0], m[2] / m[0], m[4] / m[3], m[5] / m[3]);
  return 0;
}
