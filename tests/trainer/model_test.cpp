// Single-process tests of the GPT: tp = 1 equals a plain GPT-2 written out with stock torch ops,
// per-sample gradients equal one backward per example, and DP-SGD clipping bounds the update.
#include "conflux/trainer/gpt.h"
#include "conflux/trainer/grad_sample.h"

#include "conflux/core/error.h"
#include "../../trainer/src/gelu_kernel.h"  // the inference GELU (private to the trainer)

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace conflux::trainer {
namespace {

GptConfig tiny() {
  GptConfig c;
  c.vocab_size = 48;
  c.context = 16;
  c.n_layer = 2;
  c.n_head = 4;
  c.d_model = 32;
  c.init_seed = 7;
  return c;
}

// The plain reference: GPT-2 forward with torch ops, reading the model's parameters by name.
torch::Tensor reference_logits(Gpt& model, const torch::Tensor& ids) {
  std::map<std::string, torch::Tensor> p;
  for (auto& item : model->named_parameters()) p[item.key()] = item.value();
  const auto& c = model->config();
  const int64_t b = ids.size(0), t = ids.size(1), C = c.d_model, H = c.n_head, D = C / H;
  auto ln = [&](const torch::Tensor& x, const std::string& n) {
    return torch::layer_norm(x, {C}, p[n + ".weight"], p[n + ".bias"], 1e-5);
  };
  torch::Tensor x = p["wte.weight"].index_select(0, ids.reshape({-1})).view({b, t, C}) +
                    p["wpe.weight"].slice(0, 0, t);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    std::string pre = "h." + std::to_string(l) + ".";
    torch::Tensor h = ln(x, pre + "ln1");
    torch::Tensor qkv = torch::addmm(p[pre + "attn.qkv.bias"].reshape({3 * C}), h.reshape({-1, C}),
                                     p[pre + "attn.qkv.weight"].reshape({3 * C, C}).t());
    auto parts = qkv.view({b, t, 3 * C}).split(C, 2);
    auto heads = [&](const torch::Tensor& z) { return z.reshape({b, t, H, D}).permute({0, 2, 1, 3}); };
    torch::Tensor att = torch::matmul(heads(parts[0]), heads(parts[1]).transpose(2, 3)) / std::sqrt(double(D));
    torch::Tensor mask = torch::tril(torch::ones({t, t})).to(torch::kBool);
    att = torch::softmax(att.masked_fill(mask.logical_not(), -1e30), -1);
    torch::Tensor y = torch::matmul(att, heads(parts[2])).permute({0, 2, 1, 3}).reshape({b, t, C});
    x = x + torch::linear(y, p[pre + "attn.proj.weight"], p[pre + "attn.proj.bias"]);
    h = ln(x, pre + "ln2");
    h = torch::gelu(torch::linear(h, p[pre + "mlp.fc.weight"], p[pre + "mlp.fc.bias"]), "tanh");
    x = x + torch::linear(h, p[pre + "mlp.proj.weight"], p[pre + "mlp.proj.bias"]);
  }
  return torch::matmul(ln(x, "ln_f"), p["wte.weight"].t());
}

TEST(Gpt, MatchesPlainReference) {
  torch::manual_seed(0);
  Gpt model(tiny());
  torch::Tensor ids = torch::randint(0, 48, {3, 12}, torch::kInt64);
  torch::Tensor targets = torch::randint(0, 48, {3, 12}, torch::kInt64);
  torch::Tensor logits = model->forward(ids);
  torch::Tensor ref = reference_logits(model, ids);
  ASSERT_EQ(logits.sizes(), ref.sizes());
  EXPECT_LT((logits - ref).abs().max().item<float>(), 1e-5);
  torch::Tensor loss = model->loss(ids, targets);
  torch::Tensor ref_loss = torch::cross_entropy_loss(ref.view({-1, 48}), targets.view({-1}));
  EXPECT_NEAR(loss.item<float>(), ref_loss.item<float>(), 1e-5);
  // Gradients of our vocab-parallel cross-entropy (tp = 1) equal autograd through the reference.
  loss.backward();
  std::vector<torch::Tensor> ours;
  for (auto& p : model->parameters()) ours.push_back(p.grad().clone());
  model->zero_grad();
  reference_logits(model, ids);
  torch::cross_entropy_loss(reference_logits(model, ids).view({-1, 48}), targets.view({-1})).backward();
  auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_LT((ours[i] - params[i].grad()).abs().max().item<float>(), 1e-5) << i;
}

// The gradient-free forwards' GELU (gelu_kernel.h: x / (1 + exp(-2z)) with Cephes' expf) against
// the same function in double precision, over [-20, 20] and special values: within 2e-6 relative
// (plus exp's conditioning, |t| times t's float rounding) wherever the result is a normal float (libtorch's float tanh form is printed for comparison);
// and a no-grad forward of the model (which uses it) stays
// within float rounding of the autograd forward (torch::gelu).
TEST(Gelu, InferenceKernelEqualsTheTanhFormToFloatRounding) {
  std::vector<float> x;
  for (int i = -200000; i <= 200000; ++i) x.push_back(static_cast<float>(i) * 1e-4f);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 50.0f, -50.0f, 1e4f, -1e4f}) x.push_back(v);
  std::vector<float> ours = x;
  detail::gelu_tanh_inplace(ours.data(), ours.size());
  torch::Tensor theirs = torch::gelu(torch::tensor(x), "tanh");
  double worst_ours = 0, worst_torch = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    // 0.5 (1 + tanh z) = 1 / (1 + exp(-2z)): the sigmoid form keeps its precision for x << 0,
    // where 1 + tanh z cancels (float's tanh form is exactly 0 there).
    const double t = -2 * 0.7978845608028654 * (v + 0.044715 * v * v * v);
    const double want = v / (1 + std::exp(t));
    const double tol = std::max(std::abs(want), 1e-30);
    worst_ours = std::max(worst_ours, std::abs(ours[i] - want) / tol);
    if (v > -5) worst_torch = std::max(worst_torch, std::abs(theirs[static_cast<int64_t>(i)].item<float>() - want) / tol);
    if (std::abs(want) > 1e-30) {  // well inside the normal floats
      // exp(t) turns the float rounding of t (~6e-8 relative) into |t| times that.
      ASSERT_LE(std::abs(ours[i] - want), (2e-6 + 2e-7 * std::abs(t)) * std::abs(want)) << "x = " << v;
    }
  }
  std::printf("largest relative error vs double: inference kernel %.3g; torch::gelu %.3g (x > -5)\n",
              worst_ours, worst_torch);
  EXPECT_EQ(ours[x.size() - 8], 0.0f);
  EXPECT_EQ(ours[x.size() - 4], 50.0f);

  torch::manual_seed(0);
  Gpt model(tiny());
  torch::Tensor ids = torch::randint(0, 48, {3, 12}, torch::kInt64);
  torch::Tensor with_grad = model->forward(ids).detach();
  torch::Tensor no_grad;
  {
    torch::NoGradGuard guard;
    no_grad = model->forward(ids);
  }
  EXPECT_LT((with_grad - no_grad).abs().max().item<float>(), 1e-5);
}

TEST(Gpt, InitialisationFollowsGpt2) {
  GptConfig c = tiny();
  c.d_model = 64;
  c.n_head = 2;
  Gpt model(c);
  for (auto& info : model->param_infos()) {
    const auto& n = info.name;
    if (n.find("ln") != std::string::npos && n.size() > 7 && n.substr(n.size() - 7) == ".weight") {
      EXPECT_TRUE(info.tensor.eq(1).all().item<bool>()) << n;
    } else if (n.substr(n.size() - 5) == ".bias") {
      EXPECT_TRUE(info.tensor.eq(0).all().item<bool>()) << n;
    } else {
      double expect = 0.02;
      if (n.find(".proj.weight") != std::string::npos) expect /= std::sqrt(2.0 * c.n_layer);
      EXPECT_NEAR(info.tensor.std().item<double>(), expect, expect * 0.1) << n;
    }
  }
  // Same init seed -> same weights; another seed -> different.
  Gpt again(c);
  c.init_seed += 1;
  Gpt other(c);
  auto a = model->parameters(), b = again->parameters(), d = other->parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].equal(b[i]));
  EXPECT_FALSE(a[0].equal(d[0]));
}

TEST(Gpt, RejectsBadShapes) {
  GptConfig c = tiny();
  c.n_head = 5;
  EXPECT_THROW(Gpt{c}, ConfigError);
  c = tiny();
  Gpt model(c);
  EXPECT_THROW(model->forward(torch::zeros({1, 17}, torch::kInt64)), DataError);
}

TEST(GradSample, EqualsOneBackwardPerExample) {
  torch::manual_seed(1);
  GptConfig c = tiny();
  Gpt model(c);
  const int64_t b = 4, t = 10;
  torch::Tensor ids = torch::randint(0, c.vocab_size, {b, t}, torch::kInt64);
  torch::Tensor targets = torch::randint(0, c.vocab_size, {b, t}, torch::kInt64);
  GradSampler sampler;
  model->context().sampler = &sampler;
  model->sample_losses(ids, targets).sum().backward();
  model->context().sampler = nullptr;
  auto params = model->parameters();
  for (int64_t i = 0; i < b; ++i) {
    model->zero_grad();
    model->loss(ids.slice(0, i, i + 1), targets.slice(0, i, i + 1)).backward();
    for (size_t k = 0; k < params.size(); ++k) {
      ASSERT_TRUE(sampler.has(params[k])) << k;
      torch::Tensor per = sampler.grad(params[k])[i];
      EXPECT_LT((per - params[k].grad()).abs().max().item<double>(), 1e-6) << "param " << k
                                                                           << " sample " << i;
    }
  }
}

TEST(GradSample, ClippingBoundsEverySample) {
  torch::manual_seed(2);
  GptConfig c = tiny();
  Gpt model(c);
  const int64_t b = 6, t = 8;
  torch::Tensor ids = torch::randint(0, c.vocab_size, {b, t}, torch::kInt64);
  GradSampler sampler;
  model->context().sampler = &sampler;
  model->sample_losses(ids, ids.roll(1, 1)).sum().backward();
  model->context().sampler = nullptr;
  auto params = model->parameters();
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  const double clip = 0.05;
  torch::Tensor norms = clip_and_accumulate(sampler, params, clip);
  ASSERT_EQ(norms.size(0), b);
  EXPECT_GT(norms.min().item<double>(), clip);  // so clipping is active for every sample
  // Sum of clipped samples: each sample contributes exactly norm clip (to 1e-6 relative), so the
  // total norm is at most b * clip, and equals the norm of the explicit clipped sum.
  double total = 0;
  for (auto& p : params) total += p.grad().pow(2).sum().item<double>();
  EXPECT_LE(std::sqrt(total), b * clip * (1 + 1e-6));
  double explicit_total = 0;
  for (auto& p : params) {
    torch::Tensor g = sampler.grad(p);
    torch::Tensor f = (clip / (norms + 1e-6)).clamp_max(1.0).view({b, 1});
    torch::Tensor s = (g.reshape({b, -1}) * f).sum(0);
    explicit_total += (s - p.grad().reshape({-1})).abs().max().item<double>();
  }
  EXPECT_LT(explicit_total, 1e-6);
}

}  // namespace
}  // namespace conflux::trainer
