#!/usr/bin/env bash
# A stalled rank ends the job: under mpirun -np 2, rank 1 is stopped with SIGSTOP; rank 0 times
# out (comm.timeout_s = 5), names the stalled rank and where, and ends the job with exit code 3
# instead of blocking forever (in a collective, in the collective teardown of its communicators,
# in the process grid's set-up, in MPI_Init or in MPI_Finalize). The 120 s bound is a hang
# check, not a timing threshold. Cases, the first five stopped from outside (kill -STOP) while
# the verb works:
#   train-dp        data-parallel training (dp 2), the bucketed gradient all-reduce
#   train-dp-noshm  the same with comm.shm = false
#   train-tp        tensor-parallel training (tp 2), the tp communicator of the process grid
#   prepare         conflux prepare (the dataplane pipeline's collectives)
#   evaluate        conflux evaluate --mpi (needs the evaluate fixture's checkpoint: FIXTURE)
# and three where rank 1 stops itself at an exact point through the test hook
# CONFLUX_TEST_STOP_AT=POINT:1 (core/src/process_grid.cpp), running a small conflux prepare:
#   grid-setup      inside the process grid's constructor, before its first collective: rank 0
#                   names rank 1 at "the process grid set-up"; nothing is published
#   job-end         after the job's last collective (the grid's destructor, before the teardown
#                   and MPI_Finalize): rank 0 names rank 1 at "the end of the job"; the output was
#                   published and is kept
#   mpi-init        before MPI_Init: rank 0's MPI_Init cannot complete; it says so (MPI cannot
#                   name a rank that has not started it) and exits 3, which ends the job
# Rank 1 is stopped from outside once training has logged 3 steps (train), or once rank 1 has
# built its process grid (prepare, evaluate: its "communicator 'dp'" debug line; both verbs then
# work for several seconds before their last collective).
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

prepare_config() {  # input rows-per-shard augmented-copies
  "$CONFLUX" ingest -i "$1" -f fortune -o "$T/data" --rows-per-shard "$2" > "$T/ingest.log" 2>&1 ||
    { cat "$T/ingest.log"; exit 1; }
  cat > "$T/job.toml" <<TOML
[prepare]
input = "$T/data"
output = "$T/prepared"
seed = 1
[dedup]
near = true
[augment]
ops = ["mask", "span"]
copies = $3
[comm]
timeout_s = 5
TOML
  ARGS=(prepare "$T/job.toml")
}

# True once world rank $1 is stopped (state T), and then remembers its pid for the cleanup.
rank_stopped() {
  local p
  p=$(rank_pid "$1")
  [ -n "$p" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = T ] && STOPPED=$p
}

READY=""
HOOK=""  # POINT:RANK for CONFLUX_TEST_STOP_AT (the rank stops itself), or empty (kill -STOP)
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
    prepare_config /usr/share/games/fortunes 2000 8
    READY=$GRID_READY
    ;;
  grid-setup|job-end|mpi-init)
    prepare_config /usr/share/games/fortunes/computers 200 1
    HOOK="$CASE:1"
    [ "$CASE" = job-end ] && HOOK="grid-teardown:1"
    READY='rank_stopped 1'
    ;;
  evaluate)
    [ -d "$FIXTURE/ckpt" ] || fail "no evaluate fixture at $FIXTURE"
    cat > "$T/job.toml" <<TOML
[evaluate]
checkpoint = "$FIXTURE/ckpt"
dataset = "$FIXTURE/data"
metrics = ["perplexity", "ece", "bleu"]
split = "all"   # every row: seconds of work, so the stop lands inside it (validation is 4 rows; job-end stops later)
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
CONFLUX_TEST_STOP_AT=$HOOK CONFLUX_STALL_TAG=$T CONFLUX_LOG_LEVEL=debug OMP_NUM_THREADS=1 timeout 120 \
  "${LAUNCH[@]}" "$CONFLUX" "${ARGS[@]}" > "$T/job.out" 2> "$T/job.err" &
JOB=$!
wait_for "$READY" || fail "the job never reached the point where rank 1 is stopped"
if [ -z "$HOOK" ]; then
  STOPPED=$(rank_pid 1)
  [ -n "$STOPPED" ] || fail "could not find rank 1 under $MPIRUN"
  kill -STOP "$STOPPED"
fi
wait "$JOB"; RC=$?
JOB=""
set -e
[ "$RC" -ne 124 ] || fail "the job hung: still running 120 s after start with rank 1 stopped"
if [ "$MPIRUN" = srun ] && [ "$CASE" = mpi-init ]; then
  # Under srun, rank 0 exits 3 before MPI is up (no MPI_Abort to pass through PMIx); Slurm then
  # kills the step, and srun reports the killed task's code (docs/reliability.md). What matters:
  # the job ended, and rank 0's message says why.
  case "$RC" in 3|137|143) ;; *) fail "the job exited $RC, expected 3 (or 137/143: srun's killed task)" ;; esac
else
  [ "$RC" -eq 3 ] || fail "the job exited $RC, expected 3 (communication failure)"
fi
grep -q "conflux: communication error: " "$T/job.err" || fail "no communication error reported"
grep -q "\[rank 0 on \|on rank 0 (as launched)" "$T/job.err" ||
  fail "the error does not name the rank that detected it"
case "$CASE" in
  grid-setup) WHAT="rank 1 of communicator 'world' did not arrive at the process grid set-up within [0-9.]+ s" ;;
  job-end) WHAT="rank 1 of communicator 'world' did not arrive at the end of the job \(before MPI_Finalize\) within [0-9.]+ s" ;;
  mpi-init) WHAT="MPI_Init did not complete within [0-9.]+ s \(comm.timeout_s\) on rank 0 \(as launched\): another rank of the job has not started MPI" ;;
  *) WHAT="rank 1 of communicator '(world|dp|tp)' (did not arrive at|stalled inside) collective #[0-9]+ \([^)]*\)" ;;
esac
grep -Eq "$WHAT" "$T/job.err" || fail "the error does not say what stalled where: expected /$WHAT/"
case "$CASE" in
  prepare|grid-setup|mpi-init) [ ! -e "$T/prepared" ] || fail "a prepare that failed published its output" ;;
  job-end)
    # The work was done before rank 1 stopped: the output is published, complete, and kept.
    grep -q "^prepared $T/prepared: " "$T/job.out" || fail "prepare did not finish its work before the stall"
    "$CONFLUX" inspect "$T/prepared" > "$T/inspect.log" 2>&1 || { cat "$T/inspect.log" >&2; fail "the output is not a valid dataset"; }
    ;;
esac
echo "$CASE ($MPIRUN): rank 1 stopped; job ended with exit 3: $(grep -Eo "$WHAT" "$T/job.err" | head -1)"
