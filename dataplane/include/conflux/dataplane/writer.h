// Writing datasets atomically.
//
// A DatasetWriter stages shards in a hidden sibling directory ".<name>.staging" of the output
// and publishes the whole dataset with one rename once the manifest is written: readers and a
// crash see either the previous dataset (or none) or the complete new one. Every file is
// fsync'ed before the rename, and the parent directory after it. If the writer is destroyed
// without commit() (an exception), the staging directory is removed.
//
// Multi-rank use: rank 0 calls prepare_staging(); after a barrier every rank constructs a writer
// with create_staging = false and writes its own shards (shard file names depend only on the
// global shard index, so output is identical for any number of ranks); rank 0 gathers the
// ShardInfos and calls commit(). Other ranks call release() so they do not delete the staging.
// Shards are byte-reproducible: no timestamps are stored in HDF5 objects.
// Shards are built in memory (shard_image, HDF5 core driver) and written by write_image, which
// makes no HDF5 calls: write_distributed hands images to worker threads (write, hash, fsync)
// while the next image is built, or, with several shards per rank, hashes them in SIMD lanes on
// a thread of its own and lets the workers call write_image_unhashed.
// Thread safety: HDF5 is not thread safe: shard_image / write_shard on one thread at a time;
// write_image, write_image_unhashed and write_file_synced may run concurrently.
#pragma once

#include "conflux/dataplane/manifest.h"
#include "conflux/dataplane/table.h"

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace conflux::dataplane {

// The bytes of one shard file, built in memory (the HDF5 core driver's own buffer, malloc'ed).
struct ShardImage {
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t[], Free> data;
  size_t size = 0;
};

struct WriterOptions {
  int64_t chunk_bytes = 1 << 20;  // target HDF5 chunk size per dataset (1 MiB)
  int threads = 0;  // shard files hashed + written in parallel (0: hardware threads / ranks per node)
  // An empty input must never replace a dataset (issue 17): write_distributed refuses to write
  // zero rows (DataError, nothing touched) unless allow_empty; even then it never replaces an
  // existing dataset that has rows. The stage says why it has no rows and how the user asks for
  // an empty output, for the message.
  bool allow_empty = false;
  std::string empty_reason = "no rows";           // e.g. "every one of 12 rows was dropped"
  std::string allow_empty_how = "allow_empty";    // e.g. "--allow-empty", "prepare.allow_empty = true"
};

// Creates (replacing a stale one) the staging directory for `out_dir` and returns its path.
// IoError if `out_dir` exists, is not empty and lacks `marker` (the file that shows it is `what`,
// an output this writer may replace): a dataset's manifest.json by default.
std::string prepare_staging(const std::string& out_dir, const char* marker = kManifestFile,
                            const char* what = "a Conflux dataset");
std::string staging_dir_for(const std::string& out_dir);
// Removes a staging directory (best effort, for error paths).
void remove_staging(const std::string& out_dir);

class DatasetWriter {
 public:
  DatasetWriter(std::string out_dir, Schema schema, bool create_staging = true,
                WriterOptions options = {});
  ~DatasetWriter();
  DatasetWriter(const DatasetWriter&) = delete;
  DatasetWriter& operator=(const DatasetWriter&) = delete;

  // Writes rows of `table` as shard `index` (file part-<index>.h5) and returns its description.
  ShardInfo write_shard(int64_t index, const Table& table) const;
  // Writes a shard image made by shard_image() (no HDF5 calls: safe on a worker thread).
  ShardInfo write_image(int64_t index, int64_t rows, const ShardImage& image) const;
  // Writes and fsyncs a shard image without hashing it (`sha256` left empty: the caller hashes the
  // same bytes elsewhere, e.g. in SIMD lanes with other images). No HDF5 calls.
  ShardInfo write_image_unhashed(int64_t index, int64_t rows, const ShardImage& image) const;
  // Writes manifest.json into the staging directory and renames the staging directory onto
  // out_dir (an existing dataset there is swapped out atomically, then removed).
  void commit(const Manifest& manifest);
  // Forget the staging directory without removing it (non-zero ranks).
  void release() { released_ = true; }
  const std::string& staging() const { return staging_; }

 private:
  std::string out_dir_, staging_;
  Schema schema_;
  WriterOptions options_;
  bool committed_ = false, released_ = false;
};

// Writes one shard file at `path` (used by DatasetWriter; exposed for tests).
void write_shard_file(const std::string& path, const Table& table, const WriterOptions& options);
// The bytes of a shard file holding rows [begin, end) of `table`, built in memory with HDF5's core
// driver (`path` only names it in errors). Calls HDF5: one thread at a time.
ShardImage shard_image(const Table& table, int64_t begin, int64_t end, const WriterOptions& options,
                                 const std::string& path);
// Creates `path` with exactly `bytes`, fsyncs it and returns the SHA-256 (hex) of those bytes.
std::string write_file_synced(const std::string& path, const uint8_t* bytes, size_t size);

}  // namespace conflux::dataplane
