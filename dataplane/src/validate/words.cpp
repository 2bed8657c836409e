// Word statistics shared by the word-count and mean-word-length heuristics (NeMo Curator's
// WordCountFilter and MeanWordLengthFilter): words are maximal runs of non-whitespace bytes.
#include "words.h"

#include <cctype>

namespace conflux::dataplane {
WordStats word_stats(std::string_view text) {
  WordStats w;
  size_t len = 0;
  for (unsigned char ch : text) {
    if (std::isspace(ch)) {
      if (len) {
        ++w.words;
        w.letters += static_cast<int64_t>(len);
      }
      len = 0;
    } else {
      ++len;
    }
  }
  if (len) {
    ++w.words;
    w.letters += static_cast<int64_t>(len);
  }
  return w;
}
}  // namespace conflux::dataplane
