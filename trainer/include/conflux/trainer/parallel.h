// Tensor-parallel primitives (Megatron-LM style) as autograd functions.
//
// - copy_to_tp:   identity forward, all-reduce(sum) of the gradient backward. Placed where a
//                 replicated activation enters a column-parallel region.
// - reduce_from_tp: all-reduce(sum) forward, identity backward. Placed where partial outputs of a
//                 row-parallel region (or a vocab-parallel embedding) leave it.
// - vocab_parallel_cross_entropy: the loss over logits sharded along the vocabulary; the max,
//                 the target logit and the sum of exponentials are all-reduced, full logits are
//                 never gathered.
// With a group of size 1 (or no communicator) every function is the plain single-process op.
// Thread safety: the communicator is used from the thread running forward/backward.
#pragma once

#include <torch/torch.h>

namespace conflux {
class Communicator;
}

namespace conflux::trainer {

// The tensor-parallel group a model is split across.
struct TpGroup {
  Communicator* comm = nullptr;  // may be null when size == 1
  int rank = 0;
  int size = 1;
};

torch::Tensor copy_to_tp(const torch::Tensor& x, const TpGroup& tp);
torch::Tensor reduce_from_tp(const torch::Tensor& x, const TpGroup& tp);

// Gathers the last dimension of a sharded tensor: (..., n) -> (..., n * tp.size). No gradient;
// for tests and generation.
torch::Tensor gather_last_dim(const torch::Tensor& x, const TpGroup& tp);

// logits: (N, V/tp) this rank's vocabulary slice [tp.rank * V/tp, (tp.rank+1) * V/tp);
// targets: (N) int64 global token ids. Returns (N) per-token losses -log softmax(logits)[target].
torch::Tensor vocab_parallel_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                           const TpGroup& tp);

}  // namespace conflux::trainer
