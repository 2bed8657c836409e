// Per-sample gradients from activations and output gradients (see grad_sample.h).
// Shapes: B batch, T time, I input width, O output width, V vocabulary, C width.
#include "conflux/trainer/grad_sample.h"

#include "conflux/core/error.h"
#include "conflux/core/rng.h"

#include <fmt/ranges.h>

namespace conflux::trainer {

void GradSampler::accumulate(const torch::Tensor& param, torch::Tensor g) {
  auto& slot = grads_[param.unsafeGetTensorImpl()];
  if (slot.defined()) {
    slot.add_(g);
  } else {
    slot = std::move(g);
  }
}

void GradSampler::linear(const torch::Tensor& weight, const torch::Tensor& bias,
                         const torch::Tensor& x, torch::Tensor& y) {
  torch::Tensor xa = x.detach();                                      // (B, T, I)
  torch::Tensor w = weight, b = bias;
  y.register_hook([this, xa, w, b](torch::Tensor g) {                 // g: (B, T, O)
    torch::Tensor gw = torch::einsum("bto,bti->boi", {g, xa});        // (B, O, I)
    std::vector<int64_t> shape{g.size(0)};
    for (auto d : w.sizes()) shape.push_back(d);
    accumulate(w, gw.reshape(shape));
    if (b.defined()) {
      std::vector<int64_t> bshape{g.size(0)};
      for (auto d : b.sizes()) bshape.push_back(d);
      accumulate(b, g.sum(1).reshape(bshape));                         // (B, O)
    }
  });
}

void GradSampler::embedding(const torch::Tensor& weight, const torch::Tensor& ids,
                            torch::Tensor& y) {
  torch::Tensor w = weight, id = ids.detach();                        // id: (B, T)
  y.register_hook([this, w, id](torch::Tensor g) {                    // g: (B, T, C)
    const int64_t b = g.size(0), v = w.size(0), c = w.size(1);
    torch::Tensor rows = (id + torch::arange(b, id.options()).unsqueeze(1) * v).reshape({-1});
    torch::Tensor gw = torch::zeros({b * v, c}, g.options());
    gw.index_add_(0, rows, g.reshape({-1, c}));
    accumulate(w, gw.view({b, v, c}));                                // (B, V, C)
  });
}

void GradSampler::position(const torch::Tensor& weight, torch::Tensor& y) {
  torch::Tensor w = weight;
  y.register_hook([this, w](torch::Tensor g) {                        // g: (B, T, C)
    torch::Tensor gw = torch::zeros({g.size(0), w.size(0), w.size(1)}, g.options());
    gw.narrow(1, 0, g.size(1)).copy_(g);
    accumulate(w, gw);                                                // (B, context, C)
  });
}

void GradSampler::layer_norm(const torch::Tensor& weight, const torch::Tensor& bias,
                             const torch::Tensor& x, torch::Tensor& y, double eps) {
  torch::Tensor xa = x.detach(), w = weight, b = bias;                // xa: (B, T, C)
  y.register_hook([this, xa, w, b, eps](torch::Tensor g) {            // g: (B, T, C)
    torch::Tensor mean = xa.mean(-1, true);
    torch::Tensor var = xa.var(-1, /*unbiased=*/false, /*keepdim=*/true);
    torch::Tensor xhat = (xa - mean) / torch::sqrt(var + eps);        // (B, T, C)
    accumulate(w, (g * xhat).sum(1));                                 // (B, C)
    accumulate(b, g.sum(1));                                          // (B, C)
  });
}

bool GradSampler::has(const torch::Tensor& param) const {
  return grads_.count(param.unsafeGetTensorImpl()) != 0;
}

const torch::Tensor& GradSampler::grad(const torch::Tensor& param) const {
  auto it = grads_.find(param.unsafeGetTensorImpl());
  CONFLUX_CHECK(it != grads_.end(), "no per-sample gradient for a parameter of shape {}",
                param.sizes().vec());
  return it->second;
}

torch::Tensor GradSampler::norms(const std::vector<torch::Tensor>& params) const {
  torch::Tensor sq;
  for (const auto& p : params) {
    const torch::Tensor& g = grad(p);
    torch::Tensor s = g.reshape({g.size(0), -1}).pow(2).sum(1);       // (B)
    sq = sq.defined() ? sq + s : s;
  }
  return sq.sqrt();
}

torch::Tensor clip_and_accumulate(const GradSampler& sampler,
                                  const std::vector<torch::Tensor>& params, double clip) {
  torch::Tensor norms = sampler.norms(params);                        // (B)
  torch::Tensor factor = (clip / (norms + 1e-6)).clamp_max(1.0);      // (B)
  for (const auto& p : params) {
    const torch::Tensor& g = sampler.grad(p);                         // (B, *shape)
    torch::Tensor summed = torch::tensordot(factor, g, {0}, {0});     // (*shape)
    auto& grad = const_cast<torch::Tensor&>(p).mutable_grad();
    if (grad.defined()) {
      grad.add_(summed);
    } else {
      grad = summed.clone();
    }
  }
  return norms;
}

void add_gaussian_noise(const std::vector<torch::Tensor>& tensors, double std, RandomSource& rng) {
  torch::NoGradGuard no_grad;
  for (const auto& t : tensors) {
    torch::Tensor noise = torch::empty({t.numel()}, torch::kFloat64);
    double* d = noise.data_ptr<double>();
    for (int64_t i = 0; i < noise.numel(); ++i) d[i] = rng.normal() * std;
    const_cast<torch::Tensor&>(t).add_(noise.view(t.sizes()).to(t.options()));
  }
}

}  // namespace conflux::trainer
