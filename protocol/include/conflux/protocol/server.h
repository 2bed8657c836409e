// Server: the coordinator's end of the wire protocol. Binds a ROUTER (CURVE + ZAP allow-list by
// default), runs the session layer (hello/welcome, heartbeats both ways, bye, death detection)
// and hands task-level events (results, task errors, joins, departures, deaths) to its owner,
// usually a TaskDispatcher (it is the dispatcher's WorkerPool).
//
// Step by step, per poll():
//  a. receive and validate wire messages (Link) until the timeout or an event is ready;
//  b. hello -> register the worker under its authenticated identity (ZAP user id; the header's
//     sender must match it), reply welcome; any other message must come from the registered
//     connection and instance, else UNKNOWN_SESSION (e.g. after a coordinator restart);
//  c. every heartbeat_interval send a heartbeat to each worker; a worker silent for dead_after
//     is declared dead (event Died) and forgotten.
// Contract: single-threaded (the thread that calls poll/send owns the socket); the ZAP thread is
// internal. The destructor says bye to every worker (best effort) and joins the ZAP thread.
#pragma once

#include <conflux/protocol/keys.h>
#include <conflux/protocol/link.h>
#include <conflux/protocol/worker_pool.h>
#include <conflux/protocol/zap.h>

#include <zmq.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace conflux::protocol {

struct ServerOptions {
  std::string bind = "tcp://127.0.0.1:*";
  bool insecure = false;                    // plaintext, identities unauthenticated (tests only)
  std::string secret_key;                   // Z85 server secret key (required unless insecure)
  std::shared_ptr<const AllowList> allow;   // admitted worker keys (required unless insecure)
  std::string job_id = "conflux";
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds dead_after{5000};
  std::chrono::milliseconds bind_retry_for{5000};  // rebinding a just-released port
  LinkOptions link;
};

// Secure mode from files: the coordinator's NAME.key and the allow-list of worker keys.
// Throws IoError/DataError naming the file on a problem.
void load_server_keys(ServerOptions* options, const std::string& secret_key_file,
                      const std::string& allow_list_file);

class Server final : public WorkerPool {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound endpoint with the real port (ZMQ_LAST_ENDPOINT), e.g. "tcp://127.0.0.1:40123".
  const std::string& endpoint() const { return endpoint_; }
  uint64_t instance() const { return link_.instance(); }
  const ServerOptions& options() const { return options_; }

  // Runs the session layer for up to `timeout`; returns as soon as events are available.
  std::vector<ServerEvent> poll(std::chrono::milliseconds timeout) override;
  // Sends to a registered worker (fills job_id), in chunks no larger than the worker accepts
  // (Hello.max_chunk_bytes). False if unknown or unreachable.
  bool send(const std::string& worker, Message msg) override;
  const std::map<std::string, WorkerInfo>& workers() const override { return workers_; }
  const std::string& job_id() const override { return options_.job_id; }
  // Says bye to every worker and forgets them (also done by the destructor).
  void shutdown(const std::string& reason);

  uint64_t rejected_messages() const { return link_.rejected(); }
  uint64_t rejected_keys() const { return zap_ ? zap_->rejected() : 0; }

 private:
  void handle(Inbound&& in, std::vector<ServerEvent>* events);
  void handle_hello(const Inbound& in, const std::string& identity, std::vector<ServerEvent>* ev);
  void housekeeping(std::vector<ServerEvent>* events);
  void drop(const std::string& identity);
  void read_monitor();

  ServerOptions options_;
  zmq::context_t context_;
  std::unique_ptr<ZapHandler> zap_;
  Link link_;
  std::unique_ptr<zmq::socket_t> monitor_;  // failed handshakes, logged with the reason
  std::string endpoint_;
  std::map<std::string, WorkerInfo> workers_;
  std::chrono::steady_clock::time_point next_heartbeat_;
  bool shut_down_ = false;
};

}  // namespace conflux::protocol
