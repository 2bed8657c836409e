// Multi-rank building blocks shared by ingest and prepare: the row-range plan and the
// distributed, np-independent dataset write.
//
// Plan: rank 0 splits the global row space [0, n) into `ranks` contiguous ranges, balanced by
// row count or by a per-row weight (token count), with boundaries on multiples of kPlanBlock
// rows (so per-block work such as mixup partners never crosses ranks), and broadcasts it.
//
// Distributed write: every rank holds a contiguous slice of the output rows in global order.
// Shard s holds output rows [s * rows_per_shard, (s + 1) * rows_per_shard) whatever the number
// of ranks; its rows are sent (all-to-all-v) to rank s % size, which writes part-<s>.h5 into a
// shared staging directory. Rank 0 gathers the shard descriptions and publishes the dataset
// atomically. Any rank's write error is agreed on collectively, the staging directory is removed
// and every rank throws, so no partial output is left.
// Thread safety: collective calls; every rank calls them in the same order.
#pragma once

#include "conflux/core/communicator.h"
#include "conflux/dataplane/manifest.h"
#include "conflux/dataplane/table.h"
#include "conflux/dataplane/writer.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace conflux::dataplane {

inline constexpr int64_t kPlanBlock = 256;

// Boundaries (parts + 1 values, first 0, last n) for `cum` = prefix sums of per-row weights
// (n + 1 values). Boundaries are multiples of `align` (or n) and non-decreasing. Pure function.
std::vector<int64_t> balanced_boundaries(const std::vector<int64_t>& cum, int parts, int64_t align);

// Rank 0's `boundaries` broadcast to every rank (others pass anything).
std::vector<int64_t> broadcast_boundaries(Communicator& comm, std::vector<int64_t> boundaries);

// Exclusive prefix sum of a per-rank count and the total (all-gather).
struct RankOffset {
  int64_t first = 0;
  int64_t total = 0;
  std::vector<int64_t> per_rank;
};
RankOffset rank_offsets(Communicator& comm, int64_t local_count);

// Sums int64 counters element-wise over all ranks.
void allreduce_sum(Communicator& comm, std::vector<int64_t>& values);
void allreduce_sum(Communicator& comm, std::vector<double>& values);

// Sends `bytes` from every rank to every rank (all-gather of variable-size buffers); result is
// the concatenation in rank order, with per-rank sizes in *sizes.
std::vector<uint8_t> allgather_bytes(Communicator& comm, const std::vector<uint8_t>& bytes,
                                     std::vector<size_t>* sizes);

// Runs `fn` on every rank and agrees on the outcome: if it threw anywhere, every rank throws
// (the original error where it happened, a DataError naming the stage elsewhere), so no rank is
// left waiting in a later collective.
void collective_try(Communicator& comm, const std::string& what, const std::function<void()>& fn);

// Writes the rows held by all ranks as one dataset (see above). `manifest` supplies schema,
// tokenizer, provenance and privacy (rank 0's copy is used); shards are filled in. Returns the
// published manifest on rank 0 (an empty one elsewhere). Zero rows in all are refused before
// anything is written, unless options.allow_empty (and never over a dataset with rows).
Manifest write_distributed(Communicator& comm, const std::string& out_dir, const Table& rows,
                           int64_t rows_per_shard, Manifest manifest, const WriterOptions& options = {});

}  // namespace conflux::dataplane
