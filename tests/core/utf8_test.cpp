// The strict UTF-8 decoder: exact code points and lengths for every sequence length, and each
// class of ill-formed input (overlongs, surrogates, > U+10FFFF, truncated, stray continuation
// bytes, bytes that never start a sequence) rejected with its maximal-subpart length.
#include "conflux/core/utf8.h"

#include <gtest/gtest.h>

using namespace conflux;

namespace {

struct Case {
  std::string bytes;
  uint32_t cp;  // kInvalidCodePoint for ill-formed
  uint32_t len;
};

TEST(Utf8, DecodesEveryLengthAtItsBoundaries) {
  const std::vector<Case> ok = {
      {"\x00", 0x0, 1},          {"\x7F", 0x7F, 1},          {"\xC2\x80", 0x80, 2},
      {"\xDF\xBF", 0x7FF, 2},    {"\xE0\xA0\x80", 0x800, 3}, {"\xED\x9F\xBF", 0xD7FF, 3},
      {"\xEE\x80\x80", 0xE000, 3}, {"\xEF\xBF\xBF", 0xFFFF, 3}, {"\xF0\x90\x80\x80", 0x10000, 4},
      {"\xF4\x8F\xBF\xBF", 0x10FFFF, 4}};
  for (const Case& c : ok) {
    const std::string s = c.bytes.empty() ? std::string(1, '\0') : c.bytes;
    const utf8::Decoded d = utf8::decode(s, 0);
    EXPECT_EQ(d.cp, c.cp) << c.cp;
    EXPECT_EQ(d.len, c.len) << c.cp;
    EXPECT_TRUE(utf8::valid(s));
  }
}

TEST(Utf8, RejectsOverlongsSurrogatesOutOfRangeAndTruncation) {
  const uint32_t bad = utf8::Decoded::kInvalidCodePoint;
  const std::vector<Case> ill = {
      {"\xC0\x80", bad, 1},              // overlong NUL: C0 never starts a sequence
      {"\xC1\xBF", bad, 1},              // overlong U+007F
      {"\xE0\x80\x80", bad, 1},          // overlong U+0000 in 3 bytes (E0 needs A0-BF next)
      {"\xE0\x9F\xBF", bad, 1},          // overlong U+07FF
      {"\xF0\x8F\xBF\xBF", bad, 1},      // overlong U+FFFF in 4 bytes
      {"\xED\xA0\x80", bad, 1},          // U+D800, a surrogate
      {"\xED\xBF\xBF", bad, 1},          // U+DFFF
      {"\xF4\x90\x80\x80", bad, 1},      // U+110000
      {"\xF5\x80\x80\x80", bad, 1},      // F5-FF never start a sequence
      {"\xFF", bad, 1},
      {"\x80", bad, 1},                  // stray continuation byte
      {"\xE2\x82", bad, 2},              // truncated: the maximal subpart is both bytes
      {"\xF0\x9F\x98", bad, 3},
      {"\xE2\x82" "A", bad, 2},          // interrupted by ASCII
      {"\xC3", bad, 1}};
  for (const Case& c : ill) {
    const utf8::Decoded d = utf8::decode(c.bytes, 0);
    EXPECT_FALSE(d.valid()) << testing::PrintToString(c.bytes);
    EXPECT_EQ(d.len, c.len) << testing::PrintToString(c.bytes);
    EXPECT_FALSE(utf8::valid(c.bytes)) << testing::PrintToString(c.bytes);
  }
}

TEST(Utf8, ReplaceInvalidOneReplacementPerMaximalSubpart) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8::replace_invalid("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(utf8::replace_invalid("a\xED\xA0\x80z"), "a" + r + r + r + "z");  // surrogate: 3
  EXPECT_EQ(utf8::replace_invalid("\xE2\x82" "A"), r + "A");
  EXPECT_EQ(utf8::replace_invalid("\xF0\x9F\x98\xF0\x9F\x98\x80"), r + "\xF0\x9F\x98\x80");
  EXPECT_TRUE(utf8::valid(""));
  EXPECT_FALSE(utf8::valid("ok\xC0\xAF"));
}

}  // namespace
