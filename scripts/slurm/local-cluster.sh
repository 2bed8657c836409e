#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for tests and demos (no systemd needed).
#   scripts/slurm/local-cluster.sh start    munged + slurmctld + slurmd, waits for the node to be idle
#   scripts/slurm/local-cluster.sh stop     cancels jobs, stops what `start` started
#   scripts/slurm/local-cluster.sh env      prints `export SLURM_CONF=...` for client commands
#   scripts/slurm/local-cluster.sh run [--deadline SECONDS] CMD [ARGS...]
#       starts a private cluster in a fresh directory on free ports, runs CMD with SLURM_CONF and
#       CONFLUX_SLURM_DIR exported, and stops the cluster on every exit path: CMD's exit, a
#       failure, INT/TERM, or the deadline (default 600 s; CMD is then killed and the exit code is
#       124). Exits with CMD's exit code. This is how the ctest Slurm tests run.
# Contract: the cluster is private. It has its own munged (socket, key and pid file under
# $DIR/munge; slurm.conf names the socket in AuthInfo), its own ports (CONFLUX_SLURM_PORT and the
# port after it; `run` picks free ones on 127.0.0.1) and its own state, spool and logs under
# $CONFLUX_SLURM_DIR (default /tmp/conflux-slurm), so it never touches a system munged or another
# cluster. `stop` cancels the jobs, waits (bounded) for them to end, kills what is left of them
# (processes whose environment carries this cluster's SLURM_CONF: slurmstepd and job tasks) and
# then the three daemons by their pid files, checking each pid's command line names this
# cluster's files first; every wait is bounded and ends in SIGKILL. The node advertises CPUS
# (default 4) even on a 2-core machine (SlurmdParameters=config_overrides), so 4-rank jobs do not
# pend forever. Facts behind each setting: shared/design/FACTS.md "Slurm". Needs root (slurmd
# runs jobs as their users; munged runs as the munge user).
set -euo pipefail
DIR="${CONFLUX_SLURM_DIR:-/tmp/conflux-slurm}"
CPUS="${CONFLUX_SLURM_CPUS:-4}"
PORT="${CONFLUX_SLURM_PORT:-6817}"
HOST="$(hostname -s)"
RUN_CHILD=""   # `run`: the pid (and process group) of `timeout CMD`

die() { echo "local-cluster: $*" >&2; exit 1; }
set_dir() { DIR=$1; CONF="$DIR/slurm.conf"; MUNGE="$DIR/munge"; }
set_dir "$DIR"

# pid_of PIDFILE PATTERN: the pid in PIDFILE if that process is alive and its command line
# contains PATTERN (so a recycled pid is never signalled).
pid_of() {
  local p
  [ -f "$1" ] || return 1
  p=$(cat "$1" 2>/dev/null) || return 1
  [[ "$p" =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$2" || return 1
  echo "$p"
}

start_munge() {
  pid_of "$MUNGE/run/munged.pid" "$MUNGE/" >/dev/null && return
  # munged refuses a socket directory that others cannot enter and a key directory they can.
  mkdir -p "$MUNGE/run" "$MUNGE/key"
  chmod 0755 "$DIR" "$MUNGE" "$MUNGE/run"
  [ -s "$MUNGE/key/munge.key" ] || dd if=/dev/urandom of="$MUNGE/key/munge.key" bs=1 count=1024 status=none
  chown -R munge:munge "$MUNGE"
  chmod 0700 "$MUNGE/key"; chmod 0400 "$MUNGE/key/munge.key"
  runuser -u munge -- /usr/sbin/munged --socket="$MUNGE/run/munge.socket" \
    --key-file="$MUNGE/key/munge.key" --pid-file="$MUNGE/run/munged.pid" \
    --log-file="$MUNGE/key/munged.log" --seed-file="$MUNGE/key/munged.seed" ||
    die "munged failed to start; see $MUNGE/key/munged.log"
}

write_conf() {
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
  local mem
  mem=$(slurmd -C 2>/dev/null | tr ' ' '\n' | sed -n 's/^RealMemory=//p')
  mem=$(( ${mem:-4096} * 9 / 10 ))
  cat >"$CONF" <<CONF
ClusterName=conflux
SlurmctldHost=${HOST}(127.0.0.1)
SlurmctldPort=${PORT}
SlurmdPort=$((PORT + 1))
AuthInfo=socket=$MUNGE/run/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=pmix
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerParameters=defer_batch
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
}

start() {
  command -v slurmctld >/dev/null || die "slurmctld not installed (scripts/install-deps.sh installs it)"
  [ "$(id -u)" -eq 0 ] || die "needs root (slurmd, and munged as the munge user)"
  start_munge
  write_conf
  export SLURM_CONF="$CONF"
  pid_of "$DIR/slurmctld.pid" "$CONF" >/dev/null || slurmctld -f "$CONF" ||
    die "slurmctld failed; see $DIR/log/slurmctld.log"
  pid_of "$DIR/slurmd.pid" "$CONF" >/dev/null || slurmd -f "$CONF" ||
    die "slurmd failed; see $DIR/log/slurmd.log"
  local state=""
  for _ in $(seq 1 100); do
    state=$(timeout 5 sinfo -h -N -o '%T' 2>/dev/null | head -n1 || true)
    case "$state" in idle|mixed|allocated) echo "local-cluster: node $HOST $state (SLURM_CONF=$CONF)"; return 0 ;; esac
    sleep 0.2
  done
  die "node did not become idle within 20 s (state '${state:-?}'); see $DIR/log"
}

# Pids of what this cluster runs for its jobs: slurmstepd, job scripts, srun inside them and the
# tasks, i.e. processes whose environment holds this cluster's SLURM_CONF and that are a
# slurmstepd or carry SLURM_JOB_ID; never this shell or its ancestors.
job_pids() {
  local keep=" " p
  p=$$
  while [ -n "$p" ] && [ "$p" -gt 1 ]; do
    keep+="$p "
    p=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null || true)
  done
  local f
  for f in $(grep -lzxF "SLURM_CONF=$CONF" /proc/[0-9]*/environ 2>/dev/null); do
    p=${f#/proc/}; p=${p%/environ}
    case "$keep" in *" $p "*) continue ;; esac
    if grep -qz '^SLURM_JOB_ID=' "$f" 2>/dev/null || [ "$(cat "/proc/$p/comm" 2>/dev/null)" = slurmstepd ]; then
      echo "$p"
    fi
  done
  return 0
}

# stop_pids SECONDS PID...: SIGTERM, wait up to SECONDS, then SIGKILL what is left.
stop_pids() {
  local wait_s=$1; shift
  [ "$#" -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq 1 $((wait_s * 10))); do
    local alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" -eq 1 ] || return 0
    sleep 0.1
  done
  kill -CONT "$@" 2>/dev/null || true   # a stopped (SIGSTOP) task would never act on SIGTERM
  kill -KILL "$@" 2>/dev/null || true
}

stop() {
  export SLURM_CONF="$CONF"
  local ctld slurmd munged
  ctld=$(pid_of "$DIR/slurmctld.pid" "$CONF" || true)
  slurmd=$(pid_of "$DIR/slurmd.pid" "$CONF" || true)
  munged=$(pid_of "$MUNGE/run/munged.pid" "$MUNGE/" || true)
  if [ -n "$ctld" ]; then
    timeout 10 scancel --user="$(id -un)" >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do   # jobs end within a few seconds of scancel
      [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null || true)" ] && [ -z "$(job_pids)" ] && break
      sleep 0.1
    done
  fi
  # Whatever scancel did not end (slurmstepd, tasks, a stopped rank): by this cluster's SLURM_CONF.
  # shellcheck disable=SC2046
  stop_pids 3 $(job_pids)
  # shellcheck disable=SC2086
  stop_pids 5 $slurmd $ctld
  # shellcheck disable=SC2086
  stop_pids 5 $munged
  echo "local-cluster: stopped ($DIR)"
}

# Two free TCP ports on 127.0.0.1, consecutive (slurmctld's, then slurmd's).
free_ports() {
  /usr/bin/python3 - <<'PY'
import socket
for _ in range(200):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError:
        pass
    finally:
        a.close(); b.close()
else:
    raise SystemExit("local-cluster: no two consecutive free ports")
PY
}

run() {
  local deadline=600
  if [ "${1:-}" = --deadline ]; then deadline=$2; shift 2; fi
  [ "$#" -gt 0 ] || die "usage: $0 run [--deadline SECONDS] CMD [ARGS...]"
  set_dir "$(mktemp -d /tmp/conflux-slurm.XXXXXX)"
  PORT=$(free_ports)
  local rc=0
  # Every exit path stops the cluster: CMD's end, a failed start, INT/TERM, the deadline.
  # shellcheck disable=SC2317
  on_exit() {
    trap - EXIT INT TERM
    [ -n "$RUN_CHILD" ] && kill -TERM -- "-$RUN_CHILD" 2>/dev/null || true
    stop >&2 || true
    rm -rf "$DIR"
  }
  trap on_exit EXIT
  trap 'echo "local-cluster: interrupted" >&2; exit 130' INT
  trap 'echo "local-cluster: terminated" >&2; exit 143' TERM
  start >&2
  export SLURM_CONF="$CONF" CONFLUX_SLURM_DIR="$DIR"
  # `timeout` runs CMD in its own process group and kills the whole group at the deadline.
  timeout --kill-after=5 "$deadline" "$@" &
  RUN_CHILD=$!
  wait "$RUN_CHILD" || rc=$?
  RUN_CHILD=""
  [ "$rc" -ne 124 ] || echo "local-cluster: '$*' was still running after the ${deadline} s deadline; killed" >&2
  return "$rc"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 start|stop|env|run [--deadline SECONDS] CMD [ARGS...]" >&2; exit 2 ;;
esac
