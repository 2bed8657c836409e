// Dataset: read access to a Conflux dataset directory (manifest.json + part-NNNNN.h5 shards).
//
// Reading API (used by the trainer for token windows and by the evaluator for eval data):
//
//   auto ds = conflux::dataplane::Dataset::open("data/fortunes");   // validates (see below)
//   ds.num_rows();                          // rows over all shards
//   ds.schema();                            // fields, roles
//   auto t = ds.read_tokens(0, 128);        // rows [0,128): t.values (int32), t.offsets (129)
//   auto w = ds.read_token_stream(p, 4096); // 4096 tokens of the concatenated token stream at p
//   auto x = ds.read_features(10, 20);      // 10 x dim floats, row-major (x.dim)
//   auto y = ds.read_labels(10, 20);        // int64, one per row
//   auto s = ds.read_text(0, 5);            // std::vector<std::string>
//   auto tab = ds.read(0, 100, {"tokens", "label"});  // any fields, as a Table
//
// Rows are global: row i of the dataset is row i - (rows of earlier shards) of its shard. Reads
// of a range use HDF5 hyperslabs and touch only the chunks that hold it, so each rank of a job
// reads its own contiguous range efficiently.
//
// Validation on open: the manifest parses; every shard file exists, is a readable HDF5 file,
// holds every field of the schema with the right element type, rank and row count, offsets
// start at 0 and end at the value count. With OpenOptions::verify_checksums (default) each
// shard's SHA-256 is compared with the manifest. On read, offsets must not decrease. Every
// failure is a DataError naming the file and the HDF5 dataset (and the HDF5 error stack).
//
// Thread safety: HDF5 (this build) is not thread safe; use a Dataset from one thread at a time.
// Copies share the open files (cheap); files close when the last copy goes.
#pragma once

#include "conflux/dataplane/manifest.h"
#include "conflux/dataplane/table.h"

#include <memory>
#include <string>
#include <vector>

namespace conflux::dataplane {

struct OpenOptions {
  bool verify_checksums = true;  // SHA-256 of every shard on open (reads every byte once)
};

template <typename T>
struct Ragged {
  std::vector<T> values;         // all rows back to back
  std::vector<int64_t> offsets;  // rows + 1, offsets[0] == 0
  int64_t rows() const { return static_cast<int64_t>(offsets.size()) - 1; }
};

struct Features {
  std::vector<float> values;  // rows x dim, row-major
  int64_t dim = 0;
};

class Dataset {
 public:
  static Dataset open(const std::string& dir, const OpenOptions& options = {});

  const std::string& dir() const;
  const Manifest& manifest() const;
  const Schema& schema() const { return manifest().schema; }
  int64_t num_rows() const;
  int64_t num_shards() const;
  // First global row of each shard, plus num_rows() at the end (num_shards() + 1 entries).
  const std::vector<int64_t>& shard_row_starts() const;

  // Every field (or those named) of rows [begin, end).
  Table read(int64_t begin, int64_t end, const std::vector<std::string>& fields = {}) const;

  // Typed readers; `field` empty means the first field with the role.
  Ragged<int32_t> read_tokens(int64_t begin, int64_t end, const std::string& field = "") const;
  std::vector<std::string> read_text(int64_t begin, int64_t end, const std::string& field = "") const;
  Features read_features(int64_t begin, int64_t end, const std::string& field = "") const;
  std::vector<int64_t> read_labels(int64_t begin, int64_t end, const std::string& field = "") const;
  std::vector<int64_t> read_groups(int64_t begin, int64_t end, const std::string& field = "") const;

  // Token stream view: all rows' tokens concatenated in row order (no separators are added; the
  // ingester ends every document with kEosId). num_tokens() is the stream length.
  int64_t num_tokens(const std::string& field = "") const;
  // `count` tokens starting at stream position `first` (crossing rows and shards).
  std::vector<int32_t> read_token_stream(int64_t first, int64_t count,
                                         const std::string& field = "") const;
  // Offsets of rows [begin, end] into the token stream (end - begin + 1 values; global).
  std::vector<int64_t> token_offsets(int64_t begin, int64_t end, const std::string& field = "") const;

  // Re-checks the SHA-256 of shard `index` (or of all shards); throws DataError on mismatch.
  void verify_shard(int64_t index) const;
  void verify_all() const;
  // verify_shard for each listed shard on up to `threads` threads (<= 0: the hardware threads
  // shared among the ranks on the node) with plain file reads, no HDF5: safe to run while this
  // Dataset reads; throws the mismatch of the first listed failing shard.
  void verify_shards(const std::vector<int64_t>& indices, int threads) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace conflux::dataplane
