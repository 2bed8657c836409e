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

}  // namespace conflux::trainer
