// Sampling from a trained GPT (used by `conflux generate` and the evaluator).
//
//   auto m = load_for_inference("checkpoints/step-00000100");       // any tp it was saved at
//   SamplingOptions o; o.max_tokens = 64; o.temperature = 0.8; o.top_k = 40; o.seed = 1;
//   std::vector<int64_t> out = generate(*m.model, encode_bytes("Hello"), o);  // prompt + new
//   std::string text = decode_bytes(out);
//
// Each step feeds the last model.context tokens, takes the final position's logits, masks ids
// >= allowed_vocab (padding of the model vocabulary beyond the tokenizer's), divides by the
// temperature, keeps the top-k, and samples from a torch generator seeded with `seed` (temperature
// 0: argmax). Generation stops at max_tokens or after eos_id. Deterministic for a fixed seed.
// Thread safety: one thread per model.
#pragma once

#include "conflux/trainer/checkpoint.h"
#include "conflux/trainer/gpt.h"

#include <string>
#include <vector>

namespace conflux::trainer {

struct SamplingOptions {
  int64_t max_tokens = 64;
  double temperature = 1.0;
  int64_t top_k = 0;          // 0: no top-k filter
  uint64_t seed = 0;
  int64_t allowed_vocab = 0;  // 0: the whole model vocabulary
  int64_t eos_id = -1;        // -1: never stop early
};

struct InferenceModel {
  Gpt model{nullptr};
  TrainerState state;
};
// Loads a checkpoint directory (weights assembled from all of its tp files) as a tp = 1 model
// in eval mode.
InferenceModel load_for_inference(const std::string& dir);

// Log-probabilities of the next token after `tokens`: (V) over the full model vocabulary.
torch::Tensor next_token_logprobs(GptImpl& model, const std::vector<int64_t>& tokens);

// Returns prompt followed by the sampled tokens.
std::vector<int64_t> generate(GptImpl& model, const std::vector<int64_t>& prompt,
                              const SamplingOptions& options);

// The byte-level tokenizer of `conflux ingest`: bytes are ids 0..255; decoding drops ids >= 256.
std::vector<int64_t> encode_bytes(const std::string& text);
std::string decode_bytes(const std::vector<int64_t>& tokens);

}  // namespace conflux::trainer
