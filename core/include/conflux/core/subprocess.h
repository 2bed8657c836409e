// Running another program (mpirun, sbatch, a conflux stage) from a driver verb and waiting for it:
// the one implementation behind `conflux pipeline` and `conflux monitor`.
//
// run(cmd) starts cmd.argv[0] (looked up in PATH when it has no '/') with posix_spawnp, in
// cmd.cwd when given, with cmd.env_set added to (or replacing in) this process's environment and
// the names in cmd.env_unset removed. Output: with cmd.log set, the child's stdout and stderr are
// both appended to that file (created 0644); otherwise they are this process's. Stdin is
// /dev/null. It waits for the child and returns how it ended. SIGINT and SIGTERM that reach
// this process while it waits are passed on to the child (which then decides how to end); run()
// still waits for it. A program that cannot be started is an IoError naming it.
//
// capture(cmd) is run() with the child's stdout returned as a string (stderr still goes to
// cmd.log or this process's stderr); for short outputs (sbatch --parsable, squeue, sacct).
//
// Not thread-safe with respect to signal dispositions: call from one thread at a time.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace conflux::proc {

struct Command {
  std::vector<std::string> argv;              // argv[0] is the program
  std::string cwd;                            // empty: this process's working directory
  std::string log;                            // empty: inherit stdout/stderr
  std::map<std::string, std::string> env_set;
  std::vector<std::string> env_unset;
  // Called about every tick_s seconds while run() waits (progress display); none when empty.
  std::function<void()> tick;
  double tick_s = 1.0;
};

struct Outcome {
  int exit_code = 0;   // when the child exited
  int signal = 0;      // when a signal ended it (exit_code is then 128 + signal)
  bool ok() const { return exit_code == 0 && signal == 0; }
  std::string describe() const;  // "exit code 3" / "killed by signal 9 (SIGKILL)"
};

Outcome run(const Command& cmd);

// A child that runs alongside this process (e.g. local participants of a federated stage):
// start() spawns it like run() (without tick or signal forwarding); wait() reaps it; terminate()
// sends SIGTERM, waits up to grace_s and then SIGKILLs. The destructor terminates a child that is
// still running, so no child outlives its owner's scope.
class Child {
 public:
  Child() = default;
  explicit Child(int pid) : pid_(pid) {}
  Child(Child&& o) noexcept : pid_(o.pid_) { o.pid_ = -1; }
  Child& operator=(Child&& o) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();
  int pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  Outcome wait();
  std::optional<Outcome> wait_for(double seconds);  // nullopt if still running after `seconds`
  Outcome terminate(double grace_s = 10);

 private:
  int pid_ = -1;
};
Child start(const Command& cmd);

struct Captured {
  Outcome outcome;
  std::string out;
};
Captured capture(const Command& cmd);

// The full path of `program` found in PATH (or `program` itself when it holds a '/' and is
// executable); empty when there is none.
std::string find_program(const std::string& program);

// The full path of the running executable (/proc/self/exe): driver verbs start the very conflux
// binary they run as. Empty when it cannot be read.
std::string self_executable();

// argv as a copy-pasteable shell command line (each word quoted when it needs to be).
std::string shell_line(const std::vector<std::string>& argv);

}  // namespace conflux::proc
