#!/usr/bin/env bash
# `conflux train` under a real single-node Slurm cluster (scripts/slurm/local-cluster.sh):
# sbatch -n 2 --time=2 scripts/slurm/train.sbatch; Slurm's --signal=USR1@90 preempts the run,
# the tasks exit 75 with a checkpoint, the script requeues the job, and the requeued job resumes
# from the checkpoint, until all steps are done (metrics.jsonl has exactly one line per step).
# usage: slurm_train_test.sh CONFLUX_BINARY   (starts the local cluster if needed; ~2 min)
set -euo pipefail
CONFLUX=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/conflux-slurm-train.XXXXXX)
"$ROOT/scripts/slurm/local-cluster.sh" start
eval "$("$ROOT/scripts/slurm/local-cluster.sh" env)"
"$CONFLUX" ingest -i /usr/share/games/fortunes/computers -f fortune -o "$T/data" > /dev/null
STEPS=1500
cat > "$T/train.toml" <<TOML
[model]
vocab_size = 260
context = 32
n_layer = 2
n_head = 2
d_model = 32
[data]
dataset = "$T/data"
[train]
steps = $STEPS
batch_size = 8
eval_every = 0
[checkpoint]
dir = "$T/ckpt"
every = 0
[output]
dir = "$T/out"
progress = false
TOML
JOB=$(CONFLUX="$CONFLUX" sbatch --parsable -n 2 --time=2 -D "$T" --output="$T/slurm-%j.log" \
      "$ROOT/scripts/slurm/train.sbatch" "$T/train.toml")
st=""
for _ in $(seq 1 200); do
  st=$(scontrol show job "$JOB" | grep -o "JobState=[A-Z]*" | cut -d= -f2)
  # A requeued job is held ~120 s; release it once the previous instance has finished.
  if [ "$st" = PENDING ] && scontrol show job "$JOB" | grep -q "Restarts=[1-9]"; then
    sleep 8; scontrol update jobid="$JOB" StartTime=now || true
  fi
  case "$st" in COMPLETED|FAILED|CANCELLED|TIMEOUT) break ;; esac
  sleep 3
done
cat "$T/slurm-$JOB.log"
[ "$st" = COMPLETED ] || { echo "FAIL: job $JOB ended $st"; exit 1; }
grep -q "resumed from" "$T/slurm-$JOB.log" || { echo "FAIL: the job was never preempted and resumed"; exit 1; }
[ "$(wc -l < "$T/out/metrics.jsonl")" -eq "$STEPS" ] || { echo "FAIL: metrics lines != $STEPS"; exit 1; }
rm -rf "$T"
echo "slurm train test passed"
