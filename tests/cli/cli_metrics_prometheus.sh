#!/usr/bin/env bash
# Metrics against a real Prometheus server (Debian's `prometheus`), end to end on 127.0.0.1:
#  1. `conflux config show` lists [metrics] listen; a malformed address is a ConfigError (exit 1)
#     naming --metrics-listen / metrics.listen;
#  2. prometheus starts with a generated config that scrapes three targets every second: a
#     training run, an evaluation coordinator and a worker (storage in a temp dir, web UI on
#     127.0.0.1); a training run asked to serve on prometheus's port fails with a ConfigError
#     naming the flag ("already in use");
#  3. `conflux train` (tiny GPT, 30 steps, [metrics] listen) runs to the end and waits for a
#     scrape of its final values (metrics.final_scrape_timeout_s); PromQL through the HTTP API
#     then sees conflux_train_steps_total == 30, the loss, tokens/s, the checkpoint histogram;
#  4. a `conflux-worker --metrics-listen` and `conflux evaluate --metrics-listen` of that
#     checkpoint: PromQL sees every planned task completed on the coordinator and on the worker,
#     the worker connected, bytes in and out, and up == 1 for the worker.
# Ports 19100-19105. Every wait is bounded (count x sleep); prometheus, the worker and any job
# still running are stopped by PID on every exit path (trap).
# usage: cli_metrics_prometheus.sh CONFLUX WORKER
set -uo pipefail
CONFLUX=$1; WORKER=$2
PROM_PORT=19100 TRAIN_PORT=19101 EVAL_PORT=19102 WORKER_PORT=19103 ZMQ_PORT=19104
T=$(mktemp -d /tmp/conflux-metrics.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do  # bounded: 5 s, then SIGKILL
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
  echo "FAIL: $*" >&2
  for f in "$T"/*.log; do [ -e "$f" ] && { echo "== $f"; tail -25 "$f"; } >&2; done
  curl -s "http://127.0.0.1:$PROM_PORT/api/v1/targets" >&2 2>/dev/null && echo >&2
  exit 1
}
PROMETHEUS=$(command -v prometheus) || fail "prometheus is not installed (Debian package 'prometheus'; scripts/install-deps.sh installs it)"
command -v curl >/dev/null || fail "curl is not installed"
PY=/usr/bin/python3

# ---- setup: a tiny dataset and training config
"$CONFLUX" ingest -i /usr/share/games/fortunes/debian -f fortune -o "$T/data" --rows-per-shard 40 \
  > "$T/ingest.log" 2>&1 || fail "ingest"
cat > "$T/train.toml" <<TOML
[model]
vocab_size = 260
context = 16
n_layer = 1
n_head = 2
d_model = 16
[data]
dataset = "$T/data"
val_fraction = 0.1
[train]
steps = 30
batch_size = 4
eval_every = 10
eval_windows = 4
[checkpoint]
dir = "$T/ckpt"
every = 10
[output]
dir = "$T/train-out"
progress = false
[metrics]
listen = "127.0.0.1:$TRAIN_PORT"
final_scrape_timeout_s = 60
TOML

# ---- 1. config keys and errors
"$CONFLUX" config show "$T/train.toml" --kind train > "$T/show.txt" 2>&1 || fail "config show"
grep -q "^listen = '127.0.0.1:$TRAIN_PORT'" "$T/show.txt" || fail "config show does not list metrics.listen: $(cat "$T/show.txt")"
grep -q "^final_scrape_timeout_s = 60" "$T/show.txt" || fail "config show lacks metrics.final_scrape_timeout_s"
"$CONFLUX" train "$T/train.toml" --metrics-listen 127.0.0.1:port > "$T/bad.out" 2> "$T/bad.log"
rc=$?; [ "$rc" -eq 1 ] || fail "a malformed --metrics-listen exited $rc, expected 1"
grep -q -- "--metrics-listen = \"127.0.0.1:port\"" "$T/bad.log" || fail "error does not name the flag: $(cat "$T/bad.log")"
"$CONFLUX" train "$T/train.toml" --set metrics.listen=nonsense > "$T/bad.out" 2> "$T/bad.log"
rc=$?; [ "$rc" -eq 1 ] || fail "a malformed metrics.listen exited $rc, expected 1"
grep -q "metrics.listen = \"nonsense\"" "$T/bad.log" || fail "error does not name the key: $(cat "$T/bad.log")"

# ---- 2. prometheus, scraping every second
cat > "$T/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: conflux
    static_configs:
      - targets: ["127.0.0.1:$TRAIN_PORT"]
        labels: {stage: train}
      - targets: ["127.0.0.1:$EVAL_PORT"]
        labels: {stage: evaluate}
      - targets: ["127.0.0.1:$WORKER_PORT"]
        labels: {stage: worker}
YML
"$PROMETHEUS" --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" > "$T/prometheus.log" 2>&1 &
PIDS+=($!)
ready=0
for _ in $(seq 300); do  # at most 30 s
  curl -sf "http://127.0.0.1:$PROM_PORT/-/ready" > /dev/null 2>&1 && { ready=1; break; }
  sleep 0.1
done
[ "$ready" = 1 ] || fail "prometheus did not become ready within 30 s"

# A taken port: prometheus's own.
curl -sf "http://127.0.0.1:$PROM_PORT/-/ready" > /dev/null 2>&1 || fail "prometheus stopped listening"
"$CONFLUX" train "$T/train.toml" --metrics-listen "127.0.0.1:$PROM_PORT" > "$T/bad.out" 2> "$T/bad.log"
rc=$?; [ "$rc" -eq 1 ] || fail "a taken port exited $rc, expected 1"
grep -q "port $PROM_PORT is already in use" "$T/bad.log" && grep -q -- "--metrics-listen" "$T/bad.log" \
  || fail "taken port error unclear: $(cat "$T/bad.log")"

# promql QUERY: the result vector as JSON lines {"metric": ..., "value": ...}, or nothing.
promql() {
  curl -sf --max-time 5 "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" |
    $PY -c 'import json,sys
d=json.load(sys.stdin)
assert d["status"]=="success", d
for r in d["data"]["result"]: print(json.dumps({"metric": r["metric"], "value": float(r["value"][1])}))' 2>/dev/null
}
# await QUERY WHAT: waits (at most 30 s) until QUERY returns at least one series.
await() {
  local out=""
  for _ in $(seq 60); do
    out=$(promql "$1"); [ -n "$out" ] && { echo "$out"; return 0; }
    sleep 0.5
  done
  fail "within 30 s, prometheus never returned $2 (query: $1)"
}
# The last value scraped: range functions ignore the staleness markers Prometheus writes once
# a finished job's endpoint is gone, so final values stay queryable.
last() { echo "last_over_time($1[10m])"; }

# ---- 3. training: final values scraped before it exits
"$CONFLUX" train "$T/train.toml" --json > "$T/train.json" 2> "$T/train.log" || fail "train"
grep -q "metrics: serving http://127.0.0.1:$TRAIN_PORT/metrics" "$T/train.log" || fail "train did not log its endpoint"
grep -q "no scrape within" "$T/train.log" && fail "train ended without its final scrape"
await "$(last conflux_train_steps_total) == 30" "conflux_train_steps_total == 30" > /dev/null
await "$(last conflux_train_step) == 30" "conflux_train_step == 30" > /dev/null
await "$(last conflux_train_tokens_total) == 30 * 4 * 16" "conflux_train_tokens_total == steps x batch x context" > /dev/null
await "$(last conflux_train_loss) > 0" "the training loss" > /dev/null
await "$(last conflux_train_tokens_per_second) > 0" "tokens per second" > /dev/null
await "$(last conflux_train_val_loss) > 0" "the validation loss" > /dev/null
await "$(last conflux_train_checkpoint_seconds_count) == 3" "3 checkpoints in the histogram" > /dev/null
await "$(last conflux_train_allreduce_bytes_total) == 0" "no all-reduce bytes on one rank" > /dev/null
await "$(last 'conflux_info{role="train",stage="train"}') == 1" "conflux_info of the train job" > /dev/null
# No DP-SGD in this run: no epsilon series.
[ -z "$(promql "$(last conflux_train_privacy_epsilon)")" ] || fail "epsilon exported without privacy.enabled"
echo "train metrics ok"

# ---- 4. evaluation: coordinator and worker
cat > "$T/eval.toml" <<TOML
[evaluate]
checkpoint = "$T/ckpt"
dataset = "$T/data"
metrics = ["perplexity"]
split = "all"
rows_per_task = 40
context = 16
batch_size = 4
[server]
bind = "tcp://127.0.0.1:$ZMQ_PORT"
insecure = true
workers = 1
wait_s = 60
timeout_s = 120
heartbeat_ms = 200
dead_after_ms = 2000
[output]
dir = "$T/eval-out"
[metrics]
final_scrape_timeout_s = 60
TOML
"$WORKER" --connect "tcp://127.0.0.1:$ZMQ_PORT" --insecure --name w1 --data "$T/data" \
  --heartbeat-ms 200 --give-up-after 120 --metrics-listen "127.0.0.1:$WORKER_PORT" > "$T/worker.log" 2>&1 &
PIDS+=($!)
await 'conflux_worker_slots == 1' "the worker's slots (is it scraped?)" > /dev/null
"$CONFLUX" evaluate "$T/eval.toml" --metrics-listen "127.0.0.1:$EVAL_PORT" --json > "$T/eval.json" 2> "$T/eval.log" \
  || fail "evaluate"
grep -q "no scrape within" "$T/eval.log" && fail "evaluate ended without its final scrape"
TASKS=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["meta"]["tasks"])' "$T/eval-out/report.json" 2>/dev/null) \
  || TASKS=$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["tasks"]))' "$T/eval-out/run.json")
[ "$TASKS" -ge 2 ] || fail "expected at least 2 evaluation tasks, got $TASKS"
await "$(last conflux_evaluate_tasks) == $TASKS" "conflux_evaluate_tasks == $TASKS" > /dev/null
await "$(last 'conflux_coordinator_tasks_completed_total{task="evaluate"}') == $TASKS" \
  "every task completed on the coordinator" > /dev/null
await "$(last conflux_coordinator_tasks_in_flight) == 0 and $(last conflux_coordinator_task_attempts_total) >= $TASKS" \
  "no task in flight at the end, every task dispatched" > /dev/null
await "$(last conflux_coordinator_workers_connected) == 1" "one worker connected" > /dev/null
await "$(last conflux_coordinator_bytes_received_total) > 0 and $(last conflux_coordinator_bytes_sent_total) > 0" \
  "coordinator bytes in and out" > /dev/null
await "conflux_worker_tasks_completed_total{task=\"evaluate\"} == $TASKS" "every task completed on the worker" > /dev/null
await 'conflux_worker_bytes_received_total > 0 and conflux_worker_bytes_sent_total > 0' "worker bytes" > /dev/null
await 'conflux_worker_slots_busy == 0' "idle worker slots" > /dev/null
await 'up{stage="worker"} == 1' "up == 1 for the worker" > /dev/null
[ -z "$(promql "$(last 'conflux_worker_tasks_failed_total')")" ] || fail "the worker reports failed tasks"
echo "evaluate metrics ok ($TASKS tasks)"
echo "metrics prometheus test ok"
