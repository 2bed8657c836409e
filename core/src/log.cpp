// Rank-prefixed leveled logger. Lines are assembled in one buffer and written with a single
// fwrite so lines from different threads never interleave mid-line.
#include "conflux/core/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

#include <unistd.h>

namespace conflux::log {
namespace {
std::atomic<int> g_rank{-1};
std::atomic<int> g_level{-1};  // -1: not set, derive from rank and environment
std::mutex g_write_mu;

Level env_level() {
  static const int cached = [] {
    Level l;
    const char* v = std::getenv("CONFLUX_LOG_LEVEL");
    if (v && parse_level(v, &l)) return static_cast<int>(l);
    return -1;
  }();
  return cached < 0 ? Level::Off : static_cast<Level>(cached);
}

bool env_level_set() {
  const char* v = std::getenv("CONFLUX_LOG_LEVEL");
  Level l;
  return v && parse_level(v, &l);
}

const char* level_name(Level l) {
  switch (l) {
    case Level::Trace: return "trace";
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warn: return "warn";
    case Level::Error: return "error";
    case Level::Off: return "off";
  }
  return "?";
}
}  // namespace

void set_rank(int rank) { g_rank.store(rank); }
void set_level(Level level) { g_level.store(static_cast<int>(level)); }

Level level() {
  int l = g_level.load();
  if (l >= 0) return static_cast<Level>(l);
  if (env_level_set()) return env_level();
  return g_rank.load() > 0 ? Level::Warn : Level::Info;
}

bool enabled(Level l) { return l != Level::Off && static_cast<int>(l) >= static_cast<int>(level()); }

bool parse_level(std::string_view text, Level* out) {
  static const std::pair<const char*, Level> names[] = {
      {"trace", Level::Trace}, {"debug", Level::Debug}, {"info", Level::Info},
      {"warn", Level::Warn},   {"warning", Level::Warn}, {"error", Level::Error}, {"off", Level::Off}};
  for (auto& [n, l] : names) {
    if (text == n) {
      *out = l;
      return true;
    }
  }
  return false;
}

void write(Level l, std::string_view message) {
  auto now = std::chrono::system_clock::now();
  auto t = std::chrono::system_clock::to_time_t(now);
  int ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  int rank = g_rank.load();
  // Outside an MPI job (coordinator, worker) there is no rank: name the process instead.
  std::string who = rank < 0 ? fmt::format("pid {}", static_cast<long>(getpid())) : fmt::format("rank {}", rank);
  std::string line = fmt::format("[{:02}:{:02}:{:02}.{:03}] [{}] [{}] {}\n", tm.tm_hour, tm.tm_min, tm.tm_sec, ms,
                                 who, level_name(l), message);
  std::lock_guard<std::mutex> lock(g_write_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace conflux::log
