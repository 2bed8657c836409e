// utf8_replace_invalid: arbitrary bytes -> valid UTF-8, replacing each maximal subpart of an
// ill-formed sequence by U+FFFD exactly like Python's bytes.decode("utf-8", errors="replace").
// A lead byte opens a sequence of 1-3 continuation bytes whose first one has a narrowed range
// (E0: A0-BF, ED: 80-9F, F0: 90-BF, F4: 80-8F; no overlongs, surrogates or > U+10FFFF); the
// bytes consumed before the first byte that does not fit form one replaced subpart; bytes that
// can never start a sequence (80-C1, F5-FF) are replaced one by one.
#include "conflux/evaluator/text.h"

namespace conflux::evaluator {

std::string utf8_replace_invalid(std::string_view s) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    int need = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the first continuation byte
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
    } else if (c == 0xE0) {
      need = 2;
      lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      need = 2;
    } else if (c == 0xED) {
      need = 2;
      hi = 0x9F;
    } else if (c == 0xF0) {
      need = 3;
      lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      need = 3;
    } else if (c == 0xF4) {
      need = 3;
      hi = 0x8F;
    } else {
      out.append(kReplacement);
      ++i;
      continue;
    }
    size_t j = i + 1;
    int got = 0;
    while (got < need && j < n) {
      const auto d = static_cast<unsigned char>(s[j]);
      const unsigned char l = got == 0 ? lo : 0x80, h = got == 0 ? hi : 0xBF;
      if (d < l || d > h) break;
      ++j;
      ++got;
    }
    if (got == need) out.append(s.substr(i, j - i));
    else out.append(kReplacement);
    i = j;
  }
  return out;
}

}  // namespace conflux::evaluator
