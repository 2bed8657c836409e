// Scratch directories for tests: each is removed when the test program exits normally, whatever
// the tests' outcome, so repeated runs leave nothing behind in /tmp.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace conflux::test {

class ScratchDirs {
 public:
  ~ScratchDirs() {
    for (const auto& d : dirs_) {
      std::error_code ec;  // another rank of the same test may have removed it already
      std::filesystem::remove_all(d, ec);
    }
  }
  void add(const std::string& dir) {
    std::lock_guard<std::mutex> lock(mu_);
    dirs_.push_back(dir);
  }

 private:
  std::mutex mu_;
  std::vector<std::string> dirs_;
};

// Removes `dir` (recursively) at exit. Every rank of an MPI test may register the same directory:
// ranks exit after MPI_Finalize, when no rank uses it any more.
inline void remove_at_exit(const std::string& dir) {
  static ScratchDirs dirs;
  dirs.add(dir);
}

// A new directory <tmp>/<prefix>XXXXXX (mkdtemp), removed at exit.
inline std::string make_scratch_dir(const std::string& prefix) {
  std::string t = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
  if (!::mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed for " + t);
  remove_at_exit(t);
  return t;
}

}  // namespace conflux::test
