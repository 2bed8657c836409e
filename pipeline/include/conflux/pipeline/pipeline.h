// `conflux pipeline`: the lifecycle (ingest -> prepare -> train -> evaluate) from one file, run
// locally stage after stage or submitted as a Slurm job chain, with make-like skipping.
//
// PIPELINE.toml (docs/pipeline.md has the full reference):
//   [pipeline]
//   name = "fortunes"
//   dir = "runs/fortunes"            # the run directory (state, effective configs, logs, report)
//   [stages.ingest]                  # keys are `conflux ingest` flags: inputs, format, keep_text...
//   inputs = ["/usr/share/games/fortunes"]
//   format = "fortune"
//   [stages.prepare]
//   builtin = "fortunes"             # or config = "prep.toml"; inline tables override it:
//   [stages.prepare.dedup]
//   threshold = 0.8
//   [stages.train]
//   config = "train.toml"
//   set = ["train.steps=300"]        # --set overrides, applied last
//   [stages.train.resources]
//   ranks = 2                        # also nodes, cpus_per_task, time_limit, partition, gres
//   [stages.federate]                # optional: rounds over local participants (conflux-worker)
//   participants = ["data/p0", "data/p1"]   # or [stages.federate.partition] parts = 4, by = "iid"
//   [stages.evaluate]
//   ...
// Relative paths in the pipeline file and in the stage configs are relative to the pipeline
// file's directory, where every stage runs.
//
// Chaining: the pipeline sets each stage's input to the previous stage's output and puts the
// outputs under the run directory (ingest -> DIR/data/raw, prepare -> DIR/data/prepared, train ->
// DIR/checkpoints and DIR/train, federate -> DIR/fl-checkpoints (starting from train's weights)
// and DIR/federate, evaluate -> DIR/eval on the newest checkpoint), unless the stage sets that key inline or
// in its `set` list (a key from a referenced config file is replaced: the pipeline file wins).
//
// State: DIR/stages/NAME/{config.toml, stage.json, log.txt}. stage.json records the status, the
// effective config's sha256, the input's and output's sha256 (dataset manifest, checkpoint
// digest, evaluation report), the command, times, the outcome and, under Slurm, the job ids. A
// stage is skipped when its record says done and its config, input and output are unchanged
// (Plan::reason says why a stage runs). Records are written atomically.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace conflux::pipeline {

struct Resources {
  int ranks = 1;
  int nodes = 0;           // 0: not given (Slurm decides)
  int cpus_per_task = 0;   // 0: not given
  std::string time_limit;  // Slurm syntax, e.g. "01:30:00"
  std::string partition;
  std::string gres;        // e.g. "gpu:1"
};

struct Stage {
  std::string name;         // ingest | prepare | train | federate | evaluate
  std::string where;        // "FILE:LINE" of its table, for messages
  Resources resources;
  std::vector<std::string> set;   // --set overrides (train/prepare/evaluate)
  std::string config_text;        // the effective config before `set` (TOML; empty for ingest)
  std::vector<std::string> ingest_args;  // ingest: the verb's flags (without -o)
  // Paths (absolute) this stage reads and writes.
  std::string input;        // ingest: "" (inputs are files); prepare/train: a dataset; evaluate: a checkpoint root
  std::string input_dataset;  // evaluate: the dataset it evaluates on
  std::string output;       // ingest/prepare: dataset; train: checkpoint root; evaluate: output dir
  std::string output_dir;   // train: output.dir (metrics.jsonl)
  std::vector<std::string> raw_inputs;  // ingest: input files/directories
  // federate: the participants' datasets (one conflux-worker each), listed or cut from `input`
  // by `conflux partition` with partition_args (then participants are DIR/data/participants/part-NNN).
  std::vector<std::string> participants;
  std::vector<std::string> partition_args;
  std::string init_from;    // federate: the checkpoint it starts from ("" = model.init_seed)
};

struct Pipeline {
  std::string file;         // the pipeline file (absolute)
  std::string base;         // its directory: the stages' working directory
  std::string name;
  std::string dir;          // run directory (absolute)
  std::vector<Stage> stages;  // in lifecycle order, only those the file has
  const Stage* find(const std::string& name) const;
  std::string stage_dir(const std::string& name) const { return dir + "/stages/" + name; }
};

// Parses and chains the pipeline file. ConfigError names FILE:LINE and the key.
Pipeline load_pipeline(const std::string& file);

// Checks a stage config and returns its effective TOML (defaults filled in) for a config kind
// (prepare, train, evaluate); supplied by the command line, which knows the registered kinds.
using ConfigValidator = std::function<std::string(const std::string& kind, const std::string& config_file,
                                                  const std::vector<std::string>& set)>;

// What a stage's record holds (DIR/stages/NAME/stage.json).
struct Record {
  std::string status;       // running | done | failed | submitted
  std::string config_sha256;
  std::string input_sha256;
  std::string output_sha256;
  std::string output_detail;  // e.g. the checkpoint step directory
  std::string command;
  std::string started, finished;  // ISO 8601 UTC
  double elapsed_s = 0;
  std::string outcome;      // "exit code 0", "killed by signal 9 (SIGKILL)", Slurm state
  int exit_code = 0;
  std::vector<std::string> job_ids;  // Slurm
};
std::optional<Record> load_record(const Pipeline& p, const std::string& stage);
void save_record(const Pipeline& p, const std::string& stage, const Record& r);

// The last `n` lines of a stage log (what a failure report shows).
std::vector<std::string> log_tail(const std::string& path, size_t n);

// Digests of what stages read and write ("" when absent).
std::string dataset_digest(const std::string& dataset_dir);        // sha256 of manifest.json
std::string checkpoint_root_digest(const std::string& root, std::string* step_dir = nullptr);
std::string files_digest(const std::vector<std::string>& paths);   // ingest inputs (walks dirs)
std::string stage_input_digest(const Stage& s);
std::string stage_output_digest(const Stage& s, std::string* detail = nullptr);

struct Decision {
  std::string stage;
  bool run = false;
  std::string reason;
  std::string config_sha256;  // of the effective config (with defaults and `set`)
  std::string config_file;    // DIR/stages/NAME/config.toml (written by prepare_configs)
};

struct RunOptions {
  std::string from, until;          // stage names; empty = first / last
  std::vector<std::string> force;   // stage names to redo
  bool dry_run = false;
  std::string launcher = "mpirun";  // mpirun | srun
  std::vector<std::string> mpirun_args = {"--oversubscribe"};
  std::string conflux;              // the conflux binary (default: this executable)
};

// Writes each selected stage's effective config to DIR/stages/NAME/config.toml and decides,
// stage by stage, whether it runs and why.
std::vector<Decision> plan(const Pipeline& p, const RunOptions& o, const ConfigValidator& validate);

// The command line that runs a stage (launcher included).
std::vector<std::string> stage_command(const Pipeline& p, const Stage& s, const Decision& d, const RunOptions& o);

// Holds DIR/.lock (flock) for as long as it lives: one run or submit of a run directory at a time;
// a second one is a UsageError naming the pid that holds it.
class RunLock {
 public:
  explicit RunLock(const Pipeline& p);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// Runs the plan locally; returns 0 or the failing stage's exit code. Prints one line per stage.
int run(const Pipeline& p, const RunOptions& o, const ConfigValidator& validate);

// Writes DIR/report.html (report::write_run_report) over the pipeline's newest outputs: the last
// dataset, training's metrics, the checkpoint evaluated (federate's or train's) and the
// evaluation. Returns its path.
std::string write_report(const Pipeline& p);

// The provenance chain of the run's outputs, as printable lines (dataset manifest -> checkpoint
// lineage -> evaluation report, each with the sha256 it names for its parent and whether that
// matches the parent on disk).
std::vector<std::string> provenance_lines(const Pipeline& p);

}  // namespace conflux::pipeline
