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

torch::Tensor next_token_logprobs(GptImpl& model, const std::vector<int64_t>& tokens) {
  if (tokens.empty()) CONFLUX_THROW(UsageError, "generation needs at least one prompt token");
  torch::NoGradGuard no_grad;
  const int64_t ctx = model.config().context;
  const int64_t n = std::min<int64_t>(ctx, static_cast<int64_t>(tokens.size()));
  std::vector<int64_t> window(tokens.end() - n, tokens.end());
  for (int64_t t : window)
    if (t < 0 || t >= model.config().vocab_size)
      CONFLUX_THROW(UsageError, "token id {} outside the model vocabulary 0..{}", t,
                    model.config().vocab_size - 1);
  torch::Tensor ids = torch::tensor(window, torch::kInt64).unsqueeze(0);  // (1, n)
  torch::Tensor logits = model.full_logits(ids)[0][n - 1];               // (V)
  return torch::log_softmax(logits.to(torch::kFloat32), 0);
}

std::vector<int64_t> generate(GptImpl& model, const std::vector<int64_t>& prompt,
                              const SamplingOptions& o) {
  // Written so that NaN fails too (it compares false).
  if (!(std::isfinite(o.temperature) && o.temperature >= 0))
    CONFLUX_THROW(UsageError, "--temperature {} must be a finite number >= 0", o.temperature);
  if (o.max_tokens < 0) CONFLUX_THROW(UsageError, "--max-tokens {} must be >= 0", o.max_tokens);
  if (o.top_k < 0) CONFLUX_THROW(UsageError, "--top-k {} must be >= 0", o.top_k);
  std::vector<int64_t> out = prompt;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  const int64_t v = model.config().vocab_size;
  const int64_t allowed = o.allowed_vocab > 0 ? std::min(o.allowed_vocab, v) : v;
  for (int64_t i = 0; i < o.max_tokens; ++i) {
    torch::Tensor lp = next_token_logprobs(model, out).slice(0, 0, allowed);  // (allowed)
    int64_t next;
    if (o.temperature == 0) {
      next = lp.argmax().item<int64_t>();
    } else {
      torch::Tensor scaled = lp / o.temperature;
      if (o.top_k > 0 && o.top_k < allowed) {
        auto kth = std::get<0>(scaled.topk(o.top_k)).min();
        scaled = scaled.masked_fill(scaled < kth, -std::numeric_limits<float>::infinity());
      }
      torch::Tensor probs = torch::softmax(scaled, 0);
      next = torch::multinomial(probs, 1, false, gen).item<int64_t>();
    }
    out.push_back(next);
    if (next == o.eos_id) break;
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
