#!/usr/bin/env bash
# Evaluation benchmark: perplexity throughput (tokens/s) of `conflux evaluate` with 1, 2 and 3
# conflux-worker processes on loopback (1 torch thread each, plaintext), against a python3-torch
# reference (torch_reference.py: same checkpoint safetensors, same windows, same math, 1 thread)
# in the same run, and greedy generation throughput (new tokens/s of the text-metric path: one
# worker, metric "distinct", GEN_NEW new tokens per prompt without stopping at EOS, every
# GEN_EVERY-th row prompted with its first 32 tokens). A small GPT is trained for one step on
# Debian's fortunes so the checkpoint is real; the data is the "computers" fortune file (~240k
# tokens), evaluated whole (split = "all"). Runs are interleaved (reference, 1, 2, 3 workers,
# generation, repeated); medians are reported with the min..max spread.
# Conflux tokens/s = predicted tokens / run.json "seconds" (first dispatch to last result:
# includes every worker loading the model); the end-to-end wall time of the `conflux evaluate`
# command (config, manifest hash, wait for connected workers, report) is shown next to it. Both
# the reference's and Conflux's perplexity are printed (they agree to the printed digits: same math;
# op order and Conflux's inference GELU kernel differ from libtorch's in the last bits).
# CPU: tokens per CPU-second (user + sys) of the worker processes (whole process: start, model
# load, dataset checksum, tasks) and of the reference's evaluation loop (time.process_time). On
# a machine shared with other jobs the wall-clock scaling is bounded by the free cores; tokens
# per CPU-second shows the work itself, and the load average is printed with the table.
# BASE=OTHER_BUILD_DIR also runs that build's conflux / conflux-worker (1 worker: perplexity and
# generation) in the same interleaved rounds, e.g. a build of the previous commit, and checks
# that both wrote byte-identical generations.jsonl and the same perplexity.
#
# usage: [D_MODEL=128 N_LAYER=4 CONTEXT=128 BATCH=8 GEN_NEW=32 GEN_EVERY=8 GEN_BATCH=8 BASE=DIR]
#        bench/evaluate/run.sh BUILD_DIR [REPEATS]
# Unsets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for its own processes (see bench/trainer/run.sh).
set -euo pipefail
BUILD=${1:?usage: run.sh BUILD_DIR [REPEATS]}
REPEATS=${2:-3}
CONFLUX=$BUILD/bin/conflux; WORKER=$BUILD/bin/conflux-worker
HERE=$(cd "$(dirname "$0")" && pwd)
D=${D_MODEL:-128}; NL=${N_LAYER:-4}; CTX=${CONTEXT:-128}; B=${BATCH:-8}
GEN_NEW=${GEN_NEW:-32}; GEN_EVERY=${GEN_EVERY:-8}; GEN_BATCH=${GEN_BATCH:-8}; BASE=${BASE:-}
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
conflux_run() {  # LABEL BUILD_DIR N MODE(ppl|gen) [GENERATION_BATCH]
  local label=$1 bin=$2/bin n=$3 mode=$4 gbatch=${5:-$GEN_BATCH} port metrics gen=""
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  metrics='["perplexity"]'
  if [ "$mode" = gen ]; then
    metrics='["distinct"]'
    gen="[generation]
prompt_tokens = 32
max_new_tokens = $GEN_NEW
reference_tokens = 32
every = $GEN_EVERY
stop_at_eos = false
batch_size = $gbatch"
  fi
  rm -rf "$T/out"
  cat > "$T/eval.toml" <<TOML
[evaluate]
checkpoint = "$CKPT"
dataset = "$T/data"
metrics = $metrics
split = "all"
rows_per_task = $RPT
context = $CTX
batch_size = $B
threads = 1
$gen
[server]
bind = "tcp://127.0.0.1:$port"
insecure = true
workers = $n
[output]
dir = "$T/out"
TOML
  local w=()
  for i in $(seq "$n"); do
    /usr/bin/time -f "%U %S" -o "$T/w$i.time" "$bin/conflux-worker" --connect "tcp://127.0.0.1:$port" \
      --insecure --data "$T/data" --name "w$i" --exit-on-bye > "$T/w$i.log" 2>&1 &
    w+=($!); PIDS+=($!)
  done
  local t0 t1 load
  load=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(date +%s.%N)
  "$bin/conflux" evaluate "$T/eval.toml" > "$T/eval.log" 2>&1 || { cat "$T/eval.log"; exit 1; }
  t1=$(date +%s.%N)
  for p in "${w[@]}"; do wait "$p"; done
  [ "$mode" = gen ] && cp "$T/out/generations.jsonl" "$T/gen-$label.jsonl"
  /usr/bin/python3 - "$T" "$label" "$n" "$t0" "$t1" "$mode" "$load" >> "$OUT" <<'PY'
import json, sys
t, label, n, t0, t1, mode, load = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6], float(sys.argv[7])
cpu = sum(sum(map(float, open(f"{t}/w{i}.time").read().split()[-2:])) for i in range(1, n + 1))
run = json.load(open(f"{t}/out/run.json"))
row = {"impl": label, "seconds": run["seconds"], "wall": t1 - t0, "cpu": cpu, "load": load}
if mode == "gen":
    gens = [json.loads(l) for l in open(f"{t}/out/generations.jsonl")]
    row.update(tokens=sum(g["new_tokens"] for g in gens), prompts=len(gens))
else:
    rep = json.load(open(f"{t}/out/report.json"))
    d = next(r for r in rep["results"] if r["metric"] == "perplexity")["detail"]
    row.update(tokens=d["tokens"], perplexity=d["perplexity"])
row.update(tokens_per_cpu_s=row["tokens"] / cpu, tokens_per_s=row["tokens"] / run["seconds"])
print(json.dumps(row))
PY
}
for r in $(seq "$REPEATS"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/python3 "$HERE/torch_reference.py" "$CKPT" "$T/data" "$CTX" "$B" |
    /usr/bin/python3 -c "import json,sys; r=json.loads(sys.stdin.read()); r['load']=$load; print(json.dumps(r))" >> "$OUT"
  [ -n "$BASE" ] && conflux_run base-1 "$BASE" 1 ppl
  for n in 1 2 3; do conflux_run "conflux-$n" "$BUILD" "$n" ppl; done
  [ -n "$BASE" ] && conflux_run base-gen "$BASE" 1 gen
  conflux_run gen-b1 "$BUILD" 1 gen 1
  conflux_run gen "$BUILD" 1 gen
done
if [ -n "$BASE" ] && ! cmp -s "$T/gen-base-gen.jsonl" "$T/gen-gen.jsonl"; then
  echo "generations.jsonl differs between $BASE and $BUILD" >&2; exit 1
fi
if ! cmp -s "$T/gen-gen-b1.jsonl" "$T/gen-gen.jsonl"; then
  echo "generations.jsonl differs between generation.batch_size 1 and $GEN_BATCH" >&2; exit 1
fi
/usr/bin/python3 - "$OUT" "$D" "$NL" "$CTX" "$B" "$GEN_NEW" "$GEN_EVERY" "$GEN_BATCH" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
d, nl, ctx, b, gen_new, gen_every, gen_batch = sys.argv[2:9]
impls = {r["impl"] for r in rows}
def vals(impl, key):
    return [r[key] for r in rows if r["impl"] == impl]
def med(impl, key):
    return statistics.median(vals(impl, key))
def spread(impl, key):
    v = vals(impl, key)
    return f"{min(v):,.0f}..{max(v):,.0f}"
def first(impl, key):
    return vals(impl, key)[0]
ref = med("python3-torch", "tokens_per_s")
c1 = med("conflux-1", "tokens_per_s")
tokens = first("python3-torch", "tokens")
n = len(vals("conflux-1", "tokens"))
print(f"GPT d_model={d} n_layer={nl} context={ctx}, batch {b}, {tokens} predicted tokens, "
      f"1 thread per process, median (min..max) of {n} interleaved runs")
print()
ref_cpu = med("python3-torch", "tokens_per_cpu_s")
print("| run | tokens/s | min..max | vs python3-torch | vs 1 worker | tokens/CPU-s | vs python3-torch | eval s | command wall s | perplexity |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
print(f"| python3-torch reference | {ref:,.0f} | {spread('python3-torch', 'tokens_per_s')} | 1.00 | | "
      f"{ref_cpu:,.0f} | 1.00 | {med('python3-torch', 'seconds'):.2f} | | {first('python3-torch', 'perplexity'):.6f} |")
runs = [("base-1", "BASE conflux evaluate, 1 worker")] if "base-1" in impls else []
runs += [(f"conflux-{k}", f"conflux evaluate, {k} worker{'s' if k > 1 else ''}") for k in (1, 2, 3)]
for i, title in runs:
    tps, cps = med(i, "tokens_per_s"), med(i, "tokens_per_cpu_s")
    print(f"| {title} | {tps:,.0f} | {spread(i, 'tokens_per_s')} | {tps / ref:.2f} | "
          f"{tps / c1:.2f} | {cps:,.0f} | {cps / ref_cpu:.2f} | {med(i, 'seconds'):.2f} | "
          f"{med(i, 'wall'):.2f} | {first(i, 'perplexity'):.6f} |")
print()
g = med("gen", "tokens_per_s")
print(f"Greedy generation, 1 worker: {first('gen', 'prompts')} prompts of 32 tokens, {gen_new} new "
      f"tokens each (every {gen_every}th row, no EOS stop), {first('gen', 'tokens')} new tokens")
print()
print("| run | new tokens/s | min..max | vs BASE | vs batch 1 | tokens/CPU-s | eval s |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
titles = {"base-gen": "BASE conflux generation", "gen-b1": "conflux generation, generation.batch_size 1",
          "gen": f"conflux generation, generation.batch_size {gen_batch}"}
for i in [x for x in ("base-gen", "gen-b1", "gen") if x in impls]:
    tps = med(i, "tokens_per_s")
    vs = f"{tps / med('base-gen', 'tokens_per_s'):.2f}" if "base-gen" in impls else ""
    print(f"| {titles[i]} | {tps:,.1f} | {spread(i, 'tokens_per_s')} | {vs} | "
          f"{tps / med('gen-b1', 'tokens_per_s'):.2f} | {med(i, 'tokens_per_cpu_s'):,.1f} | {med(i, 'seconds'):.2f} |")
print()
loads = [r["load"] for r in rows]
print(f"1-min load average before each run: {min(loads):.2f}..{max(loads):.2f} (median "
      f"{statistics.median(loads):.2f}); 15-min at the end: " + open("/proc/loadavg").read().split(" ", 3)[2])
PY
