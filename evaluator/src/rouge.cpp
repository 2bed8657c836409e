// rouge-score-compatible ROUGE-L (rouge_scorer._score_lcs) and its tokenizer, plus word n-grams.
//
// Tokenizer (rouge_score/tokenize.py): text.lower(); [^a-z0-9]+ -> " "; split; Porter-stem
// tokens longer than 3 characters if asked; keep tokens matching ^[a-z0-9]+$. Python's lower()
// maps exactly two non-ASCII code points onto ASCII letters: U+212A KELVIN SIGN -> "k" and
// U+0130 -> "i" + U+0307 (a non-alphanumeric mark); they are handled here, every other
// non-ASCII code point becomes a separator.
#include "conflux/evaluator/text.h"
#include "conflux/evaluator/text_metrics.h"

#include <algorithm>

namespace conflux::evaluator {

std::vector<std::string> rouge_tokenize(std::string_view text, bool use_stemmer) {
  std::string mapped;  // lower-cased ASCII alphanumerics; everything else a space
  mapped.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 'A' && c <= 'Z') mapped += static_cast<char>(c - 'A' + 'a');
    else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) mapped += static_cast<char>(c);
    else if (c == 0xE2 && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0x84 &&
             static_cast<unsigned char>(text[i + 2]) == 0xAA) {  // U+212A
      mapped += 'k';
      i += 2;
    } else if (c == 0xC4 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) == 0xB0) {  // U+0130
      mapped += "i ";
      i += 1;
    } else {
      mapped += ' ';
    }
  }
  std::vector<std::string> tokens;
  size_t i = 0;
  while (i < mapped.size()) {
    while (i < mapped.size() && mapped[i] == ' ') ++i;
    size_t j = i;
    while (j < mapped.size() && mapped[j] != ' ') ++j;
    if (j > i) {
      std::string tok = mapped.substr(i, j - i);
      if (use_stemmer && tok.size() > 3) tok = porter_stem(tok);
      if (!tok.empty()) tokens.push_back(std::move(tok));
    }
    i = j;
  }
  return tokens;
}

RougeScore rouge_l_tokens(const std::vector<std::string>& target,
                          const std::vector<std::string>& prediction) {
  RougeScore s;
  if (target.empty() || prediction.empty()) return s;
  // LCS length by dynamic programming over one rolling row.
  std::vector<int64_t> prev(prediction.size() + 1, 0), cur(prediction.size() + 1, 0);
  for (size_t i = 1; i <= target.size(); ++i) {
    for (size_t j = 1; j <= prediction.size(); ++j) {
      cur[j] = target[i - 1] == prediction[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    }
    std::swap(prev, cur);
  }
  const double lcs = static_cast<double>(prev[prediction.size()]);
  s.precision = lcs / static_cast<double>(prediction.size());
  s.recall = lcs / static_cast<double>(target.size());
  // scoring.fmeasure: 2 * p * r / (p + r), evaluated left to right like Python.
  s.fmeasure = (s.precision + s.recall > 0) ? 2 * s.precision * s.recall / (s.precision + s.recall)
                                            : 0.0;
  return s;
}

RougeScore rouge_l(const std::vector<std::string>& targets, std::string_view prediction,
                   bool use_stemmer) {
  const auto pred = rouge_tokenize(prediction, use_stemmer);
  RougeScore best;
  bool first = true;
  for (const auto& t : targets) {
    const RougeScore s = rouge_l_tokens(rouge_tokenize(t, use_stemmer), pred);
    if (first || s.fmeasure > best.fmeasure) best = s;  // np.argmax: first maximum wins
    first = false;
  }
  return best;
}

std::vector<std::string> word_ngrams(std::string_view text, int n) {
  const auto tokens = python_split(text);
  std::vector<std::string> out;
  for (size_t i = 0; n > 0 && i + static_cast<size_t>(n) <= tokens.size(); ++i) {
    std::string g = tokens[i];
    for (int k = 1; k < n; ++k) g += ' ' + tokens[i + k];
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace conflux::evaluator
