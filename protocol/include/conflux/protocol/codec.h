// The pure half of the wire protocol: encoding a Message into wire messages (frames) and
// decoding/validating received frames back into Messages. No sockets here, so the decoder can
// be fuzzed (fuzz/decoder_fuzz.cpp) and tested byte by byte.
//
// Receive pipeline, per peer:  frames --decode_frames--> Decoded (header + payload frames,
// stateless checks) --SequenceGuard--> (replay/stale check) --Reassembler--> Message.
// Nothing here throws on peer input: every problem is an ErrorCode plus a readable reason.
// Thread safety: free functions are reentrant; Reassembler/SequenceGuard are per-peer objects
// used from one thread.
#pragma once

#include <conflux/protocol/message.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace conflux::protocol {

// A received or to-be-sent frame: bytes kept alive by `owner`.
struct FrameRef {
  const uint8_t* data = nullptr;
  size_t size = 0;
  std::shared_ptr<const void> owner;
};

// One wire message to send: serialised header + payload frames (zero-copy views).
struct WireMessage {
  std::string header;
  std::vector<FrameRef> frames;
};

// Splits `msg` into wire messages of at most `chunk_bytes` payload each. Fills the tensor
// descriptions, pieces, chunking, and sequence numbers (`*next_sequence`, incremented per wire
// message). version/sender/instance must already be set in msg.header. Throws DataError if a
// tensor's byte length does not match its dtype and shape (a local bug, not peer input).
std::vector<WireMessage> encode(const Message& msg, uint64_t chunk_bytes, uint64_t* next_sequence);

struct DecodeError {
  ErrorCode code = wire::ERROR_CODE_UNSPECIFIED;
  std::string message;
  uint64_t ref_sequence = 0;  // from the header if it parsed
};

struct Decoded {
  wire::Header header;
  std::vector<FrameRef> payload;  // frames 1..n, validated against header.pieces
};

struct DecodeResult {
  std::optional<Decoded> value;
  DecodeError error;  // meaningful when !value
  bool ok() const { return value.has_value(); }
};

// Stateless validation: header size and parse, version, type, body matches type, non-zero
// sequence and instance, tensor names/dtypes/shapes/byte lengths, declared totals against
// `limits`, frame count == 1 + pieces, every frame size == its piece length, and (for an
// unchunked message or chunk 0) the pieces walk the tensors contiguously.
DecodeResult decode_frames(const std::vector<FrameRef>& frames, const Limits& limits);

// Rejects replayed or stale messages from one peer: sequence numbers strictly increase within
// a sender instance; a new instance resets the count; retired instances are refused.
class SequenceGuard {
 public:
  // Returns std::nullopt if accepted (and records it), else the error.
  std::optional<DecodeError> check(uint64_t instance, uint64_t sequence);
  uint64_t instance() const { return instance_; }
  uint64_t last_sequence() const { return last_; }

 private:
  uint64_t instance_ = 0;
  uint64_t last_ = 0;
  std::vector<uint64_t> retired_;  // bounded (most recent 32)
};

// Reassembles chunked transfers from one peer (one transfer in flight at a time; unchunked
// messages may interleave). Unchunked messages become a Message without copying tensor bytes.
class Reassembler {
 public:
  struct Outcome {
    enum Kind { Complete, Pending, Failed } kind = Failed;
    Message message;     // when Complete
    DecodeError error;   // when Failed
  };
  explicit Reassembler(Limits limits = Limits()) : limits_(limits) {}
  Outcome feed(Decoded&& d);
  // Drops a partial transfer that started more than `max_age` ago; true if one was dropped.
  bool expire(std::chrono::steady_clock::duration max_age);
  bool in_progress() const { return active_.has_value(); }

 private:
  struct Transfer {
    wire::Header first;
    std::vector<Tensor> tensors;
    uint32_t next_index = 0;
    uint32_t cursor_tensor = 0;
    uint64_t cursor_offset = 0;
    std::chrono::steady_clock::time_point started;
  };
  Limits limits_;
  std::optional<Transfer> active_;
};

// Validates `pieces` against `tensors` starting from a cursor (tensor index, offset) and
// advances it; used by decode_frames and Reassembler. Exposed for tests.
std::optional<DecodeError> walk_pieces(const wire::Header& h,
                                       const google::protobuf::RepeatedPtrField<wire::TensorDesc>& tensors,
                                       uint32_t* cursor_tensor, uint64_t* cursor_offset);

}  // namespace conflux::protocol
