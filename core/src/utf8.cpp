// Whole-string helpers over the strict decoder (see utf8.h).
#include "conflux/core/utf8.h"

namespace conflux::utf8 {

bool valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const Decoded d = decode(s, i);
    if (!d.valid()) return false;
    i += d.len;
  }
  return true;
}

std::string replace_invalid(std::string_view s) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const Decoded d = decode(s, i);
    if (d.valid()) out.append(s.substr(i, d.len));
    else out.append(kReplacement);
    i += d.len;
  }
  return out;
}

}  // namespace conflux::utf8
