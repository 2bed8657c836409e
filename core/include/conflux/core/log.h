// Leveled, rank-prefixed logging on stderr (fmt formatting, one write(2) per line).
//
// Contract: results go to stdout, logs to stderr. By default rank 0 logs at info and other ranks
// only at warn and above; CONFLUX_LOG_LEVEL (trace|debug|info|warn|error|off) or
// log::set_level() change that for every rank. Lines read "[hh:mm:ss.mmm] [rank 1] [warn] ...".
// Thread safety: all functions may be called from any thread.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace conflux::log {

enum class Level { Trace, Debug, Info, Warn, Error, Off };

// Called by ProcessGrid once the rank is known.
// Before that (or in processes outside an MPI job) lines are prefixed "[pid N]".
void set_rank(int rank);
void set_level(Level level);  // applies to all ranks
Level level();
bool parse_level(std::string_view text, Level* out);
void write(Level level, std::string_view message);
bool enabled(Level level);

template <typename... Args>
void trace(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::Trace)) write(Level::Trace, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::Debug)) write(Level::Debug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::Info)) write(Level::Info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::Warn)) write(Level::Warn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::Error)) write(Level::Error, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace conflux::log
