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
rm -rf data/fortunes-raw data/fortunes checkpoints/fortunes runs/fortunes

step "Ingest: Debian's fortunes corpus (real text, %-separated quotations) -> byte-token dataset"
"$CONFLUX" ingest -i /usr/share/games/fortunes -f fortune --keep-text --group-by-file -o data/fortunes-raw

step "Prepare on 2 ranks: validate, exact + near-duplicate removal (MinHash-LSH), provenance"
mpirun -np 2 "$CONFLUX" prepare --builtin fortunes
"$CONFLUX" inspect data/fortunes

step "Train a small GPT on 2 ranks (data parallel) for a few minutes; watch the loss fall"
mpirun -np 2 "$CONFLUX" train "$CONFLUX_ROOT/trainer/configs/train-fortunes.toml"

step "Generate from the trained checkpoint"
"$CONFLUX" generate --checkpoint checkpoints/fortunes --prompt "The " --max-tokens 80 --temperature 0.8 --top-k 40 --seed 1

step "Evaluate on the held-out validation split with two local worker nodes over CURVE-encrypted ZeroMQ (127.0.0.1)"
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

step "Done. Outputs in $OUT_DIR"
