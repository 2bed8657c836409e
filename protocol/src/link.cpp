// Link: sending (chunking, zero-copy frames) and validated receiving over one ZeroMQ socket.
#include <conflux/protocol/link.h>

#include <algorithm>
#include <cstring>

#include <conflux/core/error.h>
#include <conflux/core/log.h>
#include <conflux/core/metrics_registry.h>

#include <sodium.h>
#include <zmq.h>

namespace conflux::protocol {
namespace {

constexpr size_t kCopyBelow = 4096;  // tiny frames are cheaper to copy than to reference
constexpr size_t kMaxPeers = 4096;

void release_owner(void* /*data*/, void* hint) {
  delete static_cast<std::shared_ptr<const void>*>(hint);
}

zmq::message_t frame_message(const FrameRef& f) {
  if (f.size < kCopyBelow || !f.owner) return zmq::message_t(f.data, f.size);
  auto* hint = new std::shared_ptr<const void>(f.owner);
  return zmq::message_t(const_cast<uint8_t*>(f.data), f.size, &release_owner, hint);
}

}  // namespace

std::unique_ptr<zmq::socket_t> start_monitor(zmq::context_t& ctx, zmq::socket_t& socket,
                                             const std::string& address, int events) {
  if (zmq_socket_monitor(socket.handle(), address.c_str(), events) != 0) return nullptr;
  auto m = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pair);
  m->set(zmq::sockopt::linger, 0);
  m->connect(address);
  return m;
}

std::optional<MonitorEvent> next_monitor_event(zmq::socket_t& monitor) {
  zmq::message_t event, address;  // frame 1: uint16 id + uint32 value; frame 2: the endpoint
  if (!monitor.recv(event, zmq::recv_flags::dontwait)) return std::nullopt;
  if (!monitor.recv(address, zmq::recv_flags::dontwait) || event.size() < 6) return std::nullopt;
  MonitorEvent e;
  std::memcpy(&e.id, event.data(), 2);
  std::memcpy(&e.value, static_cast<const char*>(event.data()) + 2, 4);
  return e;
}

uint64_t random_instance_id() {
  if (sodium_init() < 0) CONFLUX_THROW(InternalError, "libsodium failed to initialise");
  uint64_t v = 0;
  while (v == 0) randombytes_buf(&v, sizeof v);
  return v;
}

std::string printable_peer(const std::string& id) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : id) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out.empty() ? "server" : out;
}

LinkMetrics register_link_metrics(metrics::Registry& r, const std::string& prefix) {
  LinkMetrics m;
  m.bytes_sent = &r.counter(prefix + "_bytes_sent", "wire bytes sent (protocol headers and tensor frames)");
  m.bytes_received = &r.counter(prefix + "_bytes_received", "wire bytes received (before validation)");
  m.rejected = &r.counter(prefix + "_messages_rejected", "messages rejected as malformed, oversized or out of order");
  return m;
}

Link::Link(zmq::socket_t socket, std::string sender, LinkOptions options, uint64_t instance)
    : socket_(std::move(socket)),
      router_(socket_.get(zmq::sockopt::type) == ZMQ_ROUTER),
      sender_(std::move(sender)),
      options_(options),
      instance_(instance) {
  socket_.set(zmq::sockopt::sndtimeo, static_cast<int>(options_.send_timeout.count()));
}

// Sends one frame, retrying when a signal interrupts the call (EINTR); false on EAGAIN/timeout.
bool send_frame(zmq::socket_t& s, zmq::message_t&& m, zmq::send_flags flags) {
  for (int attempt = 0;; ++attempt) {
    try {
      return s.send(m, flags).has_value();
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR || attempt > 1000) throw;
    }
  }
}

bool Link::send(const std::string& peer, Message msg, uint64_t max_chunk) {
  msg.header.set_version(kProtocolVersion);
  msg.header.set_sender(sender_);
  msg.header.set_instance(instance_);
  // A peer's stated limit lowers the chunk size, down to a floor that keeps a hostile or
  // mistaken peer from making us send millions of tiny messages.
  constexpr uint64_t kMinChunk = 64 << 10;
  const uint64_t chunk = max_chunk ? std::min(std::max(max_chunk, kMinChunk), options_.chunk_bytes)
                                   : options_.chunk_bytes;
  std::vector<WireMessage> wires = encode(msg, chunk, &next_sequence_);
  uint64_t bytes = 0;
  // Counted as handed over, also when a later chunk fails.
  struct Count {
    metrics::Counter* c;
    const uint64_t& n;
    ~Count() {
      if (c && n) c->inc(static_cast<double>(n));
    }
  } count{options_.metrics.bytes_sent, bytes};
  try {
    for (auto& w : wires) {
      if (router_ && !send_frame(socket_, zmq::message_t(peer.data(), peer.size()),
                                 zmq::send_flags::sndmore)) {
        return false;
      }
      auto more = w.frames.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore;
      if (!send_frame(socket_, zmq::message_t(w.header.data(), w.header.size()), more) &&
          !router_) {
        return false;
      }
      bytes += w.header.size();
      for (size_t i = 0; i < w.frames.size(); ++i) {
        auto flag = i + 1 < w.frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
        send_frame(socket_, frame_message(w.frames[i]), flag);
        bytes += w.frames[i].size;
      }
    }
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH (ROUTER_MANDATORY, peer gone) or a closed context.
    log::debug("protocol: send to {} failed: {}", printable_peer(peer), e.what());
    return false;
  }
  return true;
}

Link::PeerState& Link::state(const std::string& peer) {
  auto it = peers_.find(peer);
  if (it != peers_.end()) return it->second;
  if (peers_.size() >= kMaxPeers) peers_.erase(peers_.begin());
  return peers_.emplace(peer, PeerState{SequenceGuard{}, Reassembler{options_.limits}})
      .first->second;
}

void Link::forget(const std::string& peer) { peers_.erase(peer); }

void Link::reject(const std::string& peer, const DecodeError& e, bool reply) {
  ++rejected_;
  if (options_.metrics.rejected) options_.metrics.rejected->inc();
  log::warn("protocol: rejected a message from {}: {} ({})", printable_peer(peer),
            error_code_name(e.code), e.message);
  if (reply) send(peer, make_error(e.code, e.message, e.ref_sequence));
}

std::optional<Inbound> Link::receive(std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
  try {
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return std::nullopt;  // a signal; the caller's loop checks its flags
    throw;
  }
  Inbound in;
  std::vector<FrameRef> frames;
  const size_t max_frames = static_cast<size_t>(options_.limits.max_pieces) + 2;
  size_t count = 0;
  bool too_many = false;
  for (;;) {
    auto m = std::make_shared<zmq::message_t>();
    try {
      if (!socket_.recv(*m, zmq::recv_flags::dontwait)) break;
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR && count > 0) continue;  // rest of a multipart is already queued
      if (e.num() == EINTR) return std::nullopt;
      throw;
    }
    bool more = m->more();
    if (options_.metrics.bytes_received && !(router_ && count == 0))
      options_.metrics.bytes_received->inc(static_cast<double>(m->size()));
    if (router_ && count == 0) {
      in.peer = m->to_string();
    } else if (frames.size() < max_frames) {
      if (in.user_id.empty()) {
        if (const char* uid = zmq_msg_gets(m->handle(), "User-Id")) in.user_id = uid;
      }
      frames.push_back(FrameRef{static_cast<const uint8_t*>(m->data()), m->size(), m});
    } else {
      too_many = true;  // keep draining this multipart message, then reject it
    }
    ++count;
    if (!more) break;
  }
  if (count == 0) return std::nullopt;
  PeerState& ps = state(in.peer);
  ps.reassembler.expire(options_.reassembly_timeout);
  DecodeResult r;
  if (too_many) {
    r.error = DecodeError{wire::TOO_LARGE, "more frames than the limit allows", 0};
  } else {
    r = decode_frames(frames, options_.limits);
  }
  if (!r.ok()) {
    // Never answer an ERROR with an ERROR; answer everything else, even garbage.
    wire::Header h;
    bool is_error = !frames.empty() && frames[0].size < options_.limits.max_header_bytes &&
                    h.ParseFromArray(frames[0].data, static_cast<int>(frames[0].size)) &&
                    h.type() == wire::ERROR;
    reject(in.peer, r.error, !is_error);
    in.error = r.error;
    return in;
  }
  const bool is_error = r.value->header.type() == wire::ERROR;
  if (auto e = ps.guard.check(r.value->header.instance(), r.value->header.sequence())) {
    reject(in.peer, *e, !is_error);
    in.error = *e;
    return in;
  }
  Reassembler::Outcome out = ps.reassembler.feed(std::move(*r.value));
  if (out.kind == Reassembler::Outcome::Pending) return std::nullopt;
  if (out.kind == Reassembler::Outcome::Failed) {
    reject(in.peer, out.error, !is_error);
    in.error = out.error;
    return in;
  }
  in.message = std::move(out.message);
  return in;
}

}  // namespace conflux::protocol
