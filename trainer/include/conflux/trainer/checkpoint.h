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
// tensor and takes its own slice. The directory is written as <root>/.tmp-step-N and renamed by
// rank 0 once every writer is done (barriers on the world communicator); then all but the newest
// `keep_last` step directories are removed. A crash mid-write leaves only the .tmp directory,
// which is ignored and replaced next time.
// Thread safety: collective over the world; call from the training thread on every rank.
#pragma once

#include "conflux/core/privacy.h"
#include "conflux/trainer/gpt.h"
#include "conflux/trainer/optim.h"

#include <optional>
#include <string>
#include <vector>

namespace conflux {
class Communicator;
}

namespace conflux::trainer {

struct TrainerState {
  int64_t step = 0;            // optimizer steps completed
  int64_t epoch = 0;           // data epoch of the next batch
  int64_t epoch_position = 0;  // windows of this epoch consumed (global, across dp ranks)
  int64_t tokens_seen = 0;
  uint64_t seed = 0;           // all run randomness (shuffle, dropout, sampling) derives from it
  bool noise_private = true;   // DP-SGD noise from SecureRandom (false: seeded, not private)
  std::vector<privacy::RdpAccountant::Entry> accountant;
  GptConfig model;
};

struct Lineage {
  std::string config_json;     // effective run config
  std::string dataset_dir;
  std::string manifest_sha256;
  int dp = 1, tp = 1;
};

// Collective. `world` may be null for a single process. Returns the final directory.
std::string save_checkpoint(const std::string& root, const TrainerState& state, GptImpl& model,
                            AdamW* optimizer, const Lineage& lineage, Communicator* world,
                            int dp_rank, int keep_last);

// Newest complete step directory under root, if any.
std::optional<std::string> latest_checkpoint(const std::string& root);
// Step directories under root, oldest first.
std::vector<std::string> list_checkpoints(const std::string& root);

TrainerState load_trainer_state(const std::string& dir);
// Loads weights (any source tp size) into `model`'s local slices; throws DataError naming the
// file and tensor when a tensor is missing or its global shape differs.
void load_model(const std::string& dir, GptImpl& model);
// Same for the optimizer state (and its step count from trainer_state.json).
void load_optimizer(const std::string& dir, AdamW& optimizer);

// Global (unsharded) tensors of a checkpoint, assembled from every tp file: name -> tensor.
std::vector<std::pair<std::string, torch::Tensor>> load_global_tensors(const std::string& dir,
                                                                      const std::string& kind);

}  // namespace conflux::trainer
