// Generation for the text metrics of the evaluate task (bleu, rouge_l, distinct).
//
// For each dataset row r in a task's rows with r % every == 0: the row's content tokens are its
// tokens up to (excluding) the first special id (>= 256; the ingester ends each document with
// EOS 257). Rows with fewer than prompt_tokens + 1 content tokens are skipped. The prompt is the
// first prompt_tokens content tokens; the reference is the next reference_tokens content tokens
// (0 = the rest of the document); the hypothesis is the greedy continuation (temperature 0,
// argmax over ids 0..257 = bytes, pad and EOS; trainer::generate) of at most max_new_tokens
// tokens, ending early after EOS when stop_at_eos. Texts are the byte tokens (ids < 256) decoded
// as UTF-8 with invalid sequences replaced by U+FFFD exactly like Python's
// bytes.decode("utf-8", "replace") (evaluator::utf8_replace_invalid).
//
// Determinism: each row is generated on its own with the same forward shapes wherever it runs
// (a (1, k) prefill of the prompt, then (1, 1) steps on the KV cache; trainer/generate.h), so with
// the same torch thread count a row's hypothesis does not depend on the task split. Prompts are
// not batched: a (B, k) batch would make a row's bits depend on which rows share its batch, i.e.
// on the split, and rows stop at EOS at different steps. The tokens are those of full-recompute
// greedy decoding (generate.h: the cache's margin rule).
// Only the byte-level tokenizer of `conflux ingest` is supported (the manifest says "bytes").
#pragma once

#include <conflux/core/config.h>
#include <conflux/evaluator/batch.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace conflux::dataplane {
class Dataset;
}
namespace conflux::trainer {
class GptImpl;
}

namespace conflux::tasks {

struct GenerationParams {
  int64_t prompt_tokens = 32;     // k: prompt = the first k content tokens of the row
  int64_t max_new_tokens = 32;    // generation budget per prompt
  int64_t reference_tokens = 32;  // reference length after the prompt (0 = rest of the row)
  int64_t every = 1;              // rows with row % every == 0 get a prompt
  bool stop_at_eos = true;        // stop generating after EOS (257)
  int64_t batch_size = 8;         // prompts decoded together (the tokens do not depend on it)

  // Declared once (types, ranges, docs) for both the `[generation]` config section and the
  // task params on the wire: the keys are `prefix.prompt_tokens`, ...
  void bind(ConfigBinder& b, const std::string& prefix);
};

struct GeneratedExample {
  int64_t row = 0;
  std::string prompt, hypothesis, reference;  // valid UTF-8
  int64_t new_tokens = 0;                     // tokens generated (EOS included)
  nlohmann::json to_json() const;
};

// Generates for rows [row_begin, row_end) of `ds` (see above); `skipped` counts rows that were
// due but too short. Polls `cancel` before each row (throws CommError when set).
std::vector<GeneratedExample> generate_examples(trainer::GptImpl& model, const dataplane::Dataset& ds,
                                                int64_t row_begin, int64_t row_end,
                                                const GenerationParams& p, int64_t* skipped,
                                                const std::atomic<bool>* cancel = nullptr);

// The text batch of the examples: hypotheses, one reference each, example ids = rows.
evaluator::Batch text_batch(const std::vector<GeneratedExample>& examples);

// JSON lines, one object per example ({"row", "prompt", "hypothesis", "reference",
// "new_tokens"}), and back (throws DataError on malformed input).
std::vector<uint8_t> examples_to_jsonl(const std::vector<GeneratedExample>& examples);
std::vector<GeneratedExample> examples_from_jsonl(const uint8_t* data, size_t size);

}  // namespace conflux::tasks
