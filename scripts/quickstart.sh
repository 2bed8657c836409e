#!/usr/bin/env bash
# README command 1: installs dependencies, builds Conflux (Release) and runs the main job on a
# small embedded default, printing what each stage did. Outputs go to $CONFLUX_QUICKSTART_DIR
# (default ./quickstart-out). Safe to re-run.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$CONFLUX_ROOT"
OUT_DIR="${CONFLUX_QUICKSTART_DIR:-$CONFLUX_ROOT/quickstart-out}"
BUILD="${CONFLUX_BUILD_DIR:-build}"
step() { printf '\n==> %s\n' "$*"; }

step "Installing dependencies (Debian packages)"
./scripts/install-deps.sh

step "Building Conflux (Release) in $BUILD"
conflux_configure "$BUILD" -DCONFLUX_BUILD_TESTS=OFF -DCONFLUX_BUILD_BENCH=OFF
cmake --build "$BUILD" -j "$CONFLUX_JOBS"
CONFLUX="$CONFLUX_ROOT/$BUILD/bin/conflux"
mkdir -p "$OUT_DIR"

step "conflux doctor (2 ranks)"
mpirun -np 2 "$CONFLUX" doctor

step "conflux bench allreduce (2 ranks): shared-memory all-reduce vs raw MPI_Allreduce"
mpirun -np 2 "$CONFLUX" bench allreduce --max-bytes 16M --rounds 3 --buffers shared | tee "$OUT_DIR/bench-allreduce.txt"

cd "$OUT_DIR"
step "The lifecycle through \`conflux pipeline run\`: ingest -> prepare (2 ranks) -> train (2 ranks) -> evaluate (2 ranks)"
# One file describes the stages; outputs chain by name. A stage whose config, input and output are
# unchanged since it ran is skipped (re-run this script: only what changed runs again).
cat > lifecycle.toml <<TOML
[pipeline]
name = "fortunes"
dir = "runs/pipeline"              # state, effective configs, logs, report.html

[stages.ingest]                    # Debian's fortunes corpus: real text, %-separated quotations
inputs = ["/usr/share/games/fortunes"]
format = "fortune"
keep_text = true
group_by_file = true
output = "data/fortunes-raw"

[stages.prepare]                   # validate, exact + near-duplicate removal (MinHash-LSH), provenance
builtin = "fortunes"
[stages.prepare.prepare]
output = "data/fortunes"
[stages.prepare.resources]
ranks = 2

[stages.train]                     # a small GPT, data parallel; watch the loss fall in its log
config = "$CONFLUX_ROOT/trainer/configs/train-fortunes.toml"
[stages.train.checkpoint]
dir = "checkpoints/fortunes"
[stages.train.output]
dir = "runs/fortunes"
[stages.train.resources]
ranks = 2

[stages.evaluate]                  # on the validation split training held out
[stages.evaluate.evaluate]
metrics = ["perplexity", "ece", "bleu", "rouge_l", "distinct"]
[stages.evaluate.generation]
prompt_tokens = 32
max_new_tokens = 32
every = 10
[stages.evaluate.resources]
ranks = 2
TOML
"$CONFLUX" pipeline run lifecycle.toml --dry-run
"$CONFLUX" pipeline run lifecycle.toml
"$CONFLUX" inspect data/fortunes
tail -n 3 runs/pipeline/stages/train/log.txt
echo "pipeline state, logs and the run report: $OUT_DIR/runs/pipeline (conflux pipeline status lifecycle.toml)"

step "Generate from the trained checkpoint"
"$CONFLUX" generate --checkpoint checkpoints/fortunes --prompt "The " --max-tokens 80 --temperature 0.8 --top-k 40 --seed 1

step "The same evaluation served by two local worker nodes over CURVE-encrypted ZeroMQ (127.0.0.1)"
rm -rf keys runs/fortunes-eval && mkdir -p keys
for n in coordinator alice bob; do "$CONFLUX" keygen "$n" --out-dir keys >/dev/null; done
cat keys/alice.pub keys/bob.pub > keys/allow.txt
cat > eval.toml <<TOML
[evaluate]
checkpoint = "checkpoints/fortunes"
dataset = "data/fortunes"
metrics = ["perplexity", "ece", "bleu", "rouge_l", "distinct"]
split = "validation"   # the rows training held out (the default): honest numbers
[generation]
prompt_tokens = 32
max_new_tokens = 32
every = 10
[server]
bind = "tcp://127.0.0.1:5555"
key = "keys/coordinator.key"
allow = "keys/allow.txt"
workers = 2
[output]
dir = "runs/fortunes-eval"
TOML
WORKER="$CONFLUX_ROOT/$BUILD/bin/conflux-worker"
pids=()
for w in alice bob; do
  "$WORKER" --connect tcp://127.0.0.1:5555 --server-key keys/coordinator.pub --key "keys/$w.key" \
    --data data/fortunes --name "$w" --exit-on-bye 2>"runs-worker-$w.log" &
  pids+=($!)
done
"$CONFLUX" evaluate eval.toml
wait "${pids[@]}" || true
echo "report: $OUT_DIR/runs/fortunes-eval/report.json, report.html and generations.jsonl"

step "Federated learning: 4 local participants (each its own fortunes file: non-IID), FedAvg, 3 rounds over CURVE"
rm -rf fl && mkdir -p fl/keys
parts=(food love wisdom literature)
for i in 0 1 2 3; do
  "$CONFLUX" keygen "p$i" --out-dir fl/keys >/dev/null
  "$CONFLUX" ingest -i "/usr/share/games/fortunes/${parts[$i]}" -f fortune -o "fl/data/p$i" >/dev/null
done
"$CONFLUX" keygen coordinator --out-dir fl/keys >/dev/null
cat fl/keys/p?.pub > fl/keys/allow.txt
cat > fl/fl.toml <<TOML
[model]
vocab_size = 260
context = 64
n_layer = 2
n_head = 4
d_model = 64
[federate]
rounds = 3
min_clients = 4
min_available = 4
strategy = "fedavg"
[local]
steps = 20
batch_size = 8
optimizer = "adamw"
lr = 0.003
[server]
bind = "tcp://127.0.0.1:5556"
key = "fl/keys/coordinator.key"
allow = "fl/keys/allow.txt"
[checkpoint]
dir = "fl/checkpoints"
[output]
dir = "fl/out"
TOML
pids=()
for i in 0 1 2 3; do
  "$WORKER" --connect tcp://127.0.0.1:5556 --server-key fl/keys/coordinator.pub --key "fl/keys/p$i.key" \
    --data "fl/data/p$i" --name "p$i" --exit-on-bye 2>"fl/worker-p$i.log" &
  pids+=($!)
done
"$CONFLUX" federate fl/fl.toml
wait "${pids[@]}" || true
python3 - <<'PY'
import json
for line in open("fl/out/rounds.jsonl"):
    r = json.loads(line)
    print(f"round {r['round']}: {r['clients']['accepted']}/{r['clients']['asked']} updates, "
          f"local train loss {r['train_loss']:.3f}, global model's validation loss {r['eval']['loss']:.3f} "
          f"(largest gap between participants {r['eval']['largest_gap']:.3f}), {r['seconds']:.1f} s")
PY
echo "global model of each round: $OUT_DIR/fl/checkpoints (conflux generate --checkpoint fl/checkpoints ...)"

step "Done. Outputs in $OUT_DIR"
