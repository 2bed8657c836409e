// Checkpoints: one directory per step, written by every rank together and loadable at any tp/dp.
//
//   <root>/step-00000100/
//     model-tp00-of-02.safetensors   weights of tp rank 0 (written by dp rank 0 of that tp rank)
//     optim-tp00-of-02.safetensors   AdamW exp_avg.<name> / exp_avg_sq.<name>, same slices
//     trainer_state.json             step, optimizer step, data position, RNG scheme and seed,
//                                    privacy accountant history, model config
//     lineage.json                   effective config, dataset dir + manifest sha256, world shape
// Each tensor's safetensors metadata entry "shard.<name>" is JSON {"global_shape": [...],
// "dim": d, "offset": o} (dim -1: replicated), so a loader at another tp size assembles the global
// tensor and takes its own slice. The directory is written as <root>/.tmp-step-N and published by
// rank 0 once every writer is done (barriers on the world communicator) with
// conflux::publish_directory (every file fsync'ed, atomic rename, parent fsync'ed); then all but
// the newest `keep_last` step directories are renamed to .tmp-old-step-N and removed. A crash at
// any point leaves complete step directories and .tmp-* leftovers, which readers ignore and the
// next run removes (remove_checkpoint_leftovers) before it writes.
// Loading checks every tensor: a NaN or Inf value is a DataError naming the file and tensor
// (NonFinite::Warn loads it anyway with a warning, for inspecting a diverged run).
// Metadata (step lists, trainer_state.json, lineage.json) is in checkpoint_meta.h, without torch.
// Thread safety: collective over the world; call from the training thread on every rank.
#pragma once

#include "conflux/trainer/checkpoint_meta.h"
#include "conflux/trainer/gpt.h"
#include "conflux/trainer/optim.h"

#include <string>
#include <vector>

namespace conflux {
class Communicator;
}

namespace conflux::trainer {

// Collective. `world` may be null for a single process. Returns the final directory.
std::string save_checkpoint(const std::string& root, const TrainerState& state, GptImpl& model,
                            AdamW* optimizer, const Lineage& lineage, Communicator* world,
                            int dp_rank, int keep_last);

enum class NonFinite { Reject, Warn };

// Loads weights (any source tp size) into `model`'s local slices; throws DataError naming the
// file and tensor when a tensor is missing, its global shape differs or it holds NaN/Inf.
void load_model(const std::string& dir, GptImpl& model, NonFinite non_finite = NonFinite::Reject);
// Same for the optimizer state (and its step count from trainer_state.json).
void load_optimizer(const std::string& dir, AdamW& optimizer);

// Global (unsharded) tensors of a checkpoint, assembled from every tp file: name -> tensor.
std::vector<std::pair<std::string, torch::Tensor>> load_global_tensors(
    const std::string& dir, const std::string& kind, NonFinite non_finite = NonFinite::Reject);

}  // namespace conflux::trainer
