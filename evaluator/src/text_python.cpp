// Python-compatible whitespace handling on UTF-8 text (str.split, str.rstrip) and line reading.
#include "conflux/core/error.h"
#include "conflux/evaluator/text.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace conflux::evaluator {
namespace {

// Decodes the code point at s[i]; returns its byte length (1 for an invalid byte, cp = byte).
size_t decode(std::string_view s, size_t i, uint32_t* cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  auto cont = [&](size_t k) {
    return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
  };
  auto at = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[i + k]) & 0x3F); };
  if (b0 < 0x80) { *cp = b0; return 1; }
  if (b0 >= 0xC2 && b0 < 0xE0 && cont(1)) { *cp = ((b0 & 0x1Fu) << 6) | at(1); return 2; }
  if (b0 >= 0xE0 && b0 < 0xF0 && cont(1) && cont(2)) {
    *cp = ((b0 & 0x0Fu) << 12) | (at(1) << 6) | at(2);
    if (*cp >= 0x800) return 3;
  }
  if (b0 >= 0xF0 && b0 < 0xF5 && cont(1) && cont(2) && cont(3)) {
    *cp = ((b0 & 0x07u) << 18) | (at(1) << 12) | (at(2) << 6) | at(3);
    if (*cp >= 0x10000 && *cp <= 0x10FFFF) return 4;
  }
  *cp = 0xFFFFFFFFu;  // invalid byte: an ordinary character
  return 1;
}

bool is_python_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

}  // namespace

std::vector<std::string> python_split(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0, start = 0;
  bool in_token = false;
  while (i < text.size()) {
    uint32_t cp = 0;
    const size_t len = decode(text, i, &cp);
    if (is_python_space(cp)) {
      if (in_token) out.emplace_back(text.substr(start, i - start));
      in_token = false;
    } else if (!in_token) {
      in_token = true;
      start = i;
    }
    i += len;
  }
  if (in_token) out.emplace_back(text.substr(start));
  return out;
}

std::string_view python_rstrip(std::string_view text) {
  size_t end = 0, i = 0;  // end = byte just past the last non-space code point
  while (i < text.size()) {
    uint32_t cp = 0;
    const size_t len = decode(text, i, &cp);
    i += len;
    if (!is_python_space(cp)) end = i;
  }
  return text.substr(0, end);
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) CONFLUX_THROW(IoError, "cannot open '{}': {}", path, std::strerror(errno));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) CONFLUX_THROW(IoError, "error reading '{}'", path);
  const std::string all = buffer.str();
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < all.size()) {
    size_t nl = all.find('\n', start);
    if (nl == std::string::npos) nl = all.size();
    lines.emplace_back(python_rstrip(std::string_view(all).substr(start, nl - start)));
    start = nl + 1;
  }
  return lines;
}

}  // namespace conflux::evaluator
