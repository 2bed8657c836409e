#!/usr/bin/env python3
"""Reference values for the evaluator's metric tests, computed by the real tools.

Oracles: sacrebleu (BLEU, 13a tokenizer), rouge-score (ROUGE-L, its tokenizer, NLTK's Porter
stemmer), math.fsum (exact sums), numpy (ECE, PSI, perplexity), scipy (ks_2samp, temperature
fit by root finding). Versions are pinned in tests/requirements-evaluator.txt.

The text corpus is real text: Debian's fortunes (/usr/share/games/fortunes/*.u8) split into
reference / hypothesis pairs with seeded perturbations (word drops, swaps, substitutions, case
changes, truncation), plus hand-written edge cases. The corpus itself is stored in the output,
so the C++ tests need neither the fortunes nor Python.

Usage: gen_reference.py --out FILE   (deterministic: the same inputs give a byte-identical file)
The ctest `evaluator_oracle_regen` re-runs this script and diffs against the committed JSON.
"""
import argparse
import json
import math
import os
import random
import sys

try:
    import numpy as np
    import sacrebleu
    import scipy
    from scipy import optimize, stats
    from nltk.stem import porter
    from rouge_score import rouge_scorer, tokenize as rouge_tokenize
    import rouge_score  # noqa: F401
except ImportError as e:  # fail loudly: a missing oracle must not pass silently
    sys.stderr.write(f"gen_reference.py: missing oracle package ({e}); "
                     "pip install -r tests/requirements-evaluator.txt\n")
    sys.exit(2)

FORTUNES = "/usr/share/games/fortunes"
FORTUNE_FILES = ["computers", "science", "wisdom", "literature", "people", "linux"]


def load_fortunes(limit_per_file=30, max_chars=260):
    out = []
    for name in FORTUNE_FILES:
        path = os.path.join(FORTUNES, name + ".u8")
        if not os.path.exists(path):
            sys.stderr.write(f"gen_reference.py: {path} missing (Debian package fortunes)\n")
            sys.exit(2)
        with open(path, encoding="utf-8") as f:
            entries = f.read().split("\n%\n")
        kept = 0
        for e in entries:
            text = " ".join(e.split())
            if 20 <= len(text) <= max_chars:
                out.append(text)
                kept += 1
                if kept == limit_per_file:
                    break
    return out


def perturb(text, rng, vocab, p):
    words = text.split()
    out = []
    i = 0
    while i < len(words):
        w = words[i]
        r = rng.random()
        if r < p:  # drop
            i += 1
            continue
        if r < 2 * p and i + 1 < len(words):  # swap with next
            out += [words[i + 1], w]
            i += 2
            continue
        if r < 3 * p:  # substitute
            w = vocab[rng.randrange(len(vocab))]
        if r > 1 - p / 2:  # case change
            w = w.upper() if rng.random() < 0.5 else w.lower()
        out.append(w)
        i += 1
    if out and rng.random() < 0.15:  # truncate
        out = out[: max(1, len(out) * 2 // 3)]
    return " ".join(out)


EDGE_CASES = [
    ("", ["The cat sat on the mat."]),
    ("The cat sat on the mat.", ["The cat sat on the mat."]),
    ("Hello", ["Hello"]),
    ("It cost $1,000.50 in 2019-2020, i.e. 3.5%.",
     ["It cost $1,000.50 in 2019 - 2020, i.e. 3.5 %.", "The cost was 1,000.50 dollars."]),
    ("Version 2.0. Numbers: 1.5, 2,5 and 3. End.", ["Version 2.0 . Numbers : 1.5 , 2,5 and 3 . End ."]),
    ("Hello!!! (world) [test] {x} <y> @z #hash &amp; &lt;tag&gt; &quot;q&quot; a/b ~c ^d _e `f|g",
     ["Hello! (world) [test] {x} <y> @z #hash & <tag> \"q\" a/b ~c ^d _e `f|g"]),
    ("co-\noperate <skipped> line\nbreak", ["cooperate line break"]),
    ("Café naïve — résumé… 東京 İstanbul \u212a-band \u00a0nbsp\u3000ideographic",
     ["Cafe naive - resume ... Tokyo Istanbul K-band nbsp ideographic"]),
    ("one two three four five", ["one two three four", "one two three four five six"]),
    ("one two three four five", ["one two three four five six", "one two three four"]),
    ("the the the the the the the", ["the cat is on the mat", "there is a cat on the mat"]),
    ("a b c d e f", ["a b c", "d e f g h i j k"]),
    ("trailing spaces   \t ", ["trailing spaces"]),
    ("   ", ["nonempty reference"]),
    ("Mr. Smith's e-mail: j.smith@example.com; it's 9:30 a.m.",
     ["Mr Smith's email is j.smith@example.com and it is 9:30 am"]),
    ("Running runners ran quickly; generalizations, happiness and hopefully",
     ["The runner runs quick; generalization happy hope"]),
    ("\u00a0\u2003unicode\u2009spaces\u202fhere\u205f", ["unicode spaces here"]),
    ("x,y.z 1,2.3 a-1 1-a 1-2", ["x , y . z 1,2.3 a-1 1 - a 1 - 2"]),
]

PORTER_WORDS = """yyyy sky skies dying lying tying news innings outings cannings howe proceed
exceed succeed happy enjoy enjoyment spy fly try spied tried flies dies died lied cries ties
generalization generalizations oscillators agreed feed plastered bled motoring sing hopping
falling hissing fizzed failing filing caresses ponies caress cats relational conditional rational
valenci hesitanci digitizer conformabli radicalli differentli vileli analogousli vietnamization
predication operator feudalism decisiveness hopefulness callousness formaliti sensitiviti
sensibiliti triplicate formative formalize electriciti electrical hopeful goodness revival
allowance inference airliner gyroscopic adjustable defensible irritant replacement adjustment
dependent adoption homologou communism activate angulariti homologous effective bowdlerize
probate rate cease controll roll fully archaeology analogically skyward eyeing sayyid abyy
1990s abc123 aaaa bbbb yaya ayyy eeed ingly sings tying ying bying""".split()


def bleu_reference(corpus):
    bleu = sacrebleu.BLEU()
    tok = bleu.tokenizer
    segments = []
    for hyp, refs in corpus:
        seg = bleu._extract_corpus_statistics([hyp], [[r] for r in refs])[0]
        segments.append({"hyp": hyp, "refs": refs, "stats": [int(x) for x in seg],
                         "hyp_tokens": tok(hyp.rstrip())})
    return segments


def bleu_corpus(corpus, indices):
    hyps = [corpus[i][0] for i in indices]
    nref = len(corpus[indices[0]][1])
    assert all(len(corpus[i][1]) == nref for i in indices)
    streams = [[corpus[i][1][k] for i in indices] for k in range(nref)]
    score = sacrebleu.BLEU().corpus_score(hyps, streams)
    return {"indices": indices, "score": score.score, "precisions": list(score.precisions),
            "bp": score.bp, "sys_len": score.sys_len, "ref_len": score.ref_len,
            "counts": list(score.counts), "totals": list(score.totals), "line": str(score)}


def rouge_reference(corpus):
    out = []
    scorers = {s: rouge_scorer.RougeScorer(["rougeL"], use_stemmer=s) for s in (False, True)}
    stemmer = porter.PorterStemmer()
    for hyp, refs in corpus:
        entry = {"hyp": hyp, "refs": refs}
        for s, sc in scorers.items():
            r = sc.score_multi(refs, hyp)["rougeL"]
            key = "stem" if s else "plain"
            entry[key] = [r.precision, r.recall, r.fmeasure]
            entry["tokens_" + key] = rouge_tokenize.tokenize(hyp, stemmer if s else None)
        out.append(entry)
    means = {}
    for key in ("plain", "stem"):
        n = len(out)
        means[key] = [math.fsum(e[key][k] for e in out) / n for k in range(3)]
    return out, means


def distinct_reference(hyps, orders=(1, 2, 3)):
    res = {}
    for n in orders:
        grams = []
        for h in hyps:
            t = h.split()
            grams += [" ".join(t[i:i + n]) for i in range(len(t) - n + 1)]
        res[str(n)] = {"unique": len(set(grams)), "total": len(grams),
                       "distinct": len(set(grams)) / len(grams)}
    return res


def row_scores(z, t, temperature=1.0):
    """Sequential float64 softmax statistics of one row (Python floats, libm exp/log)."""
    a = [float(x) / temperature for x in z]
    m = max(a)
    pred = a.index(m)
    s = 0.0
    for x in a:
        s += math.exp(x - m)
    return 1.0 / s, pred, m + math.log(s) - a[t]


def ece_numpy(conf, correct, nbins=15):
    bounds = np.linspace(0, 1, nbins + 1)
    ece = 0.0
    counts = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        counts.append(int(in_bin.sum()))
        prop = in_bin.mean()
        if prop > 0:
            ece += abs(conf[in_bin].mean() - correct[in_bin].mean()) * prop
    return float(ece), counts


def token_reference():
    rng = np.random.default_rng(20261128)
    n, c = 600, 10
    targets = rng.integers(0, c, size=n)
    logits = rng.normal(0.0, 2.5, size=(n, c))
    hit = rng.random(n) < 0.55
    logits[np.arange(n), targets] += np.where(hit, 4.0, 0.0)
    logits = logits.astype(np.float32)
    targets = targets.astype(np.int64)
    ignore = np.zeros(n, dtype=bool)
    ignore[::17] = True
    tgt_ignored = np.where(ignore, -100, targets)

    nll, corr, conf = [], [], []
    for i in range(n):
        cf, pred, l = row_scores(logits[i], int(targets[i]))
        conf.append(cf)
        corr.append(pred == targets[i])
        if not ignore[i]:
            nll.append(l)
    kept = ~ignore
    tokens = int(kept.sum())
    mean_nll = math.fsum(nll) / tokens
    ppl = {"tokens": tokens, "correct": int(np.array(corr)[kept].sum()),
           "total_nll": math.fsum(nll), "mean_nll": mean_nll, "perplexity": math.exp(mean_nll)}
    # log-probability input: NLL is -logp[target] of the float32 log-softmax
    logp = (logits.astype(np.float64) - np.log(np.exp(logits.astype(np.float64)).sum(1, keepdims=True))).astype(np.float32)
    lp_nll = [-float(logp[i, targets[i]]) for i in range(n) if not ignore[i]]
    ppl["logprob_total_nll"] = math.fsum(lp_nll)
    ppl["logprob_perplexity"] = math.exp(math.fsum(lp_nll) / tokens)

    conf_a = np.array(conf)[kept]
    corr_a = np.array(corr, dtype=np.float64)[kept]
    ece, counts = ece_numpy(conf_a, corr_a)

    # Temperature scaling: fit on ids % 2 == 0, evaluate on the others (all rows kept).
    fit_idx = np.arange(0, n, 2)
    ev_idx = np.arange(1, n, 2)
    z64 = logits.astype(np.float64)

    def grad(beta, idx):
        a = beta * z64[idx]
        a -= a.max(1, keepdims=True)
        p = np.exp(a)
        p /= p.sum(1, keepdims=True)
        return float(np.mean((p * z64[idx]).sum(1) - z64[idx, targets[idx]]))

    beta = optimize.brentq(grad, 1e-2, 1e2, args=(fit_idx,), xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    temperature = 1.0 / beta

    def set_scores(idx, T):
        c_, k_, l_ = [], [], []
        for i in idx:
            cf, pred, l = row_scores(logits[i], int(targets[i]), T)
            c_.append(cf)
            k_.append(float(pred == targets[i]))
            l_.append(l)
        e, cnt = ece_numpy(np.array(c_), np.array(k_))
        return {"nll": math.fsum(l_) / len(idx), "ece": e, "counts": cnt}

    calib = {"temperature": temperature, "before": set_scores(ev_idx, 1.0),
             "after": set_scores(ev_idx, temperature)}
    return {"rows": n, "classes": c, "logits": [float(x) for x in logits.reshape(-1)],
            "logp": [float(x) for x in logp.reshape(-1)],
            "targets": [int(x) for x in tgt_ignored], "true_targets": [int(x) for x in targets],
            "perplexity": ppl, "ece": {"ece": ece, "counts": counts}, "calibration": calib}


def psi_numpy(ref, cur, categorical, eps=1e-4):
    ref = np.asarray(ref, dtype=np.float64)
    cur = np.asarray(cur, dtype=np.float64)
    if categorical:
        cats = np.unique(np.concatenate([ref, cur]))
        rc = np.array([(ref == v).sum() for v in cats])
        cc = np.array([(cur == v).sum() for v in cats])
        edges = []
    else:
        edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10, method="inverted_cdf"))
        rc = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1)
        cc = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=len(edges) + 1)
    pr = rc / len(ref)
    pc = cc / len(cur)
    pr = np.where(pr == 0, eps, pr)
    pc = np.where(pc == 0, eps, pc)
    psi = float(np.sum((pc - pr) * np.log(pc / pr)))
    ks = float(stats.ks_2samp(ref, cur).statistic)
    return {"edges": [float(e) for e in edges], "reference_counts": [int(x) for x in rc],
            "current_counts": [int(x) for x in cc], "psi": psi, "ks": ks}


def drift_reference():
    rng = np.random.default_rng(7)
    feats = {
        "normal_shift": (np.round(rng.normal(0, 1, 1000), 3), np.round(rng.normal(0.3, 1.2, 800), 3)),
        "ints_ties": (rng.integers(0, 6, 700).astype(float), rng.integers(1, 7, 500).astype(float)),
        "same": (np.round(rng.uniform(-5, 5, 900), 2), np.round(rng.uniform(-5, 5, 900), 2)),
        "tokens": (np.minimum(rng.zipf(1.5, 1500), 40).astype(float),
                   np.minimum(rng.zipf(1.3, 1200), 45).astype(float)),
    }
    out = {}
    for name, (r, c) in feats.items():
        cat = name == "tokens"
        out[name] = {"reference": [float(x) for x in r], "current": [float(x) for x in c],
                     "categorical": cat, **psi_numpy(r, c, cat)}
    return out


def exact_sum_reference():
    rng = random.Random(12345)
    cases = []
    for k in range(12):
        vals = []
        for _ in range(200 + 50 * k):
            e = rng.randint(-60, 60) if k % 3 else rng.randint(-1000, 1000)
            v = rng.uniform(-1, 1) * 2.0 ** e
            vals.append(v)
        if k % 4 == 1:
            vals += [1e308, -1e308, 1e-300, 5e-324, -5e-324, 2.5e-320, 1.0, -1.0 + 2 ** -52]
        if k % 4 == 2:
            vals += [0.1] * 10 + [-0.1] * 9 + [1e16, 1.0, -1e16]
        rng.shuffle(vals)
        cases.append({"values": vals, "fsum": math.fsum(vals)})
    return cases


def tokenizer_fuzz(n=600):
    """Random strings over a hostile alphabet: 13a tokens and rouge-score tokens."""
    rng = random.Random(4242)
    atoms = (list("abcXYZ019 .,-&;<>/\"'()[]{}~^_`|@#$%*+=:?!\t\n\r") +
             ["\u00a0", "\u2003", "\u3000", "\u0085", "\x1c", "\u2028", "é", "漢", "İ", "\u212a", "ß",
              "&amp;", "&quot;", "&lt;", "&gt;", "<skipped>", "-\n", "1,000", "3.14", "2-3", "a.b",
              "running", "happiness", "generalizations", "skies", "ponies", "\U0001F600"])
    tok = sacrebleu.BLEU().tokenizer
    stemmer = porter.PorterStemmer()
    out = []
    for _ in range(n):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 40)))
        out.append({"text": text, "tok13a": tok(text.rstrip()),
                    "rouge": rouge_tokenize.tokenize(text, None),
                    "rouge_stem": rouge_tokenize.tokenize(text, stemmer)})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    fortunes = load_fortunes()
    vocab = sorted({w for t in fortunes for w in t.split()})
    corpus = []
    for i, ref in enumerate(fortunes):
        rng = random.Random(1000 + i)
        hyp = ref if i % 11 == 0 else perturb(ref, rng, vocab, 0.08 + 0.02 * (i % 5))
        ref2 = perturb(ref, rng, vocab, 0.12)
        corpus.append((hyp, [ref, ref2]))
    single = [(h, r[:1]) for h, r in corpus]
    edge_single = [(h, r[:1]) for h, r in EDGE_CASES]
    all_single = single + edge_single

    segments = bleu_reference(all_single + corpus + EDGE_CASES)
    n_single, n_multi = len(all_single), len(corpus)
    corpora = [
        {"name": "fortunes_single_ref", **bleu_corpus(all_single, list(range(len(single))))},
        {"name": "fortunes_and_edges_single_ref", **bleu_corpus(all_single, list(range(n_single)))},
        {"name": "edge_cases_single_ref",
         **bleu_corpus(all_single, list(range(len(single), n_single)))},
        {"name": "fortunes_two_refs", **bleu_corpus(corpus, list(range(n_multi)))},
    ]
    for c in corpora[3:]:
        c["indices"] = [n_single + i for i in c["indices"]]
    for i in range(len(EDGE_CASES)):  # each edge case as a one-segment corpus, own refs
        c = bleu_corpus(EDGE_CASES, [i])
        c["indices"] = [n_single + n_multi + i]
        c["name"] = f"edge_{i}"
        corpora.append(c)

    rouge_pairs, rouge_means = rouge_reference(corpus + EDGE_CASES)
    stemmer = porter.PorterStemmer()
    words = sorted(set(PORTER_WORDS) | {t for e in rouge_pairs for t in
                                        rouge_tokenize.tokenize(e["hyp"] + " " + " ".join(e["refs"]), None)
                                        if len(t) > 3})
    porter_ref = {w: stemmer.stem(w) for w in words}

    out = {
        "versions": {"sacrebleu": sacrebleu.__version__, "numpy": np.__version__,
                     "scipy": scipy.__version__, "python": sys.version.split()[0]},
        "bleu": {"segments": segments, "corpora": corpora},
        "rouge": {"pairs": rouge_pairs, "means": rouge_means},
        "porter": porter_ref,
        "tokenizer_fuzz": tokenizer_fuzz(),
        "distinct": {"hyps_from": "rouge.pairs", "orders": distinct_reference([e["hyp"] for e in rouge_pairs])},
        "tokens": token_reference(),
        "drift": drift_reference(),
        "exact_sum": exact_sum_reference(),
    }
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=True, indent=None, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
