#!/usr/bin/env bash
# The run report end to end, from real runs, checked in a real browser:
#   conflux ingest (Debian's fortunes) -> conflux prepare --builtin fortunes -> conflux train (a
#   tiny GPT, 20 steps, validation every 10, DP-SGD on so epsilon is recorded) -> conflux evaluate
#   --mpi (2 ranks) -> conflux report; then headless Chromium (Debian's `chromium`) renders
#   report.html: from the DOM it dumps, every section is there, the loss chart has a polyline
#   through all 20 steps, the validation, epsilon and funnel charts and the reliability diagram
#   are drawn, the provenance chain matches at every link, and no error text is shown; its
#   screenshot is a PNG with chart-coloured pixels. A second report with a checkpoint trained on
#   another dataset shows "does not match". Fails (does not skip) when chromium is missing
#   (scripts/install-deps.sh installs it).
# usage: run_report_e2e.sh CONFLUX SOURCE_DIR MPIRUN [mpirun flags...]
set -euo pipefail
CONFLUX=$1; SRC=$2; MPIRUN=$3; shift 3; MPIFLAGS=("$@")
T=$(mktemp -d /tmp/conflux-run-report.XXXXXX)
cleanup() { rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -20 "$f"; }; done >&2; exit 1; }
CHROMIUM=$(command -v chromium || true)
[ -n "$CHROMIUM" ] || fail "chromium is not installed (scripts/install-deps.sh installs Debian's chromium)"
cd "$T"

"$CONFLUX" ingest -i /usr/share/games/fortunes -f fortune --keep-text --group-by-file -o data/raw \
  > ingest.log 2>&1 || fail "ingest"
"$CONFLUX" prepare --builtin fortunes --set prepare.input=data/raw --set prepare.output=data/prep \
  > prepare.log 2>&1 || fail "prepare"
cp "$SRC/trainer/configs/train-fortunes.toml" train.toml
TINY=(model.n_layer=1 model.d_model=32 model.n_head=2 model.context=32 train.steps=20 train.eval_every=10
      checkpoint.every=10 train.eval_windows=16)
"$CONFLUX" train train.toml --set "${TINY[@]}" data.dataset=data/prep checkpoint.dir=ckpt output.dir=runs/train \
  privacy.enabled=true privacy.sample_rate=0.002 > train.log 2>&1 || fail "train"
cat > eval.toml <<TOML
[evaluate]
checkpoint = "ckpt"
dataset = "data/prep"
metrics = ["perplexity", "ece", "bleu", "rouge_l", "distinct"]
split = "validation"
[generation]
prompt_tokens = 16
max_new_tokens = 16
every = 50
[output]
dir = "runs/eval"
TOML
"$MPIRUN" "${MPIFLAGS[@]}" -np 2 "$CONFLUX" evaluate eval.toml --mpi > evaluate.log 2>&1 || fail "evaluate --mpi"
"$CONFLUX" report --dataset data/prep --train-output runs/train --checkpoint ckpt --evaluation runs/eval \
  --title "fortunes <tiny> run" -o report.html > report.log 2>&1 || fail "report"

# A checkpoint trained on another dataset (the raw one): its lineage does not match.
"$CONFLUX" train train.toml --set "${TINY[@]}" train.steps=2 train.eval_every=0 checkpoint.every=2 \
  data.dataset=data/raw checkpoint.dir=ckpt-raw output.dir=runs/train-raw > train-raw.log 2>&1 || fail "train on raw"
"$CONFLUX" report --dataset data/prep --train-output runs/train-raw --checkpoint ckpt-raw \
  -o mismatch.html > report-mismatch.log 2>&1 || fail "report (mismatch)"

render() {  # HTML_FILE DOM_OUT PNG_OUT
  local profile; profile=$(mktemp -d "$T/chromium-profile.XXXXXX")
  timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --user-data-dir="$profile" \
    --dump-dom "file://$T/$1" > "$2" 2> "chromium-dom-$1.log" || fail "chromium --dump-dom $1 (exit $?)"
  timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --user-data-dir="$profile" \
    --hide-scrollbars --window-size=1200,4000 --screenshot="$T/$3" "file://$T/$1" \
    > "chromium-png-$1.log" 2>&1 || fail "chromium --screenshot $1 (exit $?)"
}
render report.html report.dom report.png
render mismatch.html mismatch.dom mismatch.png

/usr/bin/python3 - "$T" <<'PY' || fail "rendered report check"
import re, struct, sys, zlib
from html.parser import HTMLParser
T = sys.argv[1]

class Dom(HTMLParser):
    """Elements with their section (the enclosing <section id>), and the visible text."""
    def __init__(self):
        super().__init__()
        self.stack, self.elements, self.text = [], [], []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        sec = a["id"] if tag == "section" else (self.stack[-1][1] if self.stack else None)
        self.elements.append((tag, sec, a))
        if tag not in ("rect", "circle", "line", "polyline", "path", "meta", "br"):
            self.stack.append((tag, sec))
    def handle_endtag(self, tag):
        if any(t == tag for t, _ in self.stack):  # the DOM closes <rect></rect>: never pushed
            while self.stack.pop()[0] != tag:
                pass
    def handle_data(self, d):
        self.text.append((self.stack[-1][1] if self.stack else None, d))

def parse(path):
    d = Dom()
    d.feed(open(path, encoding="utf-8").read())
    return d, re.sub(r"\s+", " ", " ".join(t for s, t in d.text))

def png_pixels(path):
    """(width, height, rows of RGB(A) tuples) of an 8-bit RGB/RGBA PNG."""
    b = open(path, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, b"", None
    while pos < len(b):
        n, kind = struct.unpack(">I4s", b[pos:pos + 8])
        data = b[pos + 8:pos + 8 + n]
        if kind == b"IHDR": ihdr = struct.unpack(">IIBBBBB", data)
        if kind == b"IDAT": idat += data
        pos += 12 + n
    w, h, depth, ctype = ihdr[:4]
    assert depth == 8 and ctype in (2, 6), f"unexpected PNG type {ihdr}"
    bpp = 3 if ctype == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            c = prev[i - bpp] if i >= bpp else 0
            p = a + prev[i] - c
            pred = (0, a, prev[i], (a + prev[i]) // 2,
                    a if abs(p - a) <= abs(p - prev[i]) and abs(p - a) <= abs(p - c) else
                    (prev[i] if abs(p - prev[i]) <= abs(p - c) else c))[f]
            line[i] = (line[i] + pred) & 255
        rows.append(line)
        prev = line
    return w, h, bpp, rows

dom, text = parse(f"{T}/report.dom")
sections = {a.get("id") for t, s, a in dom.elements if t == "section"}
for sid in ("inputs", "funnel", "loss", "epsilon", "metrics", "reliability", "generations", "provenance"):
    assert sid in sections, f"section #{sid} missing from the rendered DOM"
def in_sec(sid, tag):
    return [a for t, s, a in dom.elements if s == sid and t == tag]
lines = {a.get("data-series"): a for a in in_sec("loss", "polyline")}
assert "training loss" in lines and "validation loss" in lines, lines.keys()
assert len(lines["training loss"]["points"].split()) == 20, lines["training loss"]["points"]
assert len(lines["validation loss"]["points"].split()) == 2, lines["validation loss"]["points"]
eps = in_sec("epsilon", "polyline")
assert eps and len(eps[0]["points"].split()) == 20, "epsilon curve"
assert len(in_sec("funnel", "rect")) >= 3, "funnel bars"
assert any(float(a.get("height", 0)) > 0 for a in in_sec("reliability", "rect") if a.get("fill") == "#4a7ab5"), \
    "reliability bars"
assert len(in_sec("generations", "tr")) >= 5, "generations table"
assert "fortunes <tiny> run" in text, "title text (escaped, rendered back)"
for word in ("perplexity", "ece", "exact_duplicate", "near_duplicate"):
    assert word in text, word
assert text.count("MATCHES the dataset above") == 2 and "MATCHES the checkpoint above" in text, "provenance"
assert "parent manifest here matches" in text, "prepare's parent check"
# Generations are arbitrary fortune text; everything else is the report's own.
own = " ".join(t for s, t in dom.text if s != "generations")
for bad in ("does not match", "Error", "error:", "undefined"):
    assert bad not in own, f"unexpected {bad!r} in the rendered page"

w, h, bpp, rows = png_pixels(f"{T}/report.png")
assert w == 1200 and h == 4000, (w, h)
blue = sum(1 for r in rows[::4] for x in range(0, w * bpp, bpp * 4)
           if abs(r[x] - 0x4a) < 16 and abs(r[x + 1] - 0x7a) < 16 and abs(r[x + 2] - 0xb5) < 16)
assert blue > 50, f"only {blue} sampled chart-blue pixels in the screenshot"

dom2, text2 = parse(f"{T}/mismatch.dom")
assert "does not match the dataset above" in text2, "mismatched lineage not shown"
assert "not evaluated yet" in text2
print("rendered report OK:", len(dom.elements), "elements,", blue, "sampled chart pixels")
PY
echo "PASS: run report rendered in headless Chromium ($("$CHROMIUM" --version 2>/dev/null | head -1))"
