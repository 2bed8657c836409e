// Error hierarchy support: kinds, exit codes, the rank/host context and the user paragraph.
#include "conflux/core/error.h"

#include <mutex>

namespace conflux {
namespace {
std::mutex g_context_mu;
std::string g_context;  // "rank 3 on node07"; written once by ProcessGrid, read on throw

std::string strip_source_root(const char* file) {
  std::string f = file ? file : "?";
  for (const char* root : {"/tests/", "/bench/", "/core/", "/dataplane/", "/trainer/", "/evaluator/", "/coordinator/",
                           "/worker/", "/protocol/"}) {
    auto pos = f.rfind(root);
    if (pos != std::string::npos) return f.substr(pos + 1);
  }
  return f;
}
}  // namespace

Error::Error(ErrorKind kind, std::string message, const char* file, int line)
    : std::runtime_error([&] {
        std::string ctx = error_context();
        return fmt::format("{}{}{} ({}:{})", message, ctx.empty() ? "" : " [", ctx.empty() ? "" : ctx + "]",
                           strip_source_root(file), line);
      }()),
      kind_(kind),
      message_(std::move(message)),
      file_(file),
      line_(line) {}

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Config: return "configuration error";
    case ErrorKind::Data: return "data error";
    case ErrorKind::Usage: return "usage error";
    case ErrorKind::Io: return "I/O error";
    case ErrorKind::Privacy: return "privacy error";
    case ErrorKind::Communication: return "communication error";
    case ErrorKind::Protocol: return "protocol error";
    case ErrorKind::Internal: return "internal error";
  }
  return "error";
}

int exit_code(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Usage: return kExitUsage;
    case ErrorKind::Communication:
    case ErrorKind::Protocol: return kExitComm;
    case ErrorKind::Internal: return kExitInternal;
    default: return kExitUser;
  }
}

std::string error_context() {
  std::lock_guard<std::mutex> lock(g_context_mu);
  return g_context;
}

void set_error_context(int rank, const std::string& host) {
  std::lock_guard<std::mutex> lock(g_context_mu);
  g_context = fmt::format("rank {} on {}", rank, host);
}

std::string describe_for_user(const Error& e) {
  const char* hint = "";
  switch (e.kind()) {
    case ErrorKind::Config: hint = "Fix the configuration file or the --set override named above."; break;
    case ErrorKind::Data: hint = "The input data named above is not what Conflux expects; nothing was written."; break;
    case ErrorKind::Usage: hint = "Run with --help for usage and an example."; break;
    case ErrorKind::Io: hint = "Check that the path exists, is readable/writable and the disk is not full."; break;
    case ErrorKind::Privacy: hint = "The privacy parameters above are invalid or the budget is exhausted."; break;
    case ErrorKind::Communication: hint = "A peer rank or worker failed or diverged; see its own log for the root cause."; break;
    case ErrorKind::Protocol: hint = "A peer sent a message this version cannot accept."; break;
    case ErrorKind::Internal: hint = "This is a bug in Conflux; please report it with the log."; break;
  }
  return fmt::format("conflux: {}: {}\n{}", error_kind_name(e.kind()), e.what(), hint);
}

}  // namespace conflux
