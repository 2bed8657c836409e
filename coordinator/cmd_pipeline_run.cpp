// `conflux pipeline run|submit|status PIPELINE.toml`: the lifecycle from one file (pipeline/).
#include "conflux/cli/cli.h"
#include "conflux/core/atomic_file.h"
#include "conflux/core/config.h"
#include "conflux/core/error.h"
#include "conflux/core/subprocess.h"
#include "conflux/pipeline/pipeline.h"
#include "conflux/pipeline/slurm.h"

#include <fmt/format.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

namespace conflux::cli {
namespace {

namespace pl = conflux::pipeline;

// Checks a stage config against its verb's registered kind; returns the effective TOML.
std::string validate(const std::string& kind, const std::string& file, const std::vector<std::string>& set) {
  load_plugins();  // train and evaluate register their kinds in the libtorch plugin
  for (const auto& s : config_schemas())
    if (s.kind == kind) return s.show(parse_config_file(file, set));
  CONFLUX_THROW(InternalError, "no config kind '{}' is registered in this build", kind);
}

std::string self_path() {
  const std::string self = conflux::proc::self_executable();
  return self.empty() ? std::string("conflux") : self;
}

void add_range_options(po::options_description& o, pl::RunOptions& r) {
  o.add_options()("file", po::value<std::string>()->required(), "pipeline file (TOML)")(
      "from", po::value(&r.from), "start at this stage (the ones before are taken as they are)")(
      "until", po::value(&r.until), "stop after this stage")(
      "force", po::value(&r.force)->composing(), "redo this stage even if it is up to date (repeatable)")(
      "dry-run", po::bool_switch(&r.dry_run), "print the plan and why each stage runs or is skipped; run nothing");
}

int pipeline_run(const Args& args) {
  pl::RunOptions r;
  po::options_description o("options");
  add_range_options(o, r);
  o.add_options()("launcher", po::value(&r.launcher)->default_value("mpirun"),
                  "how multi-rank stages start: mpirun (a workstation or one node) or srun (inside a Slurm "
                  "allocation, e.g. scripts/slurm/pipeline.sbatch)");
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  if (!parse(args, o, &pos, vm,
             {"pipeline run", "PIPELINE.toml [--from STAGE] [--until STAGE] [--force STAGE]... [--dry-run] "
                              "[--launcher mpirun|srun]",
              "Runs the pipeline's stages (ingest, prepare, train, evaluate) one after another on this machine, "
              "each with its rank count, skipping a stage whose output exists and whose config and input are "
              "unchanged since it was made (as make would). Outputs chain by name; state, effective configs and "
              "logs go to the run directory (pipeline.dir). A preempted or failed training run resumes from its "
              "checkpoints when run again. Ends with the run report (report.html) and the provenance chain. "
              "See docs/pipeline.md.",
              "conflux pipeline run pipelines/fortunes.toml --dry-run"}))
    return 0;
  if (r.launcher != "mpirun" && r.launcher != "srun")
    CONFLUX_THROW(UsageError, "conflux pipeline run: --launcher {}: must be mpirun or srun", r.launcher);
  r.conflux = self_path();
  const pl::Pipeline p = pl::load_pipeline(vm["file"].as<std::string>());
  const int rc = pl::run(p, r, validate);
  if (rc == 0 && !r.dry_run) {
    std::cout << "provenance:\n";
    for (const auto& line : pl::provenance_lines(p)) std::cout << "  " << line << "\n";
  }
  return rc;
}

int pipeline_submit(const Args& args) {
  pl::RunOptions r;
  pl::SubmitOptions s;
  po::options_description o("options");
  add_range_options(o, r);
  o.add_options()("scripts", po::value(&s.scripts_dir), "directory of the stage sbatch scripts (default: "
                  "$CONFLUX_SLURM_SCRIPTS, the installed share/conflux/slurm, or the source tree's scripts/slurm)")(
      "sbatch-arg", po::value(&s.sbatch_args)->composing(), "an extra sbatch argument for every job (repeatable), "
      "e.g. --sbatch-arg=--account=proj");
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  if (!parse(args, o, &pos, vm,
             {"pipeline submit", "PIPELINE.toml [--from STAGE] [--until STAGE] [--force STAGE]... [--dry-run]",
              "Submits each stage that is not up to date as a Slurm job (scripts/slurm/STAGE.sbatch, srun "
              "--mpi=pmix inside) with --dependency=afterok on the stage before it, using each stage's "
              "[stages.X.resources], and prints the job ids. Preempted training requeues itself and the chain "
              "waits for it. `conflux pipeline status` follows the chain. See docs/pipeline.md.",
              "conflux pipeline submit pipelines/fortunes.toml"}))
    return 0;
  r.conflux = self_path();
  const pl::Pipeline p = pl::load_pipeline(vm["file"].as<std::string>());
  return pl::submit(p, r, s, validate);
}

int pipeline_status(const Args& args) {
  po::options_description o("options");
  bool json = false;
  o.add_options()("file", po::value<std::string>()->required(), "pipeline file (TOML)")(
      "json", po::bool_switch(&json), "print the stages as JSON");
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  if (!parse(args, o, &pos, vm,
             {"pipeline status", "PIPELINE.toml [--json]",
              "Shows each stage of a run (done / skipped / queued / running / failed, job ids, elapsed time, the "
              "failing log lines) from the run directory and, for submitted stages, from Slurm (squeue, "
              "sacct), then the provenance chain: dataset manifest -> checkpoint lineage -> evaluation report, "
              "each with the sha256 it names for its parent and whether that matches.",
              "conflux pipeline status pipelines/fortunes.toml"}))
    return 0;
  const pl::Pipeline p = pl::load_pipeline(vm["file"].as<std::string>());
  return pl::print_status(p, json);
}

// `conflux config show lifecycle.toml`: every stage's effective config, checked.
std::string show_pipeline(const std::string& file) {
  const pl::Pipeline p = pl::load_pipeline(file);
  std::string out = fmt::format("# pipeline '{}' ({}), run directory {}\n", p.name, p.file, p.dir);
  for (const auto& s : p.stages) {
    out += fmt::format("\n# ===== stage {} ({}), {} rank(s)\n", s.name, s.where, s.resources.ranks);
    if (s.name == "ingest") {
      std::vector<std::string> argv = {"conflux", "ingest"};
      argv.insert(argv.end(), s.ingest_args.begin(), s.ingest_args.end());
      argv.insert(argv.end(), {"-o", s.output});
      out += "# " + proc::shell_line(argv) + "\n";
      continue;
    }
    const std::string tmp = fmt::format("/tmp/.conflux-pipeline-show-{}-{}.toml", ::getpid(), s.name);
    write_file_atomic(tmp, s.config_text);
    try {
      out += validate(s.name, tmp, s.set);
    } catch (...) {
      std::remove(tmp.c_str());
      throw;
    }
    std::remove(tmp.c_str());
  }
  return out;
}

static ConfigSchemaRegistrar pipeline_schema(
    {"pipeline", "the lifecycle from one file (conflux pipeline): every stage's effective config", nullptr,
     show_pipeline});

CONFLUX_VERB("pipeline run", "run the lifecycle (ingest, prepare, train, evaluate) from one file, skipping what is up to date",
             pipeline_run);
CONFLUX_VERB("pipeline submit", "submit the pipeline's stages as a Slurm job chain (afterok)", pipeline_submit);
CONFLUX_VERB("pipeline status", "each stage's state, job ids and the provenance chain of a pipeline run",
             pipeline_status);

}  // namespace
}  // namespace conflux::cli
