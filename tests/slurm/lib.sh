# shellcheck shell=bash
# Shell helpers for the Slurm tests (sourced; they run under scripts/slurm/local-cluster.sh run,
# which exports SLURM_CONF and CONFLUX_SLURM_DIR and stops the cluster on every exit path).
#   fail MESSAGE             prints FAIL and the job log $LOG (when set), exits 1
#   need_cluster NAME        fails unless run under local-cluster.sh run (NAME: the ctest name)
#   rendezvous_test NAME CONFLUX CONFLUX_WORKER   the setup of a test of scripts/slurm/'s stage
#                            scripts: need_cluster NAME; exports CONFLUX and CONFLUX_WORKER
#                            (absolute), the coordinator on 127.0.0.1 and short rendezvous waits;
#                            sets S (scripts/slurm) and T (a fresh directory of the cluster's)
#   job_field FIELD [JOB]    FIELD of `scontrol show job JOB` (default $JOB), empty if unknown
#   ended STATE              true for a final job state
#   wait_for SECONDS WHAT CONDITION   polls the shell CONDITION every 0.2 s, bounded; fails at
#                            once if job $JOB (when set) ended without CONDITION holding
#   wait_job SECONDS JOB     waits (bounded) until JOB ended; prints its final state
#   submit NAME OUTPUT [sbatch options] SCRIPT ARGS...   sbatch --parsable -J conflux-NAME -D $T
#                            --output=OUTPUT; prints the job id
#   check_rendezvous RDV N   RDV (scripts/slurm/rendezvous.sh) is mode 0700 and holds exactly the
#                            N + 1 secret keys (coordinator, worker-0..N-1), each mode 0600, an
#                            allow.txt of N lines, and no coordinator.addr (the coordinator ended)
# Every wait is bounded; nothing here starts a process that outlives the test.
fail() { echo "FAIL: $*" >&2; [ -n "${LOG:-}" ] && [ -f "$LOG" ] && { echo "== job log $LOG" >&2; cat "$LOG" >&2; }; exit 1; }
need_cluster() {
  [ -n "${SLURM_CONF:-}" ] && [ -n "${CONFLUX_SLURM_DIR:-}" ] && return 0
  fail "no cluster: run me under scripts/slurm/local-cluster.sh run (ctest -R $1 does)"
}
job_field() { timeout 10 scontrol show job "${2:-$JOB}" 2>/dev/null | grep -o "$1=[^ ]*" | head -n1 | cut -d= -f2 || true; }
ended() { case "$1" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE) true ;; *) false ;; esac; }
wait_for() {
  local n=$(($1 * 5)) what=$2 cond=$3 st
  for _ in $(seq 1 "$n"); do
    eval "$cond" && return 0
    if [ -n "${JOB:-}" ]; then st=$(job_field JobState); ! ended "$st" || fail "$what: job $JOB ended $st first"; fi
    sleep 0.2
  done
  fail "$what: not within $1 s${JOB:+ (job $JOB: state $(job_field JobState), restarts $(job_field Restarts))}"
}
wait_job() {
  local n=$(($1 * 5)) st=""
  for _ in $(seq 1 "$n"); do
    st=$(job_field JobState "$2")
    ended "$st" && { echo "$st"; return 0; }
    sleep 0.2
  done
  echo "${st:-UNKNOWN}(still after $1 s)"
}
check_rendezvous() {
  local rdv=$1 want=$(($2 + 1)) n=0 k
  [ "$(stat -c %a "$rdv")" = 700 ] || fail "the rendezvous directory $rdv is mode $(stat -c %a "$rdv"), expected 700"
  for k in "$rdv"/*.key; do
    [ "$(stat -c %a "$k")" = 600 ] || fail "$k is mode $(stat -c %a "$k"), expected 600"
    n=$((n + 1))
  done
  [ "$n" -eq "$want" ] || fail "expected $want secret keys (coordinator, worker-0..$(($2 - 1))) in $rdv, found $n"
  [ "$(wc -l < "$rdv/allow.txt")" -eq "$2" ] || fail "$rdv/allow.txt should list the $2 workers: $(cat "$rdv/allow.txt")"
  [ ! -e "$rdv/coordinator.addr" ] || fail "$rdv/coordinator.addr outlived the coordinator job"
}
submit() {
  local name=$1 out=$2 id
  shift 2
  id=$(timeout 30 sbatch --parsable -J "conflux-$name" -D "$T" --output="$out" --open-mode=append "$@") ||
    fail "sbatch of $name failed"
  [[ "$id" =~ ^[0-9]+$ ]] || fail "sbatch of $name printed '$id', not a job id"
  echo "$id"
}
rendezvous_test() {
  need_cluster "$1"
  CONFLUX=$(realpath "$2")
  CONFLUX_WORKER=$(realpath "$3")
  export CONFLUX CONFLUX_WORKER OMP_NUM_THREADS=1 CONFLUX_COORDINATOR_HOST=127.0.0.1 \
         CONFLUX_COORDINATOR_BIND=127.0.0.1 CONFLUX_RENDEZVOUS_WAIT_S=60 CONFLUX_WORKER_GIVE_UP_S=30
  # shellcheck disable=SC2034  # S and T are for the test that sources this file
  S="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/slurm"
  T="$CONFLUX_SLURM_DIR/$1"   # removed with the cluster's directory
  mkdir -p "$T"
}
