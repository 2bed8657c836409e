// Per-sample gradients for DP-SGD, computed as Opacus does: each layer hands over its input
// activations at forward time, a hook on its output receives the output gradient during backward,
// and the per-sample gradient of each parameter is formed from the two:
//   Linear     y = x W^T + b : dW_i = sum_t g_it^T x_it,  db_i = sum_t g_it
//   Embedding  y = W[ids]    : dW_i = scatter-add of g_it into the rows ids_it
//   Position   y = W[0..T)   : dW_i[0..T) = g_i
//   LayerNorm  y = xhat w + b: dw_i = sum_t g_it * xhat_it, db_i = sum_t g_it
// Contributions to a shared parameter (the tied embedding/head) are summed per sample. The loss
// must be a sum over samples (not a mean) so that grads()[p][i] is the gradient of sample i's loss.
// Thread safety: one backward at a time.
#pragma once

#include <torch/torch.h>

#include <unordered_map>
#include <vector>

namespace conflux {
class RandomSource;
}

namespace conflux::trainer {

class GradSampler {
 public:
  // Called by layers in forward. x: (B, T, in), y: (B, T, out) — a hook is registered on y.
  void linear(const torch::Tensor& weight, const torch::Tensor& bias, const torch::Tensor& x,
              torch::Tensor& y);
  // ids: (B, T), y: (B, T, dim).
  void embedding(const torch::Tensor& weight, const torch::Tensor& ids, torch::Tensor& y);
  // y: (B, T, dim) from weight rows 0..T-1.
  void position(const torch::Tensor& weight, torch::Tensor& y);
  // x: (B, T, dim) input of the LayerNorm, y its output.
  void layer_norm(const torch::Tensor& weight, const torch::Tensor& bias, const torch::Tensor& x,
                  torch::Tensor& y, double eps);

  // (B, *param.shape) per-sample gradient of `param`; throws if none was recorded.
  const torch::Tensor& grad(const torch::Tensor& param) const;
  bool has(const torch::Tensor& param) const;
  void clear() { grads_.clear(); }

  // Per-sample L2 norms over the given parameters: (B).
  torch::Tensor norms(const std::vector<torch::Tensor>& params) const;

 private:
  void accumulate(const torch::Tensor& param, torch::Tensor g);
  std::unordered_map<const void*, torch::Tensor> grads_;
};

// The DP-SGD gradient for one (local) batch: per-sample gradients clipped to L2 norm `clip`
// (factor min(1, clip / (norm + 1e-6)) as Opacus), summed over samples, written to each
// parameter's .grad. Returns the per-sample norms before clipping (B).
torch::Tensor clip_and_accumulate(const GradSampler& sampler,
                                  const std::vector<torch::Tensor>& params, double clip);

// Adds N(0, std^2) noise to every element of every tensor, drawn from `rng` (SecureRandom for
// private runs; a seeded Stream makes the run reproducible but not private).
void add_gaussian_noise(const std::vector<torch::Tensor>& tensors, double std, RandomSource& rng);

}  // namespace conflux::trainer
