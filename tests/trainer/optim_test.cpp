// AdamW against libtorch's own torch::optim::AdamW (the C++ port of torch.optim.AdamW), as the
// independent reference: the fused CPU kernel, the op-by-op fallback (non-contiguous parameters),
// per-parameter weight decay, and clipping folded into the step through clip_coefficient.
#include "conflux/trainer/optim.h"

#include <gtest/gtest.h>

using namespace conflux::trainer;

namespace {

struct Case {
  std::vector<torch::Tensor> ours, ref;  // same initial values, separate storage
};

// Parameters of assorted sizes (odd lengths exercise the vector tails of the fused kernel).
Case make_params(bool non_contiguous) {
  torch::manual_seed(7);
  Case c;
  for (int64_t n : {1, 7, 33, 1000, 70001}) {
    torch::Tensor t = non_contiguous ? torch::randn({n, 2}).select(1, 0) : torch::randn({n});
    c.ours.push_back(t.set_requires_grad(true));
    c.ref.push_back(t.detach().clone().contiguous().set_requires_grad(true));
  }
  return c;
}

std::vector<ParamInfo> infos(const std::vector<torch::Tensor>& ts, bool decay) {
  std::vector<ParamInfo> out;
  for (size_t i = 0; i < ts.size(); ++i) {
    ShardSpec spec;
    spec.decay = decay;
    out.push_back({"p" + std::to_string(i), ts[i], spec});
  }
  return out;
}

// Runs `steps` updates on both sides with gradients drawn from one seeded stream, scaling the
// reference's gradients by `scale` (what clip_grad_norm would do) and passing it to ours.
void run_and_compare(Case& c, bool decay, double scale, int steps) {
  const double lr = 3e-3, wd = decay ? 0.1 : 0.0;
  AdamW ours(infos(c.ours, decay), {0.9, 0.95, 1e-8, 0.1});
  torch::optim::AdamW ref(c.ref, torch::optim::AdamWOptions(lr).betas({0.9, 0.95}).eps(1e-8).weight_decay(wd));
  torch::manual_seed(11);
  for (int s = 0; s < steps; ++s) {
    for (size_t i = 0; i < c.ours.size(); ++i) {
      torch::Tensor g = torch::randn(c.ours[i].sizes()) * (1.0 + s);
      c.ours[i].mutable_grad() = g.clone();
      c.ref[i].mutable_grad() = g * scale;
    }
    ours.step(lr, scale);
    ref.step();
    for (size_t i = 0; i < c.ours.size(); ++i) {
      ASSERT_TRUE(torch::allclose(c.ours[i], c.ref[i], 1e-6, 1e-7))
          << "parameter " << i << " after step " << s + 1 << ": max |diff| "
          << (c.ours[i] - c.ref[i]).abs().max().item<double>();
    }
  }
}

}  // namespace

TEST(AdamW, FusedKernelMatchesTorchAdamW) {
  Case c = make_params(false);
  run_and_compare(c, true, 1.0, 6);
}

TEST(AdamW, FusedKernelWithoutDecayMatchesTorchAdamW) {
  Case c = make_params(false);
  run_and_compare(c, false, 1.0, 4);
}

TEST(AdamW, FoldedClippingEqualsScaledGradients) {
  Case c = make_params(false);
  run_and_compare(c, true, 0.37, 4);
}

TEST(AdamW, NonContiguousParametersTakeTheOpByOpPath) {
  Case c = make_params(true);
  ASSERT_FALSE(c.ours.back().is_contiguous());
  run_and_compare(c, true, 0.5, 3);
}

TEST(AdamW, StepLeavesCpuGradientsUnscaled) {
  Case c = make_params(false);
  AdamW ours(infos(c.ours, true), {});
  torch::Tensor g = torch::ones({70001});
  c.ours.back().mutable_grad() = g.clone();
  ours.step(1e-3, 0.25);
  EXPECT_TRUE(torch::equal(c.ours.back().grad(), g));
}

TEST(AdamW, ClipCoefficient) {
  EXPECT_EQ(clip_coefficient(0.5, 1.0), 1.0);
  EXPECT_EQ(clip_coefficient(5.0, 0.0), 1.0);  // clipping off
  EXPECT_DOUBLE_EQ(clip_coefficient(4.0, 1.0), 1.0 / (4.0 + 1e-6));
}
