#!/usr/bin/env bash
# Federated rounds on loopback, side by side in one run: the ZeroMQ floor (raw throughput, plain and
# CURVE), `conflux federate` with 16 conflux-worker processes (CURVE, FedAvg, local.steps = 0: no
# training, ~10 MB float32 updates) and Flower 1.42 (legacy gRPC server + 16 client processes, the
# same update bytes and tensors, no training). Prints a table: steady-round wall time (median,
# min-max), each coordinator's peak RSS, the floor, and the ratios against the goals of issue 14.
# Needs python3 with flwr (tests/requirements-federated.txt) and, in BUILD, the targets conflux,
# conflux-worker, conflux_torch_verbs and bench_protocol. A few minutes on 2 cores.
#
# usage: bench/federated/run_rounds.sh BUILD [ROUNDS] [extra rounds_bench.py options]
set -euo pipefail
BUILD=${1:?usage: run_rounds.sh BUILD [ROUNDS] [rounds_bench.py options]}
ROUNDS=${2:-6}
shift $(( $# >= 2 ? 2 : 1 ))
exec python3 "$(dirname "$0")/rounds_bench.py" --build "$BUILD" --rounds "$ROUNDS" "$@"
