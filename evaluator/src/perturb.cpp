// Seeded text and token-id perturbations for robustness evaluation (see perturb.h).
#include "conflux/evaluator/perturb.h"

#include "conflux/core/error.h"
#include "conflux/evaluator/text.h"

namespace conflux::evaluator {
namespace {

// Splits UTF-8 text into code points (as byte strings); ill-formed bytes (overlongs and
// surrogates included: core's strict decoder) stand alone.
std::vector<std::string> code_points(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const utf8::Decoded d = utf8::decode(s, i);
    const size_t len = d.valid() ? d.len : 1;
    out.emplace_back(s.substr(i, len));
    i += len;
  }
  return out;
}

bool is_space(const std::string& cp) { return python_split(cp).empty(); }

}  // namespace

Perturbation parse_perturbation(const std::string& name) {
  if (name == "char_swap") return Perturbation::CharSwap;
  if (name == "char_delete") return Perturbation::CharDelete;
  if (name == "token_substitute") return Perturbation::TokenSubstitute;
  CONFLUX_THROW(ConfigError, "unknown perturbation '{}' (known: char_swap, char_delete, "
                "token_substitute)", name);
}

const char* perturbation_name(Perturbation p) {
  switch (p) {
    case Perturbation::CharSwap: return "char_swap";
    case Perturbation::CharDelete: return "char_delete";
    case Perturbation::TokenSubstitute: return "token_substitute";
  }
  return "?";
}

Stream perturbation_stream(uint64_t seed, int64_t example_id) {
  return Stream(seed, "conflux.eval.perturb", 0, static_cast<uint64_t>(example_id));
}

std::string perturb_text(std::string_view text, Perturbation kind, double rate, RandomSource& rng,
                         const std::vector<std::string>& vocabulary) {
  if (!(rate >= 0.0 && rate <= 1.0))
    CONFLUX_THROW(ConfigError, "perturbation rate {} is outside [0, 1]", rate);
  std::string out;
  if (kind == Perturbation::TokenSubstitute) {
    const auto tokens = python_split(text);
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string tok = tokens[i];
      if (rng.bernoulli(rate)) {
        tok = vocabulary.empty() ? tokens[rng.below(tokens.size())]
                                 : vocabulary[rng.below(vocabulary.size())];
      }
      if (i) out += ' ';
      out += tok;
    }
    return out;
  }
  auto cps = code_points(text);
  if (kind == Perturbation::CharDelete) {
    for (const auto& cp : cps)
      if (is_space(cp) || !rng.bernoulli(rate)) out += cp;
    return out;
  }
  for (size_t i = 0; i < cps.size(); ++i) {  // CharSwap
    if (i + 1 < cps.size() && !is_space(cps[i]) && !is_space(cps[i + 1]) && rng.bernoulli(rate)) {
      out += cps[i + 1];
      out += cps[i];
      ++i;
    } else {
      out += cps[i];
    }
  }
  return out;
}

void perturb_token_ids(std::vector<int64_t>& ids, double rate, int64_t vocab_size,
                       RandomSource& rng) {
  if (!(rate >= 0.0 && rate <= 1.0))
    CONFLUX_THROW(ConfigError, "perturbation rate {} is outside [0, 1]", rate);
  if (vocab_size <= 0) CONFLUX_THROW(ConfigError, "token perturbation needs a positive vocab size");
  for (auto& id : ids)
    if (rng.bernoulli(rate)) id = static_cast<int64_t>(rng.below(static_cast<uint64_t>(vocab_size)));
}

}  // namespace conflux::evaluator
