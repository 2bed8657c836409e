#!/usr/bin/env bash
# Federated aggregation throughput: fedavg, median, trimmed_avg and krum against memcpy of the same
# update buffers, one thread, in the same run (bench_aggregate). Two cohorts: 16 clients x 10 MiB
# and 8 clients x 40 MiB. Prints one table per cohort: median GB/s of update bytes over REPEATS
# interleaved repetitions, the spread (min-max), and the ratio to memcpy's median.
#
# usage: bench/federated/run.sh BUILD_DIR [REPEATS]
set -euo pipefail
BUILD=${1:?usage: run.sh BUILD_DIR [REPEATS]}
REPEATS=${2:-7}
BIN=$BUILD/bench/federated/bench_aggregate
[ -x "$BIN" ] || { echo "run.sh: $BIN not built (cmake --build $BUILD --target bench_aggregate)" >&2; exit 1; }
echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; $(uptime | sed 's/.*load/load/')"
for cohort in "16 10" "8 40"; do
  set -- $cohort
  echo
  "$BIN" --clients "$1" --mib "$2" --tensors 8 --reps "$REPEATS"
done
