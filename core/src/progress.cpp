// Rank-0 progress: a redrawn bar on a terminal, sparse plain lines otherwise.
#include "conflux/core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace conflux {

Progress::Progress(std::string label, uint64_t total, ProgressOptions options)
    : label_(std::move(label)), total_(total), opt_(std::move(options)) {
  if (!opt_.clock) opt_.clock = [] { return std::chrono::steady_clock::now(); };
  active_ = opt_.rank == 0 && opt_.out != nullptr;
  tty_ = opt_.terminal < 0 ? (active_ && isatty(fileno(opt_.out))) : opt_.terminal == 1;
  start_ = last_draw_ = opt_.clock();
}

Progress::~Progress() {
  if (!finished_) finish();
}

void Progress::advance(uint64_t n, const std::string& extra) { set(done_ + n, extra); }

void Progress::set(uint64_t done, const std::string& extra) {
  done_ = done;
  if (!extra.empty()) extra_ = extra;
  render(false);
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  if (!extra.empty()) extra_ = extra;
  render(true);
  if (active_ && tty_) std::fputc('\n', opt_.out);
  if (active_) std::fflush(opt_.out);
  finished_ = true;
}

double Progress::rate() const {
  double secs = std::chrono::duration<double>(opt_.clock() - start_).count();
  return secs > 0 ? static_cast<double>(done_) / secs : 0.0;
}

double Progress::eta_seconds() const {
  double r = rate();
  if (total_ == 0 || r <= 0 || done_ > total_) return -1;
  return static_cast<double>(total_ - done_) / r;
}

std::string Progress::format_duration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) return "?";
  auto s = static_cast<long long>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

void Progress::render(bool force) {
  if (!active_) return;
  auto now = opt_.clock();
  auto interval = tty_ ? opt_.redraw_interval : opt_.plain_interval;
  if (!force && now - last_draw_ < interval) return;
  last_draw_ = now;
  std::string pct, bar;
  if (total_ > 0) {
    double frac = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    pct = fmt::format("{:3.0f}% ", frac * 100.0);
    if (tty_) {
      int filled = static_cast<int>(frac * 30);
      bar = "[" + std::string(filled, '#') + std::string(30 - filled, '.') + "] ";
    }
  }
  std::string counts = total_ > 0 ? fmt::format("{}/{}", done_, total_) : fmt::format("{}", done_);
  double secs = std::chrono::duration<double>(now - start_).count();
  std::string tail = force ? fmt::format("in {}", format_duration(secs))
                           : fmt::format("ETA {}", format_duration(eta_seconds()));
  std::string line = fmt::format("{} {}{}{} {:.1f} {}/s {}{}{}", label_, bar, pct, counts, rate(), opt_.unit,
                                 tail, extra_.empty() ? "" : " | ", extra_);
  if (tty_) {
    std::fprintf(opt_.out, "\r%s\033[K", line.c_str());
  } else {
    std::fprintf(opt_.out, "%s\n", line.c_str());
  }
  std::fflush(opt_.out);
}

}  // namespace conflux
