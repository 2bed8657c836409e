#!/usr/bin/env bash
# `conflux pipeline run` end to end on real processes (mpirun -np 2 for prepare, train, evaluate):
#   1. --dry-run plans all four stages ("never run") and runs nothing;
#   2. the first run does ingest -> prepare -> train -> evaluate; training is preempted at step 10
#      (CONFLUX_TEST_PREEMPT_AT_STEP: exit 75), so the pipeline stops there with 75 and the stage
#      is recorded as failed;
#   3. the second run skips ingest and prepare (up to date), resumes training from step 10's
#      checkpoint, and evaluates; the final checkpoint is byte for byte that of an uninterrupted
#      `conflux train` with the same config; the provenance chain matches at every link;
#   4. a third run skips everything;
#   5. a changed setting reruns train (config changed; the old checkpoints are moved aside, not
#      deleted) and evaluate (upstream ran), not ingest or prepare; a removed report reruns only
#      evaluate (output missing); --force/--from/--until select stages;
#   6. a bad setting is a config error naming the key before any stage runs; a stage failing at
#      run time stops the pipeline with its exit code, and `pipeline status` shows its log lines.
# usage: pipeline_run_test.sh CONFLUX_BINARY SOURCE_ROOT
set -euo pipefail
source "$(dirname "$0")/lib.sh"
CONFLUX=$(realpath "$1")
ROOT=$(realpath "$2")
T=$(mktemp -d /tmp/conflux-pipeline-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$T/p"
cat > "$T/p/lifecycle.toml" <<TOML
[pipeline]
name = "tiny"
dir = "run"

$(ingest_stage)

[stages.prepare]
builtin = "fortunes"
[stages.prepare.dedup]
threshold = 0.8
[stages.prepare.resources]
ranks = 2

[stages.train]
config = "$ROOT/trainer/configs/train-fortunes.toml"
set = ["train.steps=20"]
$(tiny_model_tables train)
eval_every = 10
[stages.train.checkpoint]
every = 5
keep_last = 10
[stages.train.resources]
ranks = 2

[stages.evaluate.evaluate]
metrics = ["perplexity", "ece"]
[stages.evaluate.resources]
ranks = 2
TOML
P="$T/p/lifecycle.toml"
R="$T/p/run"

# 1. The plan, nothing run.
out=$("$CONFLUX" pipeline run "$P" --dry-run)
for s in ingest prepare train evaluate; do expect "$out" "$s +would run \(never run\)" "dry run"; done
expect "$out" "mpirun -np 2 .* prepare --config $R/stages/prepare/config.toml" "dry run command"
[ ! -e "$R/data" ] || fail "--dry-run wrote data"

# 2. Preempted at step 10: the pipeline stops with training's exit code 75.
set +e
out=$(CONFLUX_TEST_PREEMPT_AT_STEP=10 "$CONFLUX" pipeline run "$P" 2>&1); rc=$?
set -e
[ "$rc" -eq 75 ] || { echo "$out"; fail "the preempted run exited $rc, expected 75"; }
expect "$out" "ingest +runs \(never run\)" "first run"
expect "$out" "train +runs \(never run\)" "first run"
expect "$out" "FAILED .*exit code 75" "first run"
grep -q '"status": "failed"' "$R/stages/train/stage.json" || fail "train's record is not failed"
[ -d "$R/checkpoints/step-00000010" ] || fail "no checkpoint at the preemption step"
[ ! -e "$R/stages/evaluate/stage.json" ] || fail "evaluate ran after a failed train"

# 3. Resumed; ingest and prepare skipped.
out=$("$CONFLUX" pipeline run "$P" 2>&1) || { echo "$out"; fail "the resumed run failed"; }
expect "$out" "ingest +skipped: up to date" "second run"
expect "$out" "prepare +skipped: up to date" "second run"
expect "$out" "train +runs \(its last run is failed \(exit code 75\)\), resuming its checkpoints" "second run"
expect "$out" "evaluate +runs" "second run"
grep -q "resumed from $R/checkpoints/step-00000010 at step 10" "$R/stages/train/log.txt" || fail "train did not resume from step 10"
[ -f "$R/eval/report.json" ] || fail "no evaluation report"
expect "$out" "pipeline tiny: done; report $R/report.html" "the run report"
for id in funnel loss metrics reliability provenance; do grep -q "id=\"$id\"" "$R/report.html" || fail "report.html has no #$id section"; done
! grep -q "does not match" "$R/report.html" || fail "the run report finds a provenance mismatch"
expect "$out" "checkpoint .*step-00000020 .*manifest sha256 [0-9a-f]{12} matches" "provenance"
expect "$out" "evaluation .*report.json .*<- checkpoint .*digest [0-9a-f]{12} matches; dataset manifest [0-9a-f]{12} matches" "provenance"
expect "$out" "dataset +$R/data/prepared .*parent .*matches" "provenance"
# The uninterrupted reference: the same effective config, in one go.
mpirun -np 2 --oversubscribe "$CONFLUX" train "$R/stages/train/config.toml" --set train.steps=20 \
  --set "checkpoint.dir=\"$T/ref-ckpt\"" --set "output.dir=\"$T/ref-out\"" > "$T/ref.log" 2>&1 ||
  { cat "$T/ref.log"; fail "the reference training failed"; }
for f in "$T/ref-ckpt/step-00000020"/*.safetensors; do
  cmp "$f" "$R/checkpoints/step-00000020/${f##*/}" || fail "the resumed run's ${f##*/} differs from the uninterrupted run's"
done

# 4. Nothing to do.
out=$("$CONFLUX" pipeline run "$P")
for s in ingest prepare train evaluate; do expect "$out" "$s +skipped: up to date" "third run"; done
st=$("$CONFLUX" pipeline status "$P")
for s in ingest prepare train evaluate; do expect "$st" "^  $s +done" "status"; done

# 5. What reruns when something changes.
sed -i 's/set = \["train.steps=20"\]/set = ["train.steps=25"]/' "$P"
out=$("$CONFLUX" pipeline run "$P" --dry-run)
expect "$out" "prepare +skipped: up to date" "changed config"
expect "$out" "train +would run \(its config changed\)" "changed config"
expect "$out" "evaluate +would run \(upstream stage train runs\)" "changed config"
out=$("$CONFLUX" pipeline run "$P" 2>&1) || { echo "$out"; fail "the run after the change failed"; }
expect "$out" "previous $R/checkpoints moved to $R/checkpoints.superseded-" "changed config"
ls -d "$R"/checkpoints.superseded-*/step-00000020 > /dev/null || fail "the old checkpoints were not kept"
[ -d "$R/checkpoints/step-00000025" ] || fail "no step-25 checkpoint"
last_run() { awk '/^==== \[.*\] run: /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$1"; }
! last_run "$R/stages/train/log.txt" | grep -q "resumed from" || fail "the changed run resumed old checkpoints"
last_run "$R/stages/train/log.txt" | grep -q "completed at step 25" || fail "the changed run did not train to step 25"
rm "$R/eval/report.json"
out=$("$CONFLUX" pipeline run "$P" --dry-run)
expect "$out" "train +skipped: up to date" "missing output"
expect "$out" "evaluate +would run \(its output $R/eval is missing\)" "missing output"
out=$("$CONFLUX" pipeline run "$P" --force prepare --until prepare --dry-run)
expect "$out" "prepare +would run \(forced \(--force\)\)" "--force"
! grep -q "train" <<<"$out" || fail "--until prepare planned train"
out=$("$CONFLUX" pipeline run "$P" --from evaluate)
expect "$out" "1 stage\(s\)" "--from"
expect "$out" "evaluate +runs \(its output $R/eval is missing\)" "--from"

# 6. Errors.
sed -i 's/set = \["train.steps=25"\]/set = ["train.steps=25", "train.lr=nan"]/' "$P"
set +e
out=$("$CONFLUX" pipeline run "$P" 2>&1); rc=$?
set -e
[ "$rc" -eq 1 ] || { echo "$out"; fail "a NaN setting exited $rc, expected 1"; }
expect "$out" "train.lr" "bad setting"
! grep -q "runs (" <<<"$out" || fail "a stage ran before the config error"
sed -i 's/, "train.lr=nan"//' "$P"
printf '[pipeline]\nname = "x"\n[stages.trian]\n' > "$T/p/typo.toml"
set +e
out=$("$CONFLUX" pipeline run "$T/p/typo.toml" 2>&1); rc=$?
set -e
[ "$rc" -eq 1 ] || fail "a stage-name typo exited $rc"
expect "$out" "typo.toml:3: unknown stage 'stages.trian' \(did you mean 'train'\?\)" "typo"
# One run of a run directory at a time (DIR/.lock, flock): a holder makes a second one a usage error.
exec 9>>"$R/.lock"
flock -n 9 || fail "could not take the run directory's lock in the test"
set +e
out=$("$CONFLUX" pipeline run "$P" 2>&1 9>&-); rc=$?
set -e
exec 9>&-
[ "$rc" -eq 2 ] || { echo "$out"; fail "a second run of a locked run directory exited $rc, expected 2"; }
expect "$out" "the run directory $R is in use by another \`conflux pipeline\`" "lock"
# A stage failing at run time: evaluation of a checkpoint whose weights were corrupted.
printf 'garbage' > "$R/checkpoints/step-00000025/model-tp00-of-01.safetensors"
set +e
out=$("$CONFLUX" pipeline run "$P" --from evaluate --force evaluate 2>&1); rc=$?
set -e
[ "$rc" -eq 1 ] || { echo "$out"; fail "the failing evaluation exited $rc, expected 1"; }
expect "$out" "evaluate +runs \(forced" "runtime failure"
expect "$out" "FAILED after .*exit code 1" "runtime failure"
expect "$out" "model-tp00-of-01.safetensors" "runtime failure names the file"
set +e
st=$("$CONFLUX" pipeline status "$P"); rc=$?
set -e
[ "$rc" -eq 1 ] || fail "status of a failed pipeline exited $rc, expected 1"
expect "$st" "^  evaluate +failed" "status after a failure"
expect "$st" "\| .*model-tp00-of-01.safetensors" "status shows the failing log lines"
echo "pipeline run test passed"
