// conflux::proc: real child processes (sh), their exit codes, signals, logs, environment, cwd.
#include "conflux/core/error.h"
#include "conflux/core/subprocess.h"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace conflux;

namespace {
std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("conflux-subprocess-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
}  // namespace

TEST(Subprocess, ExitCodeAndLogHoldBothStreamsAppended) {
  const fs::path d = fresh_dir("log");
  const std::string log = (d / "stage.log").string();
  proc::Command c;
  c.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"};
  c.log = log;
  const proc::Outcome o = proc::run(c);
  EXPECT_EQ(o.exit_code, 3);
  EXPECT_EQ(o.signal, 0);
  EXPECT_FALSE(o.ok());
  EXPECT_EQ(o.describe(), "exit code 3");
  c.argv = {"sh", "-c", "echo again"};
  EXPECT_TRUE(proc::run(c).ok());
  EXPECT_EQ(slurp(log), "out\nerr\nagain\n");
  fs::remove_all(d);
}

TEST(Subprocess, TickIsCalledWhileWaiting) {
  proc::Command c;
  c.argv = {"sh", "-c", "exit 4"};
  int ticks = 0;
  c.tick = [&] { ++ticks; };
  c.tick_s = 10;
  const proc::Outcome o = proc::run(c);
  EXPECT_EQ(o.exit_code, 4);
  EXPECT_EQ(ticks, 1);  // the first tick comes at once, the next not before 10 s
}

TEST(Subprocess, ChildRunsAlongsideAndIsTerminated) {
  proc::Command c;
  c.argv = {"sh", "-c", "exit 5"};
  proc::Child quick = proc::start(c);
  EXPECT_EQ(quick.wait().exit_code, 5);
  EXPECT_FALSE(quick.running());
  c.argv = {"sleep", "600"};
  proc::Child slow = proc::start(c);
  EXPECT_FALSE(slow.wait_for(0.1).has_value());  // bounded: sleep 600 cannot end in 0.1 s
  const int pid = slow.pid();
  const proc::Outcome o = slow.terminate(5);
  EXPECT_EQ(o.signal, 15);
  EXPECT_NE(::kill(pid, 0), 0);  // reaped: no such process any more
  {
    proc::Child scoped = proc::start(c);
    EXPECT_TRUE(scoped.running());
  }  // the destructor ends it; nothing left to wait for
}

TEST(Subprocess, SignalIsReported) {
  proc::Command c;
  c.argv = {"sh", "-c", "kill -9 $$"};
  const proc::Outcome o = proc::run(c);
  EXPECT_EQ(o.signal, 9);
  EXPECT_EQ(o.exit_code, 137);
  EXPECT_EQ(o.describe(), "killed by signal 9 (SIGKILL)");
}

TEST(Subprocess, CaptureEnvironmentAndWorkingDirectory) {
  const fs::path d = fresh_dir("env");
  ::setenv("CONFLUX_SUBPROCESS_DROP", "x", 1);
  proc::Command c;
  c.argv = {"sh", "-c", "pwd; echo \"$CONFLUX_SUBPROCESS_A|${CONFLUX_SUBPROCESS_DROP-unset}\"; cat"};
  c.cwd = d.string();
  c.env_set = {{"CONFLUX_SUBPROCESS_A", "a b"}};
  c.env_unset = {"CONFLUX_SUBPROCESS_DROP"};
  const proc::Captured r = proc::capture(c);
  EXPECT_TRUE(r.outcome.ok());
  // stdin is /dev/null: `cat` ends at once.
  EXPECT_EQ(r.out, fs::canonical(d).string() + "\na b|unset\n");
  ::unsetenv("CONFLUX_SUBPROCESS_DROP");
  fs::remove_all(d);
}

TEST(Subprocess, MissingProgramIsAnIoErrorNamingIt) {
  proc::Command c;
  c.argv = {"conflux-no-such-program-xyz"};
  try {
    proc::run(c);
    FAIL() << "expected an IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("conflux-no-such-program-xyz"), std::string::npos) << e.what();
  }
  EXPECT_EQ(proc::find_program("conflux-no-such-program-xyz"), "");
  EXPECT_EQ(fs::path(proc::find_program("sh")).filename(), "sh");
}

TEST(Subprocess, ShellLineQuotesWhatNeedsIt) {
  EXPECT_EQ(proc::shell_line({"mpirun", "-np", "2", "conflux", "train", "a b.toml", "--set", "x='y'"}),
            "mpirun -np 2 conflux train 'a b.toml' --set 'x='\\''y'\\'''");
  EXPECT_EQ(proc::shell_line({""}), "''");
}

TEST(Subprocess, SelfExecutableIsThisTestBinary) {
  const std::string self = conflux::proc::self_executable();
  ASSERT_FALSE(self.empty());
  EXPECT_TRUE(std::filesystem::path(self).is_absolute()) << self;
  EXPECT_EQ(std::filesystem::canonical(self), std::filesystem::canonical("/proc/self/exe"));
  EXPECT_NE(self.find("test_core_unit"), std::string::npos) << self;
}
