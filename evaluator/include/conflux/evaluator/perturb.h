// Robustness perturbations: seeded character swaps, character deletions and token substitutions.
//
// Each example is perturbed with its own stream, Stream(seed, "conflux.eval.perturb", 0,
// example_id), so a perturbed corpus does not depend on how it is split into batches or workers.
// Definitions (code points of UTF-8 text; whitespace as Python's str.isspace):
// - CharSwap: scanning left to right, at each position whose character and the next are both
//   non-space, one Bernoulli(rate) draw; on success the two are swapped and the next is skipped.
// - CharDelete: one Bernoulli(rate) draw per non-space character; on success it is deleted.
// - TokenSubstitute: the text is split on whitespace; one Bernoulli(rate) draw per token; on
//   success the token is replaced by vocabulary[below(|vocabulary|)], or, with no vocabulary, by
//   a uniformly drawn token of the same text. Tokens are re-joined with single spaces.
// - perturb_token_ids: each id replaced with probability rate by below(vocab_size).
#pragma once

#include "conflux/core/rng.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace conflux::evaluator {

enum class Perturbation { CharSwap, CharDelete, TokenSubstitute };

Perturbation parse_perturbation(const std::string& name);  // "char_swap", "char_delete", ...
const char* perturbation_name(Perturbation p);

std::string perturb_text(std::string_view text, Perturbation kind, double rate, RandomSource& rng,
                         const std::vector<std::string>& vocabulary = {});
void perturb_token_ids(std::vector<int64_t>& ids, double rate, int64_t vocab_size,
                       RandomSource& rng);
// The per-example stream described above.
Stream perturbation_stream(uint64_t seed, int64_t example_id);

}  // namespace conflux::evaluator

namespace conflux::evaluator {
class Metric;
struct Stats;
// Robustness-metric Stats from inner-metric Stats computed on clean and on perturbed inputs
// (e.g. a worker that perturbed prompts before generating). Checked at merge/finalize time.
Stats robustness_stats(const Metric& robustness, const Stats& clean, const Stats& perturbed);
}  // namespace conflux::evaluator
