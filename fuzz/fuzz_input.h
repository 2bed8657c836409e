// The byte layout the fuzz target reads, shared with the seed generator: a sequence of up to 8
// wire messages, each `u8 frame_count_minus_1` then per frame `u16 length (LE)` + bytes (lengths
// clamped to what is left). Several messages in one input exercise the sequence guard and the
// reassembly of chunked transfers.
#pragma once

#include <conflux/protocol/codec.h>

#include <string>
#include <vector>

namespace conflux::fuzz {

inline std::vector<std::vector<protocol::FrameRef>> split_input(const uint8_t* data, size_t size) {
  std::vector<std::vector<protocol::FrameRef>> out;
  size_t pos = 0;
  while (pos < size && out.size() < 8) {
    size_t frames = 1 + data[pos++] % 8;
    std::vector<protocol::FrameRef> msg;
    for (size_t f = 0; f < frames && pos <= size; ++f) {
      size_t len = 0;
      if (pos + 2 <= size) {
        len = data[pos] | (static_cast<size_t>(data[pos + 1]) << 8);
        pos += 2;
      } else {
        pos = size;
      }
      len = std::min(len, size - pos);
      msg.push_back(protocol::FrameRef{data + pos, len, nullptr});
      pos += len;
    }
    out.push_back(std::move(msg));
  }
  return out;
}

inline void append_message(std::string* out, const std::vector<std::string>& frames) {
  out->push_back(static_cast<char>(frames.size() - 1));
  for (const auto& f : frames) {
    size_t len = std::min<size_t>(f.size(), 65535);
    out->push_back(static_cast<char>(len & 0xFF));
    out->push_back(static_cast<char>(len >> 8));
    out->append(f, 0, len);
  }
}

}  // namespace conflux::fuzz
