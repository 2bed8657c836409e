# shellcheck shell=bash
# The rendezvous of a coordinator job and its job array of workers, sourced by evaluate.sbatch,
# evaluate-worker.sbatch, federate.sbatch and federate-worker.sbatch (not run on its own).
#
# The coordinator job and the workers share one directory RDV on a shared file system; nothing
# secret and no address goes on a command line. Layout (docs/operations.md "Slurm"):
#   RDV/coordinator.key, .pub     the coordinator's CURVE keypair (conflux keygen; .key mode 0600)
#   RDV/worker-I.key, .pub        worker I's keypair, I = 0..N-1 (the array index)
#   RDV/allow.txt                 the coordinator's allow-list: worker-0.pub .. worker-(N-1).pub
#   RDV/coordinator.addr          "tcp://HOST:PORT JOBID": where the coordinator of job JOBID listens
#   RDV/coordinator-JOBID.log     that coordinator's output (also in the job's own log)
# Contract, and why no worker can act on a half-written or stale rendezvous:
#   * rdv_coordinator (in the coordinator job) holds RDV/.lock while it prepares: it refuses to
#     run when coordinator.addr names another job that is still RUNNING (two coordinators on one
#     directory), removes a stale coordinator.addr, creates the keys that are missing (an existing
#     keypair is kept, so a rerun or requeue keeps its identities) and rewrites allow.txt
#     atomically. Then it starts the coordinator with server.bind = tcp://BIND:* (the kernel picks
#     a free port: no port race), reads the port from the coordinator's "listening on" log line and
#     only then writes coordinator.addr atomically (temp file + rename). Every key exists before
#     the address does. On exit it removes coordinator.addr if it is still its own.
#   * rdv_worker (in array task I) waits, bounded by CONFLUX_RENDEZVOUS_WAIT_S, until
#     coordinator.addr exists, names a job that is RUNNING, and worker-I.key exists; an address
#     left by an ended job is ignored. The worker then connects with --give-up-after, so a
#     coordinator that dies later does not keep it forever.
# Environment: CONFLUX (the conflux binary, default `conflux` in PATH), CONFLUX_WORKER (default
# conflux-worker next to $CONFLUX, else in PATH), CONFLUX_COORDINATOR_HOST (the address workers
# connect to, default `hostname -f` of the coordinator's node), CONFLUX_COORDINATOR_BIND (the
# interface the coordinator binds, default `*`: every interface; CURVE and the allow-list guard
# it), CONFLUX_RENDEZVOUS_WAIT_S (a worker's wait for the coordinator, default 600),
# CONFLUX_WORKER_GIVE_UP_S (conflux-worker --give-up-after, default 300).
# Needs a Slurm job (SLURM_JOB_ID) and `scontrol`.

CONFLUX=${CONFLUX:-conflux}
rdv_die() { echo "conflux rendezvous: $*" >&2; exit 1; }

# rdv_config_value VERB CONFIG SECTION KEY [--set k=v]...: KEY of [SECTION] in the effective
# config (`conflux config show`, overrides applied), quotes stripped.
rdv_config_value() {
  local verb=$1 config=$2 section=$3 key=$4 shown
  shift 4
  shown=$("$CONFLUX" config show "$config" --kind "$verb" "$@") ||
    rdv_die "cannot read $config as a $verb config (conflux config show failed)"
  printf '%s\n' "$shown" | awk -v s="[$section]" -v k="$key" '
    /^\[/ { in_s = ($1 == s) } in_s && $1 == k && $2 == "=" { v = $3; gsub(/^'\''|'\''$/, "", v); print v; exit }'
}

# rdv_coordinator_main VERB SECTION KEY SET_KEY CONFIG RDV [--workers N] [VERB options]...: the
# body of evaluate.sbatch / federate.sbatch. N is --workers, else KEY of [SECTION] in the
# effective config (the --set overrides applied); with --workers and a SET_KEY (evaluate:
# server.workers) the coordinator also gets --set SET_KEY=N. Returns the coordinator's exit code.
rdv_coordinator_main() {
  local verb=$1 section=$2 key=$3 set_key=$4
  shift 4
  [ "$#" -ge 2 ] || { echo "usage: sbatch $verb.sbatch CONFIG.toml RENDEZVOUS_DIR [--workers N] [--set a.b=c]..." >&2; exit 2; }
  local config=$1 rdv=$2 n="" a
  shift 2
  local args=() sets=()
  while [ "$#" -gt 0 ]; do
    a=$1; shift
    case "$a" in
      --workers) n=${1:-}; shift || true ;;
      --workers=*) n=${a#--workers=} ;;
      --set) sets+=(--set "${1:-}"); args+=(--set "${1:-}"); shift || true ;;
      --set=*) sets+=(--set "${a#--set=}"); args+=("$a") ;;
      *) args+=("$a") ;;
    esac
  done
  if [ -n "$n" ]; then
    [ -n "$set_key" ] && args+=(--set "$set_key=$n")
  else
    n=$(rdv_config_value "$verb" "$config" "$section" "$key" "${sets[@]}") || exit 1
    [ -n "$n" ] || rdv_die "$config: no $section.$key in the effective $verb config; pass --workers N"
  fi
  rdv_coordinator "$verb" "$config" "$rdv" "$n" "${args[@]}"
}

# rdv_job_state JOBID: the job's state (RUNNING, COMPLETED, ...), empty if Slurm does not know it.
rdv_job_state() {
  timeout 10 scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -n1 | cut -d= -f2 || true
}

# rdv_keys RDV N: the coordinator's and workers 0..N-1's keypairs (missing ones created) and
# allow.txt (rewritten atomically).
rdv_keys() {
  local rdv=$1 n=$2 name i
  for name in coordinator $(for ((i = 0; i < n; i++)); do echo "worker-$i"; done); do
    if [ ! -s "$rdv/$name.key" ] || [ ! -s "$rdv/$name.pub" ]; then
      "$CONFLUX" keygen "$name" --out-dir "$rdv" --force >/dev/null || rdv_die "conflux keygen $name failed in $rdv"
    fi
  done
  local tmp="$rdv/.allow.txt.tmp-$$"
  { for ((i = 0; i < n; i++)); do cat "$rdv/worker-$i.pub"; done > "$tmp" && mv -f "$tmp" "$rdv/allow.txt"; } ||
    rdv_die "cannot write $rdv/allow.txt"
}

# On the coordinator job's exit: removes RDV_OWNED/coordinator.addr if it is still this job's (a
# later coordinator's is not ours to remove).
rdv_release() {
  [ -n "${RDV_OWNED:-}" ] && grep -qs " $SLURM_JOB_ID\$" "$RDV_OWNED/coordinator.addr" && rm -f "$RDV_OWNED/coordinator.addr"
  return 0
}

# rdv_coordinator VERB CONFIG RDV N [--set k=v]...: prepares RDV for N workers, runs
# `srun --mpi=pmix -n 1 $CONFLUX VERB CONFIG --set server.bind/key/allow ... [--set k=v]...`,
# publishes its address, and returns the coordinator's exit code.
rdv_coordinator() {
  local verb=$1 config=$2 rdv=$3 n=$4
  shift 4
  [ -n "${SLURM_JOB_ID:-}" ] || rdv_die "not in a Slurm job (SLURM_JOB_ID unset); submit me with sbatch"
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || rdv_die "the number of workers must be a positive integer, not '$n'"
  if [ ! -d "$rdv" ]; then
    mkdir -p "$(dirname "$rdv")" && mkdir -m 0700 "$rdv" || [ -d "$rdv" ] || rdv_die "cannot create the rendezvous directory $rdv"
  fi
  rdv=$(cd "$rdv" && pwd)
  local host=${CONFLUX_COORDINATOR_HOST:-$(hostname -f 2>/dev/null || hostname)} bind=${CONFLUX_COORDINATOR_BIND:-*}
  (
    flock -w 60 9 || rdv_die "could not lock $rdv/.lock within 60 s"
    if [ -f "$rdv/coordinator.addr" ]; then
      local other
      other=$(awk '{print $2}' "$rdv/coordinator.addr")
      if [ -n "$other" ] && [ "$other" != "$SLURM_JOB_ID" ] && [ "$(rdv_job_state "$other")" = RUNNING ]; then
        rdv_die "$rdv is the rendezvous of coordinator job $other, which is still running"
      fi
      rm -f "$rdv/coordinator.addr"
    fi
    rdv_keys "$rdv" "$n"
  ) 9>"$rdv/.lock" || exit 1
  local log="$rdv/coordinator-$SLURM_JOB_ID.log" child rc=0 ep=""
  : > "$log"
  RDV_OWNED=$rdv
  trap rdv_release EXIT
  ( srun --mpi=pmix -n 1 -N 1 "$CONFLUX" "$verb" "$config" --set "server.bind=tcp://$bind:*" \
      --set "server.key=$rdv/coordinator.key" --set "server.allow=$rdv/allow.txt" "$@" 2>&1 | tee -a "$log"
    exit "${PIPESTATUS[0]}" ) &
  child=$!
  # The coordinator logs "VERB: listening on tcp://ADDRESS:PORT" once it has bound.
  while kill -0 "$child" 2>/dev/null; do
    ep=$(grep -o "$verb: listening on tcp://[^ ;,]*" "$log" | head -n1 | sed 's/.* //')
    [ -n "$ep" ] && break
    sleep 0.2
  done
  if [ -n "$ep" ]; then
    local tmp="$rdv/.coordinator.addr.tmp-$$"
    { echo "tcp://$host:${ep##*:} $SLURM_JOB_ID" > "$tmp" && mv -f "$tmp" "$rdv/coordinator.addr"; } ||
      rdv_die "cannot write $rdv/coordinator.addr"
    echo "[$(date -Is)] coordinator of job $SLURM_JOB_ID at tcp://$host:${ep##*:} (bound $ep); rendezvous $rdv, $n worker(s)"
  fi
  wait "$child" || rc=$?
  [ -n "$ep" ] || echo "[$(date -Is)] the coordinator exited ($rc) before it listened; see $log" >&2
  return "$rc"
}

# rdv_worker RDV [conflux-worker args...]: waits for the coordinator in RDV, then runs
# `srun --mpi=pmix -n 1 $CONFLUX_WORKER --connect ADDR --server-key RDV/coordinator.pub
#  --key RDV/worker-I.key --name worker-I --exit-on-bye --give-up-after G [args...]` as array
# task I (SLURM_ARRAY_TASK_ID, or CONFLUX_WORKER_INDEX, or 0) and returns its exit code.
rdv_worker() {
  local rdv=$1
  shift
  local i=${CONFLUX_WORKER_INDEX:-${SLURM_ARRAY_TASK_ID:-0}}
  local worker=${CONFLUX_WORKER:-}
  if [ -z "$worker" ]; then
    local c
    c=$(command -v "$CONFLUX" || true)
    if [ -n "$c" ] && [ -x "$(dirname "$c")/conflux-worker" ]; then worker="$(dirname "$c")/conflux-worker"; else worker=conflux-worker; fi
  fi
  local wait_s=${CONFLUX_RENDEZVOUS_WAIT_S:-600} addr="" job="" start=$SECONDS
  while :; do
    if [ -s "$rdv/coordinator.addr" ] && [ -s "$rdv/worker-$i.key" ]; then
      read -r addr job < "$rdv/coordinator.addr" || true
      [ -n "$job" ] && [ "$(rdv_job_state "$job")" = RUNNING ] && break
    fi
    [ $((SECONDS - start)) -lt "$wait_s" ] ||
      rdv_die "worker $i: no running coordinator in $rdv within $wait_s s (coordinator.addr: '${addr:-none}' of job '${job:-none}')"
    sleep 1
  done
  echo "[$(date -Is)] worker-$i (job ${SLURM_JOB_ID:-?}) -> coordinator job $job at $addr; $worker $*"
  srun --mpi=pmix -n 1 -N 1 "$worker" --connect "$addr" --server-key "$rdv/coordinator.pub" \
    --key "$rdv/worker-$i.key" --name "worker-$i" --exit-on-bye \
    --give-up-after "${CONFLUX_WORKER_GIVE_UP_S:-300}" "$@"
}
