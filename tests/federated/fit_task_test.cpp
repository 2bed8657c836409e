// The participant's "fit" executor and DP-FedAvg's server step, in process:
//  - FedProx's client term: with SGD, the proximal term changes the second local step by exactly
//    -lr * mu * (w1 - w_global) (a gradient check of mu/2 ||w - w_global||^2), and leaves the
//    first step alone (w0 = w_global, so its gradient is 0);
//  - a fit task is deterministic for its params (the property resume relies on);
//  - local.steps = 0 returns the global weights unchanged, with num_examples and no train_loss;
//  - the summary's counts and the validation statistics; malformed global weights are a
//    ConfigError (not retried by the job layer);
//  - DP-FedAvg: deltas clipped to S, summed, divided by the expected cohort; the noise's standard
//    deviation is z*S / (qN);
//  - adaptive clipping: the bit count, its noise and the geometric update S' = S exp(-eta (b - gamma)),
//    by hand.
#include "scratch_dir.h"

#include <conflux/core/error.h>
#include <conflux/core/rng.h>
#include <conflux/dataplane/writer.h>
#include <conflux/federated/dp_fedavg.h>
#include <conflux/tasks/fit_task.h>
#include <conflux/trainer/gpt.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include <unistd.h>

namespace conflux::tasks {
namespace {

namespace dp = conflux::dataplane;
namespace fd = conflux::federated;
namespace tr = conflux::trainer;

// 60 rows of 20 byte tokens: a token stream of 1200 tokens (37 windows of 32).
std::string make_dataset() {
  static const std::string dir = [] {
    const std::string d = (std::filesystem::temp_directory_path() / ("conflux-fit-" + std::to_string(getpid()))).string();
    test::remove_at_exit(d);
    dp::Schema schema({{"tokens", dp::Role::Tokens, 0}});
    dp::DatasetWriter w(d, schema);
    dp::Table t(schema);
    for (int r = 0; r < 60; ++r) {
      std::vector<int32_t> toks(20);
      for (size_t k = 0; k < toks.size(); ++k) toks[k] = static_cast<int32_t>((r * 13 + k * 7 + (k % 3) * r) % 250);
      t.append_row({{reinterpret_cast<const char*>(toks.data()), toks.size() * 4}});
    }
    dp::Manifest m;
    m.schema = schema;
    m.tokenizer = dp::byte_tokenizer_json();  // vocabulary 259
    m.shards.push_back(w.write_shard(0, t));
    w.commit(m);
    return d;
  }();
  return dir;
}

FitParams params(int64_t steps, double mu) {
  FitParams p;
  p.model.vocab_size = 260;
  p.model.context = 32;
  p.model.n_layer = 1;
  p.model.n_head = 2;
  p.model.d_model = 16;
  p.local.steps = steps;
  p.local.batch_size = 4;
  p.local.optimizer = "sgd";
  p.local.lr = 0.1;
  p.local.proximal_mu = mu;
  p.local.val_fraction = 0.2;
  p.seed = 99;
  p.round = 1;
  return p;
}

std::vector<protocol::Tensor> global_weights(const tr::GptConfig& c) {
  tr::Gpt model(c);
  std::vector<protocol::Tensor> out;
  for (const auto& info : model->param_infos()) {
    torch::Tensor t = info.tensor.detach().contiguous();
    out.push_back(protocol::Tensor::copy(info.name, DType::F32, t.sizes().vec(), t.data_ptr<float>(),
                                         static_cast<size_t>(t.numel()) * 4));
  }
  return out;
}

protocol::TaskOutput fit(const FitParams& p, const std::vector<protocol::Tensor>& global, const std::string& kind = "fit") {
  auto ex = kind == "fit" ? make_fit_executor() : make_federated_evaluate_executor();
  protocol::TaskContext ctx;
  ctx.kind = kind;
  ctx.params = p.to_json();
  ctx.shared = global;
  ctx.data_path = make_dataset();
  return ex->execute(ctx);
}

std::vector<float> flat(const std::vector<protocol::Tensor>& ts) {
  std::vector<float> v;
  for (const auto& t : ts) v.insert(v.end(), t.as<float>(), t.as<float>() + t.numel());
  return v;
}

TEST(FitTask, FedProxTermIsMuTimesDistanceToGlobal) {
  const auto g = global_weights(params(1, 0).model);
  const double lr = 0.1, mu = 0.5;
  const auto w1 = flat(fit(params(1, mu), g).tensors);
  const auto w1_plain = flat(fit(params(1, 0), g).tensors);
  ASSERT_EQ(w1, w1_plain) << "the proximal gradient is 0 at w = w_global";
  const auto w2_mu = flat(fit(params(2, mu), g).tensors);
  const auto w2 = flat(fit(params(2, 0), g).tensors);
  const auto wg = flat(g);
  double worst = 0, moved = 0;
  for (size_t i = 0; i < wg.size(); ++i) {
    const double expected = -lr * mu * (static_cast<double>(w1[i]) - wg[i]);
    worst = std::max(worst, std::abs((static_cast<double>(w2_mu[i]) - w2[i]) - expected));
    moved = std::max(moved, std::abs(expected));
  }
  EXPECT_GT(moved, 1e-4);
  EXPECT_LT(worst, 1e-6) << "largest |expected| " << moved;
}

TEST(FitTask, DeterministicAndSummarised) {
  const auto p = params(3, 0);
  const auto g = global_weights(p.model);
  const auto a = fit(p, g), b = fit(p, g);
  EXPECT_EQ(flat(a.tensors), flat(b.tensors));
  const auto s = nlohmann::json::parse(a.summary);
  // The windows of 32 tokens (+1 target): floor(0.2 * total) held out, the rest trained on.
  const int64_t train = s["train_windows"], val = s["val_windows"];
  EXPECT_GE(train + val, 37);
  EXPECT_EQ(val, static_cast<int64_t>(0.2 * static_cast<double>(train + val)));
  EXPECT_EQ(s["num_examples"], train);
  EXPECT_EQ(s["steps"], 3);
  EXPECT_GT(s["update_norm"].get<double>(), 0);
  EXPECT_FALSE(s.contains("val_loss_sum"));
  auto q = p;
  q.seed = 100;  // another order of the windows
  EXPECT_NE(flat(fit(q, g).tensors), flat(a.tensors));
}

TEST(FitTask, ZeroStepsReturnsTheGlobalWeightsUnchanged) {
  const auto p = params(0, 0);
  const auto g = global_weights(p.model);
  const auto out = fit(p, g);
  ASSERT_EQ(out.tensors.size(), g.size());
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_EQ(out.tensors[i].name(), g[i].name());
    EXPECT_EQ(out.tensors[i].shape(), g[i].shape());
  }
  EXPECT_EQ(flat(out.tensors), flat(g));
  const auto s = nlohmann::json::parse(out.summary);
  EXPECT_EQ(s["steps"], 0);
  EXPECT_EQ(s["num_examples"], s["train_windows"]);
  EXPECT_GT(s["num_examples"].get<int64_t>(), 0);
  EXPECT_EQ(s["update_norm"].get<double>(), 0.0);
  EXPECT_FALSE(s.contains("train_loss"));
}

TEST(FitTask, EvaluatesTheGlobalModelOnItsValidationWindows) {
  auto p = params(1, 0);
  const auto g = global_weights(p.model);
  const auto out = fit(p, g, "evaluate_federated");
  EXPECT_TRUE(out.tensors.empty());
  const auto s = nlohmann::json::parse(out.summary);
  EXPECT_EQ(s["val_tokens"], s["val_windows"].get<int64_t>() * 32);
  // An untrained model is close to uniform over its 260 tokens: mean NLL near ln 260.
  const double mean = s["val_loss_sum"].get<double>() / s["val_tokens"].get<double>();
  EXPECT_NEAR(mean, std::log(260.0), 0.3);
  p.evaluate = true;
  const auto both = nlohmann::json::parse(fit(p, g).summary);
  EXPECT_EQ(both["val_loss_sum"].get<double>(), s["val_loss_sum"].get<double>()) << "evaluated before training";
}

TEST(FitTask, MalformedGlobalIsAConfigError) {
  auto g = global_weights(params(1, 0).model);
  g.pop_back();
  EXPECT_THROW(fit(params(1, 0), g), ConfigError);
  auto h = global_weights(params(1, 0).model);
  std::swap(h[0], h[1]);
  EXPECT_THROW(fit(params(1, 0), h), ConfigError);
}

fd::Weights one_tensor(std::vector<float> v) { return {{"w", {static_cast<int64_t>(v.size())}, std::move(v)}}; }

TEST(DpFedAvg, ClipsSumsAndDividesByTheExpectedCohort) {
  const fd::Weights global = one_tensor({1, 1, 1, 1});
  fd::DpFedAvg dp({/*clip=*/1.0, /*noise_multiplier=*/0.0, /*expected_clients=*/4.0});
  dp.begin_round(global);
  EXPECT_DOUBLE_EQ(dp.add({one_tensor({3, 1, 1, 1}), 10, "a"}), 2.0);    // delta (2,0,0,0) -> (1,0,0,0)
  EXPECT_DOUBLE_EQ(dp.add({one_tensor({1, 1.5f, 1, 1}), 1, "b"}), 0.5);  // within the bound
  EXPECT_EQ(dp.clipped(), 1u);
  Stream rng(1, "test");
  const fd::Weights next = dp.finish(rng);
  EXPECT_EQ(next[0].values, (std::vector<float>{1.25f, 1.125f, 1.0f, 1.0f}));
}

TEST(DpFedAvg, NoiseStandardDeviationIsZTimesClipOverCohort) {
  const size_t n = 200000;
  const fd::Weights global = one_tensor(std::vector<float>(n, 0.0f));
  fd::DpFedAvg dp({0.5, 2.0, 10.0});
  dp.begin_round(global);
  Stream rng(7, "noise");
  const auto next = dp.finish(rng);
  double s = 0, s2 = 0;
  for (float v : next[0].values) {
    s += v;
    s2 += static_cast<double>(v) * v;
  }
  const double mean = s / n, sd = std::sqrt(s2 / n - mean * mean);
  EXPECT_NEAR(sd, 2.0 * 0.5 / 10.0, 0.002);
  EXPECT_NEAR(mean, 0.0, 0.001);
}

TEST(DpFedAvg, RejectsAnUpdateThatDoesNotFit) {
  const fd::Weights global = one_tensor({0, 0});
  fd::DpFedAvg dp({1.0, 1.0, 1.0});
  dp.begin_round(global);
  EXPECT_THROW(dp.add({one_tensor({0, 0, 0}), 1, "bad"}), DataError);
  EXPECT_THROW(dp.add({one_tensor({0, NAN}), 1, "nan"}), DataError);
}

// Adaptive clipping's rule by hand: S' = S * exp(-eta_C * ((count + noise) / (qN) - gamma)).
TEST(DpFedAvgAdaptiveClip, GeometricUpdateByHand) {
  const fd::AdaptiveClipOptions o{/*target_quantile=*/0.5, /*clip_lr=*/0.2, /*count_stddev=*/0.0};
  // 3 of 4 within the bound, no noise: b_bar = 0.75, S' = 2 * exp(-0.2 * 0.25) = 2 e^-0.05.
  auto s = fd::adaptive_clip_step(2.0, 3, 0.0, 4.0, o);
  EXPECT_DOUBLE_EQ(s.fraction, 0.75);
  EXPECT_DOUBLE_EQ(s.next_clip, 2.0 * std::exp(-0.05));
  // None within: the bound grows, S' = 2 e^0.1; a noise sample of -0.5 on 1 of 4: b_bar = 0.125.
  EXPECT_DOUBLE_EQ(fd::adaptive_clip_step(2.0, 0, 0.0, 4.0, o).next_clip, 2.0 * std::exp(0.1));
  s = fd::adaptive_clip_step(1.0, 1, -0.5, 4.0, o);
  EXPECT_DOUBLE_EQ(s.noisy_count, 0.5);
  EXPECT_DOUBLE_EQ(s.next_clip, std::exp(-0.2 * (0.125 - 0.5)));
  EXPECT_THROW(fd::adaptive_clip_step(1.0, 1, 0.0, 4.0, {1.0, 0.2, 0.0}), ConfigError);
  EXPECT_THROW(fd::adaptive_clip_step(1.0, 1, 0.0, 4.0, {0.0, 0.2, 0.0}), ConfigError);
  EXPECT_THROW(fd::adaptive_clip_step(1.0, 1, 0.0, 4.0, {0.5, -0.1, 0.0}), ConfigError);
}

TEST(DpFedAvgAdaptiveClip, RoundCountsTheBitsAndDrawsTheCountNoise) {
  const fd::Weights global = one_tensor({0, 0});
  fd::DpFedAvg dp({/*clip=*/1.0, /*noise_multiplier=*/0.0, /*expected_clients=*/3.0});
  dp.begin_round(global);
  dp.add({one_tensor({3, 4}), 1, "a"});  // norm 5 > 1: clipped, b = 0
  dp.add({one_tensor({0, 1}), 1, "b"});  // norm exactly S: within (b = [norm <= S])
  dp.add({one_tensor({0, 0.5f}), 1, "c"});  // within
  EXPECT_EQ(dp.clipped(), 1u);
  EXPECT_EQ(dp.within_bound(), 2u);
  const fd::AdaptiveClipOptions o{0.5, 0.2, 1.5};
  Stream a(3, "count"), b(3, "count");
  const auto s = dp.adapt_clip(o, a);
  const double noise = 1.5 * b.normal();  // the same draw, by hand
  EXPECT_DOUBLE_EQ(s.noisy_count, 2.0 + noise);
  EXPECT_DOUBLE_EQ(s.next_clip, std::exp(-0.2 * ((2.0 + noise) / 3.0 - 0.5)));
}

}  // namespace
}  // namespace conflux::tasks
