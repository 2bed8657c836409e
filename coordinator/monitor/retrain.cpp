// conflux monitor, part 2: fine-tune the serving checkpoint on the new batch (`conflux train` as a
// child, under mpirun for several ranks), score the serving and the fine-tuned checkpoint on the
// same held-out rows of the new batch (`conflux evaluate --mpi`, evaluate.split_checkpoint), and
// promote by an atomic swap of the `current` link only if the new score beats the old by the
// margin. Every decision is a line of promotions.jsonl. See conflux/cli/monitor.h.
#include "conflux/cli/monitor.h"

#include "conflux/core/atomic_file.h"
#include "conflux/core/error.h"
#include "conflux/core/log.h"
#include "conflux/core/subprocess.h"
#include "conflux/trainer/checkpoint_meta.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace conflux::monitor {
namespace {

namespace fs = std::filesystem;

std::string utc_stamp(const char* format) {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

std::string toml_key(const std::string& k) {
  const bool bare = !k.empty() && std::all_of(k.begin(), k.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-';
  });
  return bare ? k : nlohmann::json(k).dump();
}

// A JSON value as a TOML value (JSON string escapes are valid TOML basic-string escapes).
std::string toml_value(const nlohmann::json& v, const std::string& path) {
  if (v.is_object()) {
    std::string s = "{";
    for (auto it = v.begin(); it != v.end(); ++it)
      s += (s.size() > 1 ? ", " : " ") + toml_key(it.key()) + " = " + toml_value(*it, path + "." + it.key());
    return s + (s.size() > 1 ? " }" : "}");
  }
  if (v.is_array()) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i)
      s += (i ? ", " : "") + toml_value(v[i], fmt::format("{}[{}]", path, i));
    return s + "]";
  }
  if (v.is_null()) CONFLUX_THROW(DataError, "config key '{}' is null, which TOML cannot hold", path);
  if (v.is_number_float()) {
    std::string s = v.dump();
    if (s.find_first_of(".eE") == std::string::npos) s += ".0";
    return s;
  }
  return v.dump();
}

void emit_table(const nlohmann::json& t, const std::string& path, std::string* out) {
  for (auto it = t.begin(); it != t.end(); ++it)
    if (!it->is_object()) *out += toml_key(it.key()) + " = " + toml_value(*it, path + it.key()) + "\n";
  for (auto it = t.begin(); it != t.end(); ++it) {
    if (!it->is_object()) continue;
    const std::string sub = path + toml_key(it.key());
    *out += "\n[" + sub + "]\n";
    emit_table(*it, sub + ".", out);
  }
}

std::string q(const std::string& s) { return nlohmann::json(s).dump(); }  // a TOML string

std::string conflux_binary() {
  const std::string self = proc::self_executable();
  if (self.empty()) CONFLUX_THROW(IoError, "cannot find the conflux binary (/proc/self/exe is unreadable)");
  return self;
}

// argv of a conflux stage: direct for one rank, under mpirun for several.
proc::Command stage(const MonitorConfig& c, int ranks, std::vector<std::string> args, const std::string& log) {
  proc::Command cmd;
  if (ranks > 1) {
    const std::string mpirun = proc::find_program(c.mpirun);
    if (mpirun.empty())
      CONFLUX_THROW(ConfigError, "retrain.mpirun: '{}' is not an executable program (in PATH)", c.mpirun);
    cmd.argv = {mpirun, "-np", std::to_string(ranks), "--oversubscribe"};
    if (::geteuid() == 0)
      for (const char* name : {"OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"})
        if (!std::getenv(name)) cmd.env_set[name] = "1";
  }
  cmd.argv.push_back(conflux_binary());
  cmd.argv.insert(cmd.argv.end(), args.begin(), args.end());
  cmd.log = log;
  return cmd;
}

void run_stage(const std::string& what, const proc::Command& cmd);

// ---- retrain.submit: the same runs as `conflux pipeline submit` job chains on Slurm ----

std::string toml_strings(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + q(v[i]);
  return s + "]";
}

std::string resources_table(const MonitorConfig& c, const std::string& stage, int ranks) {
  std::string t = fmt::format("[stages.{}.resources]\nranks = {}\n", stage, ranks);
  if (!c.partition.empty()) t += "partition = " + q(c.partition) + "\n";
  if (!c.time_limit.empty()) t += "time_limit = " + q(c.time_limit) + "\n";
  return t;
}

// `conflux pipeline submit FILE`, then `conflux pipeline status FILE --json` every few seconds
// until every stage is done. IoError naming the stage's log when one fails, and naming the jobs
// (left to Slurm) when retrain.wait_s passes first.
void submit_and_wait(const MonitorConfig& c, const std::string& file, const std::string& what) {
  const std::string log = file.substr(0, file.rfind('.')) + ".log";
  proc::Command submit;
  submit.argv = {conflux_binary(), "pipeline", "submit", file};
  submit.log = log;
  run_stage(what + ": pipeline submit", submit);
  proc::Command status;
  status.argv = {conflux_binary(), "pipeline", "status", file, "--json"};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(c.wait_s);
  std::string last;
  while (true) {
    const proc::Captured got = proc::capture(status);
    const auto doc = nlohmann::json::parse(got.out, nullptr, false);
    if (doc.is_discarded() || !doc.contains("stages"))
      CONFLUX_THROW(IoError, "monitor: {}: `{}` did not print its JSON ({})", what, proc::shell_line(status.argv),
                    got.outcome.describe());
    bool all_done = true;
    std::string jobs;
    last.clear();
    for (const auto& st : doc.at("stages")) {
      const std::string name = st.value("stage", ""), state = st.value("state", "");
      last += (last.empty() ? "" : ", ") + name + " " + state;
      if (state == "failed")
        CONFLUX_THROW(IoError, "monitor: {}: Slurm stage {} failed ({}); its log is {}/stages/{}/log.txt", what, name,
                      st.value("outcome", ""), doc.value("dir", ""), name);
      if (state != "done") {
        all_done = false;
        for (const auto& id : st.value("job_ids", nlohmann::json::array())) jobs += (jobs.empty() ? "" : " ") + id.get<std::string>();
      }
    }
    if (all_done) return;
    if (std::chrono::steady_clock::now() >= deadline)
      CONFLUX_THROW(IoError, "monitor: {}: not finished after retrain.wait_s = {} s ({}); its jobs ({}) are left to "
                    "Slurm: follow them with `conflux pipeline status {}`", what, c.wait_s, last, jobs, file);
    std::this_thread::sleep_for(std::chrono::duration<double>(std::min(c.poll_s, c.wait_s)));
  }
}

void run_stage(const std::string& what, const proc::Command& cmd) {
  log::info("monitor: {}: {}", what, proc::shell_line(cmd.argv));
  const proc::Outcome o = proc::run(cmd);
  if (!o.ok())
    CONFLUX_THROW(IoError, "monitor: {} failed ({}); its output is in {}; command: {}", what, o.describe(),
                  cmd.log, proc::shell_line(cmd.argv));
}

double report_score(const MonitorConfig& c, const std::string& report);

double score(const MonitorConfig& c, const std::string& checkpoint, const std::string& split_checkpoint,
             const std::string& data, const std::string& dir, const std::string& name) {
  const std::string config = dir + "/" + name + ".toml";
  write_file_atomic(config, fmt::format("# conflux monitor: {} checkpoint on the fine-tuning run's held-out rows\n"
                                        "[evaluate]\ncheckpoint = {}\ndataset = {}\nmetrics = [{}]\n"
                                        "split = \"validation\"\nsplit_checkpoint = {}\n\n[output]\ndir = {}\n",
                                        name, q(checkpoint), q(data), q(c.metric), q(split_checkpoint),
                                        q(dir + "/" + name)));
  run_stage("evaluate " + name,
            stage(c, c.eval_ranks, {"evaluate", config, "--mpi"}, dir + "/" + name + ".log"));
  return report_score(c, dir + "/" + name + "/report.json");
}

// promote.metric's value in an evaluation report.
double report_score(const MonitorConfig& c, const std::string& report) {
  std::ifstream in(report);
  const auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("results"))
    CONFLUX_THROW(DataError, "{}: not an evaluation report (no results)", report);
  for (const auto& r : j.at("results"))
    if (r.value("metric", "") == c.metric && r.contains("value") && r.at("value").is_number()) {
      const double v = r.at("value").get<double>();
      if (!std::isfinite(v)) CONFLUX_THROW(DataError, "{}: {} is not finite ({})", report, c.metric, v);
      return v;
    }
  CONFLUX_THROW(DataError, "{}: no numeric result for promote.metric '{}'", report, c.metric);
}

// The `current` link now names `target`: a new link under a temp name renamed over it.
void swap_link(const std::string& link, const std::string& target) {
  const fs::path l(link);
  const fs::path tmp = l.parent_path() / fmt::format(".{}.tmp-{}", l.filename().string(), ::getpid());
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp, ec);
  if (ec) CONFLUX_THROW(IoError, "cannot create the link {}: {}", tmp.string(), ec.message());
  fs::rename(tmp, l, ec);
  if (ec) {
    fs::remove(tmp);
    CONFLUX_THROW(IoError, "cannot rename {} over {}: {}", tmp.string(), link, ec.message());
  }
  fsync_path(l.parent_path().empty() ? "." : l.parent_path().string(), true);
}

void append_jsonl(const std::string& path, const nlohmann::json& record) {
  std::string text;
  if (fs::exists(path)) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    text = s.str();
    if (!text.empty() && text.back() != '\n') text += '\n';
  }
  write_file_atomic(path, text + record.dump() + "\n");
}

}  // namespace

std::string json_config_to_toml(const nlohmann::json& config) {
  if (!config.is_object()) CONFLUX_THROW(DataError, "a run config must be a JSON object");
  std::string out;
  emit_table(config, "", &out);
  return out;
}

RetrainOutcome retrain_and_promote(const MonitorConfig& c, const DriftOutcome& drift) {
  RetrainOutcome r;
  r.old_checkpoint = drift.checkpoint;
  std::string run = fs::absolute(c.output).lexically_normal().string() + "/retrain-" + utc_stamp("%Y%m%dT%H%M%SZ");
  for (int n = 2; fs::exists(run); ++n) run = fmt::format("{}-{}", run.substr(0, run.find_last_of('Z') + 1), n);
  fs::create_directories(run);
  r.run_dir = run;

  // The fine-tuning run: the serving model's own training config, from the new data and weights.
  std::string train_config = c.train_config;
  if (train_config.empty()) {
    const trainer::Lineage lineage = trainer::load_lineage(drift.checkpoint);
    const auto cfg = nlohmann::json::parse(lineage.config_json.empty() ? "{}" : lineage.config_json, nullptr, false);
    if (cfg.is_discarded() || !cfg.is_object() || !cfg.contains("model"))
      CONFLUX_THROW(DataError, "{}/lineage.json: config is not a training config (no [model]); set "
                    "retrain.config to the training config file", drift.checkpoint);
    train_config = run + "/train.toml";
    write_file_atomic(train_config, "# The serving checkpoint's training config (its lineage.json), as TOML.\n" +
                                        json_config_to_toml(cfg));
  }
  // Where the new data and weights come from; where the runs write is added per mode.
  std::vector<std::string> overrides = {"data.dataset=" + q(drift.current.dir), "checkpoint.init_from=" + q(drift.checkpoint),
                                        "checkpoint.resume=false", "output.progress=false", "metrics.listen=\"\"",
                                        fmt::format("train.steps={}", c.steps),
                                        fmt::format("train.lr={}", nlohmann::json(c.lr).dump())};
  if (c.submit) {
    overrides.insert(overrides.end(), c.train_set.begin(), c.train_set.end());  // retrain.set: last
    // Two job chains: fine-tune + evaluate the candidate, then the serving checkpoint on the rows
    // the fine-tuning run held out (known once it exists: evaluate.split_checkpoint).
    const std::string chain = run + "/retrain.pipeline.toml";
    write_file_atomic(chain, fmt::format("# conflux monitor: fine-tune the serving checkpoint on the new batch, score it\n"
                                         "[pipeline]\nname = \"monitor-retrain\"\ndir = {}\n\n"
                                         "[stages.train]\nconfig = {}\nset = {}\n{}\n"
                                         "[stages.evaluate]\n{}[stages.evaluate.evaluate]\ndataset = {}\nmetrics = [{}]\n"
                                         "split = \"validation\"\n",
                                         q(run + "/retrain"), q(train_config), toml_strings(overrides),
                                         resources_table(c, "train", c.ranks), resources_table(c, "evaluate", c.eval_ranks),
                                         q(drift.current.dir), q(c.metric)));
    submit_and_wait(c, chain, "fine-tune and evaluate the candidate");
    const auto latest = trainer::latest_checkpoint(run + "/retrain/checkpoints");
    if (!latest) CONFLUX_THROW(IoError, "monitor: the fine-tuning job wrote no checkpoint under {}/retrain/checkpoints", run);
    r.new_checkpoint = fs::absolute(*latest).lexically_normal().string();
    const std::string serving = run + "/serving.pipeline.toml";
    write_file_atomic(serving, fmt::format("# conflux monitor: the serving checkpoint on the fine-tuning run's held-out rows\n"
                                           "[pipeline]\nname = \"monitor-serving\"\ndir = {}\n\n"
                                           "[stages.evaluate]\n{}[stages.evaluate.evaluate]\ncheckpoint = {}\ndataset = {}\n"
                                           "metrics = [{}]\nsplit = \"validation\"\nsplit_checkpoint = {}\n",
                                           q(run + "/serving"), resources_table(c, "evaluate", c.eval_ranks),
                                           q(r.old_checkpoint), q(drift.current.dir), q(c.metric), q(r.new_checkpoint)));
    submit_and_wait(c, serving, "evaluate the serving checkpoint");
    r.new_score = report_score(c, run + "/retrain/eval/report.json");
    r.old_score = report_score(c, run + "/serving/eval/report.json");
  } else {
    std::vector<std::string> args = {"train", train_config};
    overrides.insert(overrides.end(), {"checkpoint.dir=" + q(run + "/ckpt"), "output.dir=" + q(run + "/train")});
    overrides.insert(overrides.end(), c.train_set.begin(), c.train_set.end());  // retrain.set: last
    for (const auto& s : overrides) args.insert(args.end(), {"--set", s});
    run_stage("fine-tune", stage(c, c.ranks, args, run + "/train.log"));
    const auto latest = trainer::latest_checkpoint(run + "/ckpt");
    if (!latest) CONFLUX_THROW(IoError, "monitor: the fine-tuning run wrote no checkpoint under {}/ckpt (see {}/train.log)", run, run);
    r.new_checkpoint = fs::absolute(*latest).lexically_normal().string();

    // Both models on the rows the fine-tuning run held out of the new batch.
    r.old_score = score(c, r.old_checkpoint, r.new_checkpoint, drift.current.dir, run, "eval-serving");
    r.new_score = score(c, r.new_checkpoint, r.new_checkpoint, drift.current.dir, run, "eval-candidate");
  }
  const double bar = c.lower_is_better ? r.old_score * (1 - c.margin) : r.old_score * (1 + c.margin);
  const bool better = c.lower_is_better ? r.new_score < bar : r.new_score > bar;
  std::error_code ec;
  const std::string now_serving = fs::canonical(c.current, ec).string();
  if (!better) {
    r.reason = fmt::format("{} {:.6g} does not beat {:.6g} by the margin {} (needs {} {:.6g})", c.metric, r.new_score,
                           r.old_score, c.margin, c.lower_is_better ? "<" : ">", bar);
  } else if (ec || now_serving != r.old_checkpoint) {
    r.reason = fmt::format("{} changed during the run (now {}); not swapped", c.current, ec ? ec.message() : now_serving);
  } else {
    swap_link(c.current, r.new_checkpoint);
    r.promoted = true;
    r.reason = fmt::format("{} {:.6g} beats {:.6g} by more than the margin {} (bar {:.6g})", c.metric, r.new_score,
                           r.old_score, c.margin, bar);
  }
  append_jsonl(c.output + "/promotions.jsonl",
               {{"time", utc_stamp("%Y-%m-%dT%H:%M:%SZ")},
                {"link", fs::absolute(c.current).lexically_normal().string()},
                {"old", r.old_checkpoint},
                {"new", r.new_checkpoint},
                {"metric", c.metric},
                {"lower_is_better", c.lower_is_better},
                {"old_score", r.old_score},
                {"new_score", r.new_score},
                {"margin", c.margin},
                {"decision", r.promoted ? "promoted" : "kept"},
                {"reason", r.reason},
                {"data", drift.current.dir},
                {"data_manifest_sha256", drift.current.manifest_sha256},
                {"drift_triggers", drift.triggers},
                {"run_dir", run}});
  return r;
}

}  // namespace conflux::monitor
