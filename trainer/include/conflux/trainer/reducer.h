// Data-parallel gradient reducer (PyTorch DDP's Reducer, simplified).
//
// Parameters are assigned to buckets once, in reverse registration order (the order gradients
// become ready in backward), a small first bucket (so communication starts early) and then about
// `bucket_bytes` each; the assignment depends only on the parameter list, so it is identical on
// every rank. A hook on each parameter copies (or, for later micro-batches, adds) its gradient
// into its bucket's flat buffer. On the last micro-batch of a step, a bucket whose parameters are
// all ready is all-reduced asynchronously (average over the dp group) — in bucket order, so every
// rank issues the same collectives in the same order — while backward continues. On CPU the
// buckets live in memory from Communicator::alloc_buffer, all-reduced in place without staging.
// finish() launches what is left, waits for all of them and points each parameter's .grad at its
// slice of the bucket.
// Earlier micro-batches only accumulate locally (no communication).
// Thread safety: hooks run on the autograd thread; one step at a time.
#pragma once

#include "conflux/core/communicator.h"

#include <torch/torch.h>

#include <cstddef>
#include <memory>
#include <vector>

namespace conflux::trainer {

struct ReducerOptions {
  size_t bucket_bytes = 25u << 20;
  size_t first_bucket_bytes = 1u << 20;
  bool overlap = true;  // false: launch every bucket only in finish() (for the benchmark)
};

class GradReducer {
 public:
  // `params` in registration order; `dp` may be null or of size 1 (then nothing is communicated).
  GradReducer(std::vector<torch::Tensor> params, Communicator* dp, ReducerOptions options = {});
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Verifies that every rank has the same parameter count and shapes (CommError naming the
  // first mismatch otherwise), broadcasts rank 0's values and, on CPU with the MPI back end,
  // moves the buckets into Communicator::alloc_buffer memory (a collective).
  void sync_parameters();

  // Call before each micro-batch's backward; `last` marks the final micro-batch of the step.
  void begin_micro_batch(bool first, bool last);
  // After the last backward: launch remaining buckets, wait, set .grad to the averaged gradients.
  void finish();
  // Without hooks (DP-SGD writes .grad itself): all-reduce every .grad with op (sum or average).
  void reduce_grads_now(bool average);

  // Hooks off: backward leaves gradients to autograd (.grad), e.g. for DP-SGD.
  void set_hooks_enabled(bool on) { hooks_enabled_ = on; }

  size_t num_buckets() const { return buckets_.size(); }
  // Parameter indices (into `params`) of bucket b, in the order they are packed.
  const std::vector<size_t>& bucket_params(size_t b) const { return buckets_[b].params; }
  // Seconds spent waiting for communication in the last finish() (all-reduces not hidden
  // behind backward), or in the all-reduces of the last reduce_grads_now().
  double last_wait_seconds() const { return last_wait_s_; }
  // Bytes this rank all-reduced in the last step (0 when dp is 1: nothing is communicated).
  uint64_t last_bytes() const { return last_bytes_; }

 private:
  struct Bucket {
    std::vector<size_t> params;
    std::vector<int64_t> offsets;  // element offset of each param in `flat`
    std::unique_ptr<SharedBuffer> storage;  // alloc_buffer memory behind `flat` (CPU, dp > 1)
    torch::Tensor flat;
    size_t pending = 0;
    std::shared_ptr<Work> work;
  };
  void on_grad(size_t param, const torch::Tensor& grad);
  void launch_ready();
  void launch(size_t b);
  void install_grads();

  std::vector<torch::Tensor> params_;
  Communicator* dp_;
  ReducerOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_, slot_of_;
  std::vector<bool> seen_;
  size_t next_launch_ = 0;
  bool first_ = true, last_ = true, hooks_enabled_ = true;
  double last_wait_s_ = 0;
  uint64_t last_bytes_ = 0;
};

}  // namespace conflux::trainer
