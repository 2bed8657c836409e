// GPT model (see gpt.h). Shapes: B batch, T time, C width, H heads (H/tp local), D head width.
#include "conflux/trainer/gpt.h"

#include "conflux/core/error.h"
#include "conflux/core/rng.h"
#include "gelu_kernel.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>

#include <cmath>

namespace conflux::trainer {

void validate(const GptConfig& c, int tp) {
  if (c.vocab_size < 2) CONFLUX_THROW(ConfigError, "model.vocab_size = {} must be >= 2", c.vocab_size);
  if (c.context < 1) CONFLUX_THROW(ConfigError, "model.context = {} must be >= 1", c.context);
  if (c.n_layer < 1) CONFLUX_THROW(ConfigError, "model.n_layer = {} must be >= 1", c.n_layer);
  if (c.n_head < 1 || c.d_model % c.n_head != 0)
    CONFLUX_THROW(ConfigError, "model.d_model = {} must be a multiple of model.n_head = {}",
                  c.d_model, c.n_head);
  if (c.dropout < 0 || c.dropout >= 1)
    CONFLUX_THROW(ConfigError, "model.dropout = {} must be in [0, 1)", c.dropout);
  if (tp < 1) CONFLUX_THROW(ConfigError, "tensor-parallel size {} must be >= 1", tp);
  if (c.n_head % tp != 0)
    CONFLUX_THROW(ConfigError, "model.n_head = {} is not divisible by parallel.tp = {}", c.n_head, tp);
  if (c.vocab_size % tp != 0)
    CONFLUX_THROW(ConfigError, "model.vocab_size = {} is not divisible by parallel.tp = {}",
                  c.vocab_size, tp);
}

CausalSelfAttentionImpl::CausalSelfAttentionImpl(ContextPtr ctx, const GptConfig& c)
    : ctx_(ctx), local_heads_(c.n_head / ctx->tp.size), head_dim_(c.head_dim()) {
  qkv_ = register_module("qkv", ColumnParallelLinear(ctx, c.d_model, c.d_model, 3, InitKind::Normal));
  proj_ = register_module("proj", RowParallelLinear(ctx, c.d_model, c.d_model, InitKind::Residual));
}

torch::Tensor CausalSelfAttentionImpl::forward(const torch::Tensor& x, LayerKv* kv, int64_t start) {
  const int64_t b = x.size(0), t = x.size(1);
  torch::Tensor h = copy_to_tp(x, ctx_->tp);                              // (B, T, C)
  torch::Tensor qkv = qkv_->forward(h).view({b, t, 3, local_heads_, head_dim_});  // (B,T,3,Hl,D)
  torch::Tensor q = qkv.select(2, 0).transpose(1, 2);                     // (B, Hl, T, D)
  torch::Tensor k = qkv.select(2, 1).transpose(1, 2);                     // (B, Hl, T, D)
  torch::Tensor v = qkv.select(2, 2).transpose(1, 2);                     // (B, Hl, T, D)
  if (kv) {
    kv->k.narrow(2, start, t).copy_(k);
    kv->v.narrow(2, start, t).copy_(v);
    // From an empty cache attend over the fresh k, v exactly as without one (same strides, same
    // kernels); later the queries attend over the cached prefix plus the new positions.
    if (start > 0) {
      k = kv->k.narrow(2, 0, start + t);                                  // (B, Hl, start+T, D)
      v = kv->v.narrow(2, 0, start + t);
    }
  }
#if TORCH_VERSION_MAJOR >= 2
  if (x.is_cuda() && start == 0) {
    // Fused attention (flash / memory-efficient kernels): no (T, T) matrix in memory. Dropout
    // draws from the device's default generator, seeded per step like the other CUDA dropout.
    const double p = ctx_->training ? ctx_->dropout : 0.0;
    torch::Tensor y = at::scaled_dot_product_attention(q, k, v, {}, p, /*is_causal=*/true);  // (B,Hl,T,D)
    y = y.transpose(1, 2).reshape({b, t, local_heads_ * head_dim_});    // (B, T, C/tp)
    return dropout(proj_->forward(y), *ctx_, false);                    // (B, T, C)
  }
#endif
  torch::Tensor y = attend(q, k, v, start);                               // (B, Hl, T, D)
  y = y.transpose(1, 2).reshape({b, t, local_heads_ * head_dim_});        // (B, T, C/tp)
  return dropout(proj_->forward(y), *ctx_, false);                        // (B, T, C)
}

torch::Tensor CausalSelfAttentionImpl::attend(const torch::Tensor& q, const torch::Tensor& k,
                                              const torch::Tensor& v, int64_t start) {
  const int64_t t = q.size(2), l = k.size(2);
  const double scale = std::sqrt(double(head_dim_));
  const float neg_inf = -std::numeric_limits<float>::infinity();
  // One query (incremental decoding) sees every cached key: nothing to mask.
  const bool masked = t > 1 || start == 0;
  torch::Tensor att = torch::matmul(q, k.transpose(-2, -1));            // (B, Hl, T, L)
  if (reuse_buffers()) {  // the same kernels in place: no fresh (B, Hl, T, L) buffers
    att.div_(scale);
    if (masked) att.masked_fill_(future_mask(t, l, start, q.device()), neg_inf);
  } else {
    att = att / scale;
    if (masked) att = att.masked_fill(future_mask(t, l, start, q.device()), neg_inf);
  }
  att = att.softmax(-1);
  att = dropout(att, *ctx_, /*sharded=*/true);                            // local heads only
  return torch::matmul(att, v);                                           // (B, Hl, T, D)
}

const torch::Tensor& CausalSelfAttentionImpl::future_mask(int64_t t, int64_t l, int64_t start,
                                                          const torch::Device& device) {
  if (!mask_.defined() || mask_.size(0) != t || mask_.size(1) != l || mask_start_ != start ||
      mask_.device() != device || mask_.is_inference() != c10::InferenceMode::is_enabled()) {
    // (An inference-mode tensor cannot be saved for backward: rebuilt when the mode changes.)
    // Query i sits at position start + i and sees keys 0..start+i: true above that diagonal.
    mask_ = torch::ones({t, l}, torch::TensorOptions().dtype(torch::kBool).device(device))
                .triu(start + 1);                                         // (T, L)
    mask_start_ = start;
  }
  return mask_;
}

MlpImpl::MlpImpl(ContextPtr ctx, const GptConfig& c) : ctx_(ctx) {
  fc_ = register_module("fc", ColumnParallelLinear(ctx, c.d_model, 4 * c.d_model, 1, InitKind::Normal));
  proj_ = register_module("proj", RowParallelLinear(ctx, 4 * c.d_model, c.d_model, InitKind::Residual));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = copy_to_tp(x, ctx_->tp);                              // (B, T, C)
  h = fc_->forward(h);                                                    // (B, T, 4C/tp)
  if (reuse_buffers() && h.scalar_type() == torch::kFloat32 && h.device().is_cpu() && h.is_contiguous())
    detail::gelu_tanh_inplace(h.data_ptr<float>(), static_cast<size_t>(h.numel()));  // gelu_kernel.h
  else
    h = reuse_buffers() ? torch::gelu_(h, "tanh") : torch::gelu(h, "tanh");
  return dropout(proj_->forward(h), *ctx_, false);                        // (B, T, C)
}

BlockImpl::BlockImpl(ContextPtr ctx, const GptConfig& c) : ctx_(ctx) {
  ln1_ = register_module("ln1", LayerNorm(ctx, c.d_model));
  attn_ = register_module("attn", CausalSelfAttention(ctx, c));
  ln2_ = register_module("ln2", LayerNorm(ctx, c.d_model));
  mlp_ = register_module("mlp", Mlp(ctx, c));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, LayerKv* kv, int64_t start) {
  torch::Tensor a = attn_->forward(ln1_->forward(x), kv, start);          // (B, T, C)
  // Residual adds into the fresh branch output when nothing needs it for backward (a + x is
  // bitwise x + a: IEEE addition commutes).
  torch::Tensor h = reuse_buffers() ? a.add_(x) : x + a;                  // (B, T, C)
  torch::Tensor m = mlp_->forward(ln2_->forward(h));                      // (B, T, C)
  return reuse_buffers() ? m.add_(h) : h + m;                             // (B, T, C)
}

GptImpl::GptImpl(const GptConfig& config, TpGroup tp) : config_(config) {
  validate(config, tp.size);
  CONFLUX_CHECK(tp.size == 1 || tp.comm != nullptr, "tp size {} without a communicator", tp.size);
  ctx_ = std::make_shared<ModelContext>();
  ctx_->tp = tp;
  ctx_->dropout = config.dropout;
  ctx_->shared_gen = at::make_generator<at::CPUGeneratorImpl>(config.init_seed);
  ctx_->local_gen = at::make_generator<at::CPUGeneratorImpl>(config.init_seed + 1);
  wte_ = register_module("wte", VocabParallelEmbedding(ctx_, config.vocab_size, config.d_model));
  wpe_ = register_module("wpe", PositionEmbedding(ctx_, config.context, config.d_model));
  blocks_ = register_module("h", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.n_layer; ++i) blocks_->push_back(Block(ctx_, config));
  ln_f_ = register_module("ln_f", LayerNorm(ctx_, config.d_model));
  initialize();
}

torch::Tensor GptImpl::forward(const torch::Tensor& ids, KvCache* cache) {
  const int64_t b = ids.size(0), t = ids.size(1);
  const int64_t start = cache ? cache->length : 0;
  if (start + t > config_.context)
    CONFLUX_THROW(DataError, "sequence length {} exceeds model.context {}", start + t, config_.context);
  if (cache && (cache->layers.empty() || cache->layers[0].k.size(0) != b ||
                cache->layers[0].k.device() != ids.device())) {
    CONFLUX_CHECK(start == 0, "a KV cache of {} positions for another batch", start);
    const int64_t hl = config_.n_head / ctx_->tp.size;
    auto opts = wpe_->weight.options().device(ids.device());
    cache->layers.assign(static_cast<size_t>(config_.n_layer), {});
    for (auto& l : cache->layers) {
      l.k = torch::empty({b, hl, config_.context, config_.head_dim()}, opts);
      l.v = torch::empty({b, hl, config_.context, config_.head_dim()}, opts);
    }
  }
  torch::Tensor x = wte_->forward(ids) + wpe_->forward(b, t, start);      // (B, T, C)
  x = dropout(x, *ctx_, false);
  size_t i = 0;
  for (const auto& block : *blocks_)
    x = block->as<BlockImpl>()->forward(x, cache ? &cache->layers[i++] : nullptr, start);  // (B,T,C)
  if (cache) cache->length += t;
  return wte_->logits(ln_f_->forward(x));                                 // (B, T, V/tp)
}

torch::Tensor GptImpl::loss(const torch::Tensor& ids, const torch::Tensor& targets) {
  torch::Tensor logits = forward(ids);                                    // (B, T, V/tp)
  return vocab_parallel_cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
                                      ctx_->tp)
      .mean();
}

torch::Tensor GptImpl::sample_losses(const torch::Tensor& ids, const torch::Tensor& targets) {
  torch::Tensor logits = forward(ids);                                    // (B, T, V/tp)
  torch::Tensor per_token = vocab_parallel_cross_entropy(
      logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}), ctx_->tp);  // (B*T)
  return per_token.view({ids.size(0), ids.size(1)}).mean(1);              // (B)
}

torch::Tensor GptImpl::full_logits(const torch::Tensor& ids) {
  torch::NoGradGuard no_grad;
  return gather_last_dim(forward(ids), ctx_->tp);                         // (B, T, V)
}

std::vector<ParamInfo> GptImpl::param_infos() const {
  std::vector<ParamInfo> out;
  for (const auto& item : named_parameters(true))
    out.push_back({item.key(), item.value(), ctx_->shards.get(item.value())});
  return out;
}

torch::Tensor initial_global_tensor(const std::string& name, const ShardSpec& spec,
                                    const GptConfig& config) {
  switch (spec.init) {
    case InitKind::Zeros: return torch::zeros(spec.global_shape);
    case InitKind::Ones: return torch::ones(spec.global_shape);
    case InitKind::Normal:
    case InitKind::Residual: {
      double std = 0.02;
      if (spec.init == InitKind::Residual) std /= std::sqrt(2.0 * double(config.n_layer));
      Stream stream(config.init_seed, "gpt-init:" + name);
      auto gen = at::make_generator<at::CPUGeneratorImpl>(stream.derive_seed());
      return torch::randn(spec.global_shape, gen) * std;
    }
  }
  CONFLUX_THROW(InternalError, "unknown init kind");
}

torch::Tensor local_slice(const torch::Tensor& global, const ShardSpec& spec,
                          const std::vector<int64_t>& local_shape) {
  if (!spec.sharded()) return global;
  return global.narrow(spec.dim, spec.offset, local_shape[spec.dim]);
}

void GptImpl::initialize() {
  torch::NoGradGuard no_grad;
  for (auto& p : param_infos()) {
    torch::Tensor g = initial_global_tensor(p.name, p.spec, config_);
    p.tensor.copy_(local_slice(g, p.spec, p.tensor.sizes().vec()));
  }
}

void GptImpl::seed_dropout(uint64_t shared_seed, uint64_t local_seed) {
  ctx_->shared_gen.set_current_seed(shared_seed);
  ctx_->local_gen.set_current_seed(local_seed);
  // CUDA dropout draws from the device's default generator.
  if (torch::cuda::is_available()) torch::cuda::manual_seed(local_seed);
}

void GptImpl::set_training(bool on) {
  ctx_->training = on;
  train(on);
}

}  // namespace conflux::trainer
