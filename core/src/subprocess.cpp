#include "conflux/core/subprocess.h"

#include "conflux/core/error.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <set>

extern char** environ;

namespace conflux::proc {
namespace {

volatile sig_atomic_t g_child = 0;

void forward(int sig) {
  const pid_t p = g_child;
  if (p > 0) ::kill(p, sig);
}

// Passes SIGINT/SIGTERM on to the running child for as long as it lives.
class Forwarder {
 public:
  explicit Forwarder(pid_t child) {
    g_child = child;
    struct sigaction sa {};
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~Forwarder() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
    g_child = 0;
  }
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

std::vector<std::string> environment(const Command& cmd) {
  std::vector<std::string> out;
  std::set<std::string> drop(cmd.env_unset.begin(), cmd.env_unset.end());
  for (const auto& [k, v] : cmd.env_set) drop.insert(k);
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    const auto eq = entry.find('=');
    if (drop.count(entry.substr(0, eq))) continue;
    out.push_back(entry);
  }
  for (const auto& [k, v] : cmd.env_set) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  for (auto& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

class FileActions {
 public:
  FileActions() { posix_spawn_file_actions_init(&fa_); }
  ~FileActions() { posix_spawn_file_actions_destroy(&fa_); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
  posix_spawn_file_actions_t* get() { return &fa_; }

 private:
  posix_spawn_file_actions_t fa_;
};

// Starts the child; `out_fd` >= 0 becomes its stdout (the capture pipe's write end) and
// `close_fd` is closed in it (the pipe's read end).
pid_t spawn(const Command& cmd, int out_fd, int close_fd) {
  if (cmd.argv.empty()) CONFLUX_THROW(UsageError, "no program to run");
  std::vector<std::string> args = cmd.argv, env = environment(cmd);
  std::vector<char*> argv = pointers(args), envp = pointers(env);
  int log_fd = -1;
  if (!cmd.log.empty()) {
    log_fd = ::open(cmd.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) CONFLUX_THROW(IoError, "cannot open the log file '{}': {}", cmd.log, std::strerror(errno));
  }
  FileActions fa;
  posix_spawn_file_actions_addopen(fa.get(), STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (log_fd >= 0) {
    posix_spawn_file_actions_adddup2(fa.get(), log_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(fa.get(), log_fd, STDERR_FILENO);
  }
  if (out_fd >= 0) posix_spawn_file_actions_adddup2(fa.get(), out_fd, STDOUT_FILENO);
  if (close_fd >= 0) posix_spawn_file_actions_addclose(fa.get(), close_fd);
  if (!cmd.cwd.empty()) posix_spawn_file_actions_addchdir_np(fa.get(), cmd.cwd.c_str());
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, argv[0], fa.get(), nullptr, argv.data(), envp.data());
  if (log_fd >= 0) ::close(log_fd);
  if (rc != 0) CONFLUX_THROW(IoError, "cannot run '{}': {}", cmd.argv[0], std::strerror(rc));
  return pid;
}

Outcome outcome_of(int status) {
  Outcome o;
  if (WIFSIGNALED(status)) {
    o.signal = WTERMSIG(status);
    o.exit_code = 128 + o.signal;
  } else {
    o.exit_code = WEXITSTATUS(status);
  }
  return o;
}

Outcome wait_for_pid(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) CONFLUX_THROW(IoError, "waiting for process {}: {}", pid, std::strerror(errno));
  }
  return outcome_of(status);
}

}  // namespace

std::string Outcome::describe() const {
  if (signal != 0) {
    const char* name = sigabbrev_np(signal);
    return fmt::format("killed by signal {} (SIG{})", signal, name ? name : "?");
  }
  return fmt::format("exit code {}", exit_code);
}

Outcome run(const Command& cmd) {
  const pid_t pid = spawn(cmd, -1, -1);
  Forwarder fw(pid);
  if (!cmd.tick) return wait_for_pid(pid);
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return outcome_of(status);
    if (r < 0 && errno != EINTR) CONFLUX_THROW(IoError, "waiting for process {}: {}", pid, std::strerror(errno));
    if (std::chrono::steady_clock::now() >= next) {
      cmd.tick();
      next += std::chrono::milliseconds(static_cast<int64_t>(cmd.tick_s * 1000));
    }
    ::usleep(50000);
  }
}

Child start(const Command& cmd) { return Child(spawn(cmd, -1, -1)); }

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0) terminate(1);
    pid_ = o.pid_;
    o.pid_ = -1;
  }
  return *this;
}

Child::~Child() {
  if (pid_ > 0) terminate(1);
}

Outcome Child::wait() {
  if (pid_ <= 0) CONFLUX_THROW(InternalError, "wait() on a child that is not running");
  const Outcome o = wait_for_pid(pid_);
  pid_ = -1;
  return o;
}

std::optional<Outcome> Child::wait_for(double seconds) {
  if (pid_ <= 0) CONFLUX_THROW(InternalError, "wait_for() on a child that is not running");
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return outcome_of(status);
    }
    if (r < 0 && errno != EINTR) CONFLUX_THROW(IoError, "waiting for process {}: {}", pid_, std::strerror(errno));
    if (std::chrono::steady_clock::now() >= end) return std::nullopt;
    ::usleep(50000);
  }
}

Outcome Child::terminate(double grace_s) {
  if (pid_ <= 0) return {};
  ::kill(pid_, SIGTERM);
  if (auto o = wait_for(grace_s)) return *o;
  ::kill(pid_, SIGKILL);
  return wait();
}

Captured capture(const Command& cmd) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) CONFLUX_THROW(IoError, "pipe: {}", std::strerror(errno));
  pid_t pid = 0;
  try {
    pid = spawn(cmd, fds[1], fds[0]);
  } catch (...) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw;
  }
  ::close(fds[1]);
  Forwarder fw(pid);
  Captured c;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      c.out.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  c.outcome = wait_for_pid(pid);
  return c;
}

std::string self_executable() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string find_program(const std::string& program) {
  if (program.empty()) return {};
  if (program.find('/') != std::string::npos) return ::access(program.c_str(), X_OK) == 0 ? program : "";
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    const size_t end = p.find(':', start);
    std::string dir = p.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (dir.empty()) dir = ".";
    const std::string cand = dir + "/" + program;
    struct stat st {};
    if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(cand.c_str(), X_OK) == 0) return cand;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return {};
}

std::string shell_line(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    const bool plain = !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                         "0123456789_-./=:,+@%") == std::string::npos;
    if (plain) {
      out += a;
      continue;
    }
    out += '\'';
    for (char c : a) {
      if (c == '\'') out += "'\\''";
      else out += c;
    }
    out += '\'';
  }
  return out;
}

}  // namespace conflux::proc
