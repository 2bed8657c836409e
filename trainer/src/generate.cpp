// Sampling (see generate.h).
#include "conflux/trainer/generate.h"

#include "conflux/core/error.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

namespace conflux::trainer {

InferenceModel load_for_inference(const std::string& dir) {
  InferenceModel m;
  m.state = load_trainer_state(dir);
  m.model = Gpt(m.state.model);
  load_model(dir, *m.model);
  m.model->set_training(false);
  return m;
}

namespace {

// The last min(context, size) tokens as a (1, n) id tensor, checked against the vocabulary.
torch::Tensor window_ids(const GptImpl& model, const std::vector<int64_t>& tokens) {
  if (tokens.empty()) CONFLUX_THROW(UsageError, "generation needs at least one prompt token");
  const int64_t ctx = model.config().context;
  const int64_t n = std::min<int64_t>(ctx, static_cast<int64_t>(tokens.size()));
  std::vector<int64_t> window(tokens.end() - n, tokens.end());
  for (int64_t t : window)
    if (t < 0 || t >= model.config().vocab_size)
      CONFLUX_THROW(UsageError, "token id {} outside the model vocabulary 0..{}", t,
                    model.config().vocab_size - 1);
  return torch::tensor(window, torch::kInt64).unsqueeze(0);              // (1, n)
}

// Log-probabilities (V) of the last position of this rank's logits (1, n, V/tp).
torch::Tensor last_logprobs(GptImpl& model, const torch::Tensor& logits) {
  torch::Tensor full = gather_last_dim(logits, model.tp())[0][logits.size(1) - 1];  // (V)
  return torch::log_softmax(full.to(torch::kFloat32), 0);
}

// The next token from log-probabilities lp (allowed), and whether it would be the same for any
// lp' with |lp' - lp| < kCacheTolerance (see generate.h). `q`: the exponential draws (sampling).
struct Choice {
  int64_t token;
  bool robust;
};
Choice choose(const torch::Tensor& lp, const SamplingOptions& o, const torch::Tensor& q) {
  const double margin = 2 * kCacheTolerance;
  if (o.temperature == 0) {
    auto top = std::get<0>(lp.topk(std::min<int64_t>(2, lp.size(0))));
    const bool robust = top.size(0) < 2 || top[0].item<float>() - top[1].item<float>() > margin;
    return {lp.argmax().item<int64_t>(), robust};
  }
  const int64_t allowed = lp.size(0);
  torch::Tensor scaled = lp / o.temperature;
  bool robust = true;
  if (o.top_k > 0 && o.top_k < allowed) {
    auto top = std::get<0>(scaled.topk(o.top_k + 1));                   // (k + 1)
    auto kth = top.narrow(0, 0, o.top_k).min();
    robust = (kth - top[o.top_k]).item<float>() > margin / o.temperature;
    scaled = scaled.masked_fill(scaled < kth, -std::numeric_limits<float>::infinity());
  }
  // torch::multinomial(probs, 1, false, gen) is argmax(probs / q), q ~ Exp(1) drawn from gen
  // (aten/src/ATen/native/Distributions.cpp); written out to test the choice's margin.
  torch::Tensor r = torch::softmax(scaled, 0) / q;                        // (allowed)
  auto top = std::get<0>(r.topk(2));
  const double gap = std::log(double(top[0].item<float>())) - std::log(double(top[1].item<float>()));
  robust = robust && gap > margin / o.temperature + 1e-5;  // + float rounding of softmax and /
  return {r.argmax().item<int64_t>(), robust};
}

}  // namespace

torch::Tensor next_token_logprobs(GptImpl& model, const std::vector<int64_t>& tokens) {
  torch::NoGradGuard no_grad;
  return last_logprobs(model, model.forward(window_ids(model, tokens)));
}

std::vector<int64_t> generate(GptImpl& model, const std::vector<int64_t>& prompt,
                              const SamplingOptions& o, GenerationCounters* counters) {
  // Written so that NaN fails too (it compares false).
  if (!(std::isfinite(o.temperature) && o.temperature >= 0))
    CONFLUX_THROW(UsageError, "--temperature {} must be a finite number >= 0", o.temperature);
  if (o.max_tokens < 0) CONFLUX_THROW(UsageError, "--max-tokens {} must be >= 0", o.max_tokens);
  if (o.top_k < 0) CONFLUX_THROW(UsageError, "--top-k {} must be >= 0", o.top_k);
  std::vector<int64_t> out = prompt;
  if (o.max_tokens == 0) return out;
  GenerationCounters local;
  GenerationCounters& count = counters ? *counters : local;
  c10::InferenceMode inference;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  const int64_t v = model.config().vocab_size;
  const int64_t allowed = o.allowed_vocab > 0 ? std::min(o.allowed_vocab, v) : v;
  KvCache cache;
  const auto prefill = [&] {  // the whole window, bitwise the cache-free forward
    ++count.prefills;
    cache.clear();
    return last_logprobs(model, model.forward(window_ids(model, out), o.kv_cache ? &cache : nullptr));
  };
  torch::Tensor lp = prefill();  // (V)
  bool exact = true;             // lp is the full recompute's
  for (int64_t i = 0; i < o.max_tokens; ++i) {
    torch::Tensor q;  // drawn once per step, as torch::multinomial would
    if (o.temperature > 0) q = torch::empty({allowed}).exponential_(1, gen);
    Choice c = choose(lp.slice(0, 0, allowed), o, q);
    if (!exact && !c.robust) {
      ++count.recomputed;
      c = choose(next_token_logprobs(model, out).slice(0, 0, allowed), o, q);
    }
    out.push_back(c.token);
    if (c.token == o.eos_id || i + 1 == o.max_tokens) break;
    if (o.kv_cache && cache.length < model.config().context) {
      ++count.cached;
      torch::Tensor ids = torch::full({1, 1}, c.token, torch::kInt64);
      lp = last_logprobs(model, model.forward(ids, &cache));
      exact = false;
    } else {
      lp = prefill();  // no cache, or the window slides: positions shift
      exact = true;
    }
  }
  return out;
}

std::vector<int64_t> encode_bytes(const std::string& text) {
  std::vector<int64_t> out;
  for (unsigned char c : text) out.push_back(c);
  return out;
}

std::string decode_bytes(const std::vector<int64_t>& tokens) {
  std::string out;
  for (int64_t t : tokens)
    if (t >= 0 && t < 256) out.push_back(static_cast<char>(t));
  return out;
}

}  // namespace conflux::trainer
