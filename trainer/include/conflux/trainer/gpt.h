// A decoder-only GPT (GPT-2 architecture) built from tensor-parallel layers.
//
// Embeddings (vocab-parallel tokens + replicated positions) -> n_layer pre-LayerNorm blocks
// [x + attn(ln1(x)), x + mlp(ln2(x))] -> final LayerNorm -> logits with the token embedding as the
// (tied) output head. Attention is causal multi-head self-attention written out (libtorch 1.13
// has no fused kernel), heads split across tp ranks; the MLP is GELU(tanh) with 4x width, split
// column- then row-parallel. Initial weights follow GPT-2 (N(0, 0.02), residual projections
// scaled by 1/sqrt(2 n_layer), zero biases, unit LayerNorm gains); each global tensor is drawn
// from a generator seeded by (init_seed, parameter name) and sliced, so every tp size starts from
// the same model. With tp = 1 it is the plain single-process GPT.
// Thread safety: one thread per model.
#pragma once

#include "conflux/trainer/gpt_config.h"
#include "conflux/trainer/layers.h"

#include <string>
#include <vector>

namespace conflux::trainer {

// A parameter with its name and shard description (replicated or a slice of a global tensor).
struct ParamInfo {
  std::string name;
  torch::Tensor tensor;
  ShardSpec spec;
};

// One layer's keys and values for incremental decoding: (B, Hl, capacity, D) buffers, the
// first `KvCache::length` positions filled.
struct LayerKv {
  torch::Tensor k, v;
};

// Keys and values of every layer for the positions 0..length-1 of a batch of sequences, so that
// a forward pass can feed only the new tokens (GptImpl::forward with a cache; generate.h).
// Capacity is model.context positions; call clear() (or use a fresh one) for a new prefix.
struct KvCache {
  std::vector<LayerKv> layers;
  int64_t length = 0;
  void clear() { length = 0; }
};

class CausalSelfAttentionImpl : public torch::nn::Module {
 public:
  CausalSelfAttentionImpl(ContextPtr ctx, const GptConfig& c);
  // (B, T, C) -> (B, T, C). With `kv`, x holds positions start..start+T-1: their keys and values
  // are stored in kv and the queries attend to positions 0..start+T-1 of it. With start == 0 the
  // computation is the same as without a cache (the same ops on the same tensors).
  torch::Tensor forward(const torch::Tensor& x, LayerKv* kv = nullptr, int64_t start = 0);

 private:
  // Causal attention of q (B, Hl, T, D) at positions start.. over k, v (B, Hl, start+T, D).
  torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       int64_t start);
  // The (T, L) mask of key positions after each query (true = masked), cached by shape.
  const torch::Tensor& future_mask(int64_t t, int64_t l, int64_t start, const torch::Device& device);

  ContextPtr ctx_;
  int64_t local_heads_, head_dim_;
  torch::Tensor mask_;  // last future_mask
  int64_t mask_start_ = -1;
  ColumnParallelLinear qkv_{nullptr};
  RowParallelLinear proj_{nullptr};
};
TORCH_MODULE(CausalSelfAttention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(ContextPtr ctx, const GptConfig& c);
  torch::Tensor forward(const torch::Tensor& x);  // (B, T, C) -> (B, T, C)

 private:
  ContextPtr ctx_;
  ColumnParallelLinear fc_{nullptr};
  RowParallelLinear proj_{nullptr};
};
TORCH_MODULE(Mlp);

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(ContextPtr ctx, const GptConfig& c);
  // (B, T, C) -> (B, T, C); kv and start as in CausalSelfAttentionImpl::forward.
  torch::Tensor forward(const torch::Tensor& x, LayerKv* kv = nullptr, int64_t start = 0);

 private:
  ContextPtr ctx_;
  LayerNorm ln1_{nullptr}, ln2_{nullptr};
  CausalSelfAttention attn_{nullptr};
  Mlp mlp_{nullptr};
};
TORCH_MODULE(Block);

class GptImpl : public torch::nn::Module {
 public:
  GptImpl(const GptConfig& config, TpGroup tp = {});

  // ids: (B, T) int64, T <= context. Returns this rank's logits slice (B, T, V/tp).
  // With a cache, ids are positions cache->length .. cache->length+T-1 of sequences whose earlier
  // positions are in the cache (empty: allocated here for B sequences); the new keys and values
  // are appended and cache->length grows by T. From an empty cache the logits are bitwise those
  // of forward(ids) without one; later (incremental) calls multiply smaller matrices, so their
  // logits may differ from a full recompute in the last bits (generate.cpp guards for that).
  torch::Tensor forward(const torch::Tensor& ids, KvCache* cache = nullptr);
  // Mean next-token loss over all B*T positions (targets (B, T)); scalar.
  torch::Tensor loss(const torch::Tensor& ids, const torch::Tensor& targets);
  // Per-sample mean token loss (B), for DP-SGD (sum it before backward).
  torch::Tensor sample_losses(const torch::Tensor& ids, const torch::Tensor& targets);
  // Full logits (B, T, V), gathered across tp ranks (no gradient).
  torch::Tensor full_logits(const torch::Tensor& ids);

  const GptConfig& config() const { return config_; }
  const TpGroup& tp() const { return ctx_->tp; }
  ModelContext& context() { return *ctx_; }
  // Parameters in registration order with names and shard specs.
  std::vector<ParamInfo> param_infos() const;
  // Resets every parameter to the GPT-2 initialisation for config().init_seed.
  void initialize();
  // Seeds dropout for one micro-batch (call before forward when dropout > 0).
  void seed_dropout(uint64_t shared_seed, uint64_t local_seed);
  // Switches dropout on (train) or off (eval) for the whole model.
  void set_training(bool on);

 private:
  GptConfig config_;
  ContextPtr ctx_;
  VocabParallelEmbedding wte_{nullptr};
  PositionEmbedding wpe_{nullptr};
  torch::nn::ModuleList blocks_;
  LayerNorm ln_f_{nullptr};
};
TORCH_MODULE(Gpt);

// The global tensor a parameter is a slice of, drawn deterministically (see initialize()).
torch::Tensor initial_global_tensor(const std::string& name, const ShardSpec& spec,
                                    const GptConfig& config);
// This rank's slice of a global tensor according to `spec`.
torch::Tensor local_slice(const torch::Tensor& global, const ShardSpec& spec,
                          const std::vector<int64_t>& local_shape);

}  // namespace conflux::trainer
