// utf8_replace_invalid against Python's bytes.decode("utf-8", errors="replace") on the vectors
// of gen_utf8_reference.py (random bytes biased to UTF-8 edge cases, cut and corrupted text).
#include "conflux/evaluator/text.h"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <fstream>

namespace conflux::evaluator {
namespace {

std::string from_hex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

TEST(Utf8ReplaceInvalid, MatchesPythonDecodeReplace) {
  std::ifstream in(CONFLUX_UTF8_REFERENCE);
  ASSERT_TRUE(in) << CONFLUX_UTF8_REFERENCE;
  const auto j = nlohmann::json::parse(in);
  size_t n = 0, changed = 0;
  for (const auto& c : j.at("cases")) {
    const std::string bytes = from_hex(c.at("in").get<std::string>());
    const std::string want = from_hex(c.at("out").get<std::string>());
    EXPECT_EQ(utf8_replace_invalid(bytes), want) << "input " << c.at("in");
    changed += want != bytes;
    ++n;
  }
  EXPECT_GT(n, 2000u);
  EXPECT_GT(changed, 1000u);  // the vectors really exercise replacement
}

TEST(Utf8ReplaceInvalid, ValidTextUnchanged) {
  const std::string s = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF";
  EXPECT_EQ(utf8_replace_invalid(s), s);
  EXPECT_EQ(utf8_replace_invalid("\xE2\x82"), "\xEF\xBF\xBD");             // truncated: one U+FFFD
  EXPECT_EQ(utf8_replace_invalid("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong: two
}

}  // namespace
}  // namespace conflux::evaluator
