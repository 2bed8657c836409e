#!/usr/bin/python3
"""End-to-end checks of `conflux ingest / prepare / inspect` from the outside.

Reads every output with h5py + numpy + hashlib only (no Conflux code), checks that runs on 1 and
2 ranks give the same bytes, that a TOML config drives prepare, and that bad input exits with
code 1, names the culprit, and leaves no output directory.
usage: cli_e2e.py CONFLUX MPIEXEC [mpirun flags...]
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

CONFLUX, MPIEXEC, MPIFLAGS = sys.argv[1], sys.argv[2], sys.argv[3:]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def run(args, np_=1, expect=0):
    cmd = ([MPIEXEC] + MPIFLAGS + ["-np", str(np_), CONFLUX] if np_ > 1 else [CONFLUX]) + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if (expect == 0) != (p.returncode == 0) or (expect not in (0, None) and p.returncode != expect):
        print(p.stdout, p.stderr, file=sys.stderr)
        check(False, f"{' '.join(args)}: exit {p.returncode}, expected {expect}")
    return p


def read_dataset(d):
    """Reads a dataset with h5py only; checks sha256 and the offsets invariants."""
    m = json.load(open(os.path.join(d, "manifest.json")))
    check(m["format"] == "conflux-dataset" and m["format_version"] == 1, "manifest format")
    cols = {}
    for sh in m["shards"]:
        p = os.path.join(d, sh["file"])
        data = open(p, "rb").read()
        check(hashlib.sha256(data).hexdigest() == sh["sha256"], f"sha256 of {p}")
        check(len(data) == sh["bytes"], f"size of {p}")
        with h5py.File(p, "r") as f:
            for fld in m["schema"]:
                name = fld["name"]
                if fld["shape"] == [-1]:
                    off_name = "offsets" if (fld["role"] == "tokens" and name == "tokens") else name + "_offsets"
                    off = f[off_name][()]
                    vals = f[name][()]
                    check(off.dtype == np.int64 and off[0] == 0 and off[-1] == len(vals), f"offsets of {p}:{name}")
                    check(bool(np.all(np.diff(off) >= 0)), f"monotone offsets {p}:{name}")
                    check(len(off) == sh["rows"] + 1, f"offsets length {p}:{name}")
                    rows = [vals[off[i]:off[i + 1]] for i in range(len(off) - 1)]
                else:
                    rows = list(f[name][()])
                    check(len(rows) == sh["rows"], f"rows of {p}:{name}")
                cols.setdefault(name, []).extend(rows)
    return m, cols


def same_bytes(a, b):
    ma, mb = json.load(open(a + "/manifest.json")), json.load(open(b + "/manifest.json"))
    check([s["sha256"] for s in ma["shards"]] == [s["sha256"] for s in mb["shards"]], f"{a} and {b} shards differ")
    for s in ma["shards"]:
        check(open(f"{a}/{s['file']}", "rb").read() == open(f"{b}/{s['file']}", "rb").read(), f"bytes {s['file']}")


def main():
    tmp = tempfile.mkdtemp(prefix="conflux-cli-")
    try:
        os.makedirs(f"{tmp}/raw")
        quotes = [f"Quote number {i}: the {['cat', 'dog', 'owl'][i % 3]} sat on mat {i * 7}." for i in range(600)]
        quotes += quotes[:40]  # exact duplicates
        for k in range(3):
            with open(f"{tmp}/raw/cat{k}", "w") as f:
                f.write("\n%\n".join(quotes[k::3]) + "\n%\n")
            open(f"{tmp}/raw/cat{k}.dat", "wb").write(b"\x00\x01binary index")
        # ingest on 1 and 2 ranks
        for np_ in (1, 2):
            run(["ingest", "-i", f"{tmp}/raw", "-f", "fortune", "--keep-text", "--group-by-file",
                 "--rows-per-shard", "100", "-o", f"{tmp}/raw_np{np_}"], np_)
        same_bytes(f"{tmp}/raw_np1", f"{tmp}/raw_np2")
        m, cols = read_dataset(f"{tmp}/raw_np1")
        check(m["rows"] == 640, f"640 rows ingested, got {m['rows']}")
        for toks, text in zip(cols["tokens"], cols["text"]):
            check(toks[-1] == 257 and bytes(toks[:-1].astype(np.uint8)) == bytes(text), "tokens = bytes + eos")
        check(sorted(set(int(g) for g in cols["group"])) == [0, 1, 2], "groups by file")

        # prepare from a TOML file on 1 and 2 ranks
        for np_ in (1, 2):
            with open(f"{tmp}/prep{np_}.toml", "w") as f:
                f.write(f'[prepare]\ninput = "{tmp}/raw_np1"\noutput = "{tmp}/prep_np{np_}"\nseed = 3\n'
                        'rows_per_shard = 128\n[dedup]\nexact = true\nnear = true\n'
                        '[augment]\nops = ["mask"]\ncopies = 1\n')
            p = run(["prepare", f"{tmp}/prep{np_}.toml", "--json"], np_)
            if np_ == 1 and p.returncode == 0:
                summary = json.loads(p.stdout)
                check(summary["dropped"]["exact_duplicate"] == 40, f"40 exact duplicates: {summary['dropped']}")
        same_bytes(f"{tmp}/prep_np1", f"{tmp}/prep_np2")
        m, cols = read_dataset(f"{tmp}/prep_np1")
        src = np.array(cols["aug_source"])
        check(int((src < 0).sum()) * 2 == len(src), "one marked copy per original")
        masked = [t for t, s in zip(cols["tokens"], src) if s >= 0]
        rate = sum(int((t == 258).sum()) for t in masked) / sum(len(t) for t in masked)
        check(0.10 < rate < 0.20, f"mask rate {rate}")
        check(m["provenance"][-1]["stage"] == "prepare" and m["provenance"][0]["stage"] == "ingest", "provenance chain")
        check(m["provenance"][-1]["parent_sha256"] ==
              hashlib.sha256(open(f"{tmp}/raw_np1/manifest.json", "rb").read()).hexdigest(), "parent sha256")
        p = run(["inspect", f"{tmp}/prep_np1", "--json"])
        check(json.loads(p.stdout)["rows"] == m["rows"], "inspect --json rows")
        p = run(["prepare", "--builtin", "fortunes", "--print-config"])
        check("max_non_alnum_ratio" in p.stdout, "print-config lists knobs")

        # bad input: corrupt shard, missing field, NaN forbidden, not a directory
        shutil.copytree(f"{tmp}/raw_np1", f"{tmp}/corrupt")
        part = f"{tmp}/corrupt/part-00003.h5"
        b = bytearray(open(part, "rb").read())
        b[len(b) // 2] ^= 0xFF
        open(part, "wb").write(bytes(b))
        cases = [
            (["prepare", f"{tmp}/bad1.toml"], f'[prepare]\ninput = "{tmp}/corrupt"\noutput = "{tmp}/out1"\n',
             "part-00003.h5", f"{tmp}/out1"),
            (["prepare", f"{tmp}/bad2.toml"], f'[prepare]\ninput = "{tmp}/raw_np1/part-00000.h5"\noutput = "{tmp}/out2"\n',
             "not a directory", f"{tmp}/out2"),
        ]
        open(f"{tmp}/bad.jsonl", "w").write('{"text": "ok"}\n{"txt": "missing"}\n')
        open(f"{tmp}/nan.csv", "w").write("1,2\nnan,3\n")
        run(["ingest", "-i", f"{tmp}/nan.csv", "-f", "csv", "-o", f"{tmp}/nan"])
        cases.append((["prepare", f"{tmp}/bad3.toml"],
                      f'[prepare]\ninput = "{tmp}/nan"\noutput = "{tmp}/out3"\n[validate]\nnonfinite = "error"\n',
                      "forbids NaN", f"{tmp}/out3"))
        for args, toml, needle, out in cases:
            open(args[1], "w").write(toml)
            for np_ in (1, 2):
                p = run(args, np_, expect=None)
                check(p.returncode == 1, f"{args} np {np_}: exit code {p.returncode}, expected 1")
                check(needle in p.stderr, f"{args} np {np_}: stderr lacks '{needle}': {p.stderr[-400:]}")
                check(not os.path.exists(out), f"{out} left behind")
                check(not any(n.startswith(".out") for n in os.listdir(tmp)), "staging dir left behind")
        p = run(["ingest", "-i", f"{tmp}/bad.jsonl", "-o", f"{tmp}/out4"], expect=None)
        check(p.returncode == 1 and "bad.jsonl:2" in p.stderr and "'text'" in p.stderr, f"missing field: {p.stderr}")
        check(not os.path.exists(f"{tmp}/out4"), "out4 left behind")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("cli_e2e:", "OK" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
