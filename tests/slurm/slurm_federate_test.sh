#!/usr/bin/env bash
# federate.sbatch (the coordinator, --workers 2) and federate-worker.sbatch as a job array of 2
# participants (--dependency=after:COORDINATOR, datasets from the pattern DIR/p%a) on a real
# single-node Slurm cluster: a tiny GPT, FedAvg, 2 rounds.
# Asserts: coordinator.addr names the coordinator's job; a second federate.sbatch on the same
# rendezvous directory while the first runs fails with exit 1 and leaves the address alone; the
# coordinator and both array tasks COMPLETED; rounds.jsonl holds rounds 1 and 2, each
# with both participants' updates accepted (worker-0 and worker-1, authenticated by the keys the
# coordinator job created); the global model of round 2 is a checkpoint; every secret key in the
# rendezvous directory is mode 0600.
# usage: local-cluster.sh run slurm_federate_test.sh CONFLUX CONFLUX_WORKER   (ctest: slurm_federate_test)
# Every wait is bounded; the cluster and whatever the jobs left running are stopped by `run`.
set -euo pipefail
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "$0")/lib.sh"
rendezvous_test slurm_federate_test "$1" "$2"   # CONFLUX, CONFLUX_WORKER, S (scripts/slurm), T (the test's directory)
parts=(food love)   # each participant its own fortunes file: non-IID
for i in 0 1; do
  "$CONFLUX" ingest -i "/usr/share/games/fortunes/${parts[$i]}" -f fortune -o "$T/p$i" > /dev/null ||
    fail "ingest of participant $i's data failed"
done
cat > "$T/fl.toml" <<TOML
[model]
vocab_size = 260
context = 32
n_layer = 1
n_head = 2
d_model = 32
[federate]
rounds = 2
min_clients = 2
min_available = 2
round_timeout_s = 60
strategy = "fedavg"
[local]
steps = 5
batch_size = 8
lr = 0.003
[server]
wait_s = 60
[checkpoint]
dir = "$T/ckpt"
[output]
dir = "$T/out"
TOML
RDV="$T/rendezvous"
COORD=$(submit federate "$T/federate.log" -n 1 "$S/federate.sbatch" "$T/fl.toml" "$RDV" --workers 2)
# The participants are held until a second coordinator on the same directory has been refused, so
# the first one is certainly still running (it waits server.wait_s for its participants).
WORK=$(submit federate-worker "$T/worker-%a.log" -n 1 --array=0-1 --dependency=after:"$COORD" --hold \
       "$S/federate-worker.sbatch" "$RDV" "$T/p%a")
JOB=$COORD LOG="$T/federate.log"
wait_for 60 "the coordinator's address in $RDV" '[ -s "$RDV/coordinator.addr" ]'
JOB="" addr=$(cat "$RDV/coordinator.addr")
[[ "$addr" =~ ^tcp://127\.0\.0\.1:[0-9]+\ $COORD$ ]] || fail "coordinator.addr is '$addr', expected 'tcp://127.0.0.1:PORT $COORD'"
SECOND=$(submit federate-second "$T/second.log" -n 1 "$S/federate.sbatch" "$T/fl.toml" "$RDV" --workers 2)
LOG="$T/second.log"
st=$(wait_job 60 "$SECOND")
{ [ "$st" = FAILED ] && [ "$(job_field ExitCode "$SECOND")" = 1:0 ]; } || fail "a second coordinator on $RDV ended $st ($(job_field ExitCode "$SECOND")), expected FAILED with exit 1"
grep -q "rendezvous of coordinator job $COORD, which is still running" "$T/second.log" || fail "the second coordinator did not say why it refused"
[ "$(cat "$RDV/coordinator.addr")" = "$addr" ] || fail "the refused coordinator changed coordinator.addr"
timeout 10 scontrol release "$WORK" || fail "could not release the participants (job $WORK)"
for j in "$COORD:federate.log" "${WORK}_0:worker-0.log" "${WORK}_1:worker-1.log"; do
  LOG="$T/${j#*:}"
  st=$(wait_job 90 "${j%%:*}")
  [ "$st" = COMPLETED ] || fail "job ${j%%:*} ended $st, expected COMPLETED"
done
LOG="$T/federate.log"
/usr/bin/python3 - "$T" <<'PY' || fail "rounds.jsonl wrong (above)"
import json, sys
rounds = [json.loads(l) for l in open(f"{sys.argv[1]}/out/rounds.jsonl")]
assert [r["round"] for r in rounds] == [1, 2], f"rounds {[r['round'] for r in rounds]}, expected [1, 2]"
for r in rounds:
    assert r["clients"]["accepted"] == 2, f"round {r['round']}: {r['clients']['accepted']} updates accepted, expected 2"
    text = json.dumps(r["clients"]["participants"])
    for w in ("worker-0", "worker-1"):
        assert w in text, f"round {r['round']}: {w} not among the participants {text[:500]}"
print("rounds.jsonl: rounds 1 and 2, each with worker-0 and worker-1 accepted")
PY
[ -f "$T/ckpt/step-00000002/lineage.json" ] || fail "no global model checkpoint of round 2 in $T/ckpt: $(ls "$T/ckpt")"
check_rendezvous "$RDV" 2
echo "slurm federate test passed: 2 rounds with 2 array participants found through the rendezvous directory"
