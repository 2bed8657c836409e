#!/usr/bin/env bash
# The stage scripts of scripts/slurm/ as a dependency chain on a real single-node Slurm cluster:
#   ingest.sbatch -n 2  ->afterok  prepare.sbatch -n 2  ->afterok  train.sbatch -n 1 (a tiny GPT,
#   20 steps)  ->afterok  evaluate.sbatch -n 1 (the coordinator, server.workers = 2 from its
#   config)  plus  evaluate-worker.sbatch --array=0-1 --dependency=after:COORDINATOR.
# Asserts: every job and both array tasks COMPLETED, each stage started after the previous one
# ended; the prepared dataset's provenance is ingest then prepare, and prepare names the ingested
# manifest's SHA-256 as its parent; the evaluation report exists with perplexity, and run.json
# shows both workers (worker-0, worker-1, authenticated by their keys) ran tasks; every secret key
# in the rendezvous directory is mode 0600, the directory 0700, and coordinator.addr is gone
# after the coordinator ended.
# usage: local-cluster.sh run slurm_stages_test.sh CONFLUX CONFLUX_WORKER   (ctest: slurm_stages_test)
# Every wait is bounded; the cluster and whatever the jobs left running are stopped by `run`.
set -euo pipefail
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "$0")/lib.sh"
rendezvous_test slurm_stages_test "$1" "$2"   # CONFLUX, CONFLUX_WORKER, S (scripts/slurm), T (the test's directory)
mkdir -p "$T/logs"
cat > "$T/prep.toml" <<TOML
[prepare]
input = "$T/raw"
output = "$T/data"
[dedup]
near = true
TOML
cat > "$T/train.toml" <<TOML
[model]
vocab_size = 260
context = 32
n_layer = 1
n_head = 2
d_model = 32
[data]
dataset = "$T/data"
[train]
steps = 20
batch_size = 8
eval_every = 0
[checkpoint]
dir = "$T/ckpt"
every = 0
[output]
dir = "$T/train-out"
progress = false
TOML
cat > "$T/eval.toml" <<TOML
[evaluate]
checkpoint = "$T/ckpt"
dataset = "$T/data"
metrics = ["perplexity", "ece"]
rows_per_task = 8
[server]
workers = 2
wait_s = 60
timeout_s = 60
[output]
dir = "$T/eval-out"
TOML
RDV="$T/rendezvous"
ING=$(submit ingest "$T/logs/ingest.log" -n 2 "$S/ingest.sbatch" -i /usr/share/games/fortunes/computers -f fortune --keep-text -o "$T/raw")
PREP=$(submit prepare "$T/logs/prepare.log" -n 2 --dependency=afterok:"$ING" "$S/prepare.sbatch" "$T/prep.toml")
TRAIN=$(submit train "$T/logs/train.log" -n 1 --dependency=afterok:"$PREP" "$S/train.sbatch" "$T/train.toml")
EVAL=$(submit evaluate "$T/logs/evaluate.log" -n 1 --dependency=afterok:"$TRAIN" "$S/evaluate.sbatch" "$T/eval.toml" "$RDV")
WORK=$(submit evaluate-worker "$T/logs/evaluate-worker-%a.log" -n 1 --array=0-1 --dependency=after:"$EVAL" "$S/evaluate-worker.sbatch" "$RDV" --data "$T/data")

# The array's tasks get their own job ids once they run; ${WORK}_I names task I throughout.
for j in "$ING:ingest" "$PREP:prepare" "$TRAIN:train" "$EVAL:evaluate" "${WORK}_0:evaluate-worker-0" "${WORK}_1:evaluate-worker-1"; do
  LOG="$T/logs/${j#*:}.log"
  st=$(wait_job 90 "${j%%:*}")
  [ "$st" = COMPLETED ] || fail "job ${j%%:*} (${j#*:}) ended $st, expected COMPLETED"
done
LOG=""
# In order: each stage started no earlier than the previous one ended (scontrol's whole seconds).
prev_end=""
for j in "$ING" "$PREP" "$TRAIN" "$EVAL"; do
  start=$(date -d "$(job_field StartTime "$j")" +%s) end=$(date -d "$(job_field EndTime "$j")" +%s)
  [ -z "$prev_end" ] || [ "$start" -ge "$prev_end" ] || fail "job $j started at $start, before the previous stage ended at $prev_end"
  prev_end=$end
done
for i in 0 1; do
  [ "$(date -d "$(job_field StartTime "${WORK}_$i")" +%s)" -ge "$(date -d "$(job_field StartTime "$EVAL")" +%s)" ] ||
    fail "worker $i started before the coordinator"
done

/usr/bin/python3 - "$T" <<'PY' || fail "provenance or evaluation report wrong (above)"
import hashlib, json, sys
t = sys.argv[1]
prov = json.load(open(f"{t}/data/manifest.json"))["provenance"]
stages = [p["stage"] for p in prov]
assert stages == ["ingest", "prepare"], f"provenance stages {stages}, expected ingest then prepare"
parent = hashlib.sha256(open(f"{t}/raw/manifest.json", "rb").read()).hexdigest()
assert prov[1]["parent_sha256"] == parent, f"prepare's parent {prov[1]['parent_sha256']} is not the ingested manifest {parent}"
assert prov[1]["rows_out"] > 0, "prepare kept no rows"
report = json.load(open(f"{t}/eval-out/report.json"))
text = json.dumps(report)
assert "perplexity" in text, "report.json has no perplexity"
run = json.dumps(json.load(open(f"{t}/eval-out/run.json")))
for w in ("worker-0", "worker-1"):
    assert w in run, f"run.json does not name {w}: {run[:2000]}"
print("provenance ingest -> prepare (parent", parent[:12] + "...), report.json with perplexity, run.json names both workers")
PY

check_rendezvous "$RDV" 2
grep -q "coordinator of job $EVAL at tcp://127.0.0.1:" "$T/logs/evaluate.log" || fail "the coordinator did not publish its address"
echo "slurm stages test passed: ingest -> prepare -> train -> evaluate with 2 array workers, in order, all COMPLETED"
