// Link: one ZeroMQ socket speaking the Conflux wire protocol (ROUTER on the coordinator,
// DEALER on a worker): chunked zero-copy sends with sequence numbers, and a receive path that
// validates every message (decode_frames -> SequenceGuard -> Reassembler) per peer. A rejected
// message is answered with an ERROR (never for an ERROR, so two peers cannot loop) and logged.
//
// Contract: not thread-safe; one thread owns the Link and its socket. Sends block at most
// send_timeout (ZMQ_SNDTIMEO) and report failure by returning false. Nothing on the receive path
// throws because of peer input.
#pragma once

#include <conflux/protocol/codec.h>

#include <zmq.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace conflux::metrics {
class Counter;
class Registry;
}  // namespace conflux::metrics

namespace conflux::protocol {

// Optional counters (core/metrics_registry.h) a Link adds its traffic to; they must outlive it.
struct LinkMetrics {
  metrics::Counter* bytes_sent = nullptr;      // header + tensor frames handed to ZeroMQ
  metrics::Counter* bytes_received = nullptr;  // frames received (before validation)
  metrics::Counter* rejected = nullptr;        // messages rejected as malformed or out of order
};

// Registers PREFIX_bytes_sent, PREFIX_bytes_received and PREFIX_messages_rejected (counters)
// in `registry` and returns them, e.g. prefix "conflux_coordinator" or "conflux_worker".
LinkMetrics register_link_metrics(metrics::Registry& registry, const std::string& prefix);

struct LinkOptions {
  Limits limits;
  LinkMetrics metrics;
  uint64_t chunk_bytes = kDefaultChunkBytes;            // outgoing payload per wire message
  std::chrono::milliseconds send_timeout{30000};
  std::chrono::milliseconds reassembly_timeout{120000};  // drop a transfer stalled this long
};

struct Inbound {
  std::string peer;                 // ROUTER routing id ("" on a DEALER)
  std::string user_id;              // ZAP identity of the connection ("" when insecure)
  std::optional<Message> message;   // a complete, validated message ...
  std::optional<DecodeError> error; // ... or why it was rejected (already answered)
};

class Link {
 public:
  // `socket` must be a ROUTER or DEALER, configured (CURVE etc.) and bound/connected.
  Link(zmq::socket_t socket, std::string sender, LinkOptions options, uint64_t instance);

  zmq::socket_t& socket() { return socket_; }
  uint64_t instance() const { return instance_; }
  const std::string& sender() const { return sender_; }
  void set_sender(std::string s) { sender_ = std::move(s); }
  const LinkOptions& options() const { return options_; }

  // Fills version/sender/instance/sequence, chunks and sends. `peer` is the routing id on a
  // ROUTER (ignored on a DEALER). `max_chunk`, when non-zero, lowers the chunk size to what the
  // peer accepts. False if unroutable or timed out (the peer is gone or stuck).
  bool send(const std::string& peer, Message msg, uint64_t max_chunk = 0);
  // Waits up to `timeout` for one wire message. nullopt: nothing, or a chunk of a transfer
  // still in progress.
  std::optional<Inbound> receive(std::chrono::milliseconds timeout);
  // Drops the receive state of a peer (it left or died).
  void forget(const std::string& peer);
  uint64_t rejected() const { return rejected_; }
  // The sequence number the next wire message gets; a worker carries it over to the Link of a
  // new connection, since sequence numbers increase per sender instance, not per connection.
  uint64_t next_sequence() const { return next_sequence_; }
  void set_next_sequence(uint64_t s) { next_sequence_ = s; }

 private:
  struct PeerState {
    SequenceGuard guard;
    Reassembler reassembler;
  };
  void reject(const std::string& peer, const DecodeError& e, bool reply);
  PeerState& state(const std::string& peer);

  zmq::socket_t socket_;
  bool router_;
  std::string sender_;
  LinkOptions options_;
  uint64_t instance_;
  uint64_t next_sequence_ = 1;
  uint64_t rejected_ = 0;
  std::map<std::string, PeerState> peers_;
};

// ZeroMQ socket monitor (zmq_socket_monitor) for `events` on `socket`, read through a PAIR socket
// in `ctx`; nullptr if monitoring cannot start. `address` must be a unique inproc:// name.
std::unique_ptr<zmq::socket_t> start_monitor(zmq::context_t& ctx, zmq::socket_t& socket,
                                             const std::string& address, int events);
struct MonitorEvent {
  uint16_t id = 0;     // ZMQ_EVENT_*
  uint32_t value = 0;  // the event's value (an errno, a status, a protocol error code)
};
// The next pending event, without waiting.
std::optional<MonitorEvent> next_monitor_event(zmq::socket_t& monitor);

// A random non-zero 64-bit instance id (libsodium), new for every process / session.
uint64_t random_instance_id();
// Peer name for logs: routing ids are binary.
std::string printable_peer(const std::string& routing_id);

}  // namespace conflux::protocol
