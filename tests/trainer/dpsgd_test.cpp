// DP-SGD pieces: Gaussian noise of the right variance, and the clipped + noised sum whose
// distance from the clipped sum has the expected norm.
#include "conflux/trainer/gpt.h"
#include "conflux/trainer/grad_sample.h"

#include "conflux/core/rng.h"

#include <gtest/gtest.h>

#include <cmath>

namespace conflux::trainer {
namespace {

TEST(DpNoise, VarianceAndMean) {
  torch::Tensor a = torch::zeros({200000}, torch::kFloat32);
  torch::Tensor b = torch::zeros({100, 100}, torch::kFloat32);
  Stream rng(1, "noise-test");
  add_gaussian_noise({a, b}, 0.3, rng);
  // 2e5 samples: the sample variance is within ~0.6% (3 sd) of 0.09, the mean within ~0.002.
  EXPECT_NEAR(a.var().item<double>(), 0.09, 0.09 * 0.01);
  EXPECT_NEAR(a.mean().item<double>(), 0.0, 0.003);
  EXPECT_NEAR(b.std().item<double>(), 0.3, 0.3 * 0.03);
  // Secure noise has the same distribution and is not reproducible.
  torch::Tensor c = torch::zeros({200000}), d = torch::zeros({200000});
  SecureRandom s1, s2;
  add_gaussian_noise({c}, 0.3, s1);
  add_gaussian_noise({d}, 0.3, s2);
  EXPECT_NEAR(c.var().item<double>(), 0.09, 0.09 * 0.02);
  EXPECT_FALSE(c.equal(d));
}

TEST(DpNoise, ClippedNoisedUpdate) {
  torch::manual_seed(4);
  GptConfig c;
  c.vocab_size = 32;
  c.context = 8;
  c.n_layer = 1;
  c.n_head = 2;
  c.d_model = 16;
  Gpt model(c);
  const int64_t b = 8;
  torch::Tensor ids = torch::randint(0, 32, {b, 8}, torch::kInt64);
  GradSampler gs;
  model->context().sampler = &gs;
  model->sample_losses(ids, ids.roll(1, 1)).sum().backward();
  model->context().sampler = nullptr;
  auto params = model->parameters();
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  const double clip = 0.5, sigma = 2.0;
  clip_and_accumulate(gs, params, clip);
  std::vector<torch::Tensor> clipped, grads;
  double sq = 0;
  int64_t dims = 0;
  for (auto& p : params) {
    clipped.push_back(p.grad().clone());
    grads.push_back(p.mutable_grad());
    sq += p.grad().pow(2).sum().item<double>();
    dims += p.numel();
  }
  EXPECT_LE(std::sqrt(sq), b * clip * (1 + 1e-6));  // the sensitivity bound before noise
  Stream rng(2, "noise");
  add_gaussian_noise(grads, sigma * clip, rng);
  double noise_sq = 0;
  for (size_t i = 0; i < params.size(); ++i) noise_sq += (grads[i] - clipped[i]).pow(2).sum().item<double>();
  // ||noise||^2 / dims estimates (sigma C)^2 = 1; dims ~ 4k so within ~7% (3 sd).
  EXPECT_NEAR(noise_sq / double(dims), 1.0, 0.07);
}

}  // namespace
}  // namespace conflux::trainer
