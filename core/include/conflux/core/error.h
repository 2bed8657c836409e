// Conflux's error model: one typed exception hierarchy for every library.
//
// Contract: library code throws a subclass of conflux::Error (never calls exit()); only main()
// turns an Error into an exit code and a message (see exit_code()). Every error carries the
// call site (file:line) and, once the process grid is up, the rank and host that raised it.
// Expected outcomes ("no message yet", "would block") are return values, never exceptions.
// Thread safety: Error objects are immutable after construction.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace conflux {

enum class ErrorKind { Config, Data, Usage, Io, Privacy, Communication, Protocol, Internal };

// Exit codes, documented once (docs/cli.md): 0 ok, 1 user error (config, data, I/O, privacy),
// 2 usage, 3 communication/peer failure, 4 internal error, 75 preempted (checkpoint written).
inline constexpr int kExitOk = 0;
inline constexpr int kExitUser = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitComm = 3;
inline constexpr int kExitInternal = 4;
inline constexpr int kExitPreempted = 75;

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string message, const char* file, int line);
  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }  // without the location prefix
  const char* file() const { return file_; }
  int line() const { return line_; }

 private:
  ErrorKind kind_;
  std::string message_;
  const char* file_;
  int line_;
};

#define CONFLUX_DEFINE_ERROR(Name, Kind)                                \
  class Name : public Error {                                           \
   public:                                                              \
    Name(std::string message, const char* file, int line)              \
        : Error(ErrorKind::Kind, std::move(message), file, line) {}     \
  };
CONFLUX_DEFINE_ERROR(ConfigError, Config)
CONFLUX_DEFINE_ERROR(DataError, Data)
CONFLUX_DEFINE_ERROR(UsageError, Usage)
CONFLUX_DEFINE_ERROR(IoError, Io)
CONFLUX_DEFINE_ERROR(PrivacyError, Privacy)
CONFLUX_DEFINE_ERROR(CommError, Communication)
CONFLUX_DEFINE_ERROR(ProtocolError, Protocol)
CONFLUX_DEFINE_ERROR(InternalError, Internal)
#undef CONFLUX_DEFINE_ERROR

const char* error_kind_name(ErrorKind kind);
int exit_code(ErrorKind kind);

// "rank 3 on node07" once set_error_context() has been called (by ProcessGrid), else "".
std::string error_context();
void set_error_context(int rank, const std::string& host);

// Formats the user-facing paragraph main() prints: kind, message, where, what to do.
std::string describe_for_user(const Error& e);

}  // namespace conflux

// Throw a typed error with the call site: CONFLUX_THROW(DataError, "shard {} missing", path).
#define CONFLUX_THROW(ErrType, ...) \
  throw ::conflux::ErrType(::fmt::format(__VA_ARGS__), __FILE__, __LINE__)

// Internal invariant check; unlike assert() it stays on in Release and never hides side effects.
#define CONFLUX_CHECK(cond, ...)                                         \
  do {                                                                   \
    if (!(cond)) {                                                       \
      CONFLUX_THROW(InternalError, "check failed: {}: {}", #cond,        \
                    ::fmt::format(__VA_ARGS__));                         \
    }                                                                    \
  } while (0)
