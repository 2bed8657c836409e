#!/usr/bin/env bash
# Shared fixture of the evaluate tests (ctest FIXTURES_SETUP evaluate_model): ingests Debian's
# "debian" fortune file into 3 shards (DIR/data) and trains a tiny GPT (d_model 48, 2 layers,
# context 32) for 600 steps (DIR/ckpt): enough that greedy continuations contain real words, so
# BLEU / ROUGE-L are non-zero and their oracle checks are not vacuous.
# usage: fixture.sh CONFLUX DIR
set -euo pipefail
CONFLUX=$1; D=$2
rm -rf "$D"; mkdir -p "$D"
"$CONFLUX" ingest -i /usr/share/games/fortunes/debian -f fortune -o "$D/data" --rows-per-shard 20 \
  > "$D/ingest.log" 2>&1 || { cat "$D/ingest.log"; exit 1; }
cat > "$D/train.toml" <<TOML
[model]
vocab_size = 260
context = 32
n_layer = 2
n_head = 2
d_model = 48
[data]
dataset = "$D/data"
val_fraction = 0.05
[train]
steps = 600
batch_size = 8
lr = 1e-2
warmup_steps = 5
threads = 1
[checkpoint]
dir = "$D/ckpt"
every = 600
[output]
dir = "$D/train-out"
TOML
"$CONFLUX" train "$D/train.toml" > "$D/train.log" 2>&1 || { tail -20 "$D/train.log"; exit 1; }
ls -d "$D"/ckpt/step-00000600 > /dev/null
echo "evaluate fixture ready in $D"
