// Tensor-parallel building blocks of the GPT: column- and row-parallel linears, the vocab-parallel
// embedding, LayerNorm and dropout, plus the shared context they read at forward time.
//
// Every parameter is registered in a ShardRegistry with its global shape and, when sharded, the
// dimension and offset of this rank's slice, and how it is initialised. The registry drives
// initialisation (identical global tensors for any tp size), the global gradient norm, and
// checkpoint metadata. When the context holds a GradSampler (DP-SGD), each layer hands it the
// input activations and output of its op so per-sample gradients are formed in backward hooks.
// Thread safety: a model is used by one thread.
#pragma once

#include "conflux/trainer/parallel.h"

#include <torch/torch.h>

#include <memory>
#include <unordered_map>
#include <vector>

namespace conflux::trainer {

class GradSampler;

enum class InitKind { Normal, Residual, Zeros, Ones };

struct ShardSpec {
  std::vector<int64_t> global_shape;
  int64_t dim = -1;     // sharded dimension, -1 when replicated on every tp rank
  int64_t offset = 0;   // start of this rank's slice along `dim`
  InitKind init = InitKind::Normal;
  bool decay = false;   // weight decay applies (2-D weights)
  bool sharded() const { return dim >= 0; }
};

class ShardRegistry {
 public:
  void add(const torch::Tensor& t, ShardSpec spec) { specs_[t.unsafeGetTensorImpl()] = std::move(spec); }
  const ShardSpec& get(const torch::Tensor& t) const;

 private:
  std::unordered_map<const void*, ShardSpec> specs_;
};

// Shared by all layers of one model.
struct ModelContext {
  TpGroup tp;
  ShardRegistry shards;
  GradSampler* sampler = nullptr;  // non-null while computing per-sample gradients
  double dropout = 0.0;
  // Dropout randomness (Megatron): activations replicated across tp ranks draw from `shared_gen`
  // (same seed on every tp rank of a replica), sharded ones (attention probabilities of local
  // heads) from `local_gen` (seed differs per tp rank).
  torch::Generator shared_gen;
  torch::Generator local_gen;
  bool training = true;
};
using ContextPtr = std::shared_ptr<ModelContext>;

// True when no gradient is recorded (NoGradGuard, InferenceMode): layers then apply elementwise
// ops (bias, residual, scale, mask, GELU) in place on buffers they just produced, the same
// kernels on the same values, so inference allocates less and computes the same bits.
bool reuse_buffers();

// y = dropout(x) with the given generator; identity when p == 0 or not training.
torch::Tensor dropout(const torch::Tensor& x, const ModelContext& ctx, bool sharded);

// Y = X A^T + b with A split by output rows across tp ranks. The weight is (out/tp, in), or with
// groups > 1 (fused QKV) (groups, out/tp, in) so each group (q, k, v) is split by heads.
// Input is replicated (the caller applies copy_to_tp); output is this rank's slice.
class ColumnParallelLinearImpl : public torch::nn::Module {
 public:
  ColumnParallelLinearImpl(ContextPtr ctx, int64_t in, int64_t out, int64_t groups, InitKind init);
  torch::Tensor forward(const torch::Tensor& x);  // (B, T, in) -> (B, T, groups * out/tp)
  torch::Tensor weight, bias;

 private:
  ContextPtr ctx_;
  int64_t groups_;
};
TORCH_MODULE(ColumnParallelLinear);

// Y = X A^T + b with A split by input columns; X is this rank's slice, the partial products are
// all-reduced (reduce_from_tp) and the replicated bias added after.
class RowParallelLinearImpl : public torch::nn::Module {
 public:
  RowParallelLinearImpl(ContextPtr ctx, int64_t in, int64_t out, InitKind init);
  torch::Tensor forward(const torch::Tensor& x);  // (B, T, in/tp) -> (B, T, out)
  torch::Tensor weight, bias;

 private:
  ContextPtr ctx_;
};
TORCH_MODULE(RowParallelLinear);

// Token embedding split by vocabulary rows: ids outside [start, start + V/tp) give zeros
// locally and the all-reduce fills them in.
class VocabParallelEmbeddingImpl : public torch::nn::Module {
 public:
  VocabParallelEmbeddingImpl(ContextPtr ctx, int64_t vocab, int64_t dim);
  torch::Tensor forward(const torch::Tensor& ids);      // (B, T) -> (B, T, dim)
  // Tied output head: (B, T, dim) replicated -> (B, T, V/tp) local logits.
  torch::Tensor logits(const torch::Tensor& h);
  torch::Tensor weight;
  int64_t vocab_start() const { return start_; }

 private:
  ContextPtr ctx_;
  int64_t start_ = 0, local_ = 0;
};
TORCH_MODULE(VocabParallelEmbedding);

// Learned position embedding (replicated): positions start..start+T-1 -> (T, dim), broadcast
// over batch.
class PositionEmbeddingImpl : public torch::nn::Module {
 public:
  PositionEmbeddingImpl(ContextPtr ctx, int64_t context, int64_t dim);
  torch::Tensor forward(int64_t batch, int64_t t, int64_t start = 0);  // -> (B, T, dim)
  torch::Tensor weight;

 private:
  ContextPtr ctx_;
};
TORCH_MODULE(PositionEmbedding);

class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(ContextPtr ctx, int64_t dim);
  torch::Tensor forward(const torch::Tensor& x);        // (B, T, dim) -> (B, T, dim)
  torch::Tensor weight, bias;
  static constexpr double kEps = 1e-5;

 private:
  ContextPtr ctx_;
  int64_t dim_;
};
TORCH_MODULE(LayerNorm);

}  // namespace conflux::trainer
