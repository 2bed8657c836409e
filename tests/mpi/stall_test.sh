#!/usr/bin/env bash
# A stalled rank ends the job: under mpirun -np 2, rank 1 is stopped with SIGSTOP while the verb
# runs; rank 0 times out in its next collective (comm.timeout_s = 5), names the stalled rank and
# the collective, and aborts the job (MPI_Abort) with exit code 3 instead of blocking forever in
# the collective teardown of its communicators. The 120 s bound is a hang check, not a timing
# threshold. Cases:
#   train-dp        data-parallel training (dp 2), the bucketed gradient all-reduce
#   train-dp-noshm  the same with comm.shm = false
#   train-tp        tensor-parallel training (tp 2), the tp communicator of the process grid
#   prepare         conflux prepare (the dataplane pipeline's collectives)
#   evaluate        conflux evaluate --mpi (needs the evaluate fixture's checkpoint: FIXTURE)
# Rank 1 is stopped once training has logged 3 steps (train), or once rank 1 has built its
# process grid (prepare, evaluate: its "communicator 'dp'" debug line; both verbs then work for
# several seconds before their last collective).
# usage: stall_test.sh CASE FIXTURE|- CONFLUX MPIRUN [mpirun flags...]
#        stall_test.sh CASE FIXTURE|- CONFLUX srun     under Slurm: `srun --mpi=pmix -n 2`, run
#            under scripts/slurm/local-cluster.sh run (ctest: mpi_stall_slurm_*); srun must end
#            with the same exit code 3 (Open MPI's MPI_Abort reaches Slurm through PMIx, which
#            kills the step, the stopped rank included).
set -euo pipefail
CASE=$1; FIXTURE=$2; CONFLUX=$3; MPIRUN=$4; shift 4; MPIFLAGS=("$@")
T=$(mktemp -d /tmp/conflux-stall.XXXXXX)
JOB=""; STOPPED=""
cleanup() {
  # Never leave a stopped or orphaned rank behind, whatever happened.
  if [ -n "$STOPPED" ]; then kill -CONT "$STOPPED" 2>/dev/null || true; kill -9 "$STOPPED" 2>/dev/null || true; fi
  if [ -n "$JOB" ]; then
    # srun: the ranks are slurmstepd's children; the cluster's `stop` ends them after this.
    for p in $(pgrep -P "$JOB" 2>/dev/null) ; do
      for c in $(pgrep -P "$p" 2>/dev/null); do kill -CONT "$c" 2>/dev/null || true; kill -9 "$c" 2>/dev/null || true; done
      kill -9 "$p" 2>/dev/null || true
    done
    kill -9 "$JOB" 2>/dev/null || true
  fi
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL ($CASE): $*" >&2; echo "== stderr of the job" >&2; tail -30 "$T/job.err" >&2 || true; exit 1; }

# The pid of world rank $1 of the job: under mpirun a child of mpirun (itself the child of
# `timeout`); under srun a child of slurmstepd, found by this run's tag in its environment.
rank_pid() {
  local p c f
  if [ "$MPIRUN" = srun ]; then
    for f in $(grep -lzxF "CONFLUX_STALL_TAG=$T" /proc/[0-9]*/environ 2>/dev/null); do
      p=${f#/proc/}; p=${p%/environ}
      [ "$(cat "/proc/$p/comm" 2>/dev/null)" = conflux ] && grep -qzx "SLURM_PROCID=$1" "$f" 2>/dev/null &&
        { echo "$p"; return; }
    done
    return
  fi
  for p in $(pgrep -P "$JOB"); do
    for c in $(pgrep -P "$p"); do
      tr '\0' '\n' < "/proc/$c/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$c"; return; }
    done
  done
}

# Waits (bounded) until the shell condition $1 holds.
wait_for() {
  for _ in $(seq 1 1200); do eval "$1" && return 0; kill -0 "$JOB" 2>/dev/null || return 1; sleep 0.05; done
  return 1
}

train_config() {  # tp
  "$CONFLUX" ingest -i /usr/share/games/fortunes/computers -f fortune -o "$T/data" --rows-per-shard 200 \
    > "$T/ingest.log" 2>&1 || { cat "$T/ingest.log"; exit 1; }
  cat > "$T/job.toml" <<TOML
[model]
vocab_size = 260
context = 32
n_layer = 2
n_head = 2
d_model = 32
[data]
dataset = "$T/data"
[train]
steps = 100000
batch_size = 8
[parallel]
tp = $1
[comm]
timeout_s = 5
[checkpoint]
dir = "$T/ckpt"
every = 0
[output]
dir = "$T/out"
TOML
}

READY=""
GRID_READY='grep -q "\[rank 1\] \[debug\] communicator .dp.: " "$T/job.err"'
ARGS=()
case "$CASE" in
  train-dp|train-dp-noshm|train-tp)
    [ "$CASE" = train-tp ] && train_config 2 || train_config 1
    ARGS=(train "$T/job.toml")
    [ "$CASE" = train-dp-noshm ] && ARGS+=(--set comm.shm=false)
    READY='[ -f "$T/out/metrics.jsonl" ] && [ "$(wc -l < "$T/out/metrics.jsonl")" -ge 3 ]'
    ;;
  prepare)
    # The whole fortunes corpus (about 15,000 records) with near dedup and augmented copies:
    # several seconds of work between the grid and the last collective.
    "$CONFLUX" ingest -i /usr/share/games/fortunes -f fortune -o "$T/data" --rows-per-shard 2000 \
      > "$T/ingest.log" 2>&1 || { cat "$T/ingest.log"; exit 1; }
    cat > "$T/job.toml" <<TOML
[prepare]
input = "$T/data"
output = "$T/prepared"
seed = 1
[dedup]
near = true
[augment]
ops = ["mask", "span"]
copies = 8
[comm]
timeout_s = 5
TOML
    ARGS=(prepare "$T/job.toml")
    READY=$GRID_READY
    ;;
  evaluate)
    [ -d "$FIXTURE/ckpt" ] || fail "no evaluate fixture at $FIXTURE"
    cat > "$T/job.toml" <<TOML
[evaluate]
checkpoint = "$FIXTURE/ckpt"
dataset = "$FIXTURE/data"
metrics = ["perplexity", "ece", "bleu"]
split = "all"   # every row: seconds of work before the last collective (validation is 4 rows)
rows_per_task = 1
context = 24
batch_size = 1
[generation]
prompt_tokens = 12
max_new_tokens = 64
every = 1
[comm]
timeout_s = 5
[output]
dir = "$T/eval-out"
TOML
    ARGS=(evaluate "$T/job.toml" --mpi)
    READY=$GRID_READY
    ;;
  *) echo "unknown case $CASE" >&2; exit 2 ;;
esac

LAUNCH=("$MPIRUN" "${MPIFLAGS[@]}" -np 2)
if [ "$MPIRUN" = srun ]; then
  [ -n "${SLURM_CONF:-}" ] || fail "srun: no cluster; run me under scripts/slurm/local-cluster.sh run"
  LAUNCH=(srun --mpi=pmix -n 2)
fi
set +e
CONFLUX_STALL_TAG=$T CONFLUX_LOG_LEVEL=debug OMP_NUM_THREADS=1 timeout 120 "${LAUNCH[@]}" "$CONFLUX" "${ARGS[@]}" \
  > "$T/job.out" 2> "$T/job.err" &
JOB=$!
wait_for "$READY" || fail "the job never reached the point where rank 1 is stopped"
STOPPED=$(rank_pid 1)
[ -n "$STOPPED" ] || fail "could not find rank 1 under $MPIRUN"
kill -STOP "$STOPPED"
wait "$JOB"; RC=$?
JOB=""
set -e
[ "$RC" -ne 124 ] || fail "the job hung: still running 120 s after start with rank 1 stopped"
[ "$RC" -eq 3 ] || fail "the job exited $RC, expected 3 (communication failure)"
grep -q "conflux: communication error: " "$T/job.err" || fail "no communication error reported"
grep -Eq "rank 1 of communicator '(world|dp|tp)' (did not arrive at|stalled inside) collective #[0-9]+ \(" "$T/job.err" ||
  fail "the error does not name the stalled rank 1 and the collective"
grep -q "\[rank 0 on " "$T/job.err" || fail "the error does not name the rank that detected it"
if [ "$CASE" = prepare ]; then [ ! -e "$T/prepared" ] || fail "a prepare that failed published its output"; fi
echo "$CASE ($MPIRUN): rank 1 stopped; job ended with exit 3: $(grep -o "rank 1 of communicator '[a-z]*' [a-z ]* collective #[0-9]* ([^)]*)" "$T/job.err" | head -1)"
