// Text processing shared by the text metrics, written to match the Python reference tools
// byte for byte on UTF-8 input.
//
// - python_split / python_rstrip: Python's str.split() and str.rstrip() (Unicode whitespace:
//   \t\n\v\f\r, \x1c-\x1f, space, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F,
//   U+205F, U+3000). Invalid UTF-8 bytes count as ordinary (non-space) characters.
// - tokenize_13a: sacrebleu's default `13a` tokenizer (mteval-v13a), regexes included.
// - rouge_tokenize: rouge-score's tokenizer (lower-case, [^a-z0-9]+ -> space, optional Porter
//   stemming of tokens longer than 3 characters).
// - porter_stem: NLTK's PorterStemmer in its default NLTK_EXTENSIONS mode, for lower-case ASCII.
// - utf8_replace_invalid: Python's bytes.decode("utf-8", errors="replace") re-encoded as UTF-8
//   (each maximal invalid subpart becomes one U+FFFD), for text decoded from byte tokens.
// All functions are pure and thread-safe.
#pragma once

#include "conflux/core/utf8.h"

#include <string>
#include <string_view>
#include <vector>

namespace conflux::evaluator {

std::vector<std::string> python_split(std::string_view text);
std::string_view python_rstrip(std::string_view text);

// Returns the tokens joined by single spaces, as sacrebleu's Tokenizer13a does.
std::string tokenize_13a(std::string_view line);

// Valid UTF-8 for arbitrary bytes: every maximal subpart of an ill-formed sequence (Unicode
// 3.9 "best practice", as CPython's decoder) is replaced by U+FFFD; valid input is returned as is.
// (core's strict decoder, utf8.h; the name is kept for the evaluator's callers.)
inline std::string utf8_replace_invalid(std::string_view bytes) { return utf8::replace_invalid(bytes); }

std::vector<std::string> rouge_tokenize(std::string_view text, bool use_stemmer);
std::string porter_stem(std::string_view word);

// Reads a text file as lines the way sacrebleu's command line does: split on '\n' (a final
// newline does not start a new line), each line right-stripped of whitespace. Throws IoError.
std::vector<std::string> read_lines(const std::string& path);

}  // namespace conflux::evaluator
