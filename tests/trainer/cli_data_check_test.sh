#!/usr/bin/env bash
# `conflux train` checks what it reads before the first step (mpirun -np 2, the shards split
# between the ranks):
#  1. a flipped byte in a shard: exit 1, "data error" naming the shard file; nothing written;
#  2. the intact dataset whose manifest claims a vocabulary of 100 while its byte tokens reach
#     257, trained with model.vocab_size = 100: exit 1, a data error naming the shard, the row and
#     the token id (not exit 4 with libtorch's "index out of range in self"); nothing written;
#  3. the intact dataset trains (exit 0).
# usage: cli_data_check_test.sh CONFLUX_BINARY MPIRUN [mpirun flags...]
set -euo pipefail
CONFLUX=$1; MPIRUN=$2; shift 2; MPIFLAGS=("$@")
T=$(mktemp -d /tmp/conflux-cli-datacheck.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=/usr/bin/python3

"$CONFLUX" ingest -i /usr/share/games/fortunes/computers -f fortune -o "$T/data" --rows-per-shard 300 > /dev/null
[ -f "$T/data/part-00002.h5" ] || fail "expected at least 3 shards"
cp -a "$T/data" "$T/pristine"

cat > "$T/train.toml" <<TOML
[model]
vocab_size = 260
context = 32
n_layer = 1
n_head = 2
d_model = 16
[data]
dataset = "$T/data"
[train]
steps = 2
batch_size = 4
[checkpoint]
dir = "$T/ckpt"
every = 2
[output]
dir = "$T/out"
TOML

run() {  # expected-rc stderr-file [--set ...]
  local want=$1 err=$2 rc; shift 2
  set +e
  timeout 120 "$MPIRUN" "${MPIFLAGS[@]}" -np 2 "$CONFLUX" train "$T/train.toml" "$@" > "$T/out.txt" 2> "$err"
  rc=$?
  set -e
  [ "$rc" -eq "$want" ] || { cat "$err" >&2; fail "train exited $rc, expected $want"; }
}

# 1. One bit flipped in the middle of shard 2 (checked by rank 0 of 2: shards 0 and 2).
$PY - "$T/data/part-00002.h5" <<'PY'
import os, sys
p = sys.argv[1]
with open(p, "r+b") as f:
    f.seek(os.path.getsize(p) // 2)
    b = f.read(1)
    f.seek(-1, 1)
    f.write(bytes([b[0] ^ 0x10]))
PY
run 1 "$T/flip.err"
grep -q "conflux: data error: $T/data/part-00002.h5: checksum mismatch: sha256 is [0-9a-f]\{64\}, the manifest says" \
  "$T/flip.err" || { cat "$T/flip.err" >&2; fail "no data error naming part-00002.h5"; }
[ ! -e "$T/ckpt" ] && [ ! -e "$T/out" ] || fail "a corrupt dataset left training output behind"

# 2. Token ids beyond the model's vocabulary: the manifest's tokenizer says 100 (the byte tokens
#    reach 257), so model.vocab_size = 100 passes the config check and only the data check stops it.
rm -rf "$T/data"; cp -a "$T/pristine" "$T/data"
$PY - "$T/data/manifest.json" <<'PY'
import json, sys
p = sys.argv[1]
m = json.load(open(p))
m["tokenizer"]["vocab_size"] = 100
json.dump(m, open(p, "w"))
PY
run 1 "$T/oov.err" --set model.vocab_size=100
grep -Eq "conflux: data error: $T/data/part-00000.h5: token id (1[0-9][0-9]|2[0-5][0-9]) at row 0 of the shard \(dataset row 0\) is outside the model's vocabulary \[0, 100\) \(model.vocab_size\)" \
  "$T/oov.err" || { cat "$T/oov.err" >&2; fail "no data error naming the shard, row and token"; }
grep -q "index out of range" "$T/oov.err" && fail "the out-of-vocabulary token reached the model"
[ ! -e "$T/ckpt" ] && [ ! -e "$T/out" ] || fail "an out-of-vocabulary dataset left training output behind"

# 3. The intact dataset trains.
rm -rf "$T/data"; cp -a "$T/pristine" "$T/data"
run 0 "$T/ok.err"
grep -q "opened and checked in .* s (checksums verified, token ids < 260)" "$T/ok.err" ||
  { cat "$T/ok.err" >&2; fail "no data check logged"; }
echo "cli data check test passed"
