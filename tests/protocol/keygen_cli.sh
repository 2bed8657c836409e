#!/usr/bin/env bash
# End-to-end check of `conflux keygen`: files, modes, formats, refusal to overwrite, --json.
#   keygen_cli.sh PATH/TO/conflux
set -euo pipefail
CONFLUX="$1"
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$CONFLUX" keygen alice --out-dir "$DIR" > "$DIR/out.txt"
[ "$(stat -c %a "$DIR/alice.key")" = 600 ] || fail "alice.key mode is $(stat -c %a "$DIR/alice.key")"
grep -qE '^[^#].{39}$' "$DIR/alice.key" || fail "alice.key has no 40-char key line"
read -r KEY NAME < "$DIR/alice.pub"
[ "${#KEY}" = 40 ] || fail "public key length ${#KEY}"
[ "$NAME" = alice ] || fail "public key name '$NAME'"
grep -qF -- "$KEY" "$DIR/out.txt" || fail "stdout does not show the public key"
ls "$DIR" | grep -q tmp && fail "temp files left behind"

set +e
"$CONFLUX" keygen alice --out-dir "$DIR" 2> "$DIR/err.txt"
RC=$?
set -e
[ "$RC" = 1 ] || fail "overwrite without --force exited $RC, expected 1"
grep -q "refusing to overwrite" "$DIR/err.txt" || fail "no clear overwrite error"
read -r KEY2 _ < "$DIR/alice.pub"
[ "$KEY2" = "$KEY" ] || fail "key replaced without --force"

"$CONFLUX" keygen alice --out-dir "$DIR" --force --json > "$DIR/out.json"
/usr/bin/python3 - "$DIR" <<'PY'
import json, sys
d = sys.argv[1]
j = json.load(open(d + "/out.json"))
pub = open(d + "/alice.pub").read().split()[0]
assert j["name"] == "alice" and j["public_key"] == pub, j
assert j["secret_key_file"].endswith("alice.key"), j
PY
"$CONFLUX" keygen --help | grep -q "Example" || fail "--help has no example"
echo "keygen CLI ok"
