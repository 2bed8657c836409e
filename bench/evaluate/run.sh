#!/usr/bin/env bash
# Evaluation benchmark: perplexity throughput (tokens/s) of `conflux evaluate` with 1, 2 and 3
# conflux-worker processes on loopback (1 torch thread each, plaintext), against a python3-torch
# reference (torch_reference.py: same checkpoint safetensors, same windows, same math, 1 thread)
# in the same run. A small GPT is trained for one step on Debian's fortunes so
# the checkpoint is real; the data is the "computers" fortune file (~240k tokens). Runs are
# interleaved (reference, 1, 2, 3 workers, repeated) and the
# median of each is reported. Conflux tokens/s = predicted tokens / run.json "seconds" (first
# dispatch to last result: includes every worker loading the model); the end-to-end wall time of
# the `conflux evaluate` command (config, manifest hash, wait for connected workers, report) is
# shown next to it. Both the reference's and Conflux's perplexity are printed (they agree to
# ~1e-10 relative: same math, libtorch op order differs in the last bits).
# CPU: tokens per CPU-second (user + sys) of the worker processes (whole process: start, model
# load, dataset checksum, tasks) and of the reference's evaluation loop (time.process_time). On
# a machine shared with other jobs the wall-clock scaling is bounded by the free cores; tokens
# per CPU-second shows the work itself, and the load average is printed with the table.
#
# usage: [D_MODEL=128 N_LAYER=4 CONTEXT=128 BATCH=8] bench/evaluate/run.sh BUILD_DIR [REPEATS]
# Unsets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for its own processes (see bench/trainer/run.sh).
set -euo pipefail
BUILD=${1:?usage: run.sh BUILD_DIR [REPEATS]}
REPEATS=${2:-3}
CONFLUX=$BUILD/bin/conflux; WORKER=$BUILD/bin/conflux-worker
HERE=$(cd "$(dirname "$0")" && pwd)
D=${D_MODEL:-128}; NL=${N_LAYER:-4}; CTX=${CONTEXT:-128}; B=${BATCH:-8}
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OMP_NUM_THREADS=1
T=$(mktemp -d /tmp/conflux-bench-eval.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
F=/usr/share/games/fortunes
"$CONFLUX" ingest -i $F/computers -f fortune -o "$T/data" > /dev/null 2>&1
cat > "$T/train.toml" <<TOML
[model]
vocab_size = 260
context = $CTX
n_layer = $NL
n_head = 4
d_model = $D
[data]
dataset = "$T/data"
[train]
steps = 1
batch_size = 2
threads = 1
[checkpoint]
dir = "$T/ckpt"
every = 1
[output]
dir = "$T/train-out"
TOML
"$CONFLUX" train "$T/train.toml" > "$T/train.log" 2>&1
CKPT=$(ls -d "$T"/ckpt/step-* | tail -1)
ROWS=$(/usr/bin/python3 -c "import json; print(json.load(open('$T/data/manifest.json'))['rows'])" 2>/dev/null ||
       /usr/bin/python3 -c "import json; m=json.load(open('$T/data/manifest.json')); print(sum(s['rows'] for s in m['shards']))")
RPT=$(( (ROWS + 23) / 24 ))  # 24 tasks
OUT=$T/results.jsonl
conflux_run() {  # N
  local n=$1 port
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$T/eval.toml" <<TOML
[evaluate]
checkpoint = "$CKPT"
dataset = "$T/data"
metrics = ["perplexity"]
rows_per_task = $RPT
context = $CTX
batch_size = $B
threads = 1
[server]
bind = "tcp://127.0.0.1:$port"
insecure = true
workers = $n
[output]
dir = "$T/out"
TOML
  local w=()
  for i in $(seq "$n"); do
    /usr/bin/time -f "%U %S" -o "$T/w$i.time" "$WORKER" --connect "tcp://127.0.0.1:$port" \
      --insecure --data "$T/data" --name "w$i" --exit-on-bye > "$T/w$i.log" 2>&1 &
    w+=($!); PIDS+=($!)
  done
  local t0 t1
  t0=$(date +%s.%N)
  "$CONFLUX" evaluate "$T/eval.toml" > "$T/eval.log" 2>&1
  t1=$(date +%s.%N)
  for p in "${w[@]}"; do wait "$p"; done
  /usr/bin/python3 - "$T" "$n" "$t0" "$t1" >> "$OUT" <<'PY'
import json, sys
t, n, t0, t1 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
cpu = sum(sum(map(float, open(f"{t}/w{i}.time").read().split()[-2:])) for i in range(1, n + 1))
rep = json.load(open(f"{t}/out/report.json"))
run = json.load(open(f"{t}/out/run.json"))
d = next(r for r in rep["results"] if r["metric"] == "perplexity")["detail"]
print(json.dumps({"impl": f"conflux-{n}", "tokens": d["tokens"], "perplexity": d["perplexity"],
                  "seconds": run["seconds"], "wall": t1 - t0, "cpu": cpu,
                  "tokens_per_cpu_s": d["tokens"] / cpu,
                  "tokens_per_s": d["tokens"] / run["seconds"]}))
PY
}
for r in $(seq "$REPEATS"); do
  /usr/bin/python3 "$HERE/torch_reference.py" "$CKPT" "$T/data" "$CTX" "$B" >> "$OUT"
  for n in 1 2 3; do conflux_run "$n"; done
done
/usr/bin/python3 - "$OUT" "$D" "$NL" "$CTX" "$B" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
d, nl, ctx, b = sys.argv[2:6]
def med(impl, key):
    return statistics.median(r[key] for r in rows if r["impl"] == impl)
ref = med("python3-torch", "tokens_per_s")
c1 = med("conflux-1", "tokens_per_s")
tokens = rows[0]["tokens"]
print(f"GPT d_model={d} n_layer={nl} context={ctx}, batch {b}, {tokens} predicted tokens, "
      f"1 thread per process, median of {sum(r['impl'] == 'conflux-1' for r in rows)} runs")
print()
ref_cpu = med("python3-torch", "tokens_per_cpu_s")
print("| run | tokens/s | vs python3-torch | vs 1 worker | tokens/CPU-s | vs python3-torch | eval s | command wall s | perplexity |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
print(f"| python3-torch reference | {ref:,.0f} | 1.00 | | {ref_cpu:,.0f} | 1.00 | "
      f"{med('python3-torch', 'seconds'):.2f} | | {rows[0]['perplexity']:.6f} |")
for n in (1, 2, 3):
    i = f"conflux-{n}"
    tps, cps = med(i, "tokens_per_s"), med(i, "tokens_per_cpu_s")
    ppl = next(r["perplexity"] for r in rows if r["impl"] == i)
    print(f"| conflux evaluate, {n} worker{'s' if n > 1 else ''} | {tps:,.0f} | {tps / ref:.2f} | "
          f"{tps / c1:.2f} | {cps:,.0f} | {cps / ref_cpu:.2f} | {med(i, 'seconds'):.2f} | "
          f"{med(i, 'wall'):.2f} | {ppl:.6f} |")
print()
print("load average at the end: " + open("/proc/loadavg").read().split(" ", 3)[2] + " (15 min)")
PY
