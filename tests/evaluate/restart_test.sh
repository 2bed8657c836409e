#!/usr/bin/env bash
# `conflux evaluate` coordinator restart with real processes on 127.0.0.1 (CURVE keys):
#  1. two conflux-worker processes start once and serve an uninterrupted evaluation (baseline);
#  2. the same workers serve a second evaluation whose coordinator is SIGKILLed mid-run (after
#     the workers have logged a few of its tasks; no report may be written);
#  3. the coordinator is started again on the same port with the same config: the SAME worker
#     processes reconnect (re-handshake, hello, welcome by the new instance, tasks of the killed
#     instance cancelled) and the report's results and generations.jsonl equal the baseline's
#     byte for byte; finally the workers exit 0 on SIGTERM (they were never restarted).
# Every wait is bounded. usage: restart_test.sh FIXTURE_DIR CONFLUX WORKER
set -euo pipefail
FIXTURE=$1; CONFLUX=$2; WORKER=$3
T=$(mktemp -d /tmp/conflux-restart.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/*.log; do echo "== $f"; tail -25 "$f"; done >&2; exit 1; }
PY=/usr/bin/python3
P=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

ln -s "$FIXTURE/data" "$T/data"   # the shared fixture (fixture.sh)
ln -s "$FIXTURE/ckpt" "$T/ckpt"

mkdir -p "$T/keys"
for k in coord w1 w2; do "$CONFLUX" keygen "$k" --out-dir "$T/keys" > /dev/null; done
cat "$T/keys/w1.pub" "$T/keys/w2.pub" > "$T/keys/allow.txt"
write_config() {  # NAME
  cat > "$T/$1.toml" <<TOML
[evaluate]
checkpoint = "$T/ckpt"
dataset = "$T/data"
metrics = ["perplexity", "ece", "bleu", "rouge_l", "distinct"]
split = "all"
rows_per_task = 1
context = 24
batch_size = 4
[generation]
prompt_tokens = 12
max_new_tokens = 16
every = 3
[server]
bind = "tcp://127.0.0.1:$P"
key = "$T/keys/coord.key"
allow = "$T/keys/allow.txt"
workers = 2
wait_s = 60
timeout_s = 120
heartbeat_ms = 200
dead_after_ms = 1500
max_attempts = 2
[output]
dir = "$T/out-$1"
TOML
}
write_config base
write_config restart
WPIDS=()
for w in w1 w2; do
  "$WORKER" --connect "tcp://127.0.0.1:$P" --server-key "$T/keys/coord.pub" --key "$T/keys/$w.key" \
    --data "$T/data" --name "$w" --heartbeat-ms 200 --dead-after-ms 1500 --give-up-after 120 \
    > "$T/w-$w.log" 2>&1 &
  PIDS+=($!); WPIDS+=($!)
done

# 1. baseline
"$CONFLUX" evaluate "$T/base.toml" > "$T/base.log" 2>&1 || fail "baseline evaluate"

# 2. a run killed mid-way: wait until the workers have logged 4 of its tasks, then SIGKILL.
tasks() { cat "$T"/w-w1.log "$T"/w-w2.log | grep -c "evaluate: task" || true; }
before=$(tasks)
"$CONFLUX" evaluate "$T/restart.toml" > "$T/killed.log" 2>&1 &
EVAL=$!; PIDS+=($EVAL)
for _ in $(seq 1200); do [ "$(tasks)" -ge $((before + 4)) ] && break; sleep 0.05; done
[ "$(tasks)" -ge $((before + 4)) ] || fail "the second run never got going"
kill -0 "$EVAL" 2>/dev/null || fail "the second run finished before it could be killed; make it longer"
kill -9 "$EVAL"
wait "$EVAL" 2>/dev/null || true
[ ! -e "$T/out-restart/report.json" ] || fail "a killed run left a report"

# 3. restart on the same port, same config; the same worker processes must serve it.
"$CONFLUX" evaluate "$T/restart.toml" > "$T/restarted.log" 2>&1 || fail "evaluate after restart"
for p in "${WPIDS[@]}"; do kill -0 "$p" 2>/dev/null || fail "worker $p is gone"; done
$PY - "$T" <<'PY' || fail "restarted report differs from the baseline"
import json, sys
t = sys.argv[1]
def results(name):
    return json.dumps(json.load(open(f"{t}/out-{name}/report.json"))["results"], sort_keys=True)
assert results("restart") == results("base"), "results differ"
a = open(f"{t}/out-base/generations.jsonl", "rb").read()
assert a and a == open(f"{t}/out-restart/generations.jsonl", "rb").read(), "generations differ"
run = json.load(open(f"{t}/out-restart/run.json"))
assert {x["worker"] for x in run["tasks"]} <= {"w1", "w2"} and len(run["tasks"]) >= 20, run
print("restart ok:", len(run["tasks"]), "tasks")
PY
for w in w1 w2; do  # one session with each of the three coordinator instances
  n=$(grep -o "welcomed by coordinator [0-9a-f]*" "$T/w-$w.log" | sort -u | wc -l)
  [ "$n" -eq 3 ] || fail "worker $w had sessions with $n coordinator instances, expected 3"
done
for p in "${WPIDS[@]}"; do kill -TERM "$p"; done
for p in "${WPIDS[@]}"; do wait "$p" || fail "worker $p exited $? after SIGTERM"; done
ls "$T/out-restart" | grep -q tmp && fail "temp files left"
echo "evaluate restart ok"
