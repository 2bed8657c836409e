// Message: one logical protocol message (a header plus its tensors), and the receive limits.
//
// The header is the generated protobuf type conflux::protocol::wire::Header (see
// protocol/proto/conflux_protocol.proto and docs/protocol.md). Application code fills the
// type-specific body and job/task/round ids; the Link (link.h) fills version, sender, sequence,
// instance, tensor descriptions, pieces and chunking when it sends.
// Thread safety: plain values.
#pragma once

#include <conflux/protocol/tensor.h>

#include "conflux_protocol.pb.h"

#include <cstdint>
#include <string>
#include <vector>

namespace conflux::protocol {

inline constexpr uint32_t kProtocolVersion = 2;  // v2: CANCEL, error kinds, slots (docs/protocol.md)
inline constexpr uint64_t kDefaultChunkBytes = 8ull << 20;  // 8 MiB per wire message

using wire::ErrorCode;
using wire::MessageType;

struct Message {
  wire::Header header;
  std::vector<Tensor> tensors;
};

// What a receiver accepts; anything beyond is rejected with TOO_LARGE (or dropped by ZeroMQ
// for frames above max_frame_bytes, which is also set as ZMQ_MAXMSGSIZE).
struct Limits {
  uint64_t max_header_bytes = 1ull << 20;       // frame 0
  uint64_t max_frame_bytes = 72ull << 20;       // one tensor frame (>= peer's chunk size)
  uint64_t max_message_bytes = 16ull << 30;     // all tensors of one logical message
  uint32_t max_tensors = 65536;
  uint32_t max_dims = 16;
  uint32_t max_pieces = 65536;                  // frames per wire message, minus the header
  uint32_t max_chunks = 1u << 24;
  uint32_t max_name_bytes = 256;
};

const char* message_type_name(MessageType t);
const char* error_code_name(ErrorCode c);

// Wire dtype <-> conflux::DType. to_dtype returns false for unknown values.
wire::DType to_wire(DType t);
bool to_dtype(int wire_value, DType* out);

// Convenience constructors for bodies (ids filled by the caller).
Message make_error(ErrorCode code, const std::string& text, uint64_t ref_sequence = 0);

}  // namespace conflux::protocol
