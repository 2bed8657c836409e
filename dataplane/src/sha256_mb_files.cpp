// SHA-256 of files with the multi-buffer lanes: each thread takes a group of files, reads them in
// 1 MiB pieces (one buffer per lane) and feeds the lanes in lockstep; a lane whose file ends is
// finalised and refilled with the group's next file. Errors name the file (see sha256_mb.h).
#include "conflux/core/error.h"
#include "conflux/dataplane/manifest.h"
#include "parallel.h"
#include "sha256_mb.h"

#include <openssl/evp.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace conflux::dataplane {

namespace {

constexpr size_t kPiece = 1 << 20;  // a multiple of 64: whole pieces need no copying

template <class... Args>
std::exception_ptr data_error(fmt::format_string<Args...> f, Args&&... args) {
  return std::make_exception_ptr(DataError(fmt::format(f, std::forward<Args>(args)...), __FILE__, __LINE__));
}

// Hashes the files `group` (indices into paths) on this thread.
void hash_group(const std::vector<std::string>& paths, const std::vector<size_t>& group, Sha256Kernel kernel,
                std::vector<Sha256Digest>& out, std::vector<std::exception_ptr>& errors) {
  MultiSha256 ctx(kernel);
  const size_t lanes = ctx.lanes();
  std::vector<int> fd(lanes, -1);
  std::vector<size_t> file(lanes);
  std::vector<std::vector<uint8_t>> buf(lanes, std::vector<uint8_t>(kPiece));
  size_t next = 0;
  auto close_lane = [&](size_t l) {
    if (fd[l] >= 0) ::close(fd[l]);
    fd[l] = -1;
  };
  // Reads the lane's next piece (a short piece is the end of the file) and feeds it; on a read
  // error records it and drops the file. True if the lane still has a message.
  auto feed = [&](size_t l) {
    size_t got = 0;
    while (got < kPiece) {
      ssize_t r = ::read(fd[l], buf[l].data() + got, kPiece - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        errors[file[l]] = data_error("{}: read error while computing its checksum: {}", paths[file[l]],
                                     std::strerror(errno));
        close_lane(l);
        ctx.reset(l);
        return false;
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    ctx.feed(l, buf[l].data(), got);
    if (got < kPiece) {
      ctx.finish(l);
      close_lane(l);
    }
    return true;
  };
  // Starts the group's next openable file on lane l (or leaves it idle).
  auto load = [&](size_t l) {
    while (next < group.size()) {
      size_t i = group[next++];
      int f = ::open(paths[i].c_str(), O_RDONLY | O_CLOEXEC);
      if (f < 0) {
        errors[i] = data_error("{}: cannot open to compute its checksum: {}", paths[i], std::strerror(errno));
        continue;
      }
      ::posix_fadvise(f, 0, 0, POSIX_FADV_SEQUENTIAL);
      fd[l] = f;
      file[l] = i;
      ctx.start(l);
      if (feed(l)) return;
    }
    ctx.reset(l);
  };
  try {
    for (size_t l = 0; l < lanes; ++l) load(l);
    for (bool active = true; active;) {
      ctx.run();
      active = false;
      for (size_t l = 0; l < lanes; ++l) {
        auto st = ctx.state(l);
        if (st == MultiSha256::Lane::Done) {
          out[file[l]] = ctx.digest(l);
          load(l);
        } else if (st == MultiSha256::Lane::NeedsData && !feed(l)) {
          load(l);
        }
        active = active || ctx.state(l) != MultiSha256::Lane::Idle;
      }
    }
  } catch (...) {
    for (size_t l = 0; l < lanes; ++l) close_lane(l);
    throw;
  }
}

}  // namespace

std::vector<Sha256Digest> sha256_files(const std::vector<std::string>& paths, int threads, Sha256Isa isa,
                                       std::vector<std::exception_ptr>* errors) {
  const Sha256Isa level = resolve_isa(isa);
  // Group by size so lanes run out together (a file that cannot be stat'ed fails when opened).
  std::vector<size_t> sizes(paths.size(), 0);
  for (size_t i = 0; i < paths.size(); ++i) {
    struct stat sb;
    if (::stat(paths[i].c_str(), &sb) == 0) sizes[i] = static_cast<size_t>(sb.st_size);
  }
  auto groups = sha256_groups(sizes, threads, level);
  std::vector<Sha256Digest> out(paths.size());
  std::vector<std::exception_ptr> errs(paths.size());
  parallel_for(groups.size(), static_cast<int>(groups.size()), [&](size_t g) {
    hash_group(paths, groups[g], kernel_for(groups[g].size(), level), out, errs);
  });
  if (errors) {
    *errors = std::move(errs);
  } else {
    for (auto& e : errs)
      if (e) std::rethrow_exception(e);
  }
  return out;
}

// OpenSSL's SHA-256 (assembly, about twice libsodium's portable C on these CPUs).
std::string sha256_hex(const void* data, size_t size) {
  Sha256Digest d;
  unsigned int len = 0;
  if (EVP_Digest(data, size, d.data(), &len, EVP_sha256(), nullptr) != 1 || len != d.size())
    CONFLUX_THROW(InternalError, "OpenSSL SHA-256 failed");
  return digest_hex(d);
}

// One file: read in pieces and hashed by OpenSSL (sha256_mb.h; several files go in SIMD lanes).
std::string sha256_file(const std::string& path) { return digest_hex(sha256_files({path}, 1).at(0)); }

}  // namespace conflux::dataplane
