// NLTK's PorterStemmer (mode NLTK_EXTENSIONS, nltk 3.x), as rouge-score uses it with
// use_stemmer=True. A line-by-line port of nltk/stem/porter.py for lower-case ASCII words:
// the irregular-forms pool, step 1a-1c, 2, 3, 4, 5a, 5b, with NLTK's deviations from the 1980
// paper (ies/ied for 4-letter words, y->i only after a consonant, alli/fulli/logi in step 2,
// the two-letter *o condition). Rules are (suffix, replacement, condition); within a rule list
// the first rule whose suffix matches decides, whether or not its condition holds.
#include "conflux/evaluator/text.h"

#include <functional>
#include <map>

namespace conflux::evaluator {
namespace {

using Word = std::string;
bool is_vowel(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

// Consonant flags in one pass: 'y' is a consonant at the start or after a vowel.
std::vector<bool> consonant_flags(const Word& w) {
  std::vector<bool> f(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    if (is_vowel(w[i])) f[i] = false;
    else if (w[i] == 'y') f[i] = (i == 0) ? true : !f[i - 1];
    else f[i] = true;
  }
  return f;
}
bool is_consonant(const Word& w, size_t i) { return consonant_flags(w)[i]; }

int measure(const Word& stem) {
  const auto f = consonant_flags(stem);
  int m = 0;
  for (size_t i = 1; i < f.size(); ++i)
    if (!f[i - 1] && f[i]) ++m;  // count of "vc" in the c/v sequence
  return m;
}
bool positive_measure(const Word& s) { return measure(s) > 0; }
bool contains_vowel(const Word& s) {
  for (bool c : consonant_flags(s))
    if (!c) return true;
  return false;
}
bool ends_with(const Word& w, const std::string& suf) {
  return w.size() >= suf.size() && w.compare(w.size() - suf.size(), suf.size(), suf) == 0;
}
bool ends_double_consonant(const Word& w) {
  return w.size() >= 2 && w[w.size() - 1] == w[w.size() - 2] && is_consonant(w, w.size() - 1);
}
bool ends_cvc(const Word& w) {
  const size_t n = w.size();
  if (n >= 3 && is_consonant(w, n - 3) && !is_consonant(w, n - 2) && is_consonant(w, n - 1) &&
      w[n - 1] != 'w' && w[n - 1] != 'x' && w[n - 1] != 'y')
    return true;
  return n == 2 && !is_consonant(w, 0) && is_consonant(w, 1);  // NLTK extension
}
Word cut(const Word& w, size_t n) { return w.substr(0, w.size() - n); }

struct Rule {
  std::string suffix;  // "*d" means: ends in a double consonant
  std::string replacement;
  std::function<bool(const Word&)> condition;  // empty: unconditional
};

Word apply_rules(const Word& w, const std::vector<Rule>& rules) {
  for (const auto& r : rules) {
    if (r.suffix == "*d" && ends_double_consonant(w)) {
      const Word stem = cut(w, 2);
      return (!r.condition || r.condition(stem)) ? stem + r.replacement : w;
    }
    if (ends_with(w, r.suffix)) {
      const Word stem = cut(w, r.suffix.size());
      return (!r.condition || r.condition(stem)) ? stem + r.replacement : w;
    }
  }
  return w;
}

Word step1a(const Word& w) {
  if (ends_with(w, "ies") && w.size() == 4) return cut(w, 3) + "ie";
  return apply_rules(w, {{"sses", "ss", {}}, {"ies", "i", {}}, {"ss", "ss", {}}, {"s", "", {}}});
}

Word step1b(const Word& w) {
  if (ends_with(w, "ied")) return cut(w, 3) + (w.size() == 4 ? "ie" : "i");
  if (ends_with(w, "eed")) {
    const Word stem = cut(w, 3);
    return measure(stem) > 0 ? stem + "ee" : w;
  }
  Word inter;
  bool ok = false;
  for (const char* suf : {"ed", "ing"}) {
    if (ends_with(w, suf)) {
      inter = cut(w, std::string(suf).size());
      if (contains_vowel(inter)) {
        ok = true;
        break;
      }
    }
  }
  if (!ok) return w;
  const char last = inter.back();  // inter is non-empty: it contains a vowel
  return apply_rules(inter,
                     {{"at", "ate", {}},
                      {"bl", "ble", {}},
                      {"iz", "ize", {}},
                      {"*d", std::string(1, last),
                       [last](const Word&) { return last != 'l' && last != 's' && last != 'z'; }},
                      {"", "e", [](const Word& s) { return measure(s) == 1 && ends_cvc(s); }}});
}

Word step1c(const Word& w) {
  return apply_rules(w, {{"y", "i", [](const Word& s) {
                            return s.size() > 1 && is_consonant(s, s.size() - 1);
                          }}});
}

Word step2(const Word& w) {
  if (ends_with(w, "alli") && positive_measure(cut(w, 4))) return step2(cut(w, 4) + "al");
  const auto pm = positive_measure;
  std::vector<Rule> rules = {
      {"ational", "ate", pm}, {"tional", "tion", pm}, {"enci", "ence", pm},
      {"anci", "ance", pm},   {"izer", "ize", pm},    {"bli", "ble", pm},
      {"alli", "al", pm},     {"entli", "ent", pm},   {"eli", "e", pm},
      {"ousli", "ous", pm},   {"ization", "ize", pm}, {"ation", "ate", pm},
      {"ator", "ate", pm},    {"alism", "al", pm},    {"iveness", "ive", pm},
      {"fulness", "ful", pm}, {"ousness", "ous", pm}, {"aliti", "al", pm},
      {"iviti", "ive", pm},   {"biliti", "ble", pm},  {"fulli", "ful", pm},
      {"logi", "log", [w](const Word&) { return positive_measure(cut(w, 3)); }}};
  return apply_rules(w, rules);
}

Word step3(const Word& w) {
  const auto pm = positive_measure;
  return apply_rules(w, {{"icate", "ic", pm}, {"ative", "", pm}, {"alize", "al", pm},
                         {"iciti", "ic", pm}, {"ical", "ic", pm}, {"ful", "", pm},
                         {"ness", "", pm}});
}

Word step4(const Word& w) {
  const auto gt1 = [](const Word& s) { return measure(s) > 1; };
  return apply_rules(
      w, {{"al", "", gt1},   {"ance", "", gt1}, {"ence", "", gt1}, {"er", "", gt1},
          {"ic", "", gt1},   {"able", "", gt1}, {"ible", "", gt1}, {"ant", "", gt1},
          {"ement", "", gt1}, {"ment", "", gt1}, {"ent", "", gt1},
          {"ion", "", [](const Word& s) {
             return measure(s) > 1 && !s.empty() && (s.back() == 's' || s.back() == 't');
           }},
          {"ou", "", gt1},   {"ism", "", gt1},  {"ate", "", gt1},  {"iti", "", gt1},
          {"ous", "", gt1},  {"ive", "", gt1},  {"ize", "", gt1}});
}

Word step5a(const Word& w) {
  if (ends_with(w, "e")) {
    const Word stem = cut(w, 1);
    if (measure(stem) > 1) return stem;
    if (measure(stem) == 1 && !ends_cvc(stem)) return stem;
  }
  return w;
}

Word step5b(const Word& w) {
  return apply_rules(w, {{"ll", "l", [w](const Word&) { return measure(cut(w, 1)) > 1; }}});
}

const std::map<std::string, std::string>& irregular_forms() {
  static const std::map<std::string, std::string> pool = {
      {"sky", "sky"},         {"skies", "sky"},     {"dying", "die"},     {"lying", "lie"},
      {"tying", "tie"},       {"news", "news"},     {"innings", "inning"}, {"inning", "inning"},
      {"outings", "outing"},  {"outing", "outing"}, {"cannings", "canning"},
      {"canning", "canning"}, {"howe", "howe"},     {"proceed", "proceed"},
      {"exceed", "exceed"},   {"succeed", "succeed"}};
  return pool;
}

}  // namespace

std::string porter_stem(std::string_view word) {
  Word w(word);
  const auto& pool = irregular_forms();
  if (auto it = pool.find(w); it != pool.end()) return it->second;
  if (w.size() <= 2) return w;
  w = step1a(w);
  w = step1b(w);
  w = step1c(w);
  w = step2(w);
  w = step3(w);
  w = step4(w);
  w = step5a(w);
  w = step5b(w);
  return w;
}

}  // namespace conflux::evaluator
