#!/usr/bin/env python3
"""Checks the generation metrics of a `conflux evaluate` report against the reference tools on
the very texts the workers generated (OUT/generations.jsonl):
  bleu     == sacrebleu.corpus_bleu(hyps, [refs]) (score, precisions, bp, lengths: bit for bit)
  rouge_l  == mean of rouge_score RougeScorer(["rougeL"]).score(ref, hyp) (math.fsum / n, bits)
  distinct == |set of n-grams| / n-grams over str.split() tokens of the hypotheses, n = 1, 2
Fails loudly (exit 1) when sacrebleu or rouge-score is missing (tests/requirements-evaluator.txt).
usage: gen_oracle_check.py OUT_DIR"""
import json
import math
import sys

try:
    import sacrebleu
    from rouge_score import rouge_scorer
except ImportError as e:  # an oracle is missing: fail, never skip
    sys.exit(f"gen_oracle_check: oracle missing ({e}); pip install -r tests/requirements-evaluator.txt")

out = sys.argv[1]
report = json.load(open(f"{out}/report.json"))
res = {r["metric"]: r for r in report["results"]}
gens = [json.loads(line) for line in open(f"{out}/generations.jsonl", encoding="utf-8")]
hyps = [g["hypothesis"] for g in gens]
refs = [g["reference"] for g in gens]
assert [g["row"] for g in gens] == sorted(g["row"] for g in gens), "generations not in row order"
failures = []


def check(name, got, expect):
    if got != expect:
        failures.append(f"{name}: conflux {got!r} != oracle {expect!r}")


b = sacrebleu.corpus_bleu(hyps, [refs])
d = res["bleu"]["detail"]
check("bleu score", res["bleu"]["value"], b.score)
check("bleu precisions", d["precisions"], list(b.precisions))
check("bleu bp", d["bp"], b.bp)
check("bleu sys_len", d["sys_len"], b.sys_len)
check("bleu ref_len", d["ref_len"], b.ref_len)
check("bleu counts", d["counts"], list(b.counts))
check("bleu segments", d["segments"], len(hyps))

sc = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
scores = [sc.score(r, h)["rougeL"] for h, r in zip(hyps, refs)]
n = len(scores)
d = res["rouge_l"]["detail"]
check("rouge_l fmeasure", res["rouge_l"]["value"], math.fsum(s.fmeasure for s in scores) / n)
check("rouge_l precision", d["precision"], math.fsum(s.precision for s in scores) / n)
check("rouge_l recall", d["recall"], math.fsum(s.recall for s in scores) / n)
check("rouge_l pairs", d["pairs"], n)

d = res["distinct"]["detail"]
for k in (1, 2):
    grams = [tuple(t[i:i + k]) for t in (h.split() for h in hyps) for i in range(len(t) - k + 1)]
    check(f"distinct_{k}", d[f"distinct_{k}"], len(set(grams)) / len(grams) if grams else None)
    check(f"total_{k}", d[f"total_{k}"], len(grams))

if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"gen_oracle_check: bleu {b.score:.4f}, rouge_l F {res['rouge_l']['value']:.4f}, "
      f"distinct-1 {d['distinct_1']:.4f} match sacrebleu / rouge-score / Python on {n} generations")
