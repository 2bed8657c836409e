#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for tests and demos (no systemd needed).
#   scripts/slurm/local-cluster.sh start    munged + slurmctld + slurmd, waits for the node to be idle
#   scripts/slurm/local-cluster.sh stop     cancels jobs, stops what `start` started (by pid file)
#   scripts/slurm/local-cluster.sh env      prints `export SLURM_CONF=...` for client commands
# State, logs and config live under $CONFLUX_SLURM_DIR (default /tmp/conflux-slurm). The node
# advertises CPUS (default 4) even on a 2-core machine (SlurmdParameters=config_overrides), so
# 4-rank jobs do not pend forever. Facts behind each setting: shared/design/FACTS.md "Slurm".
set -euo pipefail
DIR="${CONFLUX_SLURM_DIR:-/tmp/conflux-slurm}"
CPUS="${CONFLUX_SLURM_CPUS:-4}"
CONF="$DIR/slurm.conf"
HOST="$(hostname -s)"

die() { echo "local-cluster: $*" >&2; exit 1; }

start_munge() {
  if [ -f /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; then return; fi
  mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  fi
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
  chmod 0700 /etc/munge /var/lib/munge /var/log/munge; chmod 0755 /run/munge; chmod 0400 /etc/munge/munge.key
  runuser -u munge -- /usr/sbin/munged || die "munged failed to start"
}

write_conf() {
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
  local mem
  mem=$(slurmd -C 2>/dev/null | tr ' ' '\n' | sed -n 's/^RealMemory=//p')
  mem=$(( ${mem:-4096} * 9 / 10 ))
  cat >"$CONF" <<CONF
ClusterName=conflux
SlurmctldHost=${HOST}(127.0.0.1)
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

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  command -v slurmctld >/dev/null || die "slurmctld not installed (scripts/install-deps.sh installs it)"
  start_munge
  write_conf
  export SLURM_CONF="$CONF"
  running "$DIR/slurmctld.pid" || slurmctld -f "$CONF" || die "slurmctld failed; see $DIR/log/slurmctld.log"
  running "$DIR/slurmd.pid" || slurmd -f "$CONF" || die "slurmd failed; see $DIR/log/slurmd.log"
  for _ in $(seq 1 100); do
    state=$(sinfo -h -N -o '%T' 2>/dev/null | head -n1 || true)
    case "$state" in idle|mixed|allocated) echo "local-cluster: node $HOST $state (SLURM_CONF=$CONF)"; return 0 ;; esac
    sleep 0.2
  done
  die "node did not become idle within 20 s (state '${state:-?}'); see $DIR/log"
}

stop() {
  export SLURM_CONF="$CONF"
  [ -f "$CONF" ] && scancel --user=root >/dev/null 2>&1 || true
  for f in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
    if running "$f"; then kill "$(cat "$f")"; fi
  done
  for _ in $(seq 1 50); do
    running "$DIR/slurmd.pid" || running "$DIR/slurmctld.pid" || break
    sleep 0.1
  done
  echo "local-cluster: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
