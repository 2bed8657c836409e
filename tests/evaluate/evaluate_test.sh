#!/usr/bin/env bash
# End-to-end `conflux evaluate` with real processes on 127.0.0.1:
#  setup: the fixture (fixture.sh: a fortune file in 3 shards, a tiny GPT trained 600 steps);
#  a. 1 worker (CURVE keys from `conflux keygen`), b. 3 workers (insecure), c. --mpi on 2 ranks:
#     the "results" of report.json (perplexity, ece, and bleu / rouge_l / distinct of greedy
#     generations) and generations.jsonl are byte-identical, and equal the in-process
#     single-pass reference (evaluate_reference) bit for bit; perplexity also matches an
#     independent torch float64 cross-entropy to 1e-9 relative; BLEU, ROUGE-L and distinct-n
#     equal sacrebleu / rouge-score / a plain Python count on the generated texts
#     (gen_oracle_check.py, the pyenv python3 with tests/requirements-evaluator.txt);
#  d. a worker SIGKILLed mid-run: its task is re-dispatched and the results are identical;
#  e. a worker with another dataset (manifest mismatch) and an unknown metric fail clearly.
# usage: evaluate_test.sh FIXTURE_DIR CONFLUX WORKER REFERENCE MPIRUN [mpirun flags...]
set -euo pipefail
FIXTURE=$1; CONFLUX=$2; WORKER=$3; REFERENCE=$4; MPIRUN=$5; shift 5; MPIFLAGS=("$@")
T=$(mktemp -d /tmp/conflux-evaluate.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/*.log; do echo "== $f"; tail -20 "$f"; done >&2; exit 1; }
PY=/usr/bin/python3
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The shared fixture (fixture.sh): $T/data = its dataset, $T/ckpt = its trained checkpoint.
ln -s "$FIXTURE/data" "$T/data"
ln -s "$FIXTURE/ckpt" "$T/ckpt"

write_config() {  # NAME WORKERS PORT ROWS_PER_TASK [server lines...]
  local name=$1 workers=$2 port=$3 rows=$4; shift 4
  cat > "$T/$name.toml" <<TOML
[evaluate]
checkpoint = "$T/ckpt"
dataset = "$T/data"
metrics = ["perplexity", "ece", "bleu", "rouge_l", "distinct"]
split = "all"
rows_per_task = $rows
context = 24
batch_size = 4
[generation]
prompt_tokens = 12
max_new_tokens = 16
reference_tokens = 16
every = 3
[server]
bind = "tcp://127.0.0.1:$port"
workers = $workers
wait_s = 60
timeout_s = 120
heartbeat_ms = 200
dead_after_ms = 1500
$(printf '%s\n' "$@")
[output]
dir = "$T/out-$name"
TOML
}
start_worker() {  # PORT NAME ARGS...
  local port=$1 name=$2; shift 2
  "$WORKER" --connect "tcp://127.0.0.1:$port" --data "$T/data" --name "$name" --exit-on-bye \
    --heartbeat-ms 200 --dead-after-ms 1500 --give-up-after 120 "$@" > "$T/w-$name.log" 2>&1 &
  PIDS+=($!)
}

# a. one worker, CURVE keys
mkdir -p "$T/keys"
"$CONFLUX" keygen coord --out-dir "$T/keys" > /dev/null
"$CONFLUX" keygen w1 --out-dir "$T/keys" > /dev/null
cat "$T/keys/w1.pub" > "$T/keys/allow.txt"
P=$(free_port)
write_config one 1 "$P" 5 "key = \"$T/keys/coord.key\"" "allow = \"$T/keys/allow.txt\""
start_worker "$P" w1 --server-key "$T/keys/coord.pub" --key "$T/keys/w1.key"
"$CONFLUX" evaluate "$T/one.toml" > "$T/one.log" 2>&1 || fail "evaluate with 1 worker"
wait "${PIDS[-1]}" || fail "worker w1 did not exit 0 after bye"

# b. three workers
P=$(free_port)
write_config three 3 "$P" 5 "insecure = true"
for n in a b c; do start_worker "$P" "$n" --insecure; done
"$CONFLUX" evaluate "$T/three.toml" > "$T/three.log" 2>&1 || fail "evaluate with 3 workers"

# c. MPI, 2 ranks, no workers
write_config mpi 1 0 5
"$MPIRUN" "${MPIFLAGS[@]}" -np 2 "$CONFLUX" evaluate "$T/mpi.toml" --mpi > "$T/mpi.log" 2>&1 ||
  fail "evaluate --mpi"

# d. kill a worker mid-run: the victim takes the first tasks alone; it is SIGKILLed as soon as it
# logs a task, and only then a second worker joins to finish (including the re-dispatched task).
P=$(free_port)
write_config kill 1 "$P" 1 "insecure = true"
start_worker "$P" victim --insecure
VICTIM=${PIDS[-1]}
"$CONFLUX" evaluate "$T/kill.toml" > "$T/kill.log" 2>&1 &
EVAL=$!
for _ in $(seq 600); do grep -q "evaluate: task" "$T/w-victim.log" && break; sleep 0.05; done
grep -q "evaluate: task" "$T/w-victim.log" || fail "victim never got a task"
kill -9 "$VICTIM"
start_worker "$P" rescuer --insecure
wait "$EVAL" || fail "evaluate after a worker was killed"

# e. bad input: a worker holding a different dataset fails every attempt with a message naming
# the manifest mismatch (no report written); an unknown metric is a config error (exit 1).
"$CONFLUX" ingest -i /usr/share/games/fortunes/disclaimer -f fortune -o "$T/other" > /dev/null 2>&1
P=$(free_port)
write_config wrong 1 "$P" 5 "insecure = true" "max_attempts = 2"
"$WORKER" --connect "tcp://127.0.0.1:$P" --data "$T/other" --name wrong --insecure --exit-on-bye \
  --give-up-after 60 > "$T/w-wrong.log" 2>&1 &
PIDS+=($!)
set +e
"$CONFLUX" evaluate "$T/wrong.toml" > "$T/wrong.log" 2>&1; RC=$?
set -e
[ "$RC" != 0 ] || fail "evaluate with a mismatched worker dataset succeeded"
grep -q "manifest SHA-256" "$T/wrong.log" || fail "no manifest mismatch message"
[ ! -e "$T/out-wrong/report.json" ] || fail "report written despite failed tasks"
write_config badmetric 1 0 5
sed -i 's/"perplexity", "ece", "bleu"/"perplexity", "nosuchmetric", "bleu"/' "$T/badmetric.toml"
set +e
"$CONFLUX" evaluate "$T/badmetric.toml" --mpi > "$T/badmetric.log" 2>&1; RC=$?
set -e
[ "$RC" = 1 ] || fail "unknown metric exited $RC, expected 1"
grep -q "nosuchmetric" "$T/badmetric.log" || fail "unknown metric not named"

# The reference and the comparison.
CKPT=$(ls -d "$T"/ckpt/step-* | tail -1)
"$REFERENCE" "$CKPT" "$T/data" 24 4 --gen=12,16,16,3 perplexity ece bleu rouge_l distinct \
  > "$T/reference.json" 2> "$T/reference.log" ||
  fail "evaluate_reference"
$PY - "$T" <<'PY' || fail "reports differ"
import json, sys, math
t = sys.argv[1]
def results(name):
    with open(f"{t}/out-{name}/report.json") as f:
        return json.dumps(json.load(f)["results"], sort_keys=True)
base = results("one")
gens = open(f"{t}/out-one/generations.jsonl", "rb").read()
for name in ("three", "mpi", "kill"):
    assert results(name) == base, f"{name} differs from 1 worker:\n{results(name)}\n{base}"
    assert open(f"{t}/out-{name}/generations.jsonl", "rb").read() == gens, f"{name} generations differ"
ref = json.load(open(f"{t}/reference.json"))
assert json.dumps(ref["results"], sort_keys=True) == base, f"reference differs:\n{ref['results']}\n{base}"
lines = [json.loads(l) for l in gens.decode().splitlines()]
assert lines == ref["generations"], "generations differ from the reference's"
assert len(lines) >= 25 and sum(1 for l in lines if l["hypothesis"].strip()) >= 25, len(lines)
res = {r["metric"]: r for r in json.load(open(f"{t}/out-one/report.json"))["results"]}
assert res["bleu"]["value"] > 0 and res["rouge_l"]["value"] > 0, "vacuous text scores"
rep = json.load(open(f"{t}/out-one/report.json"))
ppl = rep["results"][0]["detail"]
assert ppl["tokens"] == ref["tokens"] > 1000, (ppl["tokens"], ref["tokens"])
assert abs(ppl["total_nll"] - ref["torch_nll_sum"]) <= 1e-9 * abs(ref["torch_nll_sum"]), (ppl, ref)
assert 1 < ppl["perplexity"] < 300, ppl
assert rep["meta"]["rows"] > 20 and rep["meta"]["tasks"] >= 5, rep["meta"]
for name in ("one", "three", "kill"):
    assert (open(f"{t}/out-{name}/report.html").read().strip().endswith("</html>")), name
run3 = json.load(open(f"{t}/out-three/run.json"))
assert len({x["worker"] for x in run3["tasks"]}) >= 2, run3   # work really was spread
runk = json.load(open(f"{t}/out-kill/run.json"))
assert any(x["attempts"] >= 2 for x in runk["tasks"]), runk  # a task was re-dispatched
assert any(x["worker"] == "rescuer" for x in runk["tasks"]), runk
assert rep["meta"]["generations"] == len(lines), rep["meta"]
print("perplexity", ppl["perplexity"], "tokens", ppl["tokens"], "tasks", rep["meta"]["tasks"],
      "generations", len(lines))
PY
python3 "$(dirname "$0")/gen_oracle_check.py" "$T/out-one" || fail "text metrics differ from the oracles"

# f. the default split is the validation rows the training run held out: rows from the first
# held-out window on (its windows of model.context = 32 tokens; the last max(1, floor(0.05 *
# windows)) are held out), re-derived here from the shards with h5py; "train" is the rest; a
# dataset the checkpoint was not trained on needs split = "all" (exit 1, naming it).
write_config val 1 0 5
sed -i '/^split = "all"$/d' "$T/val.toml"
"$CONFLUX" evaluate "$T/val.toml" --mpi > "$T/val.log" 2>&1 || fail "evaluate on the validation split"
write_config train 1 0 5
sed -i 's/^split = "all"$/split = "train"/' "$T/train.toml"
"$CONFLUX" evaluate "$T/train.toml" --mpi > "$T/train.log" 2>&1 || fail "evaluate on the train split"
$PY - "$T" <<'PY' || fail "validation split"
import glob, json, math, sys
import h5py
t = sys.argv[1]
m = json.load(open(f"{t}/data/manifest.json"))
lengths = []
for sh in m["shards"]:
    with h5py.File(f"{t}/data/{sh['file']}", "r") as f:
        o = f["offsets"][:]
        lengths += [int(o[i + 1] - o[i]) for i in range(len(o) - 1)]
starts = [0]
for n in lengths:
    starts.append(starts[-1] + n)
total = (starts[-1] - 1) // 32
held = max(1, math.floor(0.05 * total))
boundary = (total - held) * 32
r0 = next(i for i, s in enumerate(starts) if s >= boundary)
val = json.load(open(f"{t}/out-val/report.json"))["meta"]
train = json.load(open(f"{t}/out-train/report.json"))["meta"]
assert val["split"] == "validation" and val["split_rows"] == [r0, len(lengths)], (val, r0)
assert val["rows"] == len(lengths) - r0 > 0 and val["dataset_rows"] == len(lengths), val
assert train["split"] == "train" and train["split_rows"] == [0, r0], train
print("validation rows", val["split_rows"], "of", len(lengths))
PY
write_config valother 1 0 5
sed -i '/^split = "all"$/d; s|^dataset = .*|dataset = "'"$T"'/other"|' "$T/valother.toml"
set +e
"$CONFLUX" evaluate "$T/valother.toml" --mpi > "$T/valother.log" 2>&1; RC=$?
set -e
[ "$RC" = 1 ] || fail "validation split of another dataset exited $RC, expected 1"
grep -q 'set evaluate.split = "all"' "$T/valother.log" || fail "no advice to use split = all"
for f in "$T"/out-*; do ls "$f" | grep -q tmp && fail "temp files left in $f"; done
"$CONFLUX" evaluate --help | grep -q Example || fail "--help has no example"
echo "evaluate e2e ok"
