// ZAP handler: the ZeroMQ authentication hook that admits only allow-listed CURVE keys.
//
// FACT: a CURVE server without a ZAP handler encrypts but admits any client key, so every
// secure Server owns one. It binds inproc://zeromq.zap.01 on the server's own context (one
// handler per context) and answers requests on a background thread: 200 with the key's identity
// as ZAP user id (read back with zmq_msg_gets(msg, "User-Id")), 400 for unknown keys, non-CURVE
// mechanisms or a wrong domain. Ownership: the thread belongs to this object; stop() (also run
// by the destructor) sets a flag, the thread notices within 50 ms, closes its socket and is
// joined. Safe to call stop() twice. Must be destroyed before the context is closed.
#pragma once

#include <conflux/protocol/keys.h>

#include <zmq.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

namespace conflux::protocol {

class ZapHandler {
 public:
  ZapHandler(zmq::context_t& context, std::shared_ptr<const AllowList> allow, std::string domain);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  void stop();
  uint64_t accepted() const { return accepted_.load(); }
  uint64_t rejected() const { return rejected_.load(); }

 private:
  void loop();
  zmq::socket_t socket_;
  std::shared_ptr<const AllowList> allow_;
  std::string domain_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> rejected_{0};
  std::thread thread_;
};

}  // namespace conflux::protocol
