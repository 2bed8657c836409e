#!/usr/bin/env bash
# `conflux monitor` with retrain.submit = true on a real single-node Slurm cluster
# (local-cluster.sh run): drift on a new style (fortunes/zippy after a model trained on
# fortunes/computers) makes the monitor submit the fine-tuning run and the candidate's evaluation
# as one `conflux pipeline submit` chain, then the serving checkpoint's evaluation on the rows the
# fine-tuning run held out as another, and wait for them. Asserts:
#  1. retrain.wait_s too short: exit 1 naming the jobs it left to Slurm; nothing promoted, the link
#     unchanged (the jobs are cancelled by the test);
#  2. margin 0: the jobs ran as Slurm jobs named conflux-monitor-retrain-train/-evaluate and
#     conflux-monitor-serving-evaluate, in order; the decision in promotions.jsonl follows the
#     scores, and the link names the new checkpoint (under the run's retrain/checkpoints);
#  3. the same monitor run locally (retrain.submit = false, mpirun) scores both models exactly as
#     the Slurm chains did: same seed and ranks, same candidate; exact evaluation merges.
# usage: local-cluster.sh run monitor_submit_test.sh CONFLUX CONFLUX_WORKER MPIEXEC
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../slurm/lib.sh"
rendezvous_test monitor_submit_test "$1" "$2"
MPIEXEC=$3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
F=/usr/share/games/fortunes

"$CONFLUX" ingest -i "$F/computers" -f fortune -o "$T/computers" >/dev/null || fail "ingest computers"
"$CONFLUX" ingest -i "$F/zippy" -f fortune -o "$T/zippy" >/dev/null || fail "ingest zippy"
cat > "$T/train.toml" <<TOML
[model]
vocab_size = 260
context = 32
n_layer = 1
n_head = 2
d_model = 32
dropout = 0.0
[data]
dataset = "$T/computers"
val_fraction = 0.1
[train]
steps = 20
batch_size = 8
lr = 3e-3
warmup_steps = 2
eval_windows = 8
[checkpoint]
dir = "$T/ckpt"
[output]
dir = "$T/train-out"
progress = false
TOML
"$CONFLUX" train "$T/train.toml" >/dev/null 2>"$T/train.log" || { cat "$T/train.log"; fail "training the serving model"; }
SERVING=$(ls -d "$T"/ckpt/step-* | tail -1)
ln -s "$SERVING" "$T/current"

monitor_toml() {  # monitor_toml OUTPUT SUBMIT WAIT_S
  cat <<TOML
[monitor]
current = "$T/current"
data = "$T/zippy"
output = "$T/$1"
[retrain]
ranks = 2
steps = 20
lr = 3e-3
set = ["train.warmup_steps=2"]
mpirun = "$MPIEXEC"
submit = $2
wait_s = $3
poll_s = 0.5
time_limit = "00:05:00"
[promote]
metric = "perplexity"
margin = 0
eval_ranks = 2
TOML
}

# 1. Giving up on the jobs: a named error, nothing promoted.
monitor_toml mon-wait true 1 > "$T/wait.toml"
set +e; out=$("$CONFLUX" monitor "$T/wait.toml" 2>&1); rc=$?; set -e
[ "$rc" = 1 ] || { echo "$out"; fail "retrain.wait_s = 1: exit $rc, expected 1"; }
expect "$out" "not finished after retrain.wait_s = 1 s \(.*\); its jobs \([0-9 ]+\) are left to Slurm: follow them with \`conflux pipeline status .*/retrain.pipeline.toml\`" "wait_s"
[ "$(readlink "$T/current")" = "$SERVING" ] || fail "the monitor gave up, yet the link changed"
[ ! -e "$T/mon-wait/promotions.jsonl" ] || fail "the monitor gave up, yet promotions.jsonl exists"
left=$(sed -n 's/.*its jobs (\([0-9 ]*\)) are left.*/\1/p' <<<"$out")
# shellcheck disable=SC2086  # job ids, one word each
timeout 10 scancel $left || fail "scancel $left"

# 2. Margin 0 under Slurm.
monitor_toml mon-slurm true 300 > "$T/slurm.toml"
out=$("$CONFLUX" monitor "$T/slurm.toml" 2>&1) || { echo "$out"; fail "monitor with retrain.submit failed"; }
expect "$out" "drift detected" "monitor (Slurm)"
RUN=$(ls -d "$T"/mon-slurm/retrain-* | tail -1)
ids() { python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["job_ids"]))' "$1"; }
TRAIN=$(ids "$RUN/retrain/stages/train/stage.json")
read -r EVAL _ <<<"$(ids "$RUN/retrain/stages/evaluate/stage.json")"
read -r SERVE _ <<<"$(ids "$RUN/serving/stages/evaluate/stage.json")"
[ "$(job_field JobName "$TRAIN")" = conflux-monitor-retrain-train ] || fail "job $TRAIN is $(job_field JobName "$TRAIN")"
[ "$(job_field JobName "$EVAL")" = conflux-monitor-retrain-evaluate ] || fail "job $EVAL is $(job_field JobName "$EVAL")"
[ "$(job_field JobName "$SERVE")" = conflux-monitor-serving-evaluate ] || fail "job $SERVE is $(job_field JobName "$SERVE")"
for j in $TRAIN $EVAL $SERVE; do [ "$(job_field JobState "$j")" = COMPLETED ] || fail "job $j ended $(job_field JobState "$j")"; done
[ "$(job_field NumTasks "$TRAIN")" = 2 ] || fail "the fine-tuning job ran $(job_field NumTasks "$TRAIN") tasks, expected retrain.ranks = 2"
[ "$(job_field TimeLimit "$TRAIN")" = 00:05:00 ] || fail "the fine-tuning job's time limit is $(job_field TimeLimit "$TRAIN")"
t_end=$(date -d "$(job_field EndTime "$TRAIN")" +%s)
[ "$(date -d "$(job_field StartTime "$EVAL")" +%s)" -ge "$t_end" ] || fail "the candidate was evaluated before fine-tuning ended"
[ "$(date -d "$(job_field StartTime "$SERVE")" +%s)" -ge "$t_end" ] || fail "the serving model was scored before fine-tuning ended"

# 3. The same locally.
monitor_toml mon-local false 300 > "$T/local.toml"
ln -sfn "$SERVING" "$T/current"
out=$("$CONFLUX" monitor "$T/local.toml" 2>&1) || { echo "$out"; fail "monitor (local) failed"; }

python3 - "$T" "$SERVING" "$RUN" <<'PY' || fail "monitor outputs (above)"
import json, sys
t, serving, run = sys.argv[1:]
def last(out):
    return [json.loads(l) for l in open(f"{t}/{out}/promotions.jsonl")][-1]
s, l = last("mon-slurm"), last("mon-local")
assert s["old"] == serving and s["new"].startswith(f"{run}/retrain/checkpoints/step-"), s
assert s["decision"] == ("promoted" if s["new_score"] < s["old_score"] else "kept"), s
assert s["decision"] == "promoted", s   # 20 steps on the new style lower its perplexity
# Both scored on the same held-out rows of the new batch.
rows = [json.load(open(f"{run}/{d}/eval/report.json"))["meta"]["split_rows"] for d in ("retrain", "serving")]
assert rows[0] == rows[1] and rows[0][0] > 0, rows
# Slurm (srun, a coordinator + worker array) and local (mpirun, evaluate --mpi): the same numbers.
assert (s["old_score"], s["new_score"]) == (l["old_score"], l["new_score"]), (s, l)
print("monitor submit ok:", s["old_score"], "->", s["new_score"], s["decision"])
PY
[ "$(readlink "$T/current")" != "$SERVING" ] || fail "promoted, yet the link is unchanged"
echo "monitor submit test passed"
