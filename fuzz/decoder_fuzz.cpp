// libFuzzer target for the wire-protocol decoder: arbitrary frames go through decode_frames,
// the SequenceGuard and the Reassembler exactly as a Link would feed them. The decoder must
// return a result or an error for every input; crashes, leaks, overflows (ASan/UBSan) and
// exceptions escaping are bugs. Limits are tight (1 MiB per message) so a lying header cannot
// make the harness allocate gigabytes.
#include "fuzz_input.h"

#include <conflux/protocol/codec.h>

using namespace conflux::protocol;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Limits limits;
  limits.max_message_bytes = 1 << 20;
  limits.max_frame_bytes = 1 << 16;
  limits.max_header_bytes = 1 << 16;
  limits.max_tensors = 256;
  limits.max_pieces = 256;
  limits.max_chunks = 64;
  SequenceGuard guard;
  Reassembler reassembler(limits);
  for (auto& frames : conflux::fuzz::split_input(data, size)) {
    DecodeResult r = decode_frames(frames, limits);
    if (!r.ok()) continue;
    if (guard.check(r.value->header.instance(), r.value->header.sequence())) continue;
    auto out = reassembler.feed(std::move(*r.value));
    if (out.kind == Reassembler::Outcome::Complete) {
      // Touch every byte of every tensor: sizes must be what the header declared.
      uint64_t sum = 0;
      for (const Tensor& t : out.message.tensors) {
        if (tensor_bytes(t.dtype(), t.shape()) != t.byte_length()) __builtin_trap();
        for (size_t i = 0; i < t.byte_length(); ++i) sum += t.data()[i];
      }
      if (sum == 0xFFFFFFFFFFFFFFFFull) __builtin_trap();  // keep the loop
    }
  }
  return 0;
}
