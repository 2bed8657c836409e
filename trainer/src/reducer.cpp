// Gradient bucketing and overlapped data-parallel all-reduce (see reducer.h).
#include "conflux/trainer/reducer.h"

#include "conflux/core/error.h"
#include "conflux/core/tensor_comm.h"

#include <fmt/ranges.h>

#include <chrono>

namespace conflux::trainer {

GradReducer::GradReducer(std::vector<torch::Tensor> params, Communicator* dp, ReducerOptions options)
    : params_(std::move(params)), dp_(dp), options_(options) {
  const size_t n = params_.size();
  bucket_of_.assign(n, 0);
  slot_of_.assign(n, 0);
  seen_.assign(n, false);
  Bucket cur;
  size_t bytes = 0;
  auto close = [&]() {
    if (cur.params.empty()) return;
    int64_t total = cur.offsets.back() + params_[cur.params.back()].numel();
    cur.flat = torch::zeros({total}, params_[cur.params.front()].options());
    buckets_.push_back(std::move(cur));
    cur = Bucket();
    bytes = 0;
  };
  for (size_t k = n; k-- > 0;) {  // reverse registration order
    const torch::Tensor& p = params_[k];
    const size_t limit = buckets_.empty() ? options_.first_bucket_bytes : options_.bucket_bytes;
    const size_t pbytes = static_cast<size_t>(p.numel()) * p.element_size();
    if (!cur.params.empty() &&
        (bytes + pbytes > limit || p.scalar_type() != params_[cur.params.front()].scalar_type()))
      close();
    bucket_of_[k] = buckets_.size();
    slot_of_[k] = cur.params.size();
    cur.offsets.push_back(cur.params.empty() ? 0 : cur.offsets.back() + params_[cur.params.back()].numel());
    cur.params.push_back(k);
    bytes += pbytes;
  }
  close();
  for (size_t k = 0; k < n; ++k) {
    params_[k].register_hook([this, k](torch::Tensor grad) {
      if (hooks_enabled_) on_grad(k, grad);
    });
  }
}

GradReducer::~GradReducer() {
  hooks_enabled_ = false;  // hooks outlive us inside the parameters; make them inert
  for (auto& b : buckets_)
    if (b.work) {
      try {
        b.work->wait();
      } catch (...) {
      }
    }
  // .grad views into shared-memory buckets must not outlive the buckets (freed with us).
  for (size_t k = 0; k < params_.size(); ++k) {
    const Bucket& b = buckets_[bucket_of_[k]];
    if (!b.storage) continue;
    const torch::Tensor& g = params_[k].grad();
    const auto* lo = static_cast<const uint8_t*>(b.storage->data());
    const auto* at = g.defined() ? static_cast<const uint8_t*>(g.data_ptr()) : nullptr;
    if (at && at >= lo && at < lo + b.storage->bytes()) params_[k].mutable_grad() = torch::Tensor();
  }
}

void GradReducer::sync_parameters() {
  if (!dp_ || dp_->size() == 1) return;
  // Signature: count, then every shape, hashed; compare min and max across ranks.
  std::vector<int64_t> sig{static_cast<int64_t>(params_.size())};
  for (const auto& p : params_) {
    sig.push_back(p.dim());
    for (auto d : p.sizes()) sig.push_back(d);
  }
  int64_t h = static_cast<int64_t>(std::hash<std::string>{}(fmt::format("{}", sig)) >> 1);
  torch::Tensor mm = torch::tensor({h, -h}, torch::kInt64);
  allreduce(*dp_, mm, ReduceOp::Max);
  if (mm[0].item<int64_t>() != h || mm[1].item<int64_t>() != -h) {
    CONFLUX_THROW(CommError,
                  "data-parallel ranks disagree on the model's parameters: rank {} has {} "
                  "parameters with shapes signature {} (check model.* in the config on every rank)",
                  dp_->rank(), params_.size(), fmt::format("{}", sig));
  }
  torch::NoGradGuard no_grad;
  for (auto& p : params_) {
    torch::Tensor buf = p.detach().contiguous();
    broadcast(*dp_, buf, 0);
    if (!buf.is_same(p)) p.detach().copy_(buf);
  }
  // The ranks agree on the buckets now: on CPU move them into the communicator's shared memory
  // (alloc_buffer, a collective), where the all-reduce runs in place without staging copies.
  if (dp_->backend() != Backend::Mpi) return;
  for (auto& b : buckets_) {
    if (b.storage || !b.flat.device().is_cpu()) continue;
    b.storage = dp_->alloc_buffer(static_cast<size_t>(b.flat.numel()) * b.flat.element_size());
    b.flat = torch::from_blob(b.storage->data(), b.flat.sizes(), b.flat.options()).copy_(b.flat);
  }
}

void GradReducer::begin_micro_batch(bool first, bool last) {
  first_ = first;
  last_ = last;
  if (first) {
    for (auto& b : buckets_) b.pending = b.params.size();
    next_launch_ = 0;
    last_bytes_ = 0;
  }
  std::fill(seen_.begin(), seen_.end(), false);
  // .grad stays undefined during backward: the buckets hold the gradients.
  for (auto& p : params_) p.mutable_grad().reset();
}

void GradReducer::on_grad(size_t k, const torch::Tensor& grad) {
  CONFLUX_CHECK(!seen_[k], "parameter {} received two gradients in one backward", k);
  seen_[k] = true;
  Bucket& b = buckets_[bucket_of_[k]];
  torch::Tensor view = b.flat.narrow(0, b.offsets[slot_of_[k]], params_[k].numel()).view(params_[k].sizes());
  torch::NoGradGuard no_grad;
  if (first_) {
    view.copy_(grad);
  } else {
    view.add_(grad);
  }
  if (last_) {
    --b.pending;
    if (options_.overlap) launch_ready();
  }
}

void GradReducer::launch_ready() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) launch(next_launch_++);
}

void GradReducer::launch(size_t b) {
  Bucket& bucket = buckets_[b];
  if (dp_ && dp_->size() > 1) {
    bucket.work = allreduce_async(*dp_, bucket.flat, ReduceOp::Avg);
    last_bytes_ += bucket.flat.nbytes();
  }
}

void GradReducer::finish() {
  // Parameters without a gradient this step (unused) contribute zeros.
  for (size_t k = 0; k < params_.size(); ++k) {
    Bucket& b = buckets_[bucket_of_[k]];
    if (!seen_[k] && first_) b.flat.narrow(0, b.offsets[slot_of_[k]], params_[k].numel()).zero_();
    if (!seen_[k]) --b.pending;
  }
  while (next_launch_ < buckets_.size()) launch(next_launch_++);
  auto t0 = std::chrono::steady_clock::now();
  for (auto& b : buckets_) {
    if (b.work) b.work->wait();
    b.work.reset();
  }
  last_wait_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  install_grads();
}

void GradReducer::install_grads() {
  for (size_t k = 0; k < params_.size(); ++k) {
    Bucket& b = buckets_[bucket_of_[k]];
    params_[k].mutable_grad() =
        b.flat.narrow(0, b.offsets[slot_of_[k]], params_[k].numel()).view(params_[k].sizes());
  }
}

void GradReducer::reduce_grads_now(bool average) {
  torch::NoGradGuard no_grad;
  last_bytes_ = 0;
  last_wait_s_ = 0;
  for (auto& b : buckets_) {
    for (size_t s = 0; s < b.params.size(); ++s) {
      const torch::Tensor& p = params_[b.params[s]];
      torch::Tensor view = b.flat.narrow(0, b.offsets[s], p.numel());
      if (p.grad().defined()) {
        view.copy_(p.grad().reshape({-1}));
      } else {
        view.zero_();
      }
    }
    if (dp_ && dp_->size() > 1) {
      const auto t0 = std::chrono::steady_clock::now();
      allreduce(*dp_, b.flat, average ? ReduceOp::Avg : ReduceOp::Sum);
      last_wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      last_bytes_ += b.flat.nbytes();
    }
  }
  install_grads();
}

}  // namespace conflux::trainer
