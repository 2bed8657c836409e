// The one strict UTF-8 decoder (Unicode 3.9 table 3-7, as CPython's): no overlong forms, no
// surrogates (U+D800-U+DFFF), nothing above U+10FFFF, no truncated sequences. Used by dataset
// validation (valid), the evaluator's Python-compatible text functions and perturbations
// (decode), and text decoded from byte tokens (replace_invalid).
//
// decode(s, i) reads the code point starting at s[i]. For ill-formed input it reports the length
// of the "maximal subpart": the bytes from the lead byte up to (not including) the first byte that
// cannot continue the sequence, at least 1. A lead byte opens 1-3 continuation bytes whose first
// one has a narrowed range (E0: A0-BF, ED: 80-9F, F0: 90-BF, F4: 80-8F); bytes that can never start
// a sequence (80-C1, F5-FF) are ill-formed one by one.
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace conflux::utf8 {

struct Decoded {
  uint32_t cp;   // the code point; kInvalid when ill-formed
  uint32_t len;  // bytes consumed: the sequence, or the maximal ill-formed subpart (>= 1)
  bool valid() const { return cp != kInvalidCodePoint; }
  static constexpr uint32_t kInvalidCodePoint = 0xFFFFFFFFu;
};

// Requires i < s.size().
inline Decoded decode(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return {c, 1};
  uint32_t need = 0, cp = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the first continuation byte
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1, cp = c & 0x1Fu;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2, cp = c & 0x0Fu;
    if (c == 0xE0) lo = 0xA0;  // overlong below U+0800
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3, cp = c & 0x07u;
    if (c == 0xF0) lo = 0x90;  // overlong below U+10000
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return {Decoded::kInvalidCodePoint, 1};
  }
  uint32_t got = 0;
  while (got < need && i + 1 + got < s.size()) {
    const auto d = static_cast<unsigned char>(s[i + 1 + got]);
    if (d < (got == 0 ? lo : 0x80) || d > (got == 0 ? hi : 0xBF)) break;
    cp = (cp << 6) | (d & 0x3Fu);
    ++got;
  }
  if (got < need) return {Decoded::kInvalidCodePoint, 1 + got};
  return {cp, 1 + need};
}

// True when every byte of s belongs to a well-formed sequence.
bool valid(std::string_view s);
// Valid UTF-8 for arbitrary bytes: each maximal ill-formed subpart becomes U+FFFD, exactly like
// Python's bytes.decode("utf-8", errors="replace"); valid input is returned unchanged.
std::string replace_invalid(std::string_view s);

}  // namespace conflux::utf8
