// The pipeline as a Slurm job chain (contract in slurm.h).
#include "conflux/pipeline/slurm.h"

#include "conflux/core/atomic_file.h"
#include "conflux/core/error.h"
#include "conflux/core/subprocess.h"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace fs = std::filesystem;

namespace conflux::pipeline {
namespace {

std::string exe_dir() {
  const std::string self = proc::self_executable();
  return self.empty() ? std::string() : fs::path(self).parent_path().string();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

std::string sbatch(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                   const std::string& stage) {
  proc::Command c;
  c.argv = argv;
  c.env_set = env;
  const proc::Captured r = proc::capture(c);
  const std::string out = trim(r.out);
  if (!r.outcome.ok())
    CONFLUX_THROW(IoError, "stage {}: sbatch failed ({}): {}", stage, r.outcome.describe(), proc::shell_line(argv));
  // --parsable prints "JOBID" or "JOBID;CLUSTER".
  const std::string id = out.substr(0, out.find(';'));
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    CONFLUX_THROW(IoError, "stage {}: sbatch printed '{}', not a job id", stage, out);
  return id;
}

std::string field(const std::string& text, const std::string& key) {
  const auto at = text.find(key + "=");
  if (at == std::string::npos) return "";
  const auto start = at + key.size() + 1;
  const auto end = text.find_first_of(" \n", start);
  return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

bool finished_ok(const std::string& st) { return st == "COMPLETED"; }
bool finished_bad(const std::string& st) {
  for (const char* s : {"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
                        "PREEMPTED"})
    if (st.rfind(s, 0) == 0) return true;
  return false;
}

}  // namespace

std::string slurm_scripts_dir(const std::string& given) {
  std::vector<std::string> candidates;
  if (!given.empty()) candidates.push_back(given);
  if (const char* e = std::getenv("CONFLUX_SLURM_SCRIPTS"); e && *e) candidates.push_back(e);
  if (const std::string d = exe_dir(); !d.empty()) candidates.push_back(d + "/" + CONFLUX_INSTALL_SLURM_DIR);
  candidates.push_back(CONFLUX_SOURCE_SLURM_DIR);
  std::error_code ec;
  for (const auto& c : candidates)
    if (fs::is_regular_file(fs::path(c) / "train.sbatch", ec)) return fs::canonical(c, ec).string();
  std::string list;
  for (const auto& c : candidates) list += (list.empty() ? "" : ", ") + c;
  CONFLUX_THROW(UsageError, "no stage sbatch scripts (train.sbatch, ...) found in: {}; give --scripts DIR", list);
}

std::string job_state(const std::string& id) {
  proc::Command c;
  c.argv = {"squeue", "-h", "-j", id, "-o", "%T"};
  auto r = proc::capture(c);
  std::string st = trim(r.out);
  if (r.outcome.ok() && !st.empty()) return st.substr(0, st.find('\n'));
  c.argv = {"scontrol", "show", "job", id};
  r = proc::capture(c);
  st = field(r.out, "JobState");
  if (r.outcome.ok() && !st.empty()) return st;
  if (!proc::find_program("sacct").empty()) {
    c.argv = {"sacct", "-n", "-P", "-X", "-j", id, "-o", "State"};
    r = proc::capture(c);
    st = trim(r.out);
    if (r.outcome.ok() && !st.empty()) return st.substr(0, st.find_first_of(" \n"));
  }
  return "";
}

int submit(const Pipeline& p, const RunOptions& o, const SubmitOptions& s, const ConfigValidator& validate) {
  if (proc::find_program("sbatch").empty() && !o.dry_run)
    CONFLUX_THROW(UsageError, "conflux pipeline submit: sbatch is not in PATH (is this a Slurm login node?)");
  const std::string scripts = slurm_scripts_dir(s.scripts_dir);
  RunLock lock(p);
  const std::vector<Decision> decisions = plan(p, o, validate);
  std::cout << fmt::format("pipeline {}: {} stage(s), run directory {}, scripts {}{}\n", p.name, decisions.size(),
                           p.dir, scripts, o.dry_run ? " (dry run: nothing is submitted)" : "");
  std::map<std::string, std::string> env = {{"CONFLUX", o.conflux.empty() ? "conflux" : o.conflux}};
  if (const std::string d = exe_dir(); !d.empty() && fs::exists(d + "/conflux-worker")) env["CONFLUX_WORKER"] = d + "/conflux-worker";
  std::string previous;  // the job the next stage waits for
  for (size_t i = 0; i < decisions.size(); ++i) {
    const Decision& d = decisions[i];
    const Stage& st = *p.find(d.stage);
    const std::string head = fmt::format("[{}/{}] {:<9}", i + 1, decisions.size(), st.name);
    if (!d.run) {
      std::cout << head << "skipped: " << d.reason << "\n";
      continue;
    }
    const std::string sdir = p.stage_dir(st.name), log = sdir + "/log.txt";
    auto common = [&](const std::string& job_name, int ranks) {
      std::vector<std::string> a = {"sbatch", "--parsable", "-J", job_name, "-n", std::to_string(ranks), "-D", p.base,
                                    "--output=" + log, "--open-mode=append"};
      const Resources& r = st.resources;
      if (r.nodes > 0) a.insert(a.end(), {"-N", std::to_string(r.nodes)});
      if (r.cpus_per_task > 0) a.insert(a.end(), {"-c", std::to_string(r.cpus_per_task)});
      if (!r.time_limit.empty()) a.insert(a.end(), {"-t", r.time_limit});
      if (!r.partition.empty()) a.insert(a.end(), {"-p", r.partition});
      if (!r.gres.empty()) a.insert(a.end(), {"--gres", r.gres});
      a.insert(a.end(), s.sbatch_args.begin(), s.sbatch_args.end());
      return a;
    };
    const std::string job_name = fmt::format("conflux-{}-{}", p.name, st.name);
    std::vector<std::vector<std::string>> jobs;  // sbatch command lines, in submission order
    std::vector<std::string> pre;  // a job the stage's first job waits for (federate: partition)
    std::vector<std::string> set_args;
    for (const auto& x : st.set) set_args.insert(set_args.end(), {"--set", x});
    if (st.name == "federate") {
      // The coordinator and a job array of one participant per dataset (federate.sbatch +
      // federate-worker.sbatch, meeting in the rendezvous directory; task I takes line I+1).
      // With [stages.federate.partition] a one-task job cuts the participants' datasets first
      // (partition.sbatch) and the coordinator waits for it.
      std::string after = previous;
      if (!st.partition_args.empty()) {
        pre = common(job_name + "-partition", 1);
        if (!previous.empty()) pre.push_back("--dependency=afterok:" + previous);
        pre.insert(pre.end(), {scripts + "/partition.sbatch", st.input});
        pre.insert(pre.end(), st.partition_args.begin(), st.partition_args.end());
        pre.insert(pre.end(), {"--out-dir", p.dir + "/data/participants"});
        after = o.dry_run ? "PARTITION" : "%PARTITION%";
      }
      const std::string rdv = sdir + "/rendezvous", list = sdir + "/participants.txt";
      std::string lines;
      for (const auto& d : st.participants) lines += d + "\n";
      if (!o.dry_run) write_file_atomic(list, lines);
      const std::string n = std::to_string(st.participants.size());
      auto coord = common(job_name, 1);
      if (!after.empty()) coord.push_back("--dependency=afterok:" + after);
      coord.insert(coord.end(), {scripts + "/federate.sbatch", d.config_file, rdv, "--workers", n});
      coord.insert(coord.end(), set_args.begin(), set_args.end());
      jobs.push_back(coord);
      auto workers = common(job_name + "-participant", 1);
      workers.push_back(fmt::format("--array=0-{}", st.participants.size() - 1));
      workers.push_back("--dependency=after:%COORDINATOR%");
      workers.insert(workers.end(), {scripts + "/federate-worker.sbatch", rdv, list});
      jobs.push_back(workers);
    } else if (st.name == "evaluate") {
      // The coordinator (one task) and a job array of `ranks` workers that start once it runs and
      // find its address and key in the rendezvous directory.
      const std::string rdv = sdir + "/rendezvous";
      auto coord = common(job_name, 1);
      if (!previous.empty()) coord.push_back("--dependency=afterok:" + previous);
      coord.push_back(scripts + "/evaluate.sbatch");
      coord.insert(coord.end(), {d.config_file, rdv, "--workers", std::to_string(st.resources.ranks)});
      coord.insert(coord.end(), set_args.begin(), set_args.end());
      jobs.push_back(coord);
      auto workers = common(job_name + "-worker", 1);
      workers.push_back(fmt::format("--array=0-{}", st.resources.ranks - 1));
      workers.push_back("--dependency=after:%COORDINATOR%");
      workers.insert(workers.end(), {scripts + "/evaluate-worker.sbatch", rdv, "--data", st.input_dataset});
      jobs.push_back(workers);
    } else {
      auto a = common(job_name, st.resources.ranks);
      if (!previous.empty()) a.push_back("--dependency=afterok:" + previous);
      a.push_back(scripts + "/" + st.name + ".sbatch");
      if (st.name == "ingest") {
        a.insert(a.end(), st.ingest_args.begin(), st.ingest_args.end());
        a.insert(a.end(), {"-o", st.output});
      } else {
        a.push_back(d.config_file);
        a.insert(a.end(), set_args.begin(), set_args.end());
      }
      jobs.push_back(a);
    }
    if (o.dry_run) {
      std::cout << head << "would submit (" << d.reason << "):\n";
      if (!pre.empty()) std::cout << "          " << proc::shell_line(pre) << "\n";
      for (const auto& j : jobs) std::cout << "          " << proc::shell_line(j) << "\n";
      previous = previous.empty() ? "PREVIOUS" : previous;
      continue;
    }
    Record r;
    r.status = "submitted";
    r.config_sha256 = d.config_sha256;
    std::string commands, pre_id;
    if (!pre.empty()) {
      pre_id = sbatch(pre, env, st.name);
      commands = proc::shell_line(pre);
    }
    auto fill = [](std::string& a, const std::string& placeholder, const std::string& id) {
      const auto at = a.find(placeholder);
      if (at != std::string::npos && !id.empty()) a.replace(at, placeholder.size(), id);
    };
    for (auto& j : jobs) {
      for (auto& a : j) {
        if (!r.job_ids.empty()) fill(a, "%COORDINATOR%", r.job_ids.front());
        fill(a, "%PARTITION%", pre_id);
      }
      r.job_ids.push_back(sbatch(j, env, st.name));
      commands += (commands.empty() ? "" : "\n") + proc::shell_line(j);
    }
    // The stage's state is its first job's (the coordinator's); a job it waits for goes last.
    if (!pre_id.empty()) r.job_ids.push_back(pre_id);
    r.command = commands;
    save_record(p, st.name, r);
    previous = r.job_ids.front();
    std::string ids;
    for (const auto& id : r.job_ids) ids += (ids.empty() ? "" : ", ") + id;
    std::cout << head << fmt::format("submitted ({}): job {}\n", d.reason, ids);
  }
  if (!o.dry_run) std::cout << fmt::format("follow it with: conflux pipeline status {}\n", p.file);
  return 0;
}

int print_status(const Pipeline& p, bool as_json) {
  nlohmann::json out = nlohmann::json::array();
  int failed = 0;
  if (!as_json) std::cout << fmt::format("pipeline {}: run directory {}\n", p.name, p.dir);
  for (const auto& st : p.stages) {
    auto rec = load_record(p, st.name);
    std::string state = rec ? rec->status : "not run";
    std::string slurm;
    if (rec && rec->status == "submitted" && !rec->job_ids.empty()) {
      slurm = job_state(rec->job_ids.front());
      // A federated stage's partition job (its last) that failed leaves the coordinator pending
      // on a dependency that can never be met.
      bool part_failed = false;
      if (st.name == "federate" && !st.partition_args.empty() && rec->job_ids.size() >= 3 && slurm == "PENDING") {
        const std::string part = job_state(rec->job_ids.back());
        part_failed = finished_bad(part);
        if (part_failed) slurm = "partition job " + rec->job_ids.back() + " " + part;
      }
      if (finished_ok(slurm)) {
        rec->status = "done";
        rec->input_sha256 = stage_input_digest(st);
        rec->output_sha256 = stage_output_digest(st, &rec->output_detail);
        rec->outcome = "COMPLETED";
        if (rec->output_sha256.empty()) {
          rec->status = "failed";
          rec->outcome = "COMPLETED but no output at " + st.output;
        }
        save_record(p, st.name, *rec);
      } else if (part_failed || finished_bad(slurm)) {
        rec->status = "failed";
        rec->outcome = slurm;
        save_record(p, st.name, *rec);
        // The evaluation's worker array would wait for a coordinator that never comes.
        for (size_t k = 0; k < rec->job_ids.size(); ++k) {
          proc::Command c;
          c.argv = {"scancel", rec->job_ids[k]};
          proc::run(c);
        }
      }
      state = rec->status == "submitted" ? (slurm.empty() ? "submitted" : (slurm == "PENDING" ? "queued" : slurm == "RUNNING" ? "running" : slurm))
                                         : rec->status;
    }
    if (state == "failed") ++failed;
    nlohmann::json j = {{"stage", st.name}, {"state", state}};
    if (rec) {
      j["job_ids"] = rec->job_ids;
      j["elapsed_s"] = rec->elapsed_s;
      j["outcome"] = rec->outcome;
      j["output"] = rec->output_detail;
      j["output_sha256"] = rec->output_sha256;
      j["started"] = rec->started;
    }
    out.push_back(j);
    if (as_json) continue;
    std::string ids;
    if (rec)
      for (const auto& id : rec->job_ids) ids += (ids.empty() ? "job " : ", ") + id;
    std::string detail;
    if (rec && rec->elapsed_s > 0) detail += fmt::format("{:.1f} s", rec->elapsed_s);
    if (rec && !rec->outcome.empty()) detail += (detail.empty() ? "" : ", ") + rec->outcome;
    std::cout << fmt::format("  {:<9} {:<10} {:<14} {}\n", st.name, state, ids, detail);
    if (state == "failed")
      for (const auto& line : log_tail(p.stage_dir(st.name) + "/log.txt", 10)) std::cout << "            | " << line << "\n";
  }
  // Every stage done: the run report over what they wrote.
  std::string report;
  const bool all_done = std::all_of(out.begin(), out.end(), [](const nlohmann::json& j) { return j["state"] == "done"; });
  if (all_done) report = write_report(p);
  if (as_json) {
    nlohmann::json doc = {{"pipeline", p.name}, {"dir", p.dir}, {"stages", out}, {"provenance", provenance_lines(p)},
                          {"report", report}};
    std::cout << doc.dump(2) << "\n";
  } else {
    std::cout << "provenance:\n";
    for (const auto& line : provenance_lines(p)) std::cout << "  " << line << "\n";
    if (!report.empty()) std::cout << "report: " << report << "\n";
  }
  return failed ? 1 : 0;
}

}  // namespace conflux::pipeline
