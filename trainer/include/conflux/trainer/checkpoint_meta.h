// Checkpoint metadata without libtorch: finding step directories, cleaning up after interrupted
// writes, and reading/writing trainer_state.json and lineage.json (layout in checkpoint.h).
// Verbs and services that only need to know what a checkpoint is (its step, model shape, the
// dataset and config it was trained on) include this header and link conflux_trainer_meta
// (core + JSON), not the torch-heavy checkpoint.h / conflux_trainer.
//
// Every reader throws DataError naming the file and the field that is missing or malformed
// (exit code 1), never InternalError. Thread safety: free functions, no shared state.
#pragma once

#include "conflux/core/privacy.h"
#include "conflux/trainer/gpt_config.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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
  std::string config_json;     // effective run config (a JSON object; "" reads as {})
  std::string dataset_dir;
  std::string manifest_sha256;
  int dp = 1, tp = 1;
  // The checkpoint whose weights the run started from (train's checkpoint.init_from, federate's
  // model.init_from): its step directory and checkpoint_digest. Empty when it started from a seed.
  // Written as "init" only when set, so lineage files of runs without one are unchanged.
  std::string init_checkpoint, init_digest;
};

// "step-00000042": the directory name of a step's checkpoint.
std::string checkpoint_dir_name(int64_t step);
// Prefix of what an interrupted checkpoint write or delete leaves under the root.
inline constexpr const char* kCheckpointLeftoverPrefix = ".tmp-";

// Newest complete step directory under root, if any.
std::optional<std::string> latest_checkpoint(const std::string& root);
// Step directories under root, oldest first.
std::vector<std::string> list_checkpoints(const std::string& root);
// Removes what interrupted writes left under root (.tmp-* directories, atomic-write temp files);
// returns how many entries went. Call on one rank, before any rank writes a checkpoint.
size_t remove_checkpoint_leftovers(const std::string& root);

// trainer_state.json / lineage.json text (as save_checkpoint writes them) and readers.
std::string trainer_state_text(const TrainerState& state, int64_t optimizer_step);
std::string lineage_text(const Lineage& lineage);
TrainerState load_trainer_state(const std::string& dir);
int64_t load_optimizer_step(const std::string& dir);
Lineage load_lineage(const std::string& dir);

// The identity of a step directory's weights: sha256 over the lines "<file> <sha256 of file>\n" of
// its model-*.safetensors files in name order (the optimizer state is not part of it). Evaluation
// reports and `conflux pipeline` name checkpoints by it. DataError if there is no model file.
std::string checkpoint_digest(const std::string& dir);

}  // namespace conflux::trainer
