#!/usr/bin/env bash
# Training benchmark: Conflux (GPT + bucketed overlapped all-reduce over MPI/shared memory) vs
# PyTorch DDP with gloo (Debian python3-torch 1.13), same GPT, same shapes, same run, each
# N processes x 1 thread. Configs: "small" (3.3M params, 8 x 128 tokens per rank, BLAS-bound) and
# "heavy" (29M params, 2 x 64 tokens per rank: the all-reduce is a large share of the step).
# Runs are interleaved (conflux, ddp, conflux, ddp, ...) and medians reported.
#
# usage: [SMALL_STEPS=30 HEAVY_STEPS=12] bench/trainer/run.sh BUILD_DIR [REPEATS]
# Note: this command unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for its own processes (they
# halve OpenBLAS matmul speed on these CPUs, see FACTS.md); tests never do.
set -euo pipefail
BUILD=${1:?usage: run.sh BUILD_DIR [REPEATS]}
REPEATS=${2:-3}
BIN=$BUILD/bench/trainer/bench_trainer
HERE=$(cd "$(dirname "$0")" && pwd)
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OMP_NUM_THREADS=1
MPI=(mpirun --allow-run-as-root --oversubscribe --bind-to none --mca btl self,vader)
OUT=$(mktemp)
run() { "$@" | tail -1 | tee -a "$OUT"; }
for cfg in small heavy; do
  if [ "$cfg" = small ]; then S=${SMALL_STEPS:-30}; W=3; else S=${HEAVY_STEPS:-12}; W=2; fi
  for r in $(seq 1 "$REPEATS"); do
    run "${MPI[@]}" -np 1 "$BIN" $cfg $S $W 1
    run "${MPI[@]}" -np 2 "$BIN" $cfg $S $W 1
    run "${MPI[@]}" -np 2 "$BIN" $cfg $S $W 0
    run /usr/bin/python3 "$HERE/ddp_reference.py" $cfg $S $W 2
  done
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def med(cfg, impl, ranks, overlap=None, key="tokens_per_s"):
    v = [r[key] for r in rows if r["config"] == cfg and r["impl"] == impl and r["ranks"] == ranks
         and (overlap is None or r.get("overlap") == overlap)]
    return statistics.median(v) if v else float("nan")
print("| config | params | Conflux 1 rank | Conflux 2 ranks | Conflux 2 ranks, no overlap | DDP-gloo 2 ranks | Conflux / DDP | scaling 1->2 | comm wait/step (overlap / none) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for cfg in ("small", "heavy"):
    params = next(r["params"] for r in rows if r["config"] == cfg)
    c1, c2 = med(cfg, "conflux", 1, True), med(cfg, "conflux", 2, True)
    c2n, d2 = med(cfg, "conflux", 2, False), med(cfg, "pytorch-ddp-gloo", 2)
    w, wn = med(cfg, "conflux", 2, True, "comm_wait_ms"), med(cfg, "conflux", 2, False, "comm_wait_ms")
    print(f"| {cfg} | {params/1e6:.1f}M | {c1:,.0f} tok/s | {c2:,.0f} | {c2n:,.0f} | {d2:,.0f} | "
          f"{c2/d2:.2f}x | {c2/c1:.2f}x | {w:.1f} ms / {wn:.1f} ms |")
PY
rm -f "$OUT"
