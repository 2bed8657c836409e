#!/usr/bin/env bash
# Crash consistency of checkpoints: a training run that checkpoints every step is SIGKILLed
# KILLS times (default 15) at random points, half of them the moment a checkpoint is being
# written (a .tmp-* entry exists under the root), half after a random delay. After every kill:
#   - every step-* directory is complete (model + optim safetensors, trainer_state, lineage), and
#     the newest one loads (`conflux generate` from the root exits 0);
#   - the next start removes the leftovers of the interrupted write before it writes (its log
#     says how many; none of the old leftover names survive a completed checkpoint).
# At the end an uninterrupted run finishes with exit 0 and leaves no leftovers.
# Then corrupt copies of a checkpoint are each a named data error (exit 1), never exit 4:
# a safetensors header that is not JSON, a NaN weight, a malformed trainer_state.json field.
# usage: checkpoint_crash_test.sh CONFLUX_BINARY MPIRUN [mpirun flags...]
# env: CONFLUX_CRASH_KILLS (15), CONFLUX_CRASH_SEED (random; printed, to replay a failure).
set -euo pipefail
CONFLUX=$1; MPIRUN=$2; shift 2; MPIFLAGS=("$@")
KILLS=${CONFLUX_CRASH_KILLS:-15}
SEED=${CONFLUX_CRASH_SEED:-$$}
RANDOM=$SEED
T=$(mktemp -d /tmp/conflux-ckpt-crash.XXXXXX)
PID=""
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL (seed $SEED): $*" >&2; exit 1; }
PY=/usr/bin/python3
echo "checkpoint crash test: $KILLS kills, seed $SEED"

"$CONFLUX" ingest -i /usr/share/games/fortunes/computers -f fortune -o "$T/data" > /dev/null
cat > "$T/train.toml" <<TOML
[model]
vocab_size = 260
context = 16
n_layer = 1
n_head = 2
d_model = 32
[data]
dataset = "$T/data"
val_fraction = 0.05
[train]
steps = 100000
batch_size = 4
lr = 1e-3
warmup_steps = 2
[checkpoint]
dir = "$T/ckpt"
every = 1
keep_last = 2
[output]
dir = "$T/out"
TOML

leftovers() { ls -A "$T/ckpt" 2>/dev/null | grep '^\.' || true; }

# Every step directory complete; the newest loads.
check_checkpoints() {
  local d n=0
  for d in "$T"/ckpt/step-*; do
    [ -d "$d" ] || continue
    n=$((n + 1))
    for f in model-tp00-of-01.safetensors optim-tp00-of-01.safetensors trainer_state.json lineage.json; do
      [ -s "$d/$f" ] || fail "after kill $1: $d has no complete $f"
    done
  done
  [ "$n" -le 3 ] || fail "after kill $1: $n step directories with keep_last = 2"
  if [ "$n" -gt 0 ]; then
    "$CONFLUX" generate --checkpoint "$T/ckpt" --prompt "a" --max-tokens 2 --seed 1 > /dev/null 2> "$T/gen.err" ||
      { cat "$T/gen.err" >&2; fail "after kill $1: the newest checkpoint does not load"; }
  fi
}

newest() { ls -d "$T"/ckpt/step-* 2>/dev/null | tail -1 || true; }

CLEANED=0; MID_WRITE=0
for k in $(seq 1 "$KILLS"); do
  before=$(leftovers | tr '\n' ' ')
  prev=$(newest)
  "$MPIRUN" "${MPIFLAGS[@]}" -np 1 "$CONFLUX" train "$T/train.toml" > /dev/null 2> "$T/train.err" &
  PID=$!
  # Wait until this start has written a checkpoint of its own (so it is past its cleanup and
  # resume; bounded: 60 s), then kill at a random point of the steps that follow.
  for _ in $(seq 1 600); do [ "$(newest)" != "$prev" ] && break; sleep 0.1; done
  [ "$(newest)" != "$prev" ] || { cat "$T/train.err" >&2; fail "kill $k: no new checkpoint within 60 s"; }
  RANK=$(pgrep -P "$PID" | head -1 || true)
  [ -n "$RANK" ] || fail "kill $k: no rank process under mpirun $PID"
  if [ $((RANDOM % 2)) -eq 0 ]; then
    # Mid-write: kill as soon as a checkpoint write is in progress (bounded: 10 s).
    end=$((SECONDS + 10))
    while [ -z "$(leftovers)" ] && [ "$SECONDS" -lt "$end" ]; do :; done
    [ -n "$(leftovers)" ] && MID_WRITE=$((MID_WRITE + 1))
  else
    sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
  fi
  kill -9 "$RANK" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=""
  # The start that was just killed removed what the previous kill left, before writing.
  if [ -n "$before" ]; then
    grep -q "removed [0-9]* leftover(s) of an interrupted checkpoint" "$T/train.err" ||
      { cat "$T/train.err" >&2; fail "kill $k: the start did not report removing leftovers ($before)"; }
    CLEANED=$((CLEANED + 1))
  fi
  check_checkpoints "$k"
done

# One uninterrupted run to 2 steps past the newest checkpoint: exit 0, no leftovers.
STEP=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["step"])' "$(ls -d "$T"/ckpt/step-* | tail -1)/trainer_state.json")
"$MPIRUN" "${MPIFLAGS[@]}" -np 1 "$CONFLUX" train "$T/train.toml" --set train.steps=$((STEP + 2)) --json > "$T/final.json" 2> "$T/final.err" ||
  { cat "$T/final.err" >&2; fail "the run after $KILLS kills did not complete"; }
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["status"]=="completed" and d["step"]==int(sys.argv[2]), d' "$T/final.json" $((STEP + 2))
[ -z "$(leftovers)" ] || fail "leftovers after a completed run: $(leftovers)"
echo "kills: $KILLS ($MID_WRITE while a checkpoint was being written); the newest checkpoint loaded after each; $CLEANED starts removed leftovers; final run resumed at step $STEP"

# Corrupt copies: each a data error (exit 1) naming the file and what is wrong.
LAST=$(ls -d "$T"/ckpt/step-* | tail -1)
expect_data_error() {  # NAME DIR SUBSTRING
  local rc=0
  "$CONFLUX" generate --checkpoint "$2" --prompt "a" --max-tokens 2 > /dev/null 2> "$T/bad.err" || rc=$?
  [ "$rc" -eq 1 ] || { cat "$T/bad.err" >&2; fail "$1: exit $rc, expected 1"; }
  grep -qF "$3" "$T/bad.err" || { cat "$T/bad.err" >&2; fail "$1: message does not contain '$3'"; }
  echo "$1: exit 1, names '$3'"
}
cp -r "$LAST" "$T/c1"
$PY - "$T/c1/model-tp00-of-01.safetensors" <<'PY'
import struct, sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
b[8 + n // 2] = ord("{")          # break the JSON in the middle of the header
open(p, "wb").write(b)
PY
expect_data_error "corrupt safetensors header" "$T/c1" "c1/model-tp00-of-01.safetensors: safetensors header is not valid JSON"
cp -r "$LAST" "$T/c2"
NAME=$($PY - "$T/c2/model-tp00-of-01.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
name = sorted(k for k in h if k != "__metadata__" and h[k]["dtype"] == "F32")[-1]
start = 8 + n + h[name]["data_offsets"][0]
b[start:start + 4] = struct.pack("<f", float("nan"))
open(p, "wb").write(b)
print(name)
PY
)
expect_data_error "NaN weight" "$T/c2" "c2/model-tp00-of-01.safetensors: tensor '$NAME' has 1 non-finite value(s)"
cp -r "$LAST" "$T/c3"
sed -i 's/"n_head": 2/"n_head": "two"/' "$T/c3/trainer_state.json"
expect_data_error "malformed trainer_state.json" "$T/c3" "c3/trainer_state.json: field 'model.n_head' has the wrong type"
echo "checkpoint crash test passed"
