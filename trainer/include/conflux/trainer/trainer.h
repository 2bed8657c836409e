// The training loop behind `conflux train`: data-parallel x tensor-parallel GPT training with
// gradient accumulation, AdamW + warmup/cosine, clipping, validation, metrics, checkpoints with
// exact resume, DP-SGD, and preemption.
//
// One step: the global batch (train.batch_size windows, or a Poisson sample for DP-SGD) is split
// across dp ranks; each rank runs its micro-batches (the tp ranks of a replica see the same
// windows), the reducer averages gradients across dp, the global norm is clipped across tp, AdamW
// updates. All randomness derives from train.seed and the step (shuffle order, dropout, Poisson
// sampling and, when privacy.noise_seed is set, the noise), so a run resumed from a checkpoint
// continues exactly as the uninterrupted run would (bitwise on CPU).
// Thread safety: run() on the main thread of every rank.
#pragma once

#include "conflux/trainer/data.h"
#include "conflux/trainer/train_config.h"

#include <functional>
#include <string>

namespace conflux {
class Communicator;
namespace metrics {
class Registry;
}
}  // namespace conflux

namespace conflux::trainer {

struct TrainerComms {
  Communicator* world = nullptr;  // null: single process
  Communicator* dp = nullptr;
  Communicator* tp = nullptr;
  int dp_rank = 0, dp_size = 1, tp_rank = 0, tp_size = 1;
  int local_rank = 0;  // for the CUDA device
};

enum class TrainStatus { Completed, Preempted, EpsilonReached };

struct TrainResult {
  TrainStatus status = TrainStatus::Completed;
  int64_t step = 0;
  double last_loss = 0, val_loss = -1, epsilon = 0;
  double tokens_per_second = 0;
  std::string checkpoint;  // last checkpoint written
};

struct TrainHooks {
  // Called on every rank after each optimizer step (tests use it to preempt at a given step).
  std::function<void(int64_t step)> after_step;
  // Where rank 0 registers and updates the conflux_train_* metrics (docs/operations.md): steps,
  // loss, tokens/s, epsilon, all-reduce bytes and seconds, checkpoint seconds. Null: none.
  // Other ranks pass null (the values are rank 0's; the loss is the world average).
  metrics::Registry* metrics = nullptr;
};

// `source` is the token stream of cfg.dataset; `config_json`/`manifest_sha256` go to lineage.
TrainResult train(const TrainConfig& cfg, const TokenSource& source, const TrainerComms& comms,
                  const std::string& config_json = "{}", const std::string& manifest_sha256 = "",
                  const TrainHooks& hooks = {});

}  // namespace conflux::trainer
