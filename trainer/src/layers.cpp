// Tensor-parallel layers (see layers.h). Shapes: B batch, T time, C model width, tp group size.
#include "conflux/trainer/layers.h"

#include "conflux/core/error.h"

#include <fmt/ranges.h>
#include "conflux/trainer/grad_sample.h"

namespace conflux::trainer {

const ShardSpec& ShardRegistry::get(const torch::Tensor& t) const {
  auto it = specs_.find(t.unsafeGetTensorImpl());
  CONFLUX_CHECK(it != specs_.end(), "parameter of shape {} has no shard spec", t.sizes().vec());
  return it->second;
}

bool reuse_buffers() { return !torch::GradMode::is_enabled(); }

torch::Tensor dropout(const torch::Tensor& x, const ModelContext& ctx, bool sharded) {
  if (ctx.dropout <= 0.0 || !ctx.training) return x;
  const double keep = 1.0 - ctx.dropout;
  torch::Tensor mask;
  if (x.is_cuda()) {
    mask = torch::empty_like(x).bernoulli_(keep);  // CUDA: default generator, seeded per step
  } else {
    mask = torch::empty_like(x).bernoulli_(keep, sharded ? ctx.local_gen : ctx.shared_gen);
  }
  return x * mask / keep;
}

namespace {
int64_t split(int64_t n, const TpGroup& tp, const char* what) {
  if (n % tp.size != 0)
    CONFLUX_THROW(ConfigError, "{} = {} is not divisible by the tensor-parallel size {}", what, n,
                  tp.size);
  return n / tp.size;
}
}  // namespace

ColumnParallelLinearImpl::ColumnParallelLinearImpl(ContextPtr ctx, int64_t in, int64_t out,
                                                   int64_t groups, InitKind init)
    : ctx_(std::move(ctx)), groups_(groups) {
  const TpGroup& tp = ctx_->tp;
  const int64_t ol = split(out, tp, "linear output width");
  if (groups == 1) {
    weight = register_parameter("weight", torch::empty({ol, in}));
    ctx_->shards.add(weight, {{out, in}, 0, tp.rank * ol, init, true});
    bias = register_parameter("bias", torch::empty({ol}));
    ctx_->shards.add(bias, {{out}, 0, tp.rank * ol, InitKind::Zeros, false});
  } else {
    weight = register_parameter("weight", torch::empty({groups, ol, in}));
    ctx_->shards.add(weight, {{groups, out, in}, 1, tp.rank * ol, init, true});
    bias = register_parameter("bias", torch::empty({groups, ol}));
    ctx_->shards.add(bias, {{groups, out}, 1, tp.rank * ol, InitKind::Zeros, false});
  }
}

torch::Tensor ColumnParallelLinearImpl::forward(const torch::Tensor& x) {
  const int64_t in = weight.size(-1);
  torch::Tensor w = weight.reshape({-1, in});                 // (groups * out/tp, in)
  torch::Tensor y = torch::linear(x, w, bias.reshape({-1}));  // (B, T, groups * out/tp)
  if (ctx_->sampler) ctx_->sampler->linear(weight, bias, x, y);
  return y;
}

RowParallelLinearImpl::RowParallelLinearImpl(ContextPtr ctx, int64_t in, int64_t out, InitKind init)
    : ctx_(std::move(ctx)) {
  const TpGroup& tp = ctx_->tp;
  const int64_t il = split(in, tp, "linear input width");
  weight = register_parameter("weight", torch::empty({out, il}));
  ctx_->shards.add(weight, {{out, in}, 1, tp.rank * il, init, true});
  bias = register_parameter("bias", torch::empty({out}));
  ctx_->shards.add(bias, {{out}, -1, 0, InitKind::Zeros, false});
}

torch::Tensor RowParallelLinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor partial = torch::matmul(x, weight.t());      // (B, T, out) partial sum
  if (ctx_->sampler) {
    // Per-sample gradients need the pre-bias output; the bias is replicated so the hook on the
    // reduced output sees the full gradient (identical on every tp rank).
    torch::Tensor y = reduce_from_tp(partial, ctx_->tp) + bias;
    ctx_->sampler->linear(weight, bias, x, y);
    return y;
  }
  if (reuse_buffers() && ctx_->tp.size == 1) return partial.add_(bias);  // same kernel, in place
  return reduce_from_tp(partial, ctx_->tp) + bias;           // (B, T, out)
}

VocabParallelEmbeddingImpl::VocabParallelEmbeddingImpl(ContextPtr ctx, int64_t vocab, int64_t dim)
    : ctx_(std::move(ctx)) {
  const TpGroup& tp = ctx_->tp;
  local_ = split(vocab, tp, "model.vocab_size");
  start_ = tp.rank * local_;
  weight = register_parameter("weight", torch::empty({local_, dim}));
  ctx_->shards.add(weight, {{vocab, dim}, 0, start_, InitKind::Normal, true});
}

torch::Tensor VocabParallelEmbeddingImpl::forward(const torch::Tensor& ids) {
  torch::Tensor y;
  if (ctx_->tp.size == 1) {
    y = torch::embedding(weight, ids);                       // (B, T, C)
  } else {
    torch::Tensor outside = (ids < start_).logical_or(ids >= start_ + local_);  // (B, T)
    torch::Tensor local = (ids - start_).masked_fill(outside, 0);
    y = torch::embedding(weight, local).masked_fill(outside.unsqueeze(-1), 0.0);  // (B, T, C)
    y = reduce_from_tp(y, ctx_->tp);
  }
  if (ctx_->sampler) ctx_->sampler->embedding(weight, ids, y);
  return y;
}

torch::Tensor VocabParallelEmbeddingImpl::logits(const torch::Tensor& h) {
  torch::Tensor x = copy_to_tp(h, ctx_->tp);                 // (B, T, C)
  torch::Tensor y = torch::matmul(x, weight.t());            // (B, T, V/tp)
  if (ctx_->sampler) ctx_->sampler->linear(weight, torch::Tensor(), x, y);
  return y;
}

PositionEmbeddingImpl::PositionEmbeddingImpl(ContextPtr ctx, int64_t context, int64_t dim)
    : ctx_(std::move(ctx)) {
  weight = register_parameter("weight", torch::empty({context, dim}));
  ctx_->shards.add(weight, {{context, dim}, -1, 0, InitKind::Normal, true});
}

torch::Tensor PositionEmbeddingImpl::forward(int64_t batch, int64_t t, int64_t start) {
  torch::Tensor y = weight.narrow(0, start, t).unsqueeze(0).expand({batch, t, weight.size(1)});
  if (ctx_->sampler) {
    y = y.contiguous();                                      // a distinct node to hook
    ctx_->sampler->position(weight, y);
  }
  return y;                                                  // (B, T, C)
}

LayerNormImpl::LayerNormImpl(ContextPtr ctx, int64_t dim) : ctx_(std::move(ctx)), dim_(dim) {
  weight = register_parameter("weight", torch::empty({dim}));
  ctx_->shards.add(weight, {{dim}, -1, 0, InitKind::Ones, false});
  bias = register_parameter("bias", torch::empty({dim}));
  ctx_->shards.add(bias, {{dim}, -1, 0, InitKind::Zeros, false});
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = torch::layer_norm(x, {dim_}, weight, bias, kEps);  // (B, T, C)
  if (ctx_->sampler) ctx_->sampler->layer_norm(weight, bias, x, y, kEps);
  return y;
}

}  // namespace conflux::trainer
