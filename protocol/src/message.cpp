// Names of message types and error codes, dtype mapping, and small message constructors.
#include <conflux/protocol/message.h>

namespace conflux::protocol {

const char* message_type_name(MessageType t) {
  switch (t) {
    case wire::HELLO: return "hello";
    case wire::WELCOME: return "welcome";
    case wire::TASK: return "task";
    case wire::RESULT: return "result";
    case wire::HEARTBEAT: return "heartbeat";
    case wire::ERROR: return "error";
    case wire::BYE: return "bye";
    case wire::CANCEL: return "cancel";
    default: return "unknown";
  }
}

const char* error_code_name(ErrorCode c) {
  if (!wire::ErrorCode_IsValid(c)) return "UNKNOWN";
  return wire::ErrorCode_Name(c).c_str();
}

// The wire values live in core's dtype table; the generated enum must agree with it.
static_assert(dtype_info(DType::F32).wire == wire::FLOAT32 && dtype_info(DType::F64).wire == wire::FLOAT64 &&
              dtype_info(DType::BF16).wire == wire::BFLOAT16 && dtype_info(DType::F16).wire == wire::FLOAT16 &&
              dtype_info(DType::I32).wire == wire::INT32 && dtype_info(DType::I64).wire == wire::INT64 &&
              dtype_info(DType::U8).wire == wire::UINT8,
              "conflux_protocol.proto DType values differ from core's kDTypes");

wire::DType to_wire(DType t) { return static_cast<wire::DType>(dtype_info(t).wire); }

bool to_dtype(int v, DType* out) { return dtype_from_wire(v, out); }

Message make_error(ErrorCode code, const std::string& text, uint64_t ref_sequence) {
  Message m;
  m.header.set_type(wire::ERROR);
  auto* e = m.header.mutable_error();
  e->set_code(code);
  e->set_message(text.size() > 4096 ? text.substr(0, 4096) : text);
  e->set_ref_sequence(ref_sequence);
  return m;
}

}  // namespace conflux::protocol
