// AdamW, schedule and tensor-parallel-aware clipping (see optim.h).
#include "conflux/trainer/optim.h"

#include "conflux/core/tensor_comm.h"

#include <cmath>

namespace conflux::trainer {

AdamW::AdamW(std::vector<ParamInfo> params, AdamWOptions options)
    : params_(std::move(params)), options_(options) {
  for (const auto& p : params_) {
    m_.push_back(torch::zeros_like(p.tensor));
    v_.push_back(torch::zeros_like(p.tensor));
  }
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++steps_;
  const double b1 = options_.beta1, b2 = options_.beta2;
  const double bc1 = 1.0 - std::pow(b1, double(steps_));
  const double bc2 = 1.0 - std::pow(b2, double(steps_));
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor p = params_[i].tensor;
    const torch::Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (params_[i].spec.decay && options_.weight_decay > 0) p.mul_(1.0 - lr * options_.weight_decay);
    m_[i].mul_(b1).add_(g, 1.0 - b1);
    v_[i].mul_(b2).addcmul_(g, g, 1.0 - b2);
    torch::Tensor denom = (v_[i].sqrt() / std::sqrt(bc2)).add_(options_.eps);
    p.addcdiv_(m_[i], denom, -lr / bc1);
  }
}

double learning_rate(const ScheduleOptions& s, int64_t step) {
  if (step < s.warmup_steps) return s.lr * double(step + 1) / double(s.warmup_steps);
  if (step >= s.total_steps) return s.min_lr;
  const double span = double(std::max<int64_t>(1, s.total_steps - s.warmup_steps));
  const double progress = double(step - s.warmup_steps) / span;
  return s.min_lr + 0.5 * (s.lr - s.min_lr) * (1.0 + std::cos(M_PI * progress));
}

double global_grad_norm(const std::vector<ParamInfo>& params, const TpGroup& tp) {
  double sharded = 0, replicated = 0;
  for (const auto& p : params) {
    const torch::Tensor& g = p.tensor.grad();
    if (!g.defined()) continue;
    const double n = g.norm().item<double>();  // no float64 copy of the gradient
    const double sq = n * n;
    if (p.spec.sharded() && tp.size > 1) {
      sharded += sq;
    } else {
      replicated += sq;
    }
  }
  if (tp.size > 1 && tp.comm) {
    torch::Tensor t = torch::tensor({sharded}, torch::kFloat64);
    allreduce(*tp.comm, t, ReduceOp::Sum);
    sharded = t.item<double>();
  }
  return std::sqrt(sharded + replicated);
}

double clip_grad_norm(const std::vector<ParamInfo>& params, const TpGroup& tp, double max_norm) {
  const double norm = global_grad_norm(params, tp);
  if (max_norm > 0 && norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    torch::NoGradGuard no_grad;
    for (const auto& p : params)
      if (p.tensor.grad().defined()) p.tensor.mutable_grad().mul_(scale);
  }
  return norm;
}

}  // namespace conflux::trainer
