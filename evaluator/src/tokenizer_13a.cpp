// sacrebleu's `13a` tokenizer (Tokenizer13a + TokenizerRegexp), reimplemented without regexes.
//
// The four regex substitutions of TokenizerRegexp are applied in order, each as one left-to-right
// non-overlapping scan exactly like Python's re.sub:
//   1. ([\{-\~\[-\` -\&\(-\+\:-\@\/])  -> " \1 "   (ASCII punctuation, listed in kPunct below)
//   2. ([^0-9])([\.,])                 -> "\1 \2 "  (period/comma unless preceded by a digit)
//   3. ([\.,])([^0-9])                 -> " \1 \2"  (period/comma unless followed by a digit)
//   4. ([0-9])(-)                      -> "\1 \2 "  (dash preceded by a digit)
// then whitespace is collapsed with Python's split(). Scanning bytes instead of code points gives
// the same output: the patterns' fixed characters are ASCII and never UTF-8 continuation bytes.
#include "conflux/evaluator/text.h"

namespace conflux::evaluator {
namespace {

bool is_punct_13a(unsigned char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
         (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_period_comma(char c) { return c == '.' || c == ','; }

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  if (pos == 0) return;
  out.append(s, pos, std::string::npos);
  s.swap(out);
}

}  // namespace

std::string tokenize_13a(std::string_view input) {
  std::string line(input);
  replace_all(line, "<skipped>", "");
  replace_all(line, "-\n", "");
  replace_all(line, "\n", " ");
  if (line.find('&') != std::string::npos) {
    replace_all(line, "&quot;", "\"");
    replace_all(line, "&amp;", "&");
    replace_all(line, "&lt;", "<");
    replace_all(line, "&gt;", ">");
  }
  const std::string s0 = " " + line + " ";

  std::string s1;  // rule 1
  s1.reserve(s0.size() * 2);
  for (char c : s0) {
    if (is_punct_13a(static_cast<unsigned char>(c))) {
      s1.push_back(' ');
      s1.push_back(c);
      s1.push_back(' ');
    } else {
      s1.push_back(c);
    }
  }
  std::string s2;  // rule 2
  s2.reserve(s1.size() * 2);
  for (size_t i = 0; i < s1.size();) {
    if (i + 1 < s1.size() && !is_digit(s1[i]) && is_period_comma(s1[i + 1])) {
      s2 += s1[i];
      s2 += ' ';
      s2 += s1[i + 1];
      s2 += ' ';
      i += 2;
    } else {
      s2 += s1[i++];
    }
  }
  std::string s3;  // rule 3
  s3.reserve(s2.size() * 2);
  for (size_t i = 0; i < s2.size();) {
    if (i + 1 < s2.size() && is_period_comma(s2[i]) && !is_digit(s2[i + 1])) {
      s3 += ' ';
      s3 += s2[i];
      s3 += ' ';
      s3 += s2[i + 1];
      i += 2;
    } else {
      s3 += s2[i++];
    }
  }
  std::string s4;  // rule 4
  s4.reserve(s3.size() * 2);
  for (size_t i = 0; i < s3.size();) {
    if (i + 1 < s3.size() && is_digit(s3[i]) && s3[i + 1] == '-') {
      s4 += s3[i];
      s4 += " - ";
      i += 2;
    } else {
      s4 += s3[i++];
    }
  }
  std::string out;
  for (const auto& tok : python_split(s4)) {
    if (!out.empty()) out += ' ';
    out += tok;
  }
  return out;
}

}  // namespace conflux::evaluator
