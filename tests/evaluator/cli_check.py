#!/usr/bin/env python3
"""End-to-end check of `conflux eval bleu`, `conflux eval rouge` and `conflux drift` against the
real tools: the sacrebleu command line, rouge-score, numpy and scipy.

Usage: cli_check.py CONFLUX_BINARY WORKDIR   (exit 0 = all equal; any mismatch or a missing
oracle package fails loudly)."""
import json
import math
import os
import subprocess
import sys

try:
    import numpy as np
    import sacrebleu  # noqa: F401 (its CLI is run below)
    from rouge_score import rouge_scorer
    from scipy import stats
except ImportError as e:
    sys.exit(f"cli_check.py: missing oracle package ({e}); pip install -r tests/requirements-evaluator.txt")

conflux, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
here = os.path.dirname(os.path.abspath(__file__))
ref = json.load(open(os.path.join(here, "reference.json")))
failures = []


def run(*args, ok=True):
    p = subprocess.run([conflux, *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        failures.append(f"conflux {' '.join(args)} exited {p.returncode}: {p.stderr}")
    return p


def check(name, got, expect):
    if got != expect:
        failures.append(f"{name}: conflux {got!r} != oracle {expect!r}")


pairs = [p for p in ref["rouge"]["pairs"] if "\n" not in p["hyp"] and all("\n" not in r for r in p["refs"])]
files = {"hyp": [p["hyp"] for p in pairs], "ref1": [p["refs"][0] for p in pairs],
         "ref2": [p["refs"][-1] for p in pairs]}
for name, lines in files.items():
    with open(os.path.join(work, name + ".txt"), "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
H, R1, R2 = (os.path.join(work, n + ".txt") for n in ("hyp", "ref1", "ref2"))

# BLEU: the line, and the JSON fields, against the sacrebleu command line.
for refs in ([R1], [R1, R2]):
    sb = subprocess.run([sys.executable, "-m", "sacrebleu", *refs, "-i", H, "-f", "text", "-w", "2"],
                        capture_output=True, text=True, check=True).stdout.strip()
    expect_line = "BLEU = " + sb.split(" = ", 1)[1]
    args = ["eval", "bleu", "--hyp", H] + sum((["--ref", r] for r in refs), [])
    check(f"bleu line ({len(refs)} refs)", run(*args).stdout.strip(), expect_line)
    sbj = json.loads(subprocess.run([sys.executable, "-m", "sacrebleu", *refs, "-i", H, "-w", "12"],
                                    capture_output=True, text=True, check=True).stdout)
    got = json.loads(run(*args, "--json").stdout)
    check(f"bleu json score ({len(refs)} refs)", round(got["score"], 12), sbj["score"])
    check("bleu json keys", all(k in got for k in ("score", "precisions", "bp", "sys_len", "ref_len")), True)

# ROUGE-L: mean of rouge-score's per-line scores.
for stem in (False, True):
    sc = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stem)
    scores = [sc.score_multi([r1], h)["rougeL"] for h, r1 in zip(files["hyp"], files["ref1"])]
    got = json.loads(run("eval", "rouge", "--hyp", H, "--ref", R1, "--json", *(["--stem"] if stem else [])).stdout)
    n = len(scores)
    check(f"rouge fmeasure stem={stem}", got["fmeasure"], math.fsum(s.fmeasure for s in scores) / n)
    check(f"rouge precision stem={stem}", got["precision"], math.fsum(s.precision for s in scores) / n)
    check(f"rouge pairs stem={stem}", got["pairs"], n)

# drift: CSV tables against numpy (inverted-CDF deciles) and scipy's ks_2samp.
rng = np.random.default_rng(3)
a = {"x": np.round(rng.normal(0, 1, 500), 2), "tok": rng.integers(0, 20, 500).astype(float)}
b = {"x": np.round(rng.normal(0.5, 1, 400), 2), "tok": rng.integers(0, 25, 400).astype(float)}
for name, cols in (("ref.csv", a), ("cur.csv", b)):
    with open(os.path.join(work, name), "w") as f:
        f.write("x,\"tok\"\n")
        for i in range(len(cols["x"])):
            f.write(f"{float(cols['x'][i])!r}, {int(cols['tok'][i])}\n")
got = json.loads(run("drift", os.path.join(work, "ref.csv"), os.path.join(work, "cur.csv"),
                     "--categorical", "tok", "--json").stdout)
feats = {f["feature"]: f for f in got["features"]}
edges = np.unique(np.quantile(a["x"], np.arange(1, 10) / 10, method="inverted_cdf"))
check("drift x edges", feats["x"]["edges"], [float(e) for e in edges])
rc = np.bincount(np.searchsorted(edges, a["x"]), minlength=len(edges) + 1) / len(a["x"])
cc = np.bincount(np.searchsorted(edges, b["x"]), minlength=len(edges) + 1) / len(b["x"])
rc, cc = np.where(rc == 0, 1e-4, rc), np.where(cc == 0, 1e-4, cc)
psi = float(np.sum((cc - rc) * np.log(cc / rc)))
if abs(feats["x"]["psi"] - psi) > 1e-12:
    failures.append(f"drift psi {feats['x']['psi']} != {psi}")
check("drift x ks", feats["x"]["ks"], float(stats.ks_2samp(a["x"], b["x"]).statistic))
check("drift tok ks", feats["tok"]["ks"], float(stats.ks_2samp(a["tok"], b["tok"]).statistic))
check("drift tok categories", len(feats["tok"]["categories"]), len(np.unique(np.concatenate([a["tok"], b["tok"]]))))

# Bad inputs: clear errors, non-zero exit, nothing on stdout.
p = run("drift", work, os.path.join(work, "cur.csv"), ok=False)
check("drift directory exit", p.returncode != 0 and "dataset inputs need the dataplane; pass CSV" in p.stderr, True)
with open(os.path.join(work, "bad.csv"), "w") as f:
    f.write("x,tok\n1.0,2\n3.0,abc\n")
p = run("drift", os.path.join(work, "bad.csv"), os.path.join(work, "cur.csv"), ok=False)
check("drift bad cell names file:line and column", p.returncode != 0 and "bad.csv:3" in p.stderr and "'tok'" in p.stderr, True)
with open(os.path.join(work, "short.txt"), "w") as f:
    f.write("one line\n")
p = run("eval", "bleu", "--hyp", H, "--ref", os.path.join(work, "short.txt"), ok=False)
check("bleu line-count mismatch", p.returncode != 0 and "short.txt" in p.stderr and p.stdout == "", True)

if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"cli_check: eval bleu/rouge and drift match sacrebleu, rouge-score, numpy and scipy ({len(pairs)} lines)")
