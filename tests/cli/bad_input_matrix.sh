# The bad-input matrix (issue 17): every row of bad_input_matrix.txt is one bad input run
# against the real binaries, with the exit code it must give, a substring its message must
# contain (the file, key, flag or peer), and a path that must be byte-for-byte unchanged on disk
# afterwards (or still absent). docs/reliability.md lists the same cases by class.
#
# Table format, one case a line ('#' lines and blank lines are skipped), fields split on ' | ':
#   ID | EXIT | SUBSTRING | UNCHANGED | COMMAND
# SUBSTRING must appear in stderr when EXIT is not 0, in stdout when it is 0 ("-": no check).
# UNCHANGED is a file or directory checksummed (names and contents) before and after ("-": none);
# a path that did not exist must still not exist. COMMAND runs in bash; SUBSTRING and UNCHANGED
# may use $T as well. Variables: $CONFLUX, $WORKER (conflux-worker), $T (scratch with the fixtures
# below), $SRC (source tree).
# Usage: bad_input_matrix.sh [ID-PATTERN]   (env CONFLUX, WORKER, SRC as set by CMake)
source "$(dirname "$0")/lib.sh"
TABLE=${MATRIX_TABLE:-$(dirname "$0")/bad_input_matrix.txt}
only=${1:-}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
export CONFLUX WORKER SRC T

# Fixtures: a small real dataset (and a copy to be a prepare output), empty and blank inputs, a
# directory, and configs that point at them.
"$CONFLUX" ingest -i /usr/share/games/fortunes/debian -f fortune --keep-text -o "$T/ds" >/dev/null \
  || fail "fixture: cannot ingest the debian fortunes"
cp -a "$T/ds" "$T/ds2"
: >"$T/zero.txt"
: >"$T/empty.jsonl"
printf '  \n\n\t\n' >"$T/blank.txt"
printf '{"text": "fine"}\nnot json\n' >"$T/bad.jsonl"
printf '{"body": "no text field"}\n' >"$T/nofield.jsonl"
mkdir "$T/cfgdir"
mkdir "$T/badtrain" && printf '{"step": 1, "loss": 5}\n{"step": 2, "loss": \n' >"$T/badtrain/metrics.jsonl"
sed "s|^dataset = .*|dataset = \"$T/ds\"|; s|^dir = \"checkpoints/fortunes\"|dir = \"$T/ckpt\"|; s|^dir = \"runs/fortunes\"|dir = \"$T/runs\"|" \
  "$SRC/trainer/configs/train-fortunes.toml" >"$T/train.toml"
sed 's|^lr = .*|lr = nan|' "$T/train.toml" >"$T/train-nan.toml"
printf '[prepare]\ninput = "%s"\noutput = "%s"\nseed = 1\n[validate]\nmin_tokens = 1000000\n' "$T/ds" "$T/ds2" \
  >"$T/drop-all.toml"
printf '[evaluate]\ncheckpoint = "%s/none"\ndataset = "%s"\n[server]\nbind = "tcp://127.0.0.1:99999"\ninsecure = true\n' \
  "$T" "$T/ds" >"$T/eval-bad-bind.toml"
# Pipeline files (docs/pipeline.md): each one bad in one way.
printf '[pipeline]\nname = "x"\n[stages.trian]\n' >"$T/pl-typo.toml"
printf '[stages.train]\nconfig = "%s"\n[stages.train.resources]\nrank = 2\n' "$T/train.toml" >"$T/pl-res.toml"
printf '[stages.train]\nconfig = "%s"\n[stages.train.resources]\nranks = 0\n' "$T/train.toml" >"$T/pl-ranks0.toml"
printf '[stages.ingest]\nformat = "fortune"\n' >"$T/pl-noinput.toml"
printf '[pipeline]\ndir = "%s/pl-run"\n[stages.train]\nconfig = "%s"\n' "$T" "$T/train.toml" >"$T/pl-ok.toml"
printf '[stages.prepare]\nconfig = "%s"\nbuiltin = "fortunes"\n' "$T/drop-all.toml" >"$T/pl-both.toml"
printf '[pipeline]\ndir = "%s/pl-run"\n[stages.train]\nconfig = "%s"\nset = ["train.lr=nan"]\n' "$T" "$T/train.toml" >"$T/pl-nan.toml"
# conflux monitor: step directories without lineage, with a lineage lacking its dataset, with a
# lineage naming a dataset that is gone; links to them; a config using them.
mkdir -p "$T/mon/nolineage" "$T/mon/badlineage" "$T/mon/lostdata"
printf '{"config": {}}\n' >"$T/mon/badlineage/lineage.json"
printf '{"config": {}, "dataset": {"dir": "%s/gone", "manifest_sha256": "00"}, "world": {"dp": 1, "tp": 1}}\n' "$T" \
  >"$T/mon/lostdata/lineage.json"
for d in nolineage badlineage lostdata; do ln -s "$T/mon/$d" "$T/mon/link-$d"; done
ln -s "$T/mon/nowhere" "$T/mon/link-dangling"
printf '[monitor]\ncurrent = "%s/mon/link-lostdata"\ndata = "%s/ds"\noutput = "%s/mon/out"\n' "$T" "$T" "$T" \
  >"$T/mon/monitor.toml"

# Checksum of a path: every file's relative name and contents; "absent" if it does not exist.
digest() {
  if [ ! -e "$1" ]; then echo absent; return; fi
  if [ -d "$1" ]; then (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) | sha256sum
  else sha256sum <"$1"; fi
}

cases=0; failed=0
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in '#'* | '') continue ;; esac
  id=${line%% | *}; rest=${line#* | }
  want=${rest%% | *}; rest=${rest#* | }
  sub=${rest%% | *}; rest=${rest#* | }
  keep=${rest%% | *}; cmd=${rest#* | }
  [ -n "$only" ] && [[ "$id" != $only ]] && continue
  sub=${sub//\$T/$T}; keep=${keep//\$T/$T}
  cases=$((cases + 1))
  before=""; [ "$keep" != "-" ] && before=$(digest "$keep")
  out=$(timeout 120 bash -c "$cmd" </dev/null 2>"$T/.stderr"); rc=$?
  err=$(cat "$T/.stderr")
  why=""
  [ "$rc" -eq "$want" ] || why="exit $rc, expected $want"
  if [ -z "$why" ] && [ "$sub" != "-" ]; then
    text=$err; [ "$want" -eq 0 ] && text=$out
    case "$text" in *"$sub"*) ;; *) why="output lacks '$sub'" ;; esac
  fi
  if [ -z "$why" ] && [ "$keep" != "-" ] && [ "$(digest "$keep")" != "$before" ]; then why="$keep changed"; fi
  if [ -n "$why" ]; then
    failed=$((failed + 1))
    printf 'FAIL %s: %s\n  command: %s\n  stdout: %s\n  stderr: %s\n' "$id" "$why" "$cmd" "$out" "$err" >&2
  else
    echo "ok   $id"
  fi
done <"$TABLE"
[ "$cases" -gt 0 ] || fail "no case matched '$only' in $TABLE"
[ "$failed" -eq 0 ] || fail "$failed of $cases bad-input cases failed"
echo "bad_input_matrix: $cases cases ok"
