// Durable, atomic publication of files and directories: the one implementation behind
// checkpoints, safetensors, dataset manifests and datasets, evaluation reports and CURVE keys.
//
// write_file_atomic(path, ...) writes the bytes to a hidden temp file in path's own directory
// (".<name>.tmp-<pid>-<n>", so the rename never crosses a file system), fsyncs it, renames it
// over `path` and fsyncs the directory. A crash at any point leaves either the old file or the
// complete new one under `path` (never a torn one), and once the call returns the new file
// survives a power loss. On error the temp file is removed and IoError names the path.
//
// publish_directory(staging, target) does the same for a directory built under a temp name in
// target's parent: every file and directory in `staging` is fsync'ed, staging is renamed onto
// `target` (an existing target is swapped out in one step with renameat2(RENAME_EXCHANGE) and
// then deleted), and the parent is fsync'ed.
//
// A writer killed mid-way leaves its temp file (or staging directory) behind; the names are
// recognisable (is_atomic_temp_name) so the next writer can remove them (remove_atomic_temps).
// Thread safety: free functions; concurrent writers of the same path each publish a complete file
// (the last rename wins).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace conflux {

// A piece of the file's content (not owned).
struct ByteSpan {
  const void* data = nullptr;
  size_t size = 0;
};

struct AtomicWriteOptions {
  unsigned mode = 0644;    // permission bits of the new file (exactly, regardless of umask)
  bool overwrite = true;   // false: IoError if `path` exists (checked atomically at the rename)
};

// Writes the concatenation of `pieces` to `path` atomically and durably (see above).
void write_file_atomic(const std::string& path, const std::vector<ByteSpan>& pieces,
                       const AtomicWriteOptions& options = {});
void write_file_atomic(const std::string& path, std::string_view content,
                       const AtomicWriteOptions& options = {});

struct PublishOptions {
  // false only where every file in the staging directory was already fsync'ed by its writer
  // (the dataplane syncs each shard as it writes it, overlapped with hashing).
  bool sync_files = true;
};

// Publishes the directory `staging` as `target` (same parent directory) atomically and durably.
void publish_directory(const std::string& staging, const std::string& target,
                       const PublishOptions& options = {});

// fsync of one file or directory; IoError names the path.
void fsync_path(const std::string& path, bool directory);

// True for the temp names write_file_atomic uses (".<name>.tmp-<pid>-<n>").
bool is_atomic_temp_name(std::string_view file_name);
// Removes the temp files of killed writers from `dir` (not recursive); returns how many.
size_t remove_atomic_temps(const std::string& dir);

}  // namespace conflux
