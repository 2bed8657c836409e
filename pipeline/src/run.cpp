// Records, digests, the plan (which stage runs and why) and the local run (contract in pipeline.h).
#include "conflux/core/atomic_file.h"
#include "conflux/core/error.h"
#include "conflux/core/log.h"
#include "conflux/core/subprocess.h"
#include "conflux/dataplane/manifest.h"
#include "conflux/pipeline/pipeline.h"
#include "conflux/report/run_report.h"
#include "conflux/trainer/checkpoint_meta.h"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace fs = std::filesystem;
using nlohmann::json;

namespace conflux::pipeline {
namespace {

std::string now_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string short_sha(const std::string& s) { return s.size() > 12 ? s.substr(0, 12) : (s.empty() ? "-" : s); }

std::string text_sha(const std::string& text) { return dataplane::sha256_hex(text.data(), text.size()); }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string kind_of(const Stage& s) { return s.name; }

void write_log_header(const std::string& log, const std::string& line) {
  std::ofstream out(log, std::ios::app);
  out << "==== [" << now_iso() << "] " << line << "\n";
  if (!out) CONFLUX_THROW(IoError, "cannot write the stage log '{}'", log);
}

// Training resumes from its newest checkpoint, federated rounds after the last complete round.
bool resumable(const Stage& s) { return s.name == "train" || s.name == "federate"; }

// A fresh training run must not resume from checkpoints written under another config or input:
// they are moved aside (never deleted) and the log says where.
void move_aside(const std::string& path, const std::string& log) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  if (fs::is_directory(path, ec) && fs::is_empty(path, ec)) return;
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  std::string target = fmt::format("{}.superseded-{}", path, stamp);
  for (int i = 1; fs::exists(target, ec); ++i) target = fmt::format("{}.superseded-{}-{}", path, stamp, i);
  fs::rename(path, target, ec);
  if (ec) CONFLUX_THROW(IoError, "cannot move '{}' aside to '{}': {}", path, target, ec.message());
  write_log_header(log, fmt::format("moved the previous run's {} to {}", path, target));
  std::cout << "          previous " << path << " moved to " << target << "\n";
}

// A free TCP port on 127.0.0.1 (the kernel's choice; released before the coordinator binds it).
int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) CONFLUX_THROW(IoError, "socket: {}", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const int e = errno;
    ::close(fd);
    CONFLUX_THROW(IoError, "cannot find a free port on 127.0.0.1: {}", std::strerror(e));
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

proc::Outcome run_quiet(const std::vector<std::string>& argv, const std::string& cwd, const std::string& log) {
  proc::Command c;
  c.argv = argv;
  c.cwd = cwd;
  c.log = log;
  write_log_header(log, "run: " + proc::shell_line(argv));
  return proc::run(c);
}

// A federated stage on this machine: the participants' datasets (cut by `conflux partition` when
// asked), CURVE keys for the coordinator and each participant (kept across runs), one
// conflux-worker per participant on 127.0.0.1, then the coordinator (`c`, with the server keys
// added). Participants that have not left a while after the coordinator ended are terminated.
proc::Outcome run_federate(const Pipeline& p, const Stage& s, proc::Command c) {
  const std::string sdir = p.stage_dir(s.name), keys = sdir + "/keys";
  const std::string conflux = c.argv.front();
  if (!s.partition_args.empty()) {
    std::vector<std::string> argv = {conflux, "partition", s.input};
    argv.insert(argv.end(), s.partition_args.begin(), s.partition_args.end());
    argv.insert(argv.end(), {"--out-dir", p.dir + "/data/participants"});
    const proc::Outcome r = run_quiet(argv, p.base, c.log);
    if (!r.ok()) return r;
  }
  fs::create_directories(keys);
  std::vector<std::string> names = {"coordinator"};
  for (size_t i = 0; i < s.participants.size(); ++i) names.push_back(fmt::format("p{}", i));
  std::string allow;
  std::error_code ec;
  for (const auto& n : names) {
    if (!fs::exists(keys + "/" + n + ".key", ec)) {
      const proc::Outcome r = run_quiet({conflux, "keygen", n, "--out-dir", keys}, p.base, c.log);
      if (!r.ok()) return r;
    }
    if (n != "coordinator") allow += read_text(keys + "/" + n + ".pub");
  }
  write_file_atomic(keys + "/allow.txt", allow);
  const std::string endpoint = fmt::format("tcp://127.0.0.1:{}", free_loopback_port());
  std::string worker = (fs::path(conflux).parent_path() / "conflux-worker").string();
  if (!fs::exists(worker, ec)) worker = "conflux-worker";
  std::vector<proc::Child> workers;
  for (size_t i = 0; i < s.participants.size(); ++i) {
    proc::Command w;
    w.argv = {worker, "--connect", endpoint, "--server-key", keys + "/coordinator.pub", "--key",
              fmt::format("{}/p{}.key", keys, i), "--data", s.participants[i], "--name", fmt::format("p{}", i),
              "--exit-on-bye", "--give-up-after", "120"};
    w.cwd = p.base;
    w.log = fmt::format("{}/participant-{}.log", sdir, i);
    write_log_header(w.log, "run: " + proc::shell_line(w.argv));
    workers.push_back(proc::start(w));
  }
  c.argv.insert(c.argv.end(), {"--set", "server.bind=\"" + endpoint + "\"", "--set",
                               "server.key=\"" + keys + "/coordinator.key\"", "--set",
                               "server.allow=\"" + keys + "/allow.txt\""});
  write_log_header(c.log, "coordinator: " + proc::shell_line(c.argv));
  const proc::Outcome out = proc::run(c);
  for (auto& w : workers)
    if (!w.wait_for(out.ok() ? 30 : 2)) w.terminate(5);
  return out;
}

}  // namespace

std::vector<std::string> log_tail(const std::string& path, size_t n) {
  std::ifstream in(path);
  std::deque<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
    if (lines.size() > n) lines.pop_front();
  }
  return {lines.begin(), lines.end()};
}

std::optional<Record> load_record(const Pipeline& p, const std::string& stage) {
  const std::string path = p.stage_dir(stage) + "/stage.json";
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  json j;
  try {
    j = json::parse(read_text(path));
  } catch (const json::exception& e) {
    CONFLUX_THROW(DataError, "{}: not valid JSON ({}); remove it to run the stage again", path, e.what());
  }
  Record r;
  try {
    r.status = j.at("status").get<std::string>();
    r.config_sha256 = j.value("config_sha256", "");
    r.input_sha256 = j.value("input_sha256", "");
    r.output_sha256 = j.value("output_sha256", "");
    r.output_detail = j.value("output_detail", "");
    r.command = j.value("command", "");
    r.started = j.value("started", "");
    r.finished = j.value("finished", "");
    r.elapsed_s = j.value("elapsed_s", 0.0);
    r.outcome = j.value("outcome", "");
    r.exit_code = j.value("exit_code", 0);
    r.job_ids = j.value("job_ids", std::vector<std::string>{});
  } catch (const json::exception& e) {
    CONFLUX_THROW(DataError, "{}: malformed stage record ({}); remove it to run the stage again", path, e.what());
  }
  return r;
}

void save_record(const Pipeline& p, const std::string& stage, const Record& r) {
  json j = {{"stage", stage},
            {"status", r.status},
            {"config_sha256", r.config_sha256},
            {"input_sha256", r.input_sha256},
            {"output_sha256", r.output_sha256},
            {"output_detail", r.output_detail},
            {"command", r.command},
            {"started", r.started},
            {"finished", r.finished},
            {"elapsed_s", r.elapsed_s},
            {"outcome", r.outcome},
            {"exit_code", r.exit_code},
            {"job_ids", r.job_ids}};
  fs::create_directories(p.stage_dir(stage));
  write_file_atomic(p.stage_dir(stage) + "/stage.json", j.dump(2) + "\n");
}

std::string dataset_digest(const std::string& dataset_dir) {
  const std::string m = dataset_dir + "/manifest.json";
  std::error_code ec;
  return fs::is_regular_file(m, ec) ? dataplane::sha256_file(m) : "";
}

std::string checkpoint_root_digest(const std::string& root, std::string* step_dir) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return "";
  // A checkpoint root (newest step-*) or one step directory.
  std::string step = fs::exists(fs::path(root) / "trainer_state.json", ec) ? root : "";
  if (step.empty()) {
    auto latest = trainer::latest_checkpoint(root);
    if (!latest) return "";
    step = *latest;
  }
  if (step_dir) *step_dir = step;
  return trainer::checkpoint_digest(step);
}

std::string files_digest(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& p : paths) {
    if (fs::is_directory(p, ec)) {
      for (const auto& e : fs::recursive_directory_iterator(p, ec))
        if (e.is_regular_file(ec)) files.push_back(e.path().string());
    } else if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      files.push_back(p + " (missing)");
    }
  }
  std::sort(files.begin(), files.end());
  std::string lines;
  for (const auto& f : files) {
    lines += f;
    lines += fs::is_regular_file(f, ec) ? " " + dataplane::sha256_file(f) : std::string(" -");
    lines += "\n";
  }
  return text_sha(lines);
}

std::string stage_input_digest(const Stage& s) {
  if (s.name == "ingest") return files_digest(s.raw_inputs);
  if (s.name == "prepare" || s.name == "train") return dataset_digest(s.input);
  if (s.name == "federate") {
    std::string lines;
    if (!s.init_from.empty()) {
      const std::string c = checkpoint_root_digest(s.init_from);
      if (c.empty()) return "";
      lines += "init " + c + "\n";
    }
    if (!s.partition_args.empty()) {
      const std::string d = dataset_digest(s.input);
      if (d.empty()) return "";
      lines += "partition of " + d + "\n";
    } else {
      for (const auto& part : s.participants) {
        const std::string d = dataset_digest(part);
        if (d.empty()) return "";
        lines += "participant " + d + "\n";
      }
    }
    return text_sha(lines);
  }
  // evaluate: the checkpoint it reads and the dataset it reads it on.
  const std::string c = checkpoint_root_digest(s.input), d = dataset_digest(s.input_dataset);
  return c.empty() || d.empty() ? "" : text_sha("checkpoint " + c + "\ndataset " + d + "\n");
}

std::string stage_output_digest(const Stage& s, std::string* detail) {
  if (s.name == "ingest" || s.name == "prepare") {
    if (detail) *detail = s.output;
    return dataset_digest(s.output);
  }
  if (s.name == "train" || s.name == "federate") return checkpoint_root_digest(s.output, detail);
  const std::string report = s.output + "/report.json";
  std::error_code ec;
  if (detail) *detail = report;
  return fs::is_regular_file(report, ec) ? dataplane::sha256_file(report) : "";
}

RunLock::RunLock(const Pipeline& p) {
  fs::create_directories(p.dir);
  const std::string path = p.dir + "/.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) CONFLUX_THROW(IoError, "cannot open the lock file '{}': {}", path, std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const std::string holder = read_text(path);
    ::close(fd_);
    fd_ = -1;
    CONFLUX_THROW(UsageError, "the run directory {} is in use by another `conflux pipeline` ({}); wait for it to "
                  "finish", p.dir, holder.empty() ? std::string("pid unknown") : "pid " + holder);
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // The pid is only for the message above; the lock itself holds.
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

std::vector<Decision> plan(const Pipeline& p, const RunOptions& o, const ConfigValidator& validate) {
  auto index_of = [&](const std::string& name, const char* flag) -> size_t {
    for (size_t i = 0; i < p.stages.size(); ++i)
      if (p.stages[i].name == name) return i;
    std::vector<std::string> names;
    for (const auto& s : p.stages) names.push_back(s.name);
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    CONFLUX_THROW(UsageError, "{} {}: the pipeline {} has no such stage (it has: {})", flag, name, p.file, list);
  };
  const size_t first = o.from.empty() ? 0 : index_of(o.from, "--from");
  const size_t last = o.until.empty() ? p.stages.size() - 1 : index_of(o.until, "--until");
  if (first > last) CONFLUX_THROW(UsageError, "--from {} comes after --until {}", o.from, o.until);
  for (const auto& f : o.force) index_of(f, "--force");

  std::vector<Decision> out;
  std::string upstream_runs;
  for (size_t i = first; i <= last; ++i) {
    const Stage& s = p.stages[i];
    Decision d;
    d.stage = s.name;
    const std::string sdir = p.stage_dir(s.name);
    fs::create_directories(sdir);
    if (s.name == "ingest") {
      std::vector<std::string> argv = s.ingest_args;
      argv.insert(argv.end(), {"-o", s.output});
      std::string text;
      for (const auto& a : argv) text += a + "\n";
      d.config_sha256 = text_sha("ingest\n" + text);
    } else {
      d.config_file = sdir + "/config.toml";
      write_file_atomic(d.config_file, "# The effective " + s.name + " config of pipeline stage '" + s.name +
                                           "', written by `conflux pipeline` from " + p.file + "\n" + s.config_text);
      const std::string effective = validate(kind_of(s), d.config_file, s.set);
      // Training's result depends on the data-parallel width; the other stages' do not.
      d.config_sha256 = text_sha(s.name + "\n" + effective +
                                 (s.name == "train" ? fmt::format("\nranks {}\n", s.resources.ranks) : ""));
    }
    const auto rec = load_record(p, s.name);
    const bool forced = std::find(o.force.begin(), o.force.end(), s.name) != o.force.end();
    d.run = true;
    if (forced) {
      d.reason = "forced (--force)";
    } else if (!rec) {
      d.reason = "never run";
    } else if (!upstream_runs.empty()) {
      d.reason = "upstream stage " + upstream_runs + " runs";
    } else if (rec->status != "done") {
      d.reason = "its last run is " + rec->status + (rec->outcome.empty() ? "" : " (" + rec->outcome + ")");
    } else if (rec->config_sha256 != d.config_sha256) {
      d.reason = "its config changed";
    } else {
      const std::string in = stage_input_digest(s);
      const std::string outd = stage_output_digest(s);
      if (in.empty()) d.reason = "its input is missing";
      else if (in != rec->input_sha256) d.reason = fmt::format("its input changed ({} -> {})", short_sha(rec->input_sha256), short_sha(in));
      else if (outd.empty()) d.reason = "its output " + s.output + " is missing";
      else if (outd != rec->output_sha256)
        d.reason = fmt::format("its output changed since it was written ({} -> {})", short_sha(rec->output_sha256), short_sha(outd));
      else {
        d.run = false;
        d.reason = "up to date (config, input and output unchanged)";
      }
    }
    if (d.run && upstream_runs.empty()) upstream_runs = s.name;
    out.push_back(d);
  }
  return out;
}

std::vector<std::string> stage_command(const Pipeline& p, const Stage& s, const Decision& d, const RunOptions& o) {
  std::vector<std::string> cmd = {o.conflux.empty() ? "conflux" : o.conflux, s.name};
  if (s.name == "ingest") {
    cmd.insert(cmd.end(), s.ingest_args.begin(), s.ingest_args.end());
    cmd.insert(cmd.end(), {"-o", s.output});
  } else {
    if (s.name == "prepare") cmd.push_back("--config");
    cmd.push_back(d.config_file);
    if (s.name == "evaluate") cmd.push_back("--mpi");
    for (const auto& x : s.set) cmd.insert(cmd.end(), {"--set", x});
  }
  if (s.name == "federate") return cmd;  // one coordinator process; participants are started beside it
  const int n = s.resources.ranks;
  std::vector<std::string> launch;
  if (o.launcher == "srun") {
    launch = {"srun", "--mpi=pmix", "-n", std::to_string(n)};
    if (s.resources.cpus_per_task > 0) launch.insert(launch.end(), {"-c", std::to_string(s.resources.cpus_per_task)});
  } else if (o.launcher == "mpirun") {
    if (n > 1) {
      launch = {"mpirun", "-np", std::to_string(n)};
      launch.insert(launch.end(), o.mpirun_args.begin(), o.mpirun_args.end());
      // Open MPI refuses root without this; the env var form counts too.
      if (::geteuid() == 0 && !std::getenv("OMPI_ALLOW_RUN_AS_ROOT")) launch.push_back("--allow-run-as-root");
    }
  } else {
    CONFLUX_THROW(UsageError, "--launcher {}: must be mpirun or srun", o.launcher);
  }
  launch.insert(launch.end(), cmd.begin(), cmd.end());
  return launch;
}

int run(const Pipeline& p, const RunOptions& o, const ConfigValidator& validate) {
  RunLock lock(p);
  const std::vector<Decision> decisions = plan(p, o, validate);
  std::cout << fmt::format("pipeline {}: {} stage(s), run directory {}{}\n", p.name, decisions.size(), p.dir,
                           o.dry_run ? " (dry run: nothing is executed)" : "");
  const size_t total = decisions.size();
  for (size_t i = 0; i < total; ++i) {
    const Decision& d = decisions[i];
    const Stage& s = *p.find(d.stage);
    const std::string head = fmt::format("[{}/{}] {:<9}", i + 1, total, s.name);
    if (!d.run) {
      std::cout << head << fmt::format("skipped: {}\n", d.reason);
      continue;
    }
    const std::vector<std::string> cmd = stage_command(p, s, d, o);
    const std::string log = p.stage_dir(s.name) + "/log.txt";
    if (o.dry_run) {
      std::cout << head << fmt::format("would run ({}): {}\n", d.reason, proc::shell_line(cmd));
      continue;
    }
    const auto prev = load_record(p, s.name);
    const bool resume = resumable(s) && prev && prev->status != "done" && prev->config_sha256 == d.config_sha256 &&
                        prev->input_sha256 == stage_input_digest(s);
    std::cout << head << fmt::format("runs ({}){}: {}\n", d.reason, resume ? ", resuming its checkpoints" : "",
                                     proc::shell_line(cmd))
              << std::flush;
    if (resumable(s) && !resume) {
      move_aside(s.output, log);
      move_aside(s.output_dir, log);
    }
    Record r;
    r.status = "running";
    r.config_sha256 = d.config_sha256;
    r.input_sha256 = stage_input_digest(s);
    r.command = proc::shell_line(cmd);
    r.started = now_iso();
    save_record(p, s.name, r);
    write_log_header(log, "run: " + r.command);
    const auto t0 = std::chrono::steady_clock::now();
    proc::Command c;
    c.argv = cmd;
    c.cwd = p.base;
    c.log = log;
    const bool tty = ::isatty(STDOUT_FILENO) == 1;
    if (tty) {
      // Progress on a terminal: the elapsed time and the stage's newest log line, redrawn.
      c.tick = [&] {
        const auto lines = log_tail(log, 1);
        std::string last = lines.empty() ? "" : lines.back();
        if (const auto cr = last.rfind('\r'); cr != std::string::npos) last = last.substr(cr + 1);
        if (last.size() > 100) last = last.substr(0, 100);
        const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::cout << fmt::format("\r\033[K          {:.0f} s | {}", t, last) << std::flush;
      };
    }
    const proc::Outcome out = s.name == "federate" ? run_federate(p, s, c) : proc::run(c);
    if (tty) std::cout << "\r\033[K" << std::flush;
    r.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.finished = now_iso();
    r.outcome = out.describe();
    r.exit_code = out.exit_code;
    if (out.ok()) {
      r.output_sha256 = stage_output_digest(s, &r.output_detail);
      if (r.output_sha256.empty()) {
        r.outcome = "exit code 0 but no output at " + s.output;
        r.exit_code = 1;
      }
    }
    r.status = r.exit_code == 0 ? "done" : "failed";
    save_record(p, s.name, r);
    if (r.status == "done") {
      std::cout << fmt::format("          done in {:.1f} s: {} {}\n", r.elapsed_s, r.output_detail,
                               short_sha(r.output_sha256));
      continue;
    }
    std::cout << fmt::format("          FAILED after {:.1f} s ({}); the last lines of {}:\n", r.elapsed_s, r.outcome, log);
    for (const auto& line : log_tail(log, 15)) std::cout << "          | " << line << "\n";
    std::cout << fmt::format("pipeline {}: stopped at stage {}; fix it and run again (stages already done are "
                             "skipped)\n", p.name, s.name);
    return r.exit_code;
  }
  if (!o.dry_run) std::cout << fmt::format("pipeline {}: done; report {}\n", p.name, write_report(p));
  return 0;
}

std::string write_report(const Pipeline& p) {
  report::RunReportInputs in;
  in.title = "Conflux pipeline '" + p.name + "'";
  for (const auto& s : p.stages) {
    if (s.name == "ingest" || s.name == "prepare") in.dataset_dir = s.output;
    if (s.name == "train") {
      in.dataset_dir = s.input;
      in.train_output_dir = s.output_dir;
      in.checkpoint_dir = s.output;
    }
    if (s.name == "federate") in.checkpoint_dir = s.output;
    if (s.name == "evaluate") {
      in.checkpoint_dir = s.input;
      in.dataset_dir = s.input_dataset;
      in.evaluation_dir = s.output;
    }
  }
  const std::string path = p.dir + "/report.html";
  report::write_run_report(in, path);
  return path;
}

std::vector<std::string> provenance_lines(const Pipeline& p) {
  std::vector<std::string> lines;
  std::error_code ec;
  auto check = [](const std::string& named, const std::string& actual) {
    if (actual.empty()) return std::string("(not on disk)");
    return named == actual ? std::string("matches") : fmt::format("DOES NOT MATCH (on disk {})", short_sha(actual));
  };
  std::string last_dataset;
  for (const auto& s : p.stages) {
    if (s.name == "ingest" || s.name == "prepare") {
      const std::string d = dataset_digest(s.output);
      if (d.empty()) {
        lines.push_back(fmt::format("dataset    {}  (not written yet)", s.output));
        continue;
      }
      std::string parent;
      try {
        const auto m = dataplane::Manifest::load(s.output);
        if (!m.provenance.empty()) {
          const auto& last = m.provenance.back();
          if (last.contains("parent_sha256")) {
            const std::string named = last.value("parent_sha256", "");
            const std::string parent_dir = last.value("parent", "");
            const std::string parent_abs = fs::path(parent_dir).is_absolute() ? parent_dir : (fs::path(p.base) / parent_dir).string();
            parent = fmt::format("  <- parent {} sha256 {} {}", parent_dir, short_sha(named), check(named, dataset_digest(parent_abs)));
          }
        }
      } catch (const Error& e) {
        parent = fmt::format("  (manifest unreadable: {})", e.message());
      }
      lines.push_back(fmt::format("dataset    {}  manifest sha256 {}{}", s.output, short_sha(d), parent));
      last_dataset = s.output;
    } else if (s.name == "train") {
      std::string step;
      const std::string c = checkpoint_root_digest(s.output, &step);
      if (c.empty()) {
        lines.push_back(fmt::format("checkpoint {}  (not written yet)", s.output));
        continue;
      }
      try {
        const auto lin = trainer::load_lineage(step);
        lines.push_back(fmt::format("checkpoint {}  digest {}  <- dataset {} manifest sha256 {} {}", step, short_sha(c),
                                    lin.dataset_dir, short_sha(lin.manifest_sha256),
                                    check(lin.manifest_sha256, dataset_digest(s.input))));
      } catch (const Error& e) {
        lines.push_back(fmt::format("checkpoint {}  digest {}  (lineage unreadable: {})", step, short_sha(c), e.message()));
      }
    } else if (s.name == "federate") {
      std::string step;
      const std::string c = checkpoint_root_digest(s.output, &step);
      if (c.empty()) {
        lines.push_back(fmt::format("checkpoint {}  (no federated round written yet)", s.output));
        continue;
      }
      std::string from = "  <- model.init_seed (no initial checkpoint)";
      if (!s.init_from.empty()) {
        std::string init_step;
        const std::string init = checkpoint_root_digest(s.init_from, &init_step);
        from = fmt::format("  <- rounds from {} digest {}", init_step.empty() ? s.init_from : init_step, short_sha(init));
      }
      lines.push_back(fmt::format("checkpoint {}  digest {} (federated, {} participants){}", step, short_sha(c),
                                  s.participants.size(), from));
    } else if (s.name == "evaluate") {
      const std::string report = s.output + "/report.json";
      if (!fs::is_regular_file(report, ec)) {
        lines.push_back(fmt::format("evaluation {}  (not written yet)", report));
        continue;
      }
      try {
        const json meta = json::parse(read_text(report)).at("meta");
        const std::string ck = meta.value("checkpoint", ""), ck_sha = meta.value("checkpoint_sha256", "");
        const std::string ds_sha = meta.value("manifest_sha256", "");
        lines.push_back(fmt::format("evaluation {}  sha256 {}  <- checkpoint {} digest {} {}; dataset manifest {} {}",
                                    report, short_sha(dataplane::sha256_file(report)), ck, short_sha(ck_sha),
                                    check(ck_sha, checkpoint_root_digest(ck)), short_sha(ds_sha),
                                    check(ds_sha, dataset_digest(s.input_dataset))));
      } catch (const std::exception& e) {
        lines.push_back(fmt::format("evaluation {}  (unreadable: {})", report, e.what()));
      }
    }
  }
  return lines;
}

}  // namespace conflux::pipeline
