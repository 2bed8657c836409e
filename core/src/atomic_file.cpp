// Atomic, durable file writes and directory publication (see atomic_file.h). The order of the
// steps is what makes them crash-safe: data reaches the disk (fsync of the file) before the name
// points at it (rename), and the name itself reaches the disk (fsync of the directory) before
// the caller is told it is done.
#include "conflux/core/atomic_file.h"

#include "conflux/core/error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace fs = std::filesystem;

namespace conflux {
namespace {

constexpr std::string_view kTempTag = ".tmp-";

std::string parent_of(const std::string& path) {
  fs::path p = fs::path(path).parent_path();
  return p.empty() ? "." : p.string();
}

std::string temp_path_for(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  const fs::path p(path);
  const std::string name = "." + p.filename().string() + std::string(kTempTag) +
                           std::to_string(::getpid()) + "-" + std::to_string(counter++);
  return (p.parent_path() / name).string();
}

void write_all(int fd, const ByteSpan& piece, const std::string& tmp) {
  const auto* p = static_cast<const char*>(piece.data);
  size_t done = 0;
  while (done < piece.size) {
    const ssize_t w = ::write(fd, p + done, piece.size - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) CONFLUX_THROW(IoError, "cannot write '{}': {}", tmp, std::strerror(w < 0 ? errno : EIO));
    done += static_cast<size_t>(w);
  }
}

// rename that fails with EEXIST instead of replacing; falls back to link+unlink where the file
// system does not support RENAME_NOREPLACE.
int rename_noreplace(const char* from, const char* to) {
  if (::renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return -1;
  if (::link(from, to) != 0) return -1;
  ::unlink(from);
  return 0;
}

}  // namespace

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) CONFLUX_THROW(IoError, "cannot open '{}' to fsync: {}", path, std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) CONFLUX_THROW(IoError, "fsync of '{}' failed: {}", path, std::strerror(err));
}

void write_file_atomic(const std::string& path, const std::vector<ByteSpan>& pieces,
                       const AtomicWriteOptions& options) {
  const std::string tmp = temp_path_for(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, options.mode);
  if (fd < 0) CONFLUX_THROW(IoError, "cannot create '{}': {}", tmp, std::strerror(errno));
  try {
    if (::fchmod(fd, options.mode) != 0)  // the umask may have removed bits asked for
      CONFLUX_THROW(IoError, "cannot set the mode of '{}': {}", tmp, std::strerror(errno));
    for (const ByteSpan& piece : pieces) write_all(fd, piece, tmp);
    if (::fsync(fd) != 0) CONFLUX_THROW(IoError, "fsync of '{}' failed: {}", tmp, std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    CONFLUX_THROW(IoError, "cannot close '{}': {}", tmp, std::strerror(err));
  }
  const int rc = options.overwrite ? std::rename(tmp.c_str(), path.c_str())
                                   : rename_noreplace(tmp.c_str(), path.c_str());
  if (rc != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    if (err == EEXIST) CONFLUX_THROW(IoError, "'{}' exists; refusing to overwrite it", path);
    CONFLUX_THROW(IoError, "cannot rename '{}' to '{}': {}", tmp, path, std::strerror(err));
  }
  fsync_path(parent_of(path), true);
}

void write_file_atomic(const std::string& path, std::string_view content,
                       const AtomicWriteOptions& options) {
  write_file_atomic(path, std::vector<ByteSpan>{{content.data(), content.size()}}, options);
}

void publish_directory(const std::string& staging, const std::string& target,
                       const PublishOptions& options) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(staging, ec);
       options.sync_files && !ec && it != fs::end(it); it.increment(ec)) {
    if (it->is_regular_file(ec) || it->is_directory(ec))
      fsync_path(it->path().string(), it->is_directory(ec));
  }
  if (ec) CONFLUX_THROW(IoError, "cannot list '{}': {}", staging, ec.message());
  fsync_path(staging, true);
  if (fs::exists(target, ec)) {
    // Swap old and new in one step; the old contents are now under the staging name.
    if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0)
      CONFLUX_THROW(IoError, "cannot replace '{}' with '{}': {}", target, staging, std::strerror(errno));
    fsync_path(parent_of(target), true);
    fs::remove_all(staging, ec);
    if (ec) CONFLUX_THROW(IoError, "cannot remove the replaced '{}' (now '{}'): {}", target, staging, ec.message());
    return;
  }
  if (std::rename(staging.c_str(), target.c_str()) != 0)
    CONFLUX_THROW(IoError, "cannot rename '{}' to '{}': {}", staging, target, std::strerror(errno));
  fsync_path(parent_of(target), true);
}

bool is_atomic_temp_name(std::string_view name) {
  if (name.size() < 2 || name[0] != '.') return false;
  const size_t tag = name.rfind(kTempTag);
  if (tag == std::string_view::npos || tag < 2) return false;
  // "<pid>-<n>" after the tag: digits, one '-', digits.
  const std::string_view rest = name.substr(tag + kTempTag.size());
  const size_t dash = rest.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == rest.size()) return false;
  for (size_t i = 0; i < rest.size(); ++i)
    if (i != dash && (rest[i] < '0' || rest[i] > '9')) return false;
  return true;
}

size_t remove_atomic_temps(const std::string& dir) {
  size_t removed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file(ec) || !is_atomic_temp_name(e.path().filename().string())) continue;
    if (fs::remove(e.path(), ec)) ++removed;
  }
  return removed;
}

}  // namespace conflux
