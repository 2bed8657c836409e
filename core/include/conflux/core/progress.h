// Progress reporting for long work: rank 0 only.
//
// On a terminal: a redrawn bar "label [#####.....] 42% 1234/3000 56.1 it/s ETA 0:31 | extra".
// Not on a terminal: a plain line at most every `plain_interval` (and one at the end), so batch
// logs stay short. Other ranks print nothing. The clock and output are injectable for tests.
// Thread safety: one thread updates a Progress.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace conflux {

struct ProgressOptions {
  int rank = 0;                 // only rank 0 reports
  int terminal = -1;            // -1: detect with isatty(stderr); 0/1 force
  std::chrono::milliseconds plain_interval{std::chrono::seconds(30)};
  std::chrono::milliseconds redraw_interval{std::chrono::milliseconds(100)};
  std::string unit = "it";
  std::FILE* out = stderr;
  std::function<std::chrono::steady_clock::time_point()> clock;  // default: steady_clock::now
};

class Progress {
 public:
  Progress(std::string label, uint64_t total, ProgressOptions options = {});
  ~Progress();  // calls finish() if not yet finished
  void advance(uint64_t n = 1, const std::string& extra = "");
  void set(uint64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");
  double rate() const;            // items per second so far
  double eta_seconds() const;     // -1 when unknown

  static std::string format_duration(double seconds);  // "1:02:03" / "2:03"

 private:
  void render(bool force);
  std::string label_;
  uint64_t total_, done_ = 0;
  ProgressOptions opt_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::string extra_;
  bool finished_ = false, tty_ = false, active_ = false;
};

}  // namespace conflux
