// Atomic file replacement: write a temp file in the target directory, fsync, rename.
#include "conflux/core/error.h"
#include "conflux/evaluator/report.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace conflux::evaluator {

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) CONFLUX_THROW(IoError, "cannot create '{}': {}", tmp, std::strerror(errno));
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t w = ::write(fd, content.data() + done, content.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      CONFLUX_THROW(IoError, "cannot write '{}': {}", tmp, std::strerror(err));
    }
    done += static_cast<size_t>(w);
  }
  const int sync_rc = ::fsync(fd);
  const int sync_errno = errno;
  const int close_rc = ::close(fd);
  if (sync_rc != 0 || close_rc != 0) {
    const int err = sync_rc != 0 ? sync_errno : errno;
    ::unlink(tmp.c_str());
    CONFLUX_THROW(IoError, "cannot flush '{}': {}", tmp, std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    CONFLUX_THROW(IoError, "cannot rename '{}' to '{}': {}", tmp, path, std::strerror(err));
  }
}

}  // namespace conflux::evaluator
