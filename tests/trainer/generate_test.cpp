// KV-cache generation: a prefill is bitwise the cache-free forward, incremental steps stay far
// inside the tolerance generate() assumes, and generate() with the cache returns exactly the
// tokens of full-recompute decoding (greedy and sampled, many prompts and lengths, past the
// context limit), on a small random GPT whose weights are scaled up so that its predictions are
// sharp (many confident steps that the cache decides on its own) but not one-hot.
#include "conflux/trainer/generate.h"

#include "conflux/core/error.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include "tiny_gpt.h"

namespace conflux::trainer {
namespace {

GptConfig small() { return test::tiny_gpt(); }

Gpt sharp_model() {
  Gpt m(small());
  torch::NoGradGuard no_grad;
  for (auto& p : m->named_parameters())
    if (p.value().dim() >= 2) p.value().mul_(12.0);  // std 0.24: peaked, varied predictions
  m->set_training(false);
  return m;
}

TEST(KvCache, PrefillIsBitwiseTheFullForward) {
  Gpt m = sharp_model();
  torch::NoGradGuard no_grad;
  torch::manual_seed(1);
  torch::Tensor ids = torch::randint(0, 64, {2, 12}, torch::kInt64);
  KvCache cache;
  torch::Tensor cached = m->forward(ids, &cache);
  EXPECT_TRUE(torch::equal(cached, m->forward(ids)));
  EXPECT_EQ(cache.length, 12);
  ASSERT_EQ(cache.layers.size(), 2u);
  EXPECT_EQ(cache.layers[0].k.sizes(), (std::vector<int64_t>{2, 4, 16, 8}));
}

TEST(KvCache, IncrementalStepsMatchFullRecompute) {
  Gpt m = sharp_model();
  torch::NoGradGuard no_grad;
  torch::manual_seed(2);
  torch::Tensor ids = torch::randint(0, 64, {2, 16}, torch::kInt64);
  KvCache cache;
  m->forward(ids.narrow(1, 0, 5), &cache);
  double worst = 0;
  // Single tokens, then a chunk of three (queries at positions 12..14 masked among themselves).
  for (int64_t pos = 5; pos < 16;) {
    const int64_t t = pos == 12 ? 3 : 1;
    torch::Tensor step = m->forward(ids.narrow(1, pos, t), &cache);           // (2, t, V)
    torch::Tensor full = m->forward(ids.narrow(1, 0, pos + t)).narrow(1, pos, t);
    worst = std::max(worst, (torch::log_softmax(step, -1) - torch::log_softmax(full, -1))
                                .abs().max().item<double>());
    pos += t;
    EXPECT_EQ(cache.length, pos);
  }
  std::printf("largest |cached - recomputed| log-probability: %.3g\n", worst);
  EXPECT_LT(worst, kCacheTolerance / 10);
  EXPECT_THROW(m->forward(ids.narrow(1, 0, 1), &cache), DataError);  // past the context
}

TEST(Generate, CachedTokensEqualFullRecompute) {
  Gpt m = sharp_model();
  torch::manual_seed(3);
  GenerationCounters cached, plain;
  int64_t prompts = 0, slid = 0;
  for (int64_t len = 1; len <= 16; ++len) {
    for (int rep = 0; rep < 4; ++rep) {
      std::vector<int64_t> prompt;
      for (int64_t i = 0; i < len; ++i) prompt.push_back(torch::randint(0, 64, {1}).item<int64_t>());
      SamplingOptions o;
      o.max_tokens = 6 + 4 * rep;  // up to 18: past the context of 16 for longer prompts
      o.allowed_vocab = 60;
      o.temperature = rep % 2 == 0 ? 0.0 : 0.8;
      o.top_k = rep == 3 ? 5 : 0;
      o.seed = static_cast<uint64_t>(len * 10 + rep);
      o.eos_id = rep == 2 ? 7 : -1;
      const auto with = generate(*m, prompt, o, &cached);
      o.kv_cache = false;
      const auto without = generate(*m, prompt, o, &plain);
      ASSERT_EQ(with, without) << "prompt length " << len << ", options " << rep;
      ++prompts;
      if (static_cast<int64_t>(with.size()) > 17) ++slid;
    }
  }
  std::printf("%lld prompts (%lld past the context): %lld prefills, %lld cached steps, "
              "%lld recomputed\n", static_cast<long long>(prompts), static_cast<long long>(slid),
              static_cast<long long>(cached.prefills), static_cast<long long>(cached.cached),
              static_cast<long long>(cached.recomputed));
  EXPECT_GT(slid, 10);
  EXPECT_EQ(plain.cached, 0);
  EXPECT_GT(cached.cached, 300);
  EXPECT_LT(cached.recomputed * 20, cached.cached);  // the cache decides nearly every step
  EXPECT_GT(cached.prefills, prompts);                // windows slid past the context
}

TEST(Generate, SamplingIsTorchMultinomial) {
  // generate() writes torch::multinomial(probs, 1, false, gen) out as argmax(probs / q) with
  // q ~ Exp(1) from gen, to test its margin: the same token and the same generator state after.
  for (uint64_t seed = 0; seed < 200; ++seed) {
    auto data = at::make_generator<at::CPUGeneratorImpl>(seed + 1000);
    torch::Tensor logits = torch::randn({40}, data) * 3;
    logits.narrow(0, 30, 10).fill_(-std::numeric_limits<float>::infinity());
    torch::Tensor probs = torch::softmax(logits, 0);
    auto g1 = at::make_generator<at::CPUGeneratorImpl>(seed);
    auto g2 = at::make_generator<at::CPUGeneratorImpl>(seed);
    const int64_t a = torch::multinomial(probs, 1, false, g1).item<int64_t>();
    const int64_t b = (probs / torch::empty({40}).exponential_(1, g2)).argmax().item<int64_t>();
    ASSERT_EQ(a, b) << "seed " << seed;
    ASSERT_EQ(torch::rand({1}, g1).item<float>(), torch::rand({1}, g2).item<float>());
  }
}

TEST(Generate, ZeroTokensAndBadPrompts) {
  Gpt m = sharp_model();
  SamplingOptions o;
  o.max_tokens = 0;
  EXPECT_EQ(generate(*m, {3, 4}, o), (std::vector<int64_t>{3, 4}));
  o.max_tokens = 2;
  EXPECT_THROW(generate(*m, {}, o), UsageError);
  EXPECT_THROW(generate(*m, {3, 64}, o), UsageError);
}

// Batched generation returns, row by row, exactly what generate() returns for each prompt alone:
// greedy and sampled, with EOS ending rows early (they leave the batch and its cache), past the
// context (the batch's windows slide together), with and without the KV cache.
TEST(Generate, BatchedRowsEqualOneAtATime) {
  Gpt m = sharp_model();
  torch::manual_seed(4);
  GenerationCounters batched, alone;
  int64_t rows = 0, ended_early = 0;
  for (int64_t len : {1, 4, 9, 15}) {
    for (int rep = 0; rep < 6; ++rep) {
      std::vector<std::vector<int64_t>> prompts(static_cast<size_t>(3 + rep));
      for (auto& p : prompts)
        for (int64_t i = 0; i < len; ++i) p.push_back(torch::randint(0, 64, {1}).item<int64_t>());
      SamplingOptions o;
      o.max_tokens = 5 + 3 * rep;  // up to 20: past the context of 16
      o.allowed_vocab = 60;
      o.temperature = rep % 2 == 0 ? 0.0 : 0.8;
      o.top_k = rep == 3 ? 5 : 0;
      o.seed = static_cast<uint64_t>(len * 10 + rep);
      o.kv_cache = rep != 4;
      if (rep % 3 == 2) {  // EOS = the token row 0 picks second: row 0 (at least) ends early
        SamplingOptions two = o;
        two.max_tokens = 2;
        o.eos_id = generate(*m, prompts[0], two).back();
      }
      const auto got = generate_batch(*m, prompts, o, &batched);
      ASSERT_EQ(got.size(), prompts.size());
      for (size_t b = 0; b < prompts.size(); ++b) {
        const auto want = generate(*m, prompts[b], o, &alone);
        ASSERT_EQ(got[b], want) << "length " << len << ", options " << rep << ", row " << b;
        ++rows;
        if (static_cast<int64_t>(want.size()) < len + o.max_tokens) ++ended_early;
      }
    }
  }
  std::printf("%lld rows (%lld ended by EOS): batched %lld prefills, %lld cached row steps, %lld recomputed\n",
              static_cast<long long>(rows), static_cast<long long>(ended_early),
              static_cast<long long>(batched.prefills), static_cast<long long>(batched.cached),
              static_cast<long long>(batched.recomputed));
  EXPECT_GT(ended_early, 5);                          // rows left the batch mid-way
  EXPECT_LT(batched.prefills, alone.prefills);        // one prefill a batch, not a row
  EXPECT_LT(batched.recomputed * 10, batched.cached);  // the batch decides nearly every step
  // Prompts of different lengths cannot share a batch.
  EXPECT_THROW(generate_batch(*m, {{1, 2}, {3}}, SamplingOptions{}), DataError);
}

}  // namespace
}  // namespace conflux::trainer
