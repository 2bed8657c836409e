// `conflux pipeline submit` and `conflux pipeline status`: the pipeline as a Slurm job chain.
//
// submit(): plans like run() (same skipping), then submits each stage that runs with
//   sbatch --parsable -J conflux-NAME-STAGE -n RANKS [-N -c -t -p --gres from resources]
//          -D BASE --output=DIR/stages/STAGE/log.txt --open-mode=append
//          [--dependency=afterok:PREVIOUS] SCRIPTS/STAGE.sbatch ARGS
// with CONFLUX (and CONFLUX_WORKER) in the job's environment; the evaluation stage is the
// coordinator job plus a job array of workers (evaluate.sbatch + evaluate-worker.sbatch, meeting
// in DIR/stages/evaluate/rendezvous); the federated stage likewise (federate.sbatch +
// federate-worker.sbatch), after a partition.sbatch job when it has [stages.federate.partition]
// (that job's id goes last in the record, so the first is still the coordinator's). Each stage's record becomes "submitted" with its job ids.
// print_status(): each stage's state from its record and, for submitted stages, from Slurm
// (squeue, then scontrol show job, then sacct); a submitted stage whose jobs COMPLETED becomes
// done (its input and output digests are recorded then, so a later run skips it), a failed one
// failed with the last lines of its log. Then the provenance chain.
#pragma once

#include "conflux/pipeline/pipeline.h"

#include <string>
#include <vector>

namespace conflux::pipeline {

struct SubmitOptions {
  std::string scripts_dir;               // empty: $CONFLUX_SLURM_SCRIPTS, installed, source tree
  std::vector<std::string> sbatch_args;  // added to every sbatch
};

// The directory holding the stage sbatch scripts (see SubmitOptions::scripts_dir).
std::string slurm_scripts_dir(const std::string& given);

int submit(const Pipeline& p, const RunOptions& o, const SubmitOptions& s, const ConfigValidator& validate);

// Slurm's state of a job ("PENDING", "RUNNING", "COMPLETED", "FAILED", ...; "" if unknown).
std::string job_state(const std::string& job_id);

int print_status(const Pipeline& p, bool json);

}  // namespace conflux::pipeline
