#!/usr/bin/env bash
# End-to-end `conflux monitor` on a shifted corpus (real processes: ingest, train, mpirun, evaluate):
#  1. the odd-numbered quotations of fortunes/computers are the training data of a tiny model; a
#     `current` link points at its checkpoint;
#  2. the even-numbered ones (the same distribution): no drift, nothing retrained, link unchanged;
#  3. fortunes/zippy (capitals and exclamations, another style): drift; the fine-tuning run (2 ranks
#     under mpirun) and both evaluations run; with promote.margin = 0.99 (new must be 100x better)
#     nothing is promoted and the link is unchanged; promotions.jsonl says why, with both scores
#     (evaluations here under mpirun -np 2, in 5 as one process: the scores must agree exactly);
#  4. a fine-tuning run that fails is exit 1 naming its log, and the link stays;
#  5. the same as 3 with margin 0: promoted iff new < old (fine-tuning on the new style lowers its
#     perplexity: expected), and the link then names the new checkpoint;
#  6. metrics.prom passes `promtool check metrics` (the node_exporter textfile format).
# usage: cli_monitor.sh  (env CONFLUX, MPIEXEC as set by CMake)
set -uo pipefail
source "$(dirname "$0")/lib.sh"
T=$(mktemp -d /tmp/conflux-cli-monitor.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
PY=/usr/bin/python3
command -v promtool >/dev/null || fail "promtool (Debian package prometheus) is needed to check metrics.prom"
F=/usr/share/games/fortunes

# 1. Two halves of one corpus (interleaved quotations: the file is sorted) and another style.
awk -v RS='\n%\n' -v ORS='\n%\n' 'NR % 2 == 1' "$F/computers" > "$T/odd.txt" || fail "awk"
awk -v RS='\n%\n' -v ORS='\n%\n' 'NR % 2 == 0' "$F/computers" > "$T/even.txt" || fail "awk"
for n in odd even; do "$CONFLUX" ingest -i "$T/$n.txt" -f fortune -o "$T/$n" >/dev/null || fail "ingest $n"; done
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
dataset = "$T/odd"
val_fraction = 0.1
[train]
steps = 30
batch_size = 8
lr = 3e-3
min_lr = 3e-4
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

monitor_toml() {  # monitor_toml DATA OUTPUT MARGIN [EVAL_RANKS]
  cat <<TOML
[monitor]
current = "$T/current"
data = "$T/$1"
output = "$T/$2"
[retrain]
ranks = 2
steps = 30
lr = 3e-3
set = ["train.warmup_steps=2", "train.min_lr=3e-4"]
mpirun = "$MPIEXEC"
[promote]
metric = "perplexity"
margin = $3
eval_ranks = ${4:-1}
TOML
}

# 2. Same distribution: no drift.
monitor_toml even mon-even 0.02 > "$T/even.toml"
expect_rc 0 "$CONFLUX" monitor "$T/even.toml"
contains "$OUT" "no drift"
[ "$(readlink "$T/current")" = "$SERVING" ] || fail "no drift, yet the link changed"
[ ! -e "$T/mon-even/promotions.jsonl" ] || fail "no drift, yet promotions.jsonl exists"
ls -d "$T"/mon-even/retrain-* 2>/dev/null && fail "no drift, yet a retrain ran"
grep -qx 'conflux_monitor_drift_detected 0' "$T/mon-even/metrics.prom" || fail "metrics.prom: drift_detected 0 expected"
promtool check metrics < "$T/mon-even/metrics.prom" || fail "promtool rejects metrics.prom"

# 3. Shifted style, a margin no fine-tuning can meet: retrained, scored, not promoted.
monitor_toml zippy mon-keep 0.99 2 > "$T/keep.toml"  # evaluations under mpirun -np 2 too
expect_rc 0 "$CONFLUX" monitor "$T/keep.toml"
contains "$OUT" "drift detected"
contains "$OUT" "kept the serving checkpoint"
[ "$(readlink "$T/current")" = "$SERVING" ] || fail "margin 0.99 cannot be met, yet the link changed"
promtool check metrics < "$T/mon-keep/metrics.prom" || fail "promtool rejects metrics.prom"

# 4. A fine-tuning run that fails (a bad override): exit 1 naming the run's log; link unchanged.
monitor_toml zippy mon-fail 0 | sed 's/^set = \[/set = ["train.batch_size=0", /' > "$T/fail.toml"
expect_rc 1 "$CONFLUX" monitor "$T/fail.toml"
contains "$ERR" "monitor: fine-tune failed (exit code 1); its output is in $T/mon-fail/retrain-"
contains "$(cat "$T"/mon-fail/retrain-*/train.log)" "train.batch_size"
[ "$(readlink "$T/current")" = "$SERVING" ] || fail "a failed fine-tuning run changed the link"
[ ! -e "$T/mon-fail/promotions.jsonl" ] || fail "a failed fine-tuning run wrote promotions.jsonl"
grep -qx 'conflux_monitor_drift_detected 1' "$T/mon-fail/metrics.prom" || fail "metrics.prom after a failed retrain"

# 5. Margin 0: promoted iff the candidate is better.
monitor_toml zippy mon-promote 0 > "$T/promote.toml"
expect_rc 0 "$CONFLUX" monitor "$T/promote.toml" --json
echo "$OUT" > "$T/promote.json"

$PY - "$T" "$SERVING" <<'PY'
import json, os, sys
t, serving = sys.argv[1], sys.argv[2]
even = json.load(open(f"{t}/mon-even/drift.json"))
assert even["detected"] is False and even["triggers"] == [], even["triggers"]
assert even["reference"]["dir"] == f"{t}/odd" and even["current"]["dir"] == f"{t}/even", even
names = {f["feature"] for f in even["features"]}
assert {"token_id", "length", "mean_word_length", "non_alnum_share", "upper_share"} <= names, names
for f in even["features"]:
    assert f["psi"] < 0.25 and f["ks"] < 0.2 and not f["over_threshold"], f

def check(out, margin, line_count):
    d = json.load(open(f"{t}/{out}/drift.json"))
    assert d["detected"] is True and d["triggers"], d
    up = {f["feature"]: f for f in d["features"]}["upper_share"]
    assert up["psi"] >= 0.25 and up["shift"] == "significant", up   # Zippy shouts
    lines = [json.loads(l) for l in open(f"{t}/{out}/promotions.jsonl")]
    assert len(lines) == line_count, lines
    p = lines[-1]
    assert p["old"] == serving and p["new"].startswith(f"{t}/{out}/retrain-"), p
    assert p["old_score"] > 1 and p["new_score"] > 1 and p["margin"] == margin, p
    better = p["new_score"] < p["old_score"] * (1 - margin)
    assert p["decision"] == ("promoted" if better else "kept"), p
    run = p["run_dir"]
    rows = [json.load(open(f"{run}/{e}/report.json"))["meta"]["split_rows"] for e in ("eval-serving", "eval-candidate")]
    assert rows[0] == rows[1] and rows[0][0] > 0, rows    # both scored on the same held-out rows
    prom = open(f"{t}/{out}/metrics.prom").read()
    assert f'conflux_monitor_promoted {1 if better else 0}' in prom, prom
    assert 'conflux_monitor_score{checkpoint="candidate",metric="perplexity"}' in prom, prom
    return p

keep = check("mon-keep", 0.99, 1)
assert keep["decision"] == "kept" and "does not beat" in keep["reason"], keep
promo = check("mon-promote", 0, 1)
# Thirty steps on the new style must lower its perplexity: a model that cannot is a regression.
assert promo["decision"] == "promoted", promo
assert os.readlink(f"{t}/current") == promo["new"], (os.readlink(f"{t}/current"), promo["new"])
assert json.load(open(f"{t}/promote.json"))["retrain"]["promoted"] is True
# The same serving model on the same rows scores the same with 2 evaluation ranks as with 1 (exact
# merge), and the same fine-tuning run (seed, ranks) gives the same candidate.
assert keep["old_score"] == promo["old_score"] and keep["new_score"] == promo["new_score"], (keep, promo)
# The fine-tuning run's config is the serving model's own (lineage -> TOML -> loader, exactly),
# but for the keys the monitor sets.
old_cfg = json.load(open(f"{serving}/lineage.json"))["config"]
new_cfg = json.load(open(f"{promo['new']}/lineage.json"))["config"]
changed = {("data", "dataset"), ("checkpoint", "init_from"), ("checkpoint", "resume"), ("checkpoint", "dir"),
           ("output", "dir"), ("output", "progress"), ("train", "steps"), ("train", "lr"),
           ("train", "warmup_steps"), ("train", "min_lr"), ("metrics", "listen")}
for sec in old_cfg:
    for k in old_cfg[sec]:
        if (sec, k) not in changed:
            assert new_cfg[sec][k] == old_cfg[sec][k], (sec, k, old_cfg[sec][k], new_cfg[sec][k])
assert set(old_cfg) == set(new_cfg), (set(old_cfg), set(new_cfg))
assert new_cfg["checkpoint"]["init_from"] == serving and new_cfg["data"]["dataset"] == f"{t}/zippy"
print("monitor ok:", "kept", keep["old_score"], keep["new_score"], "| promoted", promo["old_score"], promo["new_score"])
PY
[ $? -eq 0 ] || fail "monitor outputs (above)"
promtool check metrics < "$T/mon-promote/metrics.prom" || fail "promtool rejects metrics.prom"
# The promoted checkpoint serves: its lineage names the new data.
grep -q "\"$T/zippy\"" "$(readlink "$T/current")/lineage.json" || fail "the promoted checkpoint's lineage lacks $T/zippy"
echo "cli_monitor: ok"
