// `conflux prepare`: the dataset preparation pipeline on any number of MPI ranks.
//
// Stages, in order (each optional except plan and write):
//   plan      rank 0 splits [0, rows) into contiguous ranges balanced by tokens (or rows), aligned
//             to kPlanBlock rows, and broadcasts them; every rank reads its range (hyperslabs)
//             while worker threads check the SHA-256 of the shards it touches; the stages run on
//             the rows meanwhile and the write waits for the checks (a mismatch fails the run
//             before anything is written, and takes precedence over any error it caused)
//   validate  validators from the registry (ops.h); drops are counted per reason
//   exact     exact dedup (dedup.h)
//   near      MinHash-LSH near-dup removal (dedup.h)
//   noise     DP noising of a features field (Laplace / Gaussian) and/or labels (randomized
//             response). It runs before augmentation so augmented copies are post-processing of
//             the noised record and cost no extra privacy budget.
//   augment   token / feature ops from the registry, in place or as N marked copies
//   pca       projection of a features field onto its top k principal components
//   write     np-independent shards + manifest (provenance, privacy ledger), atomic publish
// Randomness per record comes from streams keyed by (seed, stage, global row id[, copy]), so the
// output is byte-identical for 1, 2 or 4 ranks. Without prepare.seed, DP noise comes from
// SecureRandom (never reproducible) and augmentation uses augment.seed.
// Thread safety: collective; call on every rank with the same config.
#pragma once

#include "conflux/core/communicator.h"
#include "conflux/core/config.h"
#include "conflux/core/process_grid.h"
#include "conflux/dataplane/dedup.h"
#include "conflux/dataplane/manifest.h"
#include "conflux/dataplane/ops.h"
#include "conflux/dataplane/privacy_ops.h"

#include <map>
#include <string>
#include <vector>

namespace conflux::dataplane {

struct PrepareConfig {
  // [prepare]
  std::string input, output;
  int64_t seed = -1;  // < 0: secure DP noise
  int64_t rows_per_shard = 65536;
  std::string plan = "tokens";  // tokens | rows
  bool verify_input = true;
  int64_t threads = 0;  // per rank, for checksums and shard writes (0 = hardware / local ranks)
  std::vector<std::string> require_fields;
  bool allow_empty = false;  // write zero rows if every row is dropped (never over a dataset with rows)
  // [validate]
  bool validate = true;
  ValidateConfig checks;
  // [dedup]
  bool exact = true;
  bool near = false;
  std::string dedup_field;  // "" = tokens field, else text, else features (exact only)
  MinHashParams minhash;
  // [augment]
  std::vector<std::string> augment_ops;
  int64_t copies = 0;       // 0: apply in place
  int64_t augment_seed = 0; // used when prepare.seed < 0
  std::string token_field, feature_field;  // "" = first field with the role
  std::map<std::string, Params> augment_params;  // op -> param -> value (incl. "probability")
  // [privacy]
  DpFieldConfig dp_features, dp_labels;
  // [pca]
  int64_t pca_components = 0;
  std::string pca_field;
  // [comm]: collective timeout (a stalled rank ends the job with exit 3 after it) and shm
  GridConfig grid;

  PrepareConfig();
  void bind(ConfigBinder& b);
};

struct PrepareResult {
  int64_t rows_in = 0, rows_out = 0, copies = 0;
  std::map<std::string, int64_t> dropped;
  NearDedupStats near;
  nlohmann::json stage;  // the provenance record written
  Manifest manifest;     // rank 0
};

PrepareResult prepare(Communicator& comm, const PrepareConfig& cfg, const nlohmann::json& effective_config,
                      const std::string& command_line = "");

}  // namespace conflux::dataplane
