#!/usr/bin/env bash
# Cost of `conflux train`'s data checks (shard SHA-256 + token ids < model.vocab_size) on the
# dataplane benchmark corpus (bench/dataplane/run_bench.py: 1,000,000 documents ingested with
# --keep-text, 65,536 rows per shard). Rank 0 logs "dataset ... opened and checked in X s": the
# time from opening the dataset to the end of the checks, which this script collects for
# data.verify_checksums = true and false at np 1 and np 2, interleaved, R repeats, warm page cache
# (one untimed run first). Prints median and range per setting.
# usage: bench/trainer/data_check.sh BUILD_DIR [REPEATS] [MPIRUN flags...]
set -euo pipefail
BUILD=$1; R=${2:-5}; shift $(( $# >= 2 ? 2 : 1 ))
FLAGS=("$@")
[ ${#FLAGS[@]} -gt 0 ] || FLAGS=(--allow-run-as-root --oversubscribe --bind-to none --mca btl self,vader)
CONFLUX=$BUILD/bin/conflux
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/conflux-datacheck-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT

/usr/bin/python3 - "$W/raw" "$HERE/../dataplane" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
import numpy as np
import run_bench
run_bench.make_text_corpus(sys.argv[1], 1_000_000, np.random.default_rng(12345))
PY
"$CONFLUX" ingest -i "$W/raw" -f jsonl --keep-text -o "$W/text" > /dev/null
/usr/bin/python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print("dataset: %d shards, %.0f MB" % (len(m["shards"]), sum(s["bytes"] for s in m["shards"])/1e6))' "$W/text/manifest.json"

cat > "$W/train.toml" <<TOML
[model]
vocab_size = 260
context = 32
n_layer = 1
n_head = 1
d_model = 8
[data]
dataset = "$W/text"
[train]
steps = 1
batch_size = 2
[checkpoint]
dir = "$W/ckpt"
every = 0
[output]
dir = "$W/out"
TOML

run() {  # np verify -> seconds
  rm -rf "$W/ckpt" "$W/out"
  mpirun "${FLAGS[@]}" -np "$1" "$CONFLUX" train "$W/train.toml" --set data.verify_checksums="$2" 2>&1 >/dev/null |
    sed -n 's/.*opened and checked in \([0-9.]*\) s.*/\1/p'
}
run 1 true > /dev/null  # warm the page cache
declare -A T
for ((i = 0; i < R; i++)); do
  for np in 1 2; do
    for v in true false; do T[$np-$v]+="$(run "$np" "$v") "; done
  done
done
for np in 1 2; do
  for v in true false; do
    /usr/bin/python3 -c 'import sys, statistics as s; x=sorted(map(float, sys.argv[3].split())); print("np %s verify_checksums=%-5s median %.3f s  (min %.3f, max %.3f, n=%d)" % (sys.argv[1], sys.argv[2], s.median(x), x[0], x[-1], len(x)))' "$np" "$v" "${T[$np-$v]}"
  done
done
