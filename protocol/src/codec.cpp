// Encoding of Messages into chunked wire messages and the validating, allocation-bounded decoder
// (decode_frames, SequenceGuard, Reassembler). Every check names what was wrong; nothing here
// trusts a declared length until it has been compared with the actual frame sizes and limits.
#include <conflux/protocol/codec.h>

#include <conflux/core/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <new>
#include <unordered_set>

namespace conflux::protocol {
namespace {

constexpr uint32_t kMaxPiecesPerWireMessage = 4096;
constexpr size_t kRetiredInstances = 32;

wire::Header::BodyCase body_for(MessageType t) {
  switch (t) {
    case wire::HELLO: return wire::Header::kHello;
    case wire::WELCOME: return wire::Header::kWelcome;
    case wire::TASK: return wire::Header::kTask;
    case wire::RESULT: return wire::Header::kResult;
    case wire::HEARTBEAT: return wire::Header::kHeartbeat;
    case wire::ERROR: return wire::Header::kError;
    case wire::BYE: return wire::Header::kBye;
    case wire::CANCEL: return wire::Header::kCancel;
    default: return wire::Header::BODY_NOT_SET;
  }
}

DecodeError err(ErrorCode code, std::string text, uint64_t seq = 0) {
  return DecodeError{code, std::move(text), seq};
}

// Product of dims times the dtype size, or nullopt on overflow.
std::optional<uint64_t> checked_bytes(const wire::TensorDesc& t, DType dt) {
  uint64_t n = dtype_size(dt);
  for (int64_t d : t.shape()) {
    if (d < 0) return std::nullopt;
    if (d != 0 && n > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d)) {
      return std::nullopt;
    }
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

void skip_empty(const google::protobuf::RepeatedPtrField<wire::TensorDesc>& tensors, uint32_t* ct) {
  while (*ct < static_cast<uint32_t>(tensors.size()) && tensors.Get(*ct).byte_length() == 0) ++*ct;
}

}  // namespace

std::vector<WireMessage> encode(const Message& msg, uint64_t chunk_bytes, uint64_t* next_sequence) {
  if (chunk_bytes == 0) chunk_bytes = kDefaultChunkBytes;
  // Plan: cut the concatenated tensor bytes into wire messages of <= chunk_bytes payload.
  std::vector<std::vector<wire::Piece>> plan(1);
  uint64_t used = 0;
  for (size_t i = 0; i < msg.tensors.size(); ++i) {
    const Tensor& t = msg.tensors[i];
    if (tensor_bytes(t.dtype(), t.shape()) != t.byte_length()) {
      CONFLUX_THROW(DataError, "tensor '{}' has {} bytes but its dtype and shape need {}", t.name(),
                    t.byte_length(), tensor_bytes(t.dtype(), t.shape()));
    }
    uint64_t off = 0;
    while (off < t.byte_length()) {
      if (used == chunk_bytes || plan.back().size() == kMaxPiecesPerWireMessage) {
        plan.emplace_back();
        used = 0;
      }
      uint64_t len = std::min<uint64_t>(chunk_bytes - used, t.byte_length() - off);
      wire::Piece p;
      p.set_tensor(static_cast<uint32_t>(i));
      p.set_offset(off);
      p.set_length(len);
      plan.back().push_back(p);
      used += len;
      off += len;
    }
  }
  const uint32_t count = static_cast<uint32_t>(plan.size());
  const uint64_t transfer_id = *next_sequence;
  std::vector<WireMessage> out;
  out.reserve(count);
  for (uint32_t k = 0; k < count; ++k) {
    wire::Header h;
    if (k == 0) {
      h = msg.header;
      h.clear_tensors();
      for (const Tensor& t : msg.tensors) {
        auto* d = h.add_tensors();
        d->set_name(t.name());
        d->set_dtype(to_wire(t.dtype()));
        for (int64_t s : t.shape()) d->add_shape(s);
        d->set_byte_length(t.byte_length());
      }
    } else {
      h.set_version(msg.header.version());
      h.set_type(msg.header.type());
      h.set_job_id(msg.header.job_id());
      h.set_task_id(msg.header.task_id());
      h.set_round(msg.header.round());
      h.set_sender(msg.header.sender());
      h.set_instance(msg.header.instance());
    }
    h.clear_pieces();
    h.clear_chunk();
    h.set_sequence((*next_sequence)++);
    if (count > 1) {
      h.mutable_chunk()->set_transfer_id(transfer_id);
      h.mutable_chunk()->set_index(k);
      h.mutable_chunk()->set_count(count);
    }
    WireMessage w;
    for (const wire::Piece& p : plan[k]) {
      *h.add_pieces() = p;
      const Tensor& t = msg.tensors[p.tensor()];
      w.frames.push_back(FrameRef{t.data() + p.offset(), p.length(), t.owner()});
    }
    h.SerializeToString(&w.header);
    out.push_back(std::move(w));
  }
  return out;
}

std::optional<DecodeError> walk_pieces(
    const wire::Header& h, const google::protobuf::RepeatedPtrField<wire::TensorDesc>& tensors,
    uint32_t* ct, uint64_t* co) {
  const uint32_t n = static_cast<uint32_t>(tensors.size());
  skip_empty(tensors, ct);
  for (int k = 0; k < h.pieces_size(); ++k) {
    const wire::Piece& p = h.pieces(k);
    if (*ct >= n) {
      return err(wire::SIZE_MISMATCH,
                 fmt::format("piece {} carries bytes beyond the {} declared tensors", k, n),
                 h.sequence());
    }
    const uint64_t len = tensors.Get(*ct).byte_length();
    if (p.tensor() != *ct || p.offset() != *co) {
      return err(wire::SIZE_MISMATCH,
                 fmt::format("piece {} is tensor {} offset {}, expected tensor {} offset {}", k,
                             p.tensor(), p.offset(), *ct, *co),
                 h.sequence());
    }
    if (p.length() == 0 || p.length() > len - *co) {
      return err(wire::SIZE_MISMATCH,
                 fmt::format("piece {} of {} bytes overruns tensor '{}' ({} of {} bytes left)", k,
                             p.length(), tensors.Get(*ct).name(), len - *co, len),
                 h.sequence());
    }
    *co += p.length();
    if (*co == len) {
      ++*ct;
      *co = 0;
      skip_empty(tensors, ct);
    }
  }
  return std::nullopt;
}

DecodeResult decode_frames(const std::vector<FrameRef>& frames, const Limits& limits) {
  DecodeResult r;
  if (frames.empty()) {
    r.error = err(wire::MALFORMED, "empty message (no header frame)");
    return r;
  }
  if (frames[0].size > limits.max_header_bytes) {
    r.error = err(wire::TOO_LARGE, fmt::format("header frame of {} bytes exceeds the limit of {}",
                                               frames[0].size, limits.max_header_bytes));
    return r;
  }
  wire::Header h;
  if (frames[0].size > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !h.ParseFromArray(frames[0].data, static_cast<int>(frames[0].size))) {
    r.error = err(wire::MALFORMED, "header frame does not parse as a conflux.protocol.wire.Header");
    return r;
  }
  const uint64_t seq = h.sequence();
  auto fail = [&](ErrorCode c, std::string text) {
    r.error = err(c, std::move(text), seq);
    return r;
  };
  if (h.version() != kProtocolVersion) {
    return fail(wire::UNSUPPORTED_VERSION,
                fmt::format("protocol version {} not supported (this peer speaks {})", h.version(),
                            kProtocolVersion));
  }
  if (!wire::MessageType_IsValid(h.type()) || h.type() == wire::MESSAGE_TYPE_UNSPECIFIED) {
    return fail(wire::BAD_TYPE, fmt::format("unknown message type {}", static_cast<int>(h.type())));
  }
  if (h.sequence() == 0 || h.instance() == 0) {
    return fail(wire::MALFORMED, "sequence and instance must be non-zero");
  }
  const bool chunked = h.has_chunk();
  if (chunked) {
    const auto& c = h.chunk();
    if (c.count() == 0 || c.index() >= c.count() || c.count() > limits.max_chunks ||
        c.transfer_id() == 0) {
      return fail(wire::CHUNK_ERROR, fmt::format("bad chunking: transfer {} index {} count {}",
                                                 c.transfer_id(), c.index(), c.count()));
    }
  }
  const bool first = !chunked || h.chunk().index() == 0;
  if (first) {
    if (h.body_case() != body_for(h.type())) {
      return fail(wire::MALFORMED, fmt::format("{} message without its {} body",
                                               message_type_name(h.type()),
                                               message_type_name(h.type())));
    }
  } else if (h.body_case() != wire::Header::BODY_NOT_SET || h.tensors_size() != 0) {
    return fail(wire::CHUNK_ERROR, "only chunk 0 may carry a body and tensor descriptions");
  }
  if (static_cast<uint64_t>(h.tensors_size()) > limits.max_tensors) {
    return fail(wire::TOO_LARGE, fmt::format("{} tensors exceed the limit of {}", h.tensors_size(),
                                             limits.max_tensors));
  }
  std::unordered_set<std::string> names;
  uint64_t total = 0;
  for (int i = 0; i < h.tensors_size(); ++i) {
    const auto& t = h.tensors(i);
    if (t.name().empty() || t.name().size() > limits.max_name_bytes) {
      return fail(wire::MALFORMED, fmt::format("tensor {} has a name of {} bytes (1..{} allowed)",
                                               i, t.name().size(), limits.max_name_bytes));
    }
    if (!names.insert(t.name()).second) {
      return fail(wire::MALFORMED, fmt::format("tensor name '{}' appears twice", t.name()));
    }
    DType dt;
    if (!to_dtype(t.dtype(), &dt)) {
      return fail(wire::BAD_DTYPE, fmt::format("tensor '{}' has unknown dtype {}", t.name(),
                                               static_cast<int>(t.dtype())));
    }
    if (static_cast<uint64_t>(t.shape_size()) > limits.max_dims) {
      return fail(wire::BAD_SHAPE, fmt::format("tensor '{}' has {} dims (limit {})", t.name(),
                                               t.shape_size(), limits.max_dims));
    }
    auto bytes = checked_bytes(t, dt);
    if (!bytes) {
      return fail(wire::BAD_SHAPE, fmt::format("tensor '{}' has a negative or overflowing shape",
                                               t.name()));
    }
    if (*bytes != t.byte_length()) {
      return fail(wire::BAD_SHAPE,
                  fmt::format("tensor '{}': shape and {} need {} bytes, header declares {}",
                              t.name(), dtype_name(dt), *bytes, t.byte_length()));
    }
    if (*bytes > limits.max_message_bytes - total) {
      return fail(wire::TOO_LARGE, fmt::format("declared tensors exceed the limit of {} bytes",
                                               limits.max_message_bytes));
    }
    total += *bytes;
  }
  if (static_cast<uint64_t>(h.pieces_size()) > limits.max_pieces) {
    return fail(wire::TOO_LARGE, fmt::format("{} pieces exceed the limit of {}", h.pieces_size(),
                                             limits.max_pieces));
  }
  if (frames.size() != static_cast<size_t>(h.pieces_size()) + 1) {
    return fail(wire::SIZE_MISMATCH, fmt::format("{} payload frames but {} pieces declared",
                                                 frames.size() - 1, h.pieces_size()));
  }
  for (int k = 0; k < h.pieces_size(); ++k) {
    const FrameRef& f = frames[static_cast<size_t>(k) + 1];
    if (f.size > limits.max_frame_bytes) {
      return fail(wire::TOO_LARGE, fmt::format("frame {} of {} bytes exceeds the limit of {}",
                                               k + 1, f.size, limits.max_frame_bytes));
    }
    if (f.size != h.pieces(k).length()) {
      return fail(wire::SIZE_MISMATCH, fmt::format("frame {} has {} bytes, its piece declares {}",
                                                   k + 1, f.size, h.pieces(k).length()));
    }
  }
  if (first) {
    uint32_t ct = 0;
    uint64_t co = 0;
    if (auto e = walk_pieces(h, h.tensors(), &ct, &co)) {
      r.error = *e;
      return r;
    }
    if (!chunked && ct != static_cast<uint32_t>(h.tensors_size())) {
      return fail(wire::SIZE_MISMATCH,
                  fmt::format("payload ends at tensor {} offset {} of {} declared tensors", ct, co,
                              h.tensors_size()));
    }
  }
  Decoded d;
  d.header = std::move(h);
  d.payload.assign(frames.begin() + 1, frames.end());
  r.value = std::move(d);
  return r;
}

std::optional<DecodeError> SequenceGuard::check(uint64_t instance, uint64_t sequence) {
  if (instance == 0 || sequence == 0) {
    return err(wire::MALFORMED, "sequence and instance must be non-zero", sequence);
  }
  if (instance != instance_) {
    if (std::find(retired_.begin(), retired_.end(), instance) != retired_.end()) {
      return err(wire::STALE, fmt::format("message from retired sender instance {:016x}", instance),
                 sequence);
    }
    if (instance_ != 0) {
      retired_.push_back(instance_);
      if (retired_.size() > kRetiredInstances) retired_.erase(retired_.begin());
    }
    instance_ = instance;
    last_ = 0;
  }
  if (sequence <= last_) {
    return err(wire::STALE,
               fmt::format("sequence {} is not greater than the last accepted {} (replayed or stale)",
                           sequence, last_),
               sequence);
  }
  last_ = sequence;
  return std::nullopt;
}

Reassembler::Outcome Reassembler::feed(Decoded&& d) {
  Outcome out;
  wire::Header& h = d.header;
  auto fail = [&](ErrorCode c, std::string text) {
    out.kind = Outcome::Failed;
    out.error = err(c, std::move(text), h.sequence());
    return std::move(out);
  };
  auto copy_pieces = [&](std::vector<Tensor>& tensors) {
    for (int k = 0; k < h.pieces_size(); ++k) {
      const auto& p = h.pieces(k);
      std::memcpy(tensors[p.tensor()].mutable_data() + p.offset(), d.payload[k].data, p.length());
    }
  };
  auto allocate = [&](const google::protobuf::RepeatedPtrField<wire::TensorDesc>& descs,
                      std::vector<Tensor>* tensors) {
    for (const auto& t : descs) {
      DType dt;
      to_dtype(t.dtype(), &dt);
      tensors->push_back(
          Tensor::allocate(t.name(), dt, std::vector<int64_t>(t.shape().begin(), t.shape().end())));
    }
  };
  try {
    if (!h.has_chunk()) {
      // Unchunked: a tensor carried by exactly one frame is adopted without a copy.
      std::vector<int> frames_of(static_cast<size_t>(h.tensors_size()), 0);
      for (const auto& p : h.pieces()) ++frames_of[p.tensor()];
      std::vector<Tensor> tensors;
      std::vector<int> first_piece(static_cast<size_t>(h.tensors_size()), -1);
      for (int k = h.pieces_size() - 1; k >= 0; --k) first_piece[h.pieces(k).tensor()] = k;
      for (int i = 0; i < h.tensors_size(); ++i) {
        const auto& t = h.tensors(i);
        DType dt;
        to_dtype(t.dtype(), &dt);
        std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
        if (frames_of[i] == 1) {
          const FrameRef& f = d.payload[first_piece[i]];
          tensors.push_back(Tensor::adopt(t.name(), dt, std::move(shape), f.owner, f.data, f.size));
        } else {
          tensors.push_back(Tensor::allocate(t.name(), dt, std::move(shape)));
        }
      }
      for (int k = 0; k < h.pieces_size(); ++k) {
        const auto& p = h.pieces(k);
        if (frames_of[p.tensor()] > 1) {
          std::memcpy(tensors[p.tensor()].mutable_data() + p.offset(), d.payload[k].data,
                      p.length());
        }
      }
      h.clear_pieces();
      out.kind = Outcome::Complete;
      out.message.header = std::move(h);
      out.message.tensors = std::move(tensors);
      return out;
    }
    const auto& c = h.chunk();
    if (c.index() == 0) {
      active_.reset();  // a new transfer replaces an unfinished one
      Transfer tr;
      tr.started = std::chrono::steady_clock::now();
      allocate(h.tensors(), &tr.tensors);
      if (auto e = walk_pieces(h, h.tensors(), &tr.cursor_tensor, &tr.cursor_offset)) {
        return fail(e->code, e->message);
      }
      copy_pieces(tr.tensors);
      tr.next_index = 1;
      tr.first = h;
      tr.first.clear_pieces();
      active_ = std::move(tr);
    } else {
      if (!active_ || active_->first.chunk().transfer_id() != c.transfer_id()) {
        active_.reset();
        return fail(wire::CHUNK_ERROR,
                    fmt::format("chunk {} of transfer {} with no such transfer in progress",
                                c.index(), c.transfer_id()));
      }
      Transfer& tr = *active_;
      const auto& f = tr.first;
      if (c.index() != tr.next_index || c.count() != f.chunk().count() || h.type() != f.type() ||
          h.task_id() != f.task_id() || h.round() != f.round() || h.job_id() != f.job_id()) {
        std::string text = fmt::format(
            "chunk {} (count {}) of transfer {} does not follow chunk {} (count {}) or changes "
            "its type/job/task/round",
            c.index(), c.count(), c.transfer_id(), tr.next_index - 1, f.chunk().count());
        active_.reset();
        return fail(wire::CHUNK_ERROR, std::move(text));
      }
      if (auto e = walk_pieces(h, f.tensors(), &tr.cursor_tensor, &tr.cursor_offset)) {
        active_.reset();
        return fail(e->code, e->message);
      }
      copy_pieces(tr.tensors);
      tr.next_index = c.index() + 1;
    }
    Transfer& tr = *active_;
    if (tr.next_index < tr.first.chunk().count()) {
      out.kind = Outcome::Pending;
      return out;
    }
    if (tr.cursor_tensor != static_cast<uint32_t>(tr.first.tensors_size())) {
      std::string text = fmt::format("transfer {} ended at tensor {} offset {} of {} tensors",
                                     tr.first.chunk().transfer_id(), tr.cursor_tensor,
                                     tr.cursor_offset, tr.first.tensors_size());
      active_.reset();
      return fail(wire::SIZE_MISMATCH, std::move(text));
    }
    out.kind = Outcome::Complete;
    out.message.header = std::move(tr.first);
    out.message.tensors = std::move(tr.tensors);
    active_.reset();
    return out;
  } catch (const std::bad_alloc&) {
    active_.reset();
    return fail(wire::TOO_LARGE, "cannot allocate memory for the declared tensors");
  } catch (const Error& e) {
    active_.reset();
    return fail(wire::MALFORMED, e.message());
  }
}

bool Reassembler::expire(std::chrono::steady_clock::duration max_age) {
  if (active_ && std::chrono::steady_clock::now() - active_->started > max_age) {
    active_.reset();
    return true;
  }
  return false;
}

}  // namespace conflux::protocol
