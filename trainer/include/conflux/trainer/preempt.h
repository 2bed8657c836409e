// Preemption: SIGUSR1 / SIGTERM set a flag (async-signal-safe); the training loop polls it once
// per step, the ranks agree with a one-integer all-reduce (max), write a checkpoint and return
// TrainStatus::Preempted, which `conflux train` maps to exit code 75 (kExitPreempted) so a Slurm
// script can requeue itself (scripts/slurm/train.sbatch).
#pragma once

namespace conflux::trainer {

// Installs the handlers (idempotent); the previous handlers are restored by uninstall.
void install_preemption_handlers();
void uninstall_preemption_handlers();
bool preemption_requested();
void request_preemption();   // same as receiving the signal (tests)
void clear_preemption();

// Test hook: CONFLUX_TEST_PREEMPT_AT_STEP=N makes the run behave as if SIGUSR1 arrived during
// step N (checkpoint at N, exit 75), so tests of resumption do not race the clock
// (tests/pipeline/pipeline_run_test.sh). 0 (inert) when unset; a malformed value is a UsageError.
long long test_preempt_step();

}  // namespace conflux::trainer
