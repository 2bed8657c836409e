// Internal: the record-level stages of the prepare pipeline (validate, noise, augment), each on
// this rank's rows. Rows carry their global input row id so per-record randomness and
// provenance are independent of the number of ranks.
#pragma once

#include "conflux/core/communicator.h"
#include "conflux/dataplane/prepare.h"
#include "conflux/dataplane/table.h"
#include "fast_random.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace conflux::dataplane {

struct LocalRows {
  Table table;
  std::vector<int64_t> row_ids;  // global input row of each row (copies: their source)
  void filter(const std::vector<uint8_t>& keep);
};

// Named counters in a fixed order (identical on all ranks), summed at the end.
struct Counters {
  std::vector<std::string> names;
  std::vector<int64_t> counts;
  size_t index(const std::string& name);
};

// Text of row r for validators: the text field if any, else the bytes of tokens < 256.
// With `keep_out`, the rows are not removed: the keep mask is returned there instead (empty when
// every row is kept), so a later stage can remove them in the same pass as its own.
void run_validate(LocalRows& rows, const PrepareConfig& cfg, Counters& dropped, int rank,
                  std::vector<uint8_t>* keep_out = nullptr);
// Returns ledger entries (rank-independent) and fills the noise summary.
std::vector<nlohmann::json> run_noise(Communicator& comm, LocalRows& rows, const PrepareConfig& cfg,
                                      nlohmann::json* summary);
// The Gaussian mechanism (L2 clip, N(0, sigma^2)) on `rows` contiguous rows of `dim` floats, in
// blocks on up to `threads` threads: seeded (key != null) row r draws from RowStream(*key,
// row_ids[r]) exactly as apply_features does (same result, bit for bit, for any thread count);
// otherwise ChaCha20 (a fresh OS-random key per task) fills whole blocks.
void gaussian_rows(float* x, int64_t rows, int64_t dim, double clip, double sigma, const int64_t* row_ids,
                   const StreamKey* key, int threads);
// The mask op (probability 1) on `rows` records of a tokens column in place, on up to `threads`
// threads: record r draws from RowStream(key, row_ids[r]) exactly as Mask::apply_tokens does.
void mask_rows(int32_t* tokens, const int64_t* offsets, int64_t rows, const int64_t* row_ids, const StreamKey& key,
               double rate, int threads);
// In place (copies == 0) or with copies + aug_source/aug_op meta fields.
void run_augment(LocalRows& rows, const PrepareConfig& cfg, nlohmann::json* summary);

}  // namespace conflux::dataplane
