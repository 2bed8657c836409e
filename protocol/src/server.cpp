// Server: the coordinator's session layer over a ROUTER socket (see server.h for the steps).
#include <conflux/protocol/server.h>

#include <conflux/protocol/endpoint.h>

#include <conflux/core/error.h>
#include <conflux/core/log.h>

#include <cstring>
#include <thread>

namespace conflux::protocol {
namespace {

using Steady = std::chrono::steady_clock;
constexpr const char* kZapDomain = "conflux";
constexpr int kDrainBurst = 64;

zmq::socket_t make_router(zmq::context_t& ctx, const ServerOptions& o,
                          std::unique_ptr<ZapHandler>* zap) {
  check_endpoint(o.bind, EndpointUse::Bind, "server bind endpoint");
  zmq::socket_t s(ctx, zmq::socket_type::router);
  s.set(zmq::sockopt::linger, 1000);
  s.set(zmq::sockopt::router_mandatory, 1);
  s.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(std::max(o.link.limits.max_frame_bytes,
                                                                 o.link.limits.max_header_bytes)));
  s.set(zmq::sockopt::rcvhwm, 10000);
  s.set(zmq::sockopt::sndhwm, 10000);
  if (!o.insecure) {
    if (!is_z85_key(o.secret_key)) {
      CONFLUX_THROW(ConfigError, "server secret key missing or not Z85 (or run with insecure)");
    }
    if (!o.allow) CONFLUX_THROW(ConfigError, "a secure server needs an allow-list of worker keys");
    *zap = std::make_unique<ZapHandler>(ctx, o.allow, kZapDomain);
    s.set(zmq::sockopt::curve_server, 1);
    s.set(zmq::sockopt::curve_secretkey, o.secret_key);
    s.set(zmq::sockopt::zap_domain, kZapDomain);
  }
  // A restarted coordinator may rebind a port its predecessor released a moment ago.
  auto give_up = Steady::now() + o.bind_retry_for;
  for (;;) {
    try {
      s.bind(o.bind);
      return s;
    } catch (const zmq::error_t& e) {
      if (e.num() != EADDRINUSE || Steady::now() > give_up) {
        CONFLUX_THROW(CommError, "cannot bind {}: {}", o.bind, e.what());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace

void load_server_keys(ServerOptions* o, const std::string& secret_key_file,
                      const std::string& allow_list_file) {
  o->insecure = false;
  o->secret_key = read_secret_key_file(secret_key_file).secret_key;
  auto allow = std::make_shared<AllowList>(AllowList::load(allow_list_file));
  if (allow->size() == 0) {
    log::warn("protocol: allow-list {} is empty: no worker can connect", allow_list_file);
  }
  o->allow = std::move(allow);
}

Server::Server(ServerOptions options)
    : options_(std::move(options)),
      context_(1),
      link_(make_router(context_, options_, &zap_), "coordinator", options_.link,
            random_instance_id()) {
  endpoint_ = link_.socket().get(zmq::sockopt::last_endpoint);
  const std::string mon = fmt::format("inproc://conflux-server-monitor-{:016x}", link_.instance());
  monitor_ = start_monitor(context_, link_.socket(), mon,
                           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL);
  next_heartbeat_ = Steady::now() + options_.heartbeat_interval;
  log::info("protocol: coordinator listening on {} ({}, instance {:016x})", endpoint_,
            options_.insecure ? "INSECURE plaintext" : "CURVE, allow-list", link_.instance());
}

Server::~Server() {
  try {
    shutdown("coordinator shutting down");
  } catch (...) {
  }
  if (zap_) zap_->stop();
}

void Server::shutdown(const std::string& reason) {
  if (shut_down_) return;
  shut_down_ = true;
  for (auto& [id, w] : workers_) {
    Message bye;
    bye.header.set_type(wire::BYE);
    bye.header.set_job_id(options_.job_id);
    bye.header.mutable_bye()->set_reason(reason);
    link_.send(w.peer, std::move(bye));
  }
  workers_.clear();
}

bool Server::send(const std::string& worker, Message msg) {
  auto it = workers_.find(worker);
  if (it == workers_.end()) return false;
  msg.header.set_job_id(options_.job_id);
  return link_.send(it->second.peer, std::move(msg), it->second.hello.max_chunk_bytes());
}

void Server::drop(const std::string& identity) {
  auto it = workers_.find(identity);
  if (it == workers_.end()) return;
  link_.forget(it->second.peer);
  workers_.erase(it);
}

std::vector<ServerEvent> Server::poll(std::chrono::milliseconds timeout) {
  std::vector<ServerEvent> events;
  const auto deadline = Steady::now() + timeout;
  for (;;) {
    housekeeping(&events);
    if (!events.empty()) return events;
    auto now = Steady::now();
    auto until = std::min(deadline, next_heartbeat_);
    auto wait = until > now ? std::chrono::duration_cast<std::chrono::milliseconds>(until - now)
                            : std::chrono::milliseconds(0);
    if (auto in = link_.receive(wait)) {
      handle(std::move(*in), &events);
      for (int i = 0; i < kDrainBurst; ++i) {
        auto more = link_.receive(std::chrono::milliseconds(0));
        if (!more) break;
        handle(std::move(*more), &events);
      }
    }
    if (!events.empty() || Steady::now() >= deadline) {
      housekeeping(&events);
      return events;
    }
  }
}

void Server::read_monitor() {
  if (!monitor_) return;
  while (auto e = next_monitor_event(*monitor_)) {
    const uint32_t value = e->value;
    // Rejected keys are logged by the ZAP handler; these are connections that never got that far.
    log::warn("protocol: a handshake on {} failed ({}): a worker given a different coordinator "
              "public key, or a client that does not speak CURVE", endpoint_,
              value ? zmq_strerror(static_cast<int>(value)) : "no detail");
  }
}

void Server::housekeeping(std::vector<ServerEvent>* events) {
  read_monitor();
  auto now = Steady::now();
  std::vector<std::string> dead;
  for (auto& [id, w] : workers_) {
    if (now - w.last_seen > options_.dead_after) dead.push_back(id);
  }
  for (auto& id : dead) {
    log::warn("protocol: worker {} silent for more than {} ms: declared dead", id,
              options_.dead_after.count());
    drop(id);
    events->push_back(ServerEvent{ServerEvent::Died, id, {}, "heartbeat deadline passed"});
  }
  if (now >= next_heartbeat_) {
    for (auto& [id, w] : workers_) {
      Message hb;
      hb.header.set_type(wire::HEARTBEAT);
      hb.header.set_job_id(options_.job_id);
      hb.header.mutable_heartbeat();
      link_.send(w.peer, std::move(hb));
    }
    next_heartbeat_ = now + options_.heartbeat_interval;
  }
}

void Server::handle_hello(const Inbound& in, const std::string& identity,
                          std::vector<ServerEvent>* events) {
  const Message& m = *in.message;
  auto it = workers_.find(identity);
  if (it != workers_.end()) {
    if (it->second.peer == in.peer && it->second.instance == m.header.instance()) {
      log::debug("protocol: repeated hello from {}", identity);
    } else if (it->second.instance == m.header.instance()) {
      // Same worker process on a new connection (network blip, or its reconnect racing a
      // coordinator restart): keep its session; what was sent to the old connection may be
      // lost, which the Reconnected event lets the job layer repair.
      log::info("protocol: worker {} reconnected", identity);
      link_.forget(it->second.peer);
      it->second.peer = in.peer;
      it->second.last_seen = Steady::now();
      events->push_back(ServerEvent{ServerEvent::Reconnected, identity, {}, "new connection"});
    } else {
      log::info("protocol: worker {} started a new session; the old one ends", identity);
      drop(identity);
      events->push_back(ServerEvent{ServerEvent::Died, identity, {}, "replaced by a new session"});
      it = workers_.end();
    }
  }
  if (it == workers_.end()) {
    // A connection can carry only one identity: forget any other registered on this peer.
    for (auto jt = workers_.begin(); jt != workers_.end();) {
      if (jt->second.peer == in.peer) {
        events->push_back(ServerEvent{ServerEvent::Died, jt->first, {}, "connection reused"});
        jt = workers_.erase(jt);
      } else {
        ++jt;
      }
    }
    WorkerInfo w;
    w.identity = identity;
    w.peer = in.peer;
    w.instance = m.header.instance();
    w.hello = m.header.hello();
    w.last_seen = Steady::now();
    workers_[identity] = w;
    log::info("protocol: worker {} joined (name '{}', kinds {}, {} rows of '{}')", identity,
              w.hello.name(), w.hello.task_kinds_size(), w.hello.data().rows(),
              w.hello.data().dataset());
    events->push_back(ServerEvent{ServerEvent::Joined, identity, {}, ""});
  }
  Message welcome;
  welcome.header.set_type(wire::WELCOME);
  welcome.header.set_job_id(options_.job_id);
  auto* b = welcome.header.mutable_welcome();
  b->set_identity(identity);
  b->set_heartbeat_interval_ms(static_cast<uint32_t>(options_.heartbeat_interval.count()));
  b->set_dead_after_ms(static_cast<uint32_t>(options_.dead_after.count()));
  b->set_max_chunk_bytes(options_.link.limits.max_frame_bytes);
  link_.send(in.peer, std::move(welcome));
}

void Server::handle(Inbound&& in, std::vector<ServerEvent>* events) {
  if (!in.message) return;  // rejected and answered by the Link
  Message& m = *in.message;
  const auto type = m.header.type();
  auto reply_error = [&](ErrorCode code, const std::string& text) {
    log::warn("protocol: {} from {}: {}", error_code_name(code), printable_peer(in.peer), text);
    Message e = make_error(code, text, m.header.sequence());
    e.header.set_job_id(options_.job_id);
    e.header.set_task_id(m.header.task_id());
    if (type != wire::ERROR) link_.send(in.peer, std::move(e));
  };
  if (type == wire::HELLO) {
    std::string identity = options_.insecure ? m.header.sender() : in.user_id;
    if (identity.empty()) {
      reply_error(wire::MALFORMED, options_.insecure ? "insecure hello needs a sender name"
                                                     : "connection has no authenticated identity");
      return;
    }
    if (!m.header.sender().empty() && m.header.sender() != identity) {
      reply_error(wire::IDENTITY_MISMATCH,
                  fmt::format("sender '{}' is not the authenticated identity '{}'",
                              m.header.sender(), identity));
      return;
    }
    handle_hello(in, identity, events);
    return;
  }
  // Everything else must come from a registered session: same connection, same instance.
  auto it = workers_.begin();
  for (; it != workers_.end(); ++it) {
    if (it->second.peer == in.peer) break;
  }
  if (it == workers_.end() || it->second.instance != m.header.instance()) {
    reply_error(wire::UNKNOWN_SESSION, "no session for this connection: send hello first");
    return;
  }
  WorkerInfo& w = it->second;
  if (!m.header.sender().empty() && m.header.sender() != w.identity) {
    reply_error(wire::IDENTITY_MISMATCH, fmt::format("sender '{}' is not the authenticated '{}'",
                                                     m.header.sender(), w.identity));
    return;
  }
  w.last_seen = Steady::now();
  const std::string identity = w.identity;
  switch (type) {
    case wire::HEARTBEAT:
      return;
    case wire::RESULT:
      events->push_back(ServerEvent{ServerEvent::Result, identity, std::move(m), ""});
      return;
    case wire::ERROR:
      if (m.header.task_id() != 0) {
        events->push_back(ServerEvent{ServerEvent::TaskError, identity, std::move(m), ""});
      } else {
        log::warn("protocol: worker {} reports {}: {}", identity,
                  error_code_name(m.header.error().code()), m.header.error().message());
      }
      return;
    case wire::BYE: {
      log::info("protocol: worker {} said bye: {}", identity, m.header.bye().reason());
      std::string reason = m.header.bye().reason();
      drop(identity);
      events->push_back(ServerEvent{ServerEvent::Left, identity, std::move(m), reason});
      return;
    }
    default:
      reply_error(wire::BAD_TYPE,
                  fmt::format("a worker may not send {}", message_type_name(type)));
  }
}

}  // namespace conflux::protocol
