// Optimisation pieces: AdamW (decoupled weight decay, as torch.optim.AdamW), the warmup + cosine
// learning-rate schedule, and gradient-norm clipping that is correct under tensor parallelism.
//
// The global gradient norm sums squares of sharded parameters across the tp group and counts
// replicated parameters once (their gradients are identical on every tp rank). After the
// data-parallel all-reduce the gradients are identical across dp ranks, so no dp reduction is
// needed. The optimizer state lives in plain tensors (one per parameter, same shard as the
// parameter) so checkpoints can store it next to the weights.
// Thread safety: one thread.
#pragma once

#include "conflux/trainer/gpt.h"

#include <vector>

namespace conflux::trainer {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;  // applied to parameters whose ShardSpec has decay = true
};

class AdamW {
 public:
  AdamW(std::vector<ParamInfo> params, AdamWOptions options);
  // One update with learning rate `lr` using each parameter's .grad times `grad_scale` (skips
  // undefined grads; on CPU the .grad tensors are left as they are, on CUDA they are scaled in place). On CPU, float32 contiguous parameters take
  // one fused pass each (trainer/src/adamw_kernel.h), split over the intra-op threads.
  void step(double lr, double grad_scale = 1.0);
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }
  const std::vector<ParamInfo>& params() const { return params_; }
  std::vector<torch::Tensor>& exp_avg() { return m_; }
  std::vector<torch::Tensor>& exp_avg_sq() { return v_; }

 private:
  void step_foreach(double lr, double bc1, double bc2);

  std::vector<ParamInfo> params_;
  AdamWOptions options_;
  std::vector<torch::Tensor> m_, v_;
  int64_t steps_ = 0;
};

struct ScheduleOptions {
  double lr = 3e-4;
  double min_lr = 3e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1000;
};
// Linear warmup from lr/warmup to lr over warmup_steps, then cosine decay to min_lr at
// total_steps (constant min_lr after). `step` counts from 0.
double learning_rate(const ScheduleOptions& s, int64_t step);

// Global L2 norm of the gradients across the tp group (null or size-1 group: local).
double global_grad_norm(const std::vector<ParamInfo>& params, const TpGroup& tp);
// The factor that brings a gradient of global norm `norm` down to max_norm: max_norm / (norm + 1e-6)
// when norm > max_norm > 0, else 1. Pass it to AdamW::step to clip without a pass over the gradients.
double clip_coefficient(double norm, double max_norm);
// Scales gradients so the global norm is at most max_norm (no-op for max_norm <= 0); returns the
// norm before clipping.
double clip_grad_norm(const std::vector<ParamInfo>& params, const TpGroup& tp, double max_norm);

}  // namespace conflux::trainer
