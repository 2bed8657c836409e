// Sampling from a trained GPT (used by `conflux generate` and the evaluator).
//
//   auto m = load_for_inference("checkpoints/step-00000100");       // any tp it was saved at
//   SamplingOptions o; o.max_tokens = 64; o.temperature = 0.8; o.top_k = 40; o.seed = 1;
//   std::vector<int64_t> out = generate(*m.model, encode_bytes("Hello"), o);  // prompt + new
//   std::string text = decode_bytes(out);
//
// Each step takes the next-token log-probabilities of the last model.context tokens, masks ids
// >= allowed_vocab (padding of the model vocabulary beyond the tokenizer's), divides by the
// temperature, keeps the top-k, and samples from a torch generator seeded with `seed` (temperature
// 0: argmax). Generation stops at max_tokens or after eos_id. Deterministic for a fixed seed.
//
// KV cache (kv_cache, default on): the prompt is run once (prefill, bitwise the full forward) and
// each later step feeds only the new token, attending over the cached keys and values; when the
// sequence passes model.context the window slides, positions shift and the window is prefilled
// again. An incremental step multiplies (1, C) instead of (n, C) matrices, so its log-probabilities
// can differ from a full recompute of the window in the last bits. The chosen token is kept only
// when that cannot matter: greedy, the best log-probability leads the second by more than
// 2 * kCacheTolerance; sampling, the same margin (divided by the temperature) holds at the top-k
// boundary and, in log space, between the best two of probs / q (the exponential draws q that
// torch::multinomial itself uses). Otherwise the step is recomputed over the whole window (the
// computation without a cache). So the tokens equal the cache-free ones whenever the cached and
// recomputed log-probabilities differ by less than kCacheTolerance; the trainer tests measure
// that difference (orders of magnitude below it) and compare the tokens over many prompts.
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
  bool kv_cache = true;       // false: recompute the whole window for every token
};

// The bound assumed on |cached - recomputed| log-probabilities (see above).
constexpr double kCacheTolerance = 1e-4;

// What one generate() call computed (for tests and benchmarks).
struct GenerationCounters {
  int64_t prefills = 0;     // forward passes over a whole window (prompt, slid window)
  int64_t cached = 0;       // incremental single-token steps
  int64_t recomputed = 0;   // cached steps whose choice was too close to call, recomputed
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

// Returns prompt followed by the sampled tokens; adds to *counters when given.
std::vector<int64_t> generate(GptImpl& model, const std::vector<int64_t>& prompt,
                              const SamplingOptions& options, GenerationCounters* counters = nullptr);

// generate() for several prompts of one length at once: each row's tokens equal generate()'s
// for that prompt alone with the same options. The rows go through the model as one batch (a
// (B, n) prefill, then (B, 1) steps on one KV cache; a row that ends, by EOS or max_tokens,
// leaves the batch), which spreads each weight matrix over B rows instead of one. A batched
// forward is not bitwise the single-row one, so every choice of a row is checked with the same
// margin as a cached step, and a close one is recomputed for that row alone over its whole window
// (the cache-free computation). Sampling draws from one generator per row seeded with
// options.seed, as separate calls would. Rows of different lengths: DataError.
std::vector<std::vector<int64_t>> generate_batch(GptImpl& model, const std::vector<std::vector<int64_t>>& prompts,
                                                 const SamplingOptions& options,
                                                 GenerationCounters* counters = nullptr);

// The byte-level tokenizer of `conflux ingest`: bytes are ids 0..255; decoding drops ids >= 256.
std::vector<int64_t> encode_bytes(const std::string& text);
std::string decode_bytes(const std::vector<int64_t>& tokens);

}  // namespace conflux::trainer
