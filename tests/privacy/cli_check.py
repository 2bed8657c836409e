#!/usr/bin/env python3
"""End-to-end check of `conflux privacy ...` (gaussian, laplace, dpsgd, dpfedavg) against the
committed reference vectors.

Runs the real executable, parses its --json output and compares with reference_vectors.json
(1e-6 relative; best orders exactly), and checks the refusals and their exit codes.
Usage: cli_check.py PATH/TO/conflux reference_vectors.json   (stdlib only)
"""
import json
import math
import subprocess
import sys

RTOL = 1e-6
failures = []


def run(conflux, *args):
    p = subprocess.run([conflux, "privacy", *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def close(a, b):
    return a is not None and math.isclose(a, b, rel_tol=RTOL, abs_tol=0.0)


def main():
    conflux, ref_path = sys.argv[1], sys.argv[2]
    with open(ref_path) as f:
        ref = json.load(f)

    # Each run loads libtorch (~1-3 s), so a few cases: the CLI only wraps the tested library.
    for c in ref["dpsgd_epsilon"][:3]:
        rc, out, err = run(conflux, "dpsgd", "--sample-rate", repr(c["q"]), "--noise-multiplier", repr(c["sigma"]),
                           "--steps", str(c["steps"]), "--delta", repr(c["delta"]), "--json")
        got = json.loads(out) if rc == 0 else {}
        check(rc == 0 and close(got.get("epsilon"), c["epsilon"]) and got.get("order") == c["order"],
              f"dpsgd q={c['q']} sigma={c['sigma']} steps={c['steps']} delta={c['delta']}: "
              f"got {out.strip() or err.strip()}, want eps {c['epsilon']} order {c['order']}")

    for c in ref["noise_multiplier"][:1]:
        rc, out, err = run(conflux, "dpsgd", "--sample-rate", repr(c["q"]), "--epsilon", repr(c["target_epsilon"]),
                           "--steps", str(c["steps"]), "--delta", repr(c["delta"]), "--json")
        got = json.loads(out) if rc == 0 else {}
        check(rc == 0 and close(got.get("noise_multiplier"), c["noise_multiplier"]),
              f"dpsgd --epsilon {c['target_epsilon']}: got {out.strip() or err.strip()}, "
              f"want {c['noise_multiplier']}")

    for c in ref["gaussian_analytic"]:
        if c["delta"] != 1e-5 or c["sensitivity"] != 1.0 or c["epsilon"] not in (0.5, 5.0):
            continue
        rc, out, err = run(conflux, "gaussian", "--epsilon", repr(c["epsilon"]), "--delta", repr(c["delta"]),
                           "--sensitivity", "1", "--json")
        got = json.loads(out) if rc == 0 else {}
        ok = rc == 0 and close(got.get("sigma_analytic"), c["sigma"])
        if c["epsilon"] < 1:
            ok = ok and close(got.get("sigma_classic"), c["sigma_classic"])
        else:
            ok = ok and "sigma_classic" in got and got["sigma_classic"] is None
        check(ok, f"gaussian eps={c['epsilon']}: got {out.strip() or err.strip()}")

    rc, out, err = run(conflux, "gaussian", "--epsilon", "2", "--delta", "1e-5", "--sensitivity", "1")
    check(rc == 0 and "not applicable" in out and "epsilon < 1" in out,
          f"gaussian eps=2 text reports classic as not applicable: {out.strip()}")
    rc, out, err = run(conflux, "gaussian", "--epsilon", "2", "--delta", "1e-5", "--sensitivity", "1",
                       "--mechanism", "classic", "--json")
    check(rc == 1 and out == "" and "analytic" in err,
          f"gaussian --mechanism classic eps=2 refused with exit 1: rc={rc} stderr={err.strip()}")

    rc, out, err = run(conflux, "laplace", "--epsilon", "0.25", "--sensitivity", "3", "--json")
    check(rc == 0 and json.loads(out) == {"scale": 12.0}, f"laplace scale 3/0.25: {out.strip() or err.strip()}")

    rc, out, err = run(conflux, "dpsgd", "--sample-rate", "0.01", "--steps", "10", "--delta", "1e-5",
                       "--noise-multiplier", "1", "--epsilon", "1")
    check(rc == 2, f"dpsgd with both --noise-multiplier and --epsilon is a usage error (exit 2): rc={rc}")
    rc, out, err = run(conflux, "dpsgd", "--sample-rate", "1.5", "--steps", "10", "--delta", "1e-5",
                       "--noise-multiplier", "1")
    check(rc == 1 and "sample_rate" in err, f"dpsgd sample rate 1.5 refused with exit 1: rc={rc} {err.strip()}")

    # DP-FedAvg: user-level epsilon over rounds with q = M/N, against Opacus's numbers.
    def fed(c, *rest):
        return run(conflux, "dpfedavg", "--clients-per-round", str(c["clients_per_round"]),
                   "--population", str(c["population"]), "--rounds", str(c["rounds"]),
                   "--delta", repr(c["delta"]), "--json", *rest)

    for c in ref["dpfedavg_epsilon"][:3]:
        rc, out, err = fed(c, "--noise-multiplier", repr(c["noise_multiplier"]))
        got = json.loads(out) if rc == 0 else {}
        check(rc == 0 and close(got.get("epsilon"), c["epsilon"]) and got.get("order") == c["order"],
              f"dpfedavg M={c['clients_per_round']} N={c['population']} z={c['noise_multiplier']} "
              f"R={c['rounds']}: got {out.strip() or err.strip()}, want eps {c['epsilon']} order {c['order']}")
        # Round trip z -> epsilon -> z through the command line (a tight search tolerance).
        rc, out, err = fed(c, "--epsilon", repr(got.get("epsilon", 1.0)), "--tolerance", "1e-9")
        back = json.loads(out).get("noise_multiplier") if rc == 0 else None
        check(rc == 0 and close(back, c["noise_multiplier"]),
              f"dpfedavg round trip z {c['noise_multiplier']} -> eps -> z {back}: {err.strip()}")
    c = ref["dpfedavg_noise_multiplier"][0]
    rc, out, err = fed(c, "--epsilon", repr(c["target_epsilon"]))
    got = json.loads(out) if rc == 0 else {}
    check(rc == 0 and close(got.get("noise_multiplier"), c["noise_multiplier"]),
          f"dpfedavg --epsilon {c['target_epsilon']}: got {out.strip() or err.strip()}, want {c['noise_multiplier']}")
    rc, out, err = run(conflux, "dpfedavg", "--clients-per-round", "20", "--population", "10", "--rounds", "5",
                       "--delta", "1e-5", "--noise-multiplier", "1")
    check(rc == 2 and "--clients-per-round (20) must not exceed --population (10)" in err and "(0, 1]" in err,
          f"dpfedavg M > N is a usage error naming both flags: rc={rc} {err.strip()}")
    rc, out, err = run(conflux, "dpfedavg", "--clients-per-round", "0", "--population", "10", "--rounds", "5",
                       "--delta", "1e-5", "--noise-multiplier", "1")
    check(rc == 2 and "--clients-per-round" in err, f"dpfedavg M = 0 refused naming the flag: rc={rc} {err.strip()}")
    rc, out, err = run(conflux, "dpfedavg", "--clients-per-round", "1", "--population", "10", "--rounds", "0",
                       "--delta", "1e-5", "--epsilon", "1")
    check(rc == 1 and "rounds must be >= 1" in err, f"dpfedavg --epsilon with 0 rounds refused: rc={rc} {err.strip()}")

    if failures:
        print(f"{len(failures)} CLI checks failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
