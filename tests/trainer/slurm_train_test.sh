#!/usr/bin/env bash
# `conflux train` under a real single-node Slurm cluster: preempted once, requeued, resumed, and
# finished with the weights of an uninterrupted run. Independent of the machine's speed: the test
# decides when the job is preempted and when it may finish.
#   1. sbatch -n 2 scripts/slurm/train.sbatch with train.steps = 10^9 (it cannot finish) and a
#      checkpoint every 5 steps; the learning rate is constant (lr = min_lr, no warmup), so the
#      schedule does not depend on train.steps.
#   2. Once the first checkpoint directory exists: scancel --signal=USR1 (the job's tasks, not the
#      batch shell). Both ranks checkpoint at the same step P and exit 75; train.sbatch requeues.
#   3. Once the job is PENDING again: the test sets train.steps = P + 10 in the config and releases
#      the job to start 2 s later (Slurm would hold a requeued job ~120 s; why not at once: at the
#      release below). It resumes from step P and finishes.
#   4. Asserts: the job COMPLETED after exactly one restart; its log shows the preemption, the
#      requeue and "resumed from .../step-P at step P"; metrics.jsonl holds steps 1..P+10, each
#      once (the step count continues); the final checkpoint step-(P+10) is byte for byte that of
#      an uninterrupted `srun -n 2 conflux train` to P+10 steps (model and optimizer files).
# usage: local-cluster.sh run slurm_train_test.sh CONFLUX_BINARY   (ctest: trainer_slurm_train_test)
# Every wait is bounded; the cluster and whatever the job left running are stopped by `run`.
set -euo pipefail
CONFLUX=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/slurm/lib.sh
source "$ROOT/tests/slurm/lib.sh"   # fail, job_field, wait_for (on $JOB)
need_cluster trainer_slurm_train_test
T="$CONFLUX_SLURM_DIR/train-test"   # removed with the cluster's directory
mkdir -p "$T"
export OMP_NUM_THREADS=1

newest_step() { local d; d=$(ls -d "$1"/step-* 2>/dev/null | sort | tail -n1); [ -n "$d" ] && echo $((10#${d##*/step-})); }

"$CONFLUX" ingest -i /usr/share/games/fortunes/computers -f fortune -o "$T/data" > /dev/null
write_config() {  # DIR STEPS
  cat > "$1/train.toml" <<TOML
[model]
vocab_size = 260
context = 32
n_layer = 2
n_head = 2
d_model = 32
[data]
dataset = "$T/data"
[train]
steps = $2
batch_size = 8
lr = 1e-3
min_lr = 1e-3      # constant: the schedule does not depend on train.steps, which the test changes
warmup_steps = 0
eval_every = 0
[checkpoint]
dir = "$1/ckpt"
every = 5
keep_last = 100
[output]
dir = "$1/out"
progress = false
TOML
}
mkdir -p "$T/job" "$T/ref"
write_config "$T/job" 1000000000

LOG="$T/job/slurm.log"
JOB=$(CONFLUX="$CONFLUX" timeout 30 sbatch --parsable -n 2 -D "$T/job" --output="$LOG" \
      "$ROOT/scripts/slurm/train.sbatch" "$T/job/train.toml")
[[ "$JOB" =~ ^[0-9]+$ ]] || fail "sbatch printed '$JOB', not a job id"

# 2. Preempt once the first checkpoint exists (a condition the test controls, not the clock).
wait_for 120 "the first checkpoint" '[ -n "$(newest_step "$T/job/ckpt")" ]'
timeout 10 scancel --signal=USR1 "$JOB" || fail "scancel --signal=USR1 $JOB failed"

# 3. The tasks checkpoint and exit 75, train.sbatch requeues: the job is pending again.
wait_for 60 "the requeue after USR1" '[ "$(job_field JobState)" = PENDING ] && [ "$(job_field Restarts)" = 1 ]'
grep -q "preempted with a checkpoint; requeueing" "$LOG" || fail "train.sbatch did not report the preemption"
P=$(newest_step "$T/job/ckpt")
[ "$(wc -l < "$T/job/out/metrics.jsonl")" -eq "$P" ] || fail "the preempted run logged $(wc -l < "$T/job/out/metrics.jsonl") steps, its checkpoint is at step $P"
STEPS=$((P + 10))
write_config "$T/job" "$STEPS"
# Not StartTime=now: slurmd revokes the first run's job credential at the requeue, with a time in
# whole seconds, and refuses any credential of this job issued in that same second ("Job
# credential revoked": the job ends FAILED without running). Two seconds later is always past it.
timeout 10 scontrol update jobid="$JOB" StartTime=now+2 || fail "could not release the requeued job $JOB"

# 4. Resumed, finished.
wait_for 120 "the resumed job's completion" '[ "$(job_field JobState)" = COMPLETED ]'
[ "$(job_field Restarts)" = 1 ] || fail "job $JOB restarted $(job_field Restarts) times, expected once"
grep -q "resumed from $T/job/ckpt/step-$(printf %08d "$P") at step $P" "$LOG" || fail "the requeued job did not resume from step $P"
steps=$(grep -o '"step": *[0-9]*' "$T/job/out/metrics.jsonl" | grep -o '[0-9]*$' | tr '\n' ' ')
[ "$steps" = "$(seq 1 "$STEPS" | tr '\n' ' ')" ] || fail "metrics.jsonl steps are not 1..$STEPS once each: $steps"

# The uninterrupted run to the same step, on the same cluster and ranks.
write_config "$T/ref" "$STEPS"
timeout 120 srun --mpi=pmix -n 2 "$CONFLUX" train "$T/ref/train.toml" > "$T/ref/train.log" 2>&1 ||
  { cat "$T/ref/train.log" >&2; fail "the uninterrupted reference run failed"; }
final=$(printf step-%08d "$STEPS")
n=0
for f in "$T/ref/ckpt/$final"/*.safetensors; do
  cmp "$f" "$T/job/ckpt/$final/${f##*/}" || fail "$final/${f##*/} differs from the uninterrupted run's"
  n=$((n + 1))
done
[ "$n" -ge 2 ] || fail "no model and optimizer files in $T/ref/ckpt/$final"
echo "slurm train test passed: preempted at step $P by the test, requeued, resumed, finished at $STEPS" \
     "with the uninterrupted run's $n safetensors files"
