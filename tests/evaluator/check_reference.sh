#!/bin/sh
# Regenerates the evaluator's oracle reference vectors and fails if they differ from the
# committed tests/evaluator/reference.json (or if an oracle package is missing).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="${1:-${TMPDIR:-/tmp}}/evaluator_reference.regen.json"
python3 "$here/gen_reference.py" --out "$out"
if ! cmp -s "$out" "$here/reference.json"; then
  echo "evaluator_oracle_regen: regenerated reference differs from $here/reference.json" >&2
  python3 - "$out" "$here/reference.json" <<'PY' >&2 || true
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for k in sorted(set(a) | set(b)):
    if a.get(k) != b.get(k):
        print("  section differs:", k)
PY
  exit 1
fi
echo "evaluator_oracle_regen: reference.json reproduced exactly"
# The UTF-8 replacement vectors (Python's bytes.decode(..., "replace")).
u8="${1:-${TMPDIR:-/tmp}}/utf8_reference.regen.json"
python3 "$here/gen_utf8_reference.py" --out "$u8"
cmp -s "$u8" "$here/utf8_reference.json" || {
  echo "evaluator_oracle_regen: regenerated utf8_reference.json differs" >&2; exit 1; }
echo "evaluator_oracle_regen: utf8_reference.json reproduced exactly"
