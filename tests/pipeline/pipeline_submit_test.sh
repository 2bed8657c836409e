#!/usr/bin/env bash
# `conflux pipeline submit` end to end on a real single-node Slurm cluster (local-cluster.sh run):
# ingest -> prepare (2 tasks) -> train (2 tasks; preempted once at step 10 by the test hook
# CONFLUX_TEST_PREEMPT_AT_STEP, requeued by train.sbatch, released by the test, resumed) ->
# federate (a partition job cutting the prepared dataset into 2 participants, then the coordinator
# + a job array of 2 participants, 1 round) -> evaluate (coordinator + a
# job array of 2 workers), chained with afterok. Asserts the chain ran
# in order, training resumed from step 10 after exactly one restart, `pipeline status` reports
# every stage done with its job ids and a provenance chain that matches at every link, the run
# report exists, and a following `pipeline run --dry-run` finds every stage up to date. Then
# scripts/slurm/pipeline.sbatch runs the pipeline inside one allocation (stages under srun).
# usage: local-cluster.sh run pipeline_submit_test.sh CONFLUX CONFLUX_WORKER SOURCE_ROOT
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../slurm/lib.sh"
rendezvous_test pipeline_submit_test "$1" "$2"
ROOT=$(realpath "$3")

cat > "$T/lifecycle.toml" <<TOML
[pipeline]
name = "tiny"
dir = "run"

$(ingest_stage)

[stages.prepare]
builtin = "fortunes"
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
time_limit = "00:10:00"

[stages.federate.partition]
parts = 2
by = "iid"
seed = 5
[stages.federate.federate]
rounds = 1
min_clients = 2
min_available = 2
[stages.federate.local]
steps = 2
batch_size = 4

[stages.evaluate.evaluate]
metrics = ["perplexity", "ece"]
rows_per_task = 64
[stages.evaluate.resources]
ranks = 2
TOML
P="$T/lifecycle.toml"
R="$T/run"

out=$("$CONFLUX" pipeline submit "$P" --dry-run)
expect "$out" "train +would submit \(never run\)" "dry run"
expect "$out" "--dependency=afterok:" "dry run"
expect "$out" "partition.sbatch $R/data/prepared" "dry run (the partition job)"
expect "$out" "federate.sbatch .*--dependency=afterok:PARTITION|--dependency=afterok:PARTITION .*federate.sbatch" "dry run (the coordinator waits for the partition job)"
[ ! -e "$R/stages/ingest/stage.json" ] || fail "--dry-run submitted"

out=$(CONFLUX_TEST_PREEMPT_AT_STEP=10 timeout 60 "$CONFLUX" pipeline submit "$P") || { echo "$out"; fail "pipeline submit failed"; }
echo "$out"
for s in ingest prepare train; do expect "$out" "$s +submitted \(never run\): job [0-9]+" "submit"; done
expect "$out" "federate +submitted \(never run\): job [0-9]+, [0-9]+, [0-9]+" "submit (coordinator, participant array, partition)"
expect "$out" "evaluate +submitted \(never run\): job [0-9]+, [0-9]+" "submit (coordinator and worker array)"
TRAIN=$(sed -n 's/.*train *submitted.*job \([0-9]*\).*/\1/p' <<<"$out")
EVAL=$(sed -n 's/.*evaluate *submitted.*job \([0-9]*\),.*/\1/p' <<<"$out")
LOG="$R/stages/train/log.txt"

# Training is preempted at step 10 and requeued; Slurm holds a requeued job ~120 s, the test
# releases it 2 s on (not at once: see tests/trainer/slurm_train_test.sh).
JOB=$TRAIN
wait_for 150 "train's requeue after the preemption" '[ "$(job_field JobState)" = PENDING ] && [ "$(job_field Restarts)" = 1 ]'
st=$("$CONFLUX" pipeline status "$P")
expect "$st" "^  ingest +done" "status while training is requeued"
expect "$st" "^  train +queued +job $TRAIN" "status while training is requeued"
expect "$st" "^  federate +queued" "status while training is requeued"
expect "$st" "^  evaluate +queued" "status while training is requeued"
timeout 10 scontrol update jobid="$TRAIN" StartTime=now+2 || fail "could not release the requeued job $TRAIN"
JOB=""
state=$(wait_job 150 "$EVAL")
[ "$state" = COMPLETED ] || { LOG="$R/stages/evaluate/log.txt"; fail "the evaluation coordinator ended $state"; }
[ "$(job_field Restarts "$TRAIN")" = 1 ] || fail "train restarted $(job_field Restarts "$TRAIN") times, expected once"
grep -q "resumed from $R/checkpoints/step-00000010 at step 10" "$LOG" || fail "the requeued training did not resume from step 10"
# The chain's order: each stage's job started after the one before it ended.
prev_end=0
for s in ingest prepare train federate evaluate; do
  id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["job_ids"][0])' "$R/stages/$s/stage.json")
  start=$(date -d "$(job_field StartTime "$id")" +%s); end=$(date -d "$(job_field EndTime "$id")" +%s)
  [ "$start" -ge "$prev_end" ] || fail "stage $s (job $id) started before the stage before it ended"
  prev_end=$end
done

st=$("$CONFLUX" pipeline status "$P") || { echo "$st"; fail "pipeline status reports a failure"; }
echo "$st"
# The partition job cut the prepared dataset before the coordinator started.
PART=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["job_ids"][-1])' "$R/stages/federate/stage.json")
[ "$(job_field JobState "$PART")" = COMPLETED ] || fail "the partition job $PART ended $(job_field JobState "$PART")"
[ -f "$R/data/participants/partition.json" ] && [ -f "$R/data/participants/part-001/manifest.json" ] ||
  fail "the partition job wrote no participants under $R/data/participants"
COORD=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["job_ids"][0])' "$R/stages/federate/stage.json")
[ "$(date -d "$(job_field StartTime "$COORD")" +%s)" -ge "$(date -d "$(job_field EndTime "$PART")" +%s)" ] ||
  fail "the federated coordinator started before the partition job ended"
for s in ingest prepare train federate evaluate; do expect "$st" "^  $s +done +job [0-9]+" "final status"; done
expect "$st" "fl-checkpoints/step-00000001  digest [0-9a-f]{12} \(federated, 2 participants\)  <- rounds from .*checkpoints/step-00000020" "provenance"
expect "$st" "checkpoint .*step-00000020 .*manifest sha256 [0-9a-f]{12} matches" "provenance"
expect "$st" "evaluation .*<- checkpoint .*fl-checkpoints/step-00000001 digest [0-9a-f]{12} matches; dataset manifest [0-9a-f]{12} matches" "provenance"
expect "$st" "^report: $R/report.html" "the run report"
grep -q 'id="provenance"' "$R/report.html" || fail "report.html has no provenance section"
# The report links the federated checkpoint to the dataset through the training checkpoint the
# rounds started from (its lineage "init"), and every link matches.
grep -q "trained in federated rounds" "$R/report.html" || fail "the report does not say the checkpoint is federated"
grep -q "its weights here <span class=\"ok\">match</span>" "$R/report.html" || fail "the report does not check the init checkpoint"
! grep -q -E "does not match|do not match" "$R/report.html" || fail "the run report finds a provenance mismatch"
python3 - "$R/eval/run.json" <<'PY' || fail "the evaluation did not use the two array workers"
import json, sys
text = open(sys.argv[1]).read()
assert "worker-0" in text and "worker-1" in text, text[:400]
PY
out=$("$CONFLUX" pipeline run "$P" --dry-run)
for s in ingest prepare train federate evaluate; do expect "$out" "$s +skipped: up to date" "a run after the submitted chain"; done

# A partition job that fails (a field the dataset lacks: known only when it runs) fails the
# federated stage in `pipeline status`, which cancels the coordinator and its participant array
# that would otherwise wait on a dependency never met.
cat > "$T/badpart.toml" <<TOML
[pipeline]
name = "badpart"
dir = "run-bad"
[stages.prepare]
builtin = "fortunes"
[stages.prepare.prepare]
input = "$R/data/raw"
[stages.federate.partition]
parts = 2
by = "group"
field = "nope"
[stages.federate.model]
context = 32
n_layer = 1
n_head = 2
d_model = 32
[stages.federate.federate]
rounds = 1
TOML
out=$(timeout 60 "$CONFLUX" pipeline submit "$T/badpart.toml") || { echo "$out"; fail "pipeline submit (bad partition) failed"; }
BAD=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["job_ids"]))' "$T/run-bad/stages/federate/stage.json")
read -r BCOORD BARRAY BPART <<<"$BAD"
state=$(wait_job 90 "$BPART")
LOG="$T/run-bad/stages/federate/log.txt"
[ "$state" = FAILED ] || fail "the partition job $BPART ended $state, expected FAILED"
set +e; st=$("$CONFLUX" pipeline status "$T/badpart.toml"); rc=$?; set -e
[ "$rc" = 1 ] || { echo "$st"; fail "pipeline status after a failed partition job: exit $rc, expected 1"; }
expect "$st" "^  prepare +done" "status after a failed partition job"
expect "$st" "^  federate +failed.*partition job $BPART FAILED" "status after a failed partition job"
for j in $BCOORD $BARRAY; do
  state=$(wait_job 30 "$j")
  [ "$state" = CANCELLED ] || fail "job $j of the failed federated stage ended $state, expected CANCELLED"
done
LOG=""

# The whole pipeline inside one allocation (scripts/slurm/pipeline.sbatch: `pipeline run
# --launcher srun`): everything is up to date but the forced evaluation, which runs with srun.
PJOB=$(submit pipeline "$T/pipeline-job.log" -n 2 "$S/pipeline.sbatch" "$P" --force evaluate)
state=$(wait_job 120 "$PJOB")
LOG="$T/pipeline-job.log"
[ "$state" = COMPLETED ] || fail "pipeline.sbatch ended $state"
out=$(cat "$LOG")
expect "$out" "train +skipped: up to date" "pipeline.sbatch"
expect "$out" "evaluate +runs \(forced \(--force\)\): srun --mpi=pmix -n 2 .* evaluate .* --mpi" "pipeline.sbatch"
expect "$out" "pipeline tiny: done" "pipeline.sbatch"
echo "pipeline submit test passed: 5 stages chained on Slurm, training preempted at step 10, requeued and resumed"
