// Word statistics for the word-based quality heuristics.
#pragma once
#include <cstdint>
#include <string_view>
namespace conflux::dataplane {
struct WordStats {
  int64_t words = 0;
  int64_t letters = 0;
};
WordStats word_stats(std::string_view text);
}  // namespace conflux::dataplane
