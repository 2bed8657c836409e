// AdamW, schedule and tensor-parallel-aware clipping (see optim.h).
#include "conflux/trainer/optim.h"

#include "conflux/core/tensor_comm.h"

#include "adamw_kernel.h"

#include <ATen/Parallel.h>

#include <cmath>

namespace conflux::trainer {

AdamW::AdamW(std::vector<ParamInfo> params, AdamWOptions options)
    : params_(std::move(params)), options_(options) {
  for (const auto& p : params_) {
    m_.push_back(torch::zeros_like(p.tensor));
    v_.push_back(torch::zeros_like(p.tensor));
  }
}

void AdamW::step(double lr, double grad_scale) {
  torch::NoGradGuard no_grad;
  ++steps_;
  const double b1 = options_.beta1, b2 = options_.beta2;
  const double bc1 = 1.0 - std::pow(b1, double(steps_));
  const double bc2 = 1.0 - std::pow(b2, double(steps_));
  if (!params_.empty() && params_[0].tensor.is_cuda()) {
    if (grad_scale != 1.0) {
      std::vector<torch::Tensor> grads;
      for (const auto& p : params_)
        if (p.tensor.grad().defined()) grads.push_back(p.tensor.grad());
      if (!grads.empty()) at::_foreach_mul_(grads, grad_scale);
    }
    step_foreach(lr, bc1, bc2);
    return;
  }
  detail::AdamWScalars s;
  s.beta1 = float(b1), s.one_minus_beta1 = float(1.0 - b1);
  s.beta2 = float(b2), s.one_minus_beta2 = float(1.0 - b2);
  s.sqrt_bc2 = float(std::sqrt(bc2)), s.eps = float(options_.eps);
  s.step = float(-lr / bc1), s.grad_scale = float(grad_scale);
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor p = params_[i].tensor;
    const torch::Tensor& g = p.grad();
    if (!g.defined()) continue;
    const bool decay = params_[i].spec.decay && options_.weight_decay > 0;
    s.decay = decay ? float(1.0 - lr * options_.weight_decay) : 1.0f;
    const bool fusable = p.scalar_type() == torch::kFloat32 && g.scalar_type() == torch::kFloat32 &&
                         p.is_contiguous() && g.is_contiguous() && m_[i].is_contiguous() && v_[i].is_contiguous();
    if (fusable) {
      float *pp = p.data_ptr<float>(), *mp = m_[i].data_ptr<float>(), *vp = v_[i].data_ptr<float>();
      const float* gp = g.data_ptr<float>();
      at::parallel_for(0, p.numel(), 1 << 16, [&](int64_t lo, int64_t hi) {
        detail::adamw_fused(pp + lo, gp + lo, mp + lo, vp + lo, size_t(hi - lo), s);
      });
      continue;
    }
    // Other dtypes or layouts: the same formula, op by op.
    torch::Tensor gs = grad_scale != 1.0 ? g * grad_scale : g;
    if (decay) p.mul_(s.decay);
    m_[i].mul_(b1).add_(gs, 1.0 - b1);
    v_[i].mul_(b2).addcmul_(gs, gs, 1.0 - b2);
    torch::Tensor denom = (v_[i].sqrt() / std::sqrt(bc2)).add_(options_.eps);
    p.addcdiv_(m_[i], denom, -lr / bc1);
  }
}

// The same update as step() with multi-tensor (_foreach) kernels: on CUDA a few launches per step
// instead of six per parameter. CPU keeps the per-parameter loop (bitwise as before).
void AdamW::step_foreach(double lr, double bc1, double bc2) {
  const double b1 = options_.beta1, b2 = options_.beta2;
  std::vector<torch::Tensor> p, g, m, v, decayed;
  for (size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor& grad = params_[i].tensor.grad();
    if (!grad.defined()) continue;
    p.push_back(params_[i].tensor), g.push_back(grad), m.push_back(m_[i]), v.push_back(v_[i]);
    if (params_[i].spec.decay && options_.weight_decay > 0) decayed.push_back(params_[i].tensor);
  }
  if (p.empty()) return;
  if (!decayed.empty()) at::_foreach_mul_(decayed, 1.0 - lr * options_.weight_decay);
  at::_foreach_mul_(m, b1);
  at::_foreach_add_(m, g, 1.0 - b1);
  at::_foreach_mul_(v, b2);
  at::_foreach_addcmul_(v, g, g, 1.0 - b2);
  std::vector<torch::Tensor> denom = at::_foreach_sqrt(v);
  at::_foreach_div_(denom, std::sqrt(bc2));
  at::_foreach_add_(denom, options_.eps);
  at::_foreach_addcdiv_(p, m, denom, -lr / bc1);
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
  if (!params.empty() && params[0].tensor.is_cuda()) {
    // On CUDA: one host sync for all norms instead of one per parameter.
    std::vector<torch::Tensor> sh, rep;
    for (const auto& p : params) {
      const torch::Tensor& g = p.tensor.grad();
      if (!g.defined()) continue;
      (p.spec.sharded() && tp.size > 1 ? sh : rep).push_back(g.norm().to(torch::kFloat64));
    }
    torch::Tensor sums = torch::zeros({2}, torch::TensorOptions().dtype(torch::kFloat64).device(params[0].tensor.device()));
    if (!sh.empty()) sums[0] = torch::stack(sh).square().sum();
    if (!rep.empty()) sums[1] = torch::stack(rep).square().sum();
    sums = sums.cpu();
    sharded = sums[0].item<double>(), replicated = sums[1].item<double>();
  } else {
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
  }
  if (tp.size > 1 && tp.comm) {
    torch::Tensor t = torch::tensor({sharded}, torch::kFloat64);
    allreduce(*tp.comm, t, ReduceOp::Sum);
    sharded = t.item<double>();
  }
  return std::sqrt(sharded + replicated);
}

double clip_coefficient(double norm, double max_norm) {
  return max_norm > 0 && norm > max_norm ? max_norm / (norm + 1e-6) : 1.0;
}

double clip_grad_norm(const std::vector<ParamInfo>& params, const TpGroup& tp, double max_norm) {
  const double norm = global_grad_norm(params, tp);
  const double scale = clip_coefficient(norm, max_norm);
  if (scale != 1.0) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> grads;
    for (const auto& p : params)
      if (p.tensor.grad().defined()) grads.push_back(p.tensor.grad());
    if (!grads.empty() && grads[0].is_cuda()) {
      at::_foreach_mul_(grads, scale);
    } else {
      for (auto& g : grads) g.mul_(scale);
    }
  }
  return norm;
}

}  // namespace conflux::trainer
