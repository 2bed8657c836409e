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

wire::DType to_wire(DType t) { return static_cast<wire::DType>(static_cast<int>(t) + 1); }

bool to_dtype(int v, DType* out) {
  if (v < 1 || v > 7) return false;
  *out = static_cast<DType>(v - 1);
  return true;
}

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
