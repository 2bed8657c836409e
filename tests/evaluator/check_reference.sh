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
