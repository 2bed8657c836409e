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

namespace {

void check_options(const SamplingOptions& o) {
  // Written so that NaN fails too (it compares false).
  if (!(std::isfinite(o.temperature) && o.temperature >= 0))
    CONFLUX_THROW(UsageError, "--temperature {} must be a finite number >= 0", o.temperature);
  if (o.max_tokens < 0) CONFLUX_THROW(UsageError, "--max-tokens {} must be >= 0", o.max_tokens);
  if (o.top_k < 0) CONFLUX_THROW(UsageError, "--top-k {} must be >= 0", o.top_k);
}

}  // namespace

std::vector<int64_t> generate(GptImpl& model, const std::vector<int64_t>& prompt,
                              const SamplingOptions& o, GenerationCounters* counters) {
  check_options(o);
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

std::vector<std::vector<int64_t>> generate_batch(GptImpl& model, const std::vector<std::vector<int64_t>>& prompts,
                                                 const SamplingOptions& o, GenerationCounters* counters) {
  check_options(o);
  std::vector<std::vector<int64_t>> out = prompts;
  if (o.max_tokens == 0 || prompts.empty()) return out;
  if (prompts.size() == 1) {
    out[0] = generate(model, prompts[0], o, counters);
    return out;
  }
  for (const auto& p : prompts)
    if (p.size() != prompts[0].size())
      CONFLUX_THROW(DataError, "generate_batch: prompts of {} and {} tokens; a batch needs one length",
                    prompts[0].size(), p.size());
  GenerationCounters local;
  GenerationCounters& count = counters ? *counters : local;
  c10::InferenceMode inference;
  const int64_t v = model.config().vocab_size, ctx = model.config().context;
  const int64_t allowed = o.allowed_vocab > 0 ? std::min(o.allowed_vocab, v) : v;
  std::vector<at::Generator> gens;
  for (size_t b = 0; b < prompts.size(); ++b) gens.push_back(at::make_generator<at::CPUGeneratorImpl>(o.seed));
  std::vector<size_t> active(prompts.size());  // row of each batch position
  for (size_t b = 0; b < active.size(); ++b) active[b] = b;
  KvCache cache;
  // Log-probabilities (B, V) of the last position of each active row.
  const auto last_rows = [&](const torch::Tensor& logits) {
    torch::Tensor full = gather_last_dim(logits, model.tp()).select(1, logits.size(1) - 1);  // (B, V)
    return torch::log_softmax(full.to(torch::kFloat32), 1);
  };
  const auto prefill = [&] {  // every active row's window; all rows have one length
    ++count.prefills;
    cache.clear();
    std::vector<torch::Tensor> ids;
    for (size_t row : active) ids.push_back(window_ids(model, out[row]));
    return last_rows(model.forward(torch::cat(ids, 0), o.kv_cache ? &cache : nullptr));
  };
  torch::Tensor lp = prefill();  // (B, V), batched: not bitwise a single row's
  for (int64_t i = 0; i < o.max_tokens; ++i) {
    std::vector<int64_t> next(active.size());
    std::vector<int64_t> keep;  // batch positions that go on
    for (size_t b = 0; b < active.size(); ++b) {
      const size_t row = active[b];
      torch::Tensor q;
      if (o.temperature > 0) q = torch::empty({allowed}).exponential_(1, gens[row]);
      Choice c = choose(lp[static_cast<int64_t>(b)].slice(0, 0, allowed), o, q);
      if (!c.robust) {
        ++count.recomputed;
        c = choose(next_token_logprobs(model, out[row]).slice(0, 0, allowed), o, q);
      }
      out[row].push_back(c.token);
      next[b] = c.token;
      if (c.token != o.eos_id) keep.push_back(static_cast<int64_t>(b));
    }
    if (keep.empty() || i + 1 == o.max_tokens) break;
    if (keep.size() < active.size()) {  // rows that ended leave the batch (and the cache)
      torch::Tensor index = torch::tensor(keep, torch::kInt64);
      if (cache.length > 0)
        for (auto& layer : cache.layers) {
          layer.k = layer.k.index_select(0, index);
          layer.v = layer.v.index_select(0, index);
        }
      std::vector<size_t> rows;
      std::vector<int64_t> tokens;
      for (int64_t b : keep) {
        rows.push_back(active[static_cast<size_t>(b)]);
        tokens.push_back(next[static_cast<size_t>(b)]);
      }
      active = std::move(rows);
      next = std::move(tokens);
    }
    if (o.kv_cache && cache.length > 0 && cache.length < ctx) {
      count.cached += static_cast<int64_t>(active.size());
      torch::Tensor ids = torch::tensor(next, torch::kInt64).unsqueeze(1);  // (B, 1)
      lp = last_rows(model.forward(ids, &cache));
    } else {
      lp = prefill();  // no cache, or the windows slide: positions shift
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
