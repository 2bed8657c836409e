// Python-compatible whitespace handling on UTF-8 text (str.split, str.rstrip) and line reading.
#include "conflux/core/error.h"
#include "conflux/evaluator/text.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace conflux::evaluator {
namespace {

// Decodes the code point at s[i] (core's strict decoder); returns its byte length. An ill-formed
// byte is one ordinary (non-space) character on its own, as Python's surrogateescape sees it.
size_t decode(std::string_view s, size_t i, uint32_t* cp) {
  const utf8::Decoded d = utf8::decode(s, i);
  *cp = d.cp;
  return d.valid() ? d.len : 1;
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
