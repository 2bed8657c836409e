#!/usr/bin/env bash
# `conflux pipeline run` with a federated stage: ingest -> prepare -> train -> federate (the
# prepared dataset cut into 2 participants by `conflux partition`, 2 rounds over CURVE on
# 127.0.0.1, starting from training's weights, the model shape inherited from training) ->
# evaluate (of the federated model). Asserts every stage done, 2 rounds with both participants,
# the evaluation names the federated checkpoint, the provenance line of the federated checkpoint,
# the participants' keys kept private (0600), and that a second run skips everything.
# usage: pipeline_federate_test.sh CONFLUX_BINARY SOURCE_ROOT
set -euo pipefail
source "$(dirname "$0")/lib.sh"
CONFLUX=$(realpath "$1")
ROOT=$(realpath "$2")
T=$(mktemp -d /tmp/conflux-pipeline-fl-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*" >&2; exit 1; }
cat > "$T/fl.toml" <<TOML
[pipeline]
name = "fl"
dir = "run"
$(ingest_stage)
[stages.prepare]
builtin = "fortunes"
[stages.train]
config = "$ROOT/trainer/configs/train-fortunes.toml"
set = ["train.steps=10"]
$(tiny_model_tables train)
eval_every = 0
[stages.federate.partition]
parts = 2
by = "iid"
seed = 3
[stages.federate.federate]
rounds = 2
min_clients = 2
min_available = 2
round_timeout_s = 120
[stages.federate.local]
steps = 2
batch_size = 4
[stages.evaluate.evaluate]
metrics = ["perplexity"]
TOML
out=$("$CONFLUX" pipeline run "$T/fl.toml" 2>&1) || { echo "$out"; cat "$T"/run/stages/federate/*.log 2>/dev/null | tail -40; fail "the pipeline failed"; }
echo "$out"
for s in ingest prepare train federate evaluate; do expect "$out" "$s +runs \(never run\)" "first run"; done
expect "$out" "checkpoint $T/run/fl-checkpoints/step-00000002  digest [0-9a-f]{12} \(federated, 2 participants\)  <- rounds from $T/run/checkpoints/step-00000010 digest [0-9a-f]{12}" "provenance"
expect "$out" "evaluation .*<- checkpoint $T/run/fl-checkpoints/step-00000002 digest [0-9a-f]{12} matches" "provenance"
# The run report follows the federated checkpoint back to the dataset through its init checkpoint.
grep -q "trained in federated rounds" "$T/run/report.html" || fail "report.html does not say the checkpoint is federated"
grep -q "started from <code>$T/run/checkpoints/step-00000010</code>" "$T/run/report.html" || fail "report.html does not name the init checkpoint"
! grep -q -E "does not match|do not match" "$T/run/report.html" || fail "report.html finds a provenance mismatch"
[ "$(grep -c "MATCHES the dataset above" "$T/run/report.html")" -eq 2 ] || fail "report.html does not link both the federated checkpoint and the evaluation to the dataset"
[ "$(wc -l < "$T/run/federate/rounds.jsonl")" -eq 2 ] || fail "rounds.jsonl does not hold 2 rounds"
python3 - "$T/run/federate/rounds.jsonl" <<'PY' || fail "a round did not accept both participants"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    assert r["clients"]["accepted"] == 2, r
PY
for k in "$T"/run/stages/federate/keys/*.key; do [ "$(stat -c %a "$k")" = 600 ] || fail "$k is mode $(stat -c %a "$k")"; done
[ -d "$T/run/data/participants/part-001" ] || fail "no participant datasets"
out=$("$CONFLUX" pipeline run "$T/fl.toml")
for s in ingest prepare train federate evaluate; do expect "$out" "$s +skipped: up to date" "second run"; done
echo "pipeline federate test passed"
