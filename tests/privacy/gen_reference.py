#!/usr/bin/env python3
"""Reference vectors for Conflux's privacy module, computed by independent oracles.

- RDP accounting of the sampled Gaussian mechanism (epsilon and best order for a grid of
  (q, sigma, steps, delta), raw RDP vectors, heterogeneous histories, the noise-multiplier
  search, un-subsampled Gaussian composition) comes from Opacus itself: its
  accountants/analysis/rdp.py, accountants/rdp.py (RDPAccountant) and accountants/utils.py
  (get_noise_multiplier), loaded by file path. Opacus's package __init__ imports torch; these
  three modules need only numpy and scipy, so the package and its torch-importing IAccountant base
  are replaced by minimal stand-ins (IAccountant only initialises `history`; create_accountant
  returns RDPAccountant for "rdp", as Opacus's does).
- The analytic Gaussian sigmas come from a separate implementation of Balle & Wang 2018,
  Algorithm 1 (search over v with B+/B-, scipy brentq), not from the sigma bisection Conflux uses.

Usage:
  gen_reference.py --out reference_vectors.json     write the vectors
  gen_reference.py --check reference_vectors.json   recompute and compare (exit 1 on mismatch)
Exits 2 with a message if Opacus, numpy or scipy is missing (pip install -r
tests/requirements-privacy.txt).
"""
import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import random
import sys
import types
import warnings

CHECK_RTOL = 1e-12  # recomputation on another numpy/scipy build may differ in the last bits


def die(msg):
    print(f"gen_reference.py: {msg}", file=sys.stderr)
    sys.exit(2)


try:
    import numpy as np
    from scipy import optimize, special
except ImportError as e:  # the oracle is missing: fail loudly, never skip
    die(f"cannot import numpy/scipy ({e}); pip install -r tests/requirements-privacy.txt")


def load_opacus():
    spec = importlib.util.find_spec("opacus")
    if spec is None or spec.origin is None:
        die("Opacus is not installed for this Python "
            f"({sys.executable}); pip install --no-deps -r tests/requirements-privacy.txt")
    root = os.path.dirname(spec.origin)

    def package(name, path):
        mod = types.ModuleType(name)
        mod.__path__ = [path]
        mod.__package__ = name
        sys.modules[name] = mod
        return mod

    def load(name, path):
        s = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(s)
        sys.modules[name] = mod
        s.loader.exec_module(mod)
        return mod

    pkg = package("opacus", root)
    acc = package("opacus.accountants", os.path.join(root, "accountants"))
    pkg.accountants = acc
    analysis = package("opacus.accountants.analysis", os.path.join(root, "accountants", "analysis"))
    acc.analysis = analysis
    base = types.ModuleType("opacus.accountants.accountant")

    class IAccountant:  # stand-in for the torch-importing base class
        def __init__(self):
            self.history = []

    base.IAccountant = IAccountant
    sys.modules[base.__name__] = base
    acc.accountant = base
    rdp_analysis = load("opacus.accountants.analysis.rdp",
                        os.path.join(root, "accountants", "analysis", "rdp.py"))
    analysis.rdp = rdp_analysis
    rdp_accountant = load("opacus.accountants.rdp", os.path.join(root, "accountants", "rdp.py"))
    acc.RDPAccountant = rdp_accountant.RDPAccountant

    def create_accountant(mechanism):
        if mechanism == "rdp":
            return rdp_accountant.RDPAccountant()
        raise ValueError(f"only the rdp accountant is loaded, not {mechanism}")

    acc.create_accountant = create_accountant
    utils = load("opacus.accountants.utils", os.path.join(root, "accountants", "utils.py"))
    return rdp_analysis, rdp_accountant.RDPAccountant, utils.get_noise_multiplier


# ---- Balle & Wang 2018, Algorithm 1 (independent of Conflux's bisection on sigma) ----------

def _phi_diff(x, y, eps):
    """Phi(x) - e^eps Phi(y) for y <= x, in log space (no overflow of e^eps, no underflow)."""
    lx, ly = special.log_ndtr(x), special.log_ndtr(y)
    r = eps + ly - lx
    return math.exp(lx) * -math.expm1(min(r, 0.0))


def balle_wang_sigma(eps, delta, sens):
    def b_plus(v):
        return _phi_diff(math.sqrt(eps * v), -math.sqrt(eps * (v + 2)), eps)

    def b_minus(u):
        return _phi_diff(-math.sqrt(eps * u), -math.sqrt(eps * (u + 2)), eps)

    delta0 = b_plus(0.0)
    if delta >= delta0:  # v* = sup{v >= 0 : B+(v) <= delta}; B+ increases from delta0
        hi = 1.0
        while b_plus(hi) <= delta:
            hi *= 2
        v = optimize.brentq(lambda v: b_plus(v) - delta, 0.0, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps,
                            maxiter=1000)
        alpha = math.sqrt(1 + v / 2) - math.sqrt(v / 2)
    else:  # u* = inf{u >= 0 : B-(u) <= delta}; B- decreases from delta0
        hi = 1.0
        while b_minus(hi) > delta:
            hi *= 2
        u = optimize.brentq(lambda u: b_minus(u) - delta, 0.0, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps,
                            maxiter=1000)
        alpha = math.sqrt(1 + u / 2) + math.sqrt(u / 2)
    return alpha * sens / math.sqrt(2 * eps)


def gaussian_delta(eps, sigma, sens):
    a = sens / (2 * sigma) - eps * sigma / sens
    b = -sens / (2 * sigma) - eps * sigma / sens
    return _phi_diff(a, b, eps)


# ---- the grid ---------------------------------------------------------------------------------

QS = [1e-4, 3e-4, 1e-3, 4e-3, 0.01, 0.04, 0.1, 0.25, 0.5, 0.9, 1.0]
SIGMAS = [0.3, 0.5, 0.7, 1.0, 1.1, 1.5, 2.0, 4.0, 10.0]
STEPS = [1, 3, 10, 100, 1000, 2250, 10000, 100000]
DELTAS = [1e-3, 1e-5, 1e-6, 1e-7, 1e-9]
HAND_PICKED = [  # (q, sigma, steps, delta)
    (0.04, 1.5, 2250, 1e-5),  # Opacus's own test: eps ~ 7.3291
    (1e-4, 10.0, 100000, 1e-9),
    (1e-4, 0.3, 1, 1e-9),
    (1.0, 0.3, 100000, 1e-3),
    (1.0, 10.0, 1, 1e-9),
    (0.9, 0.3, 10, 1e-3),
    (0.5, 0.5, 1000, 1e-5),
    (0.01, 1.1, 10000, 1e-6),
    (0.004, 0.7, 100000, 1e-7),
]

# DP-FedAvg cohorts: (clients_per_round M, population N, noise multiplier z, rounds, delta).
DPFEDAVG = [
    (100, 10000, 1.0, 1000, 1e-5),
    (5000, 763430, 1.0, 2000, 1e-9),  # the scale of McMahan et al. 2018's Reddit experiments
    (10, 100, 1.1, 50, 1e-5),
    (16, 1000, 0.8, 500, 1e-6),
    (4, 4, 2.0, 10, 1e-5),            # q = 1: every participant every round
    (1, 3, 5.0, 3, 1e-3),
]
# (target epsilon, delta, M, N, rounds) for the noise-multiplier search.
DPFEDAVG_TARGETS = [
    (2.0, 1e-5, 100, 10000, 1000),
    (8.0, 1e-6, 16, 1000, 500),
    (1.0, 1e-9, 5000, 763430, 2000),
    (5.0, 1e-5, 10, 100, 50),
]


def build(opacus):
    rdp_mod, RDPAccountant, get_noise_multiplier = opacus
    alphas = RDPAccountant.DEFAULT_ALPHAS
    rng = random.Random(20261128)
    settings = list(HAND_PICKED)
    while len(settings) < 64:
        s = (rng.choice(QS), rng.choice(SIGMAS), rng.choice(STEPS), rng.choice(DELTAS))
        if s not in settings:
            settings.append(s)

    out = {"oracle": {
        "opacus": importlib.metadata.version("opacus"),
        "numpy": np.__version__,
        "scipy": importlib.metadata.version("scipy"),
        "python": sys.version.split()[0],
    }}
    out["default_alphas"] = [float(a) for a in alphas]

    dpsgd = []
    for q, sigma, steps, delta in settings:
        rdp = rdp_mod.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=alphas)
        eps, order = rdp_mod.get_privacy_spent(orders=alphas, rdp=rdp, delta=delta)
        dpsgd.append({"q": q, "sigma": sigma, "steps": steps, "delta": delta,
                      "epsilon": float(eps), "order": float(order)})
    orders = [d["order"] for d in dpsgd]
    n_int = sum(1 for o in orders if float(o).is_integer())
    if n_int < 5 or len(orders) - n_int < 5:
        die(f"grid lacks variety: {n_int} integer and {len(orders) - n_int} fractional best orders")
    out["dpsgd_epsilon"] = dpsgd

    out["rdp_vectors"] = []
    for q, sigma, steps in [(0.04, 1.5, 2250), (0.25, 0.7, 10), (1e-3, 4.0, 100000), (0.9, 0.5, 3)]:
        rdp = rdp_mod.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=alphas)
        out["rdp_vectors"].append({"q": q, "sigma": sigma, "steps": steps,
                                   "rdp": [float(x) for x in rdp]})

    out["noise_multiplier"] = []
    for target, delta, q, steps in [(1.0, 1e-5, 0.01, 1000), (3.0, 1e-5, 0.04, 2250),
                                    (8.0, 1e-6, 0.004, 50000), (0.5, 1e-9, 1e-3, 10000),
                                    (10.0, 1e-3, 0.5, 100), (2.0, 1e-7, 1e-4, 100000),
                                    (50.0, 1e-5, 1.0, 10), (0.2, 1e-5, 0.01, 1)]:
        sigma = get_noise_multiplier(target_epsilon=target, target_delta=delta, sample_rate=q,
                                     steps=steps, epsilon_tolerance=0.01)
        out["noise_multiplier"].append({"target_epsilon": target, "delta": delta, "q": q,
                                        "steps": steps, "tolerance": 0.01,
                                        "noise_multiplier": float(sigma)})

    out["accountant"] = []
    for history, delta in [([(1.0, 0.01, 500), (2.0, 0.02, 300), (0.8, 0.005, 1000)], 1e-5),
                           ([(1.5, 0.04, 1), (1.5, 0.08, 10), (4.0, 1.0, 3)], 1e-6),
                           ([(10.0, 1e-4, 100000), (0.5, 1e-3, 50)], 1e-9)]:
        acct = RDPAccountant()
        acct.history = list(history)
        eps, order = acct.get_privacy_spent(delta=delta)
        out["accountant"].append({"history": [list(h) for h in history], "delta": delta,
                                  "epsilon": float(eps), "order": float(order)})

    out["gaussian_rdp"] = []
    for z, k, delta in [(1.0, 1, 1e-5), (5.0, 100, 1e-6), (0.5, 10, 1e-3), (20.0, 1, 1e-9),
                        (2.0, 1000, 1e-5)]:
        rdp = rdp_mod.compute_rdp(q=1.0, noise_multiplier=z, steps=k, orders=alphas)
        eps, order = rdp_mod.get_privacy_spent(orders=alphas, rdp=rdp, delta=delta)
        out["gaussian_rdp"].append({"noise_multiplier": z, "releases": k, "delta": delta,
                                    "epsilon": float(eps), "order": float(order)})

    # DP-FedAvg (McMahan et al. 2018): user-level RDP of `rounds` sampled Gaussian rounds with
    # q = clients_per_round / population, straight from Opacus with that q (no Conflux formula).
    out["dpfedavg_epsilon"] = []
    for m, n, z, rounds, delta in DPFEDAVG:
        q = m / n
        rdp = rdp_mod.compute_rdp(q=q, noise_multiplier=z, steps=rounds, orders=alphas)
        eps, order = rdp_mod.get_privacy_spent(orders=alphas, rdp=rdp, delta=delta)
        out["dpfedavg_epsilon"].append({"clients_per_round": m, "population": n, "q": q,
                                        "noise_multiplier": z, "rounds": rounds, "delta": delta,
                                        "epsilon": float(eps), "order": float(order)})
    out["dpfedavg_noise_multiplier"] = []
    for target, delta, m, n, rounds in DPFEDAVG_TARGETS:
        z = get_noise_multiplier(target_epsilon=target, target_delta=delta, sample_rate=m / n,
                                 steps=rounds, epsilon_tolerance=0.01)
        out["dpfedavg_noise_multiplier"].append({"target_epsilon": target, "delta": delta,
                                                 "clients_per_round": m, "population": n, "q": m / n,
                                                 "rounds": rounds, "tolerance": 0.01,
                                                 "noise_multiplier": float(z)})

    out["gaussian_analytic"] = []
    for eps in [1e-3, 0.01, 0.1, 0.5, 0.99, 1.0, 2.0, 5.0, 10.0, 50.0]:
        for delta in [1e-3, 1e-5, 1e-9, 0.3]:
            for sens in [1.0, 2.5]:
                sigma = balle_wang_sigma(eps, delta, sens)
                entry = {"epsilon": eps, "delta": delta, "sensitivity": sens, "sigma": sigma}
                if eps < 1:
                    entry["sigma_classic"] = math.sqrt(2 * math.log(1.25 / delta)) * sens / eps
                out["gaussian_analytic"].append(entry)

    out["gaussian_delta"] = []
    for eps, sigma, sens in [(0.5, 3.0, 1.0), (1.0, 1.0, 1.0), (2.0, 0.7, 1.0), (0.1, 40.0, 1.0),
                             (8.0, 0.5, 2.0), (30.0, 0.1, 1.0), (0.01, 5.0, 3.0)]:
        out["gaussian_delta"].append({"epsilon": eps, "sigma": sigma, "sensitivity": sens,
                                      "delta": gaussian_delta(eps, sigma, sens)})
    return out


def compare(a, b, path="$"):
    """Yields mismatch descriptions between two JSON trees (numbers to CHECK_RTOL)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k == "oracle":
                continue
            if k not in a or k not in b:
                yield f"{path}.{k}: present in only one file"
            else:
                yield from compare(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            yield f"{path}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            yield from compare(x, y, f"{path}[{i}]")
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if not math.isclose(a, b, rel_tol=CHECK_RTOL, abs_tol=0.0):
            yield f"{path}: committed {b!r}, recomputed {a!r}"
    elif a != b:
        yield f"{path}: committed {b!r}, recomputed {a!r}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--out", help="write the reference vectors here (atomically)")
    g.add_argument("--check", help="recompute and compare against this committed file")
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # Opacus warns when the best order is an extreme one
    data = build(load_opacus())
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.replace(tmp, args.out)
        print(f"wrote {args.out} (opacus {data['oracle']['opacus']})")
        return 0
    with open(args.check) as f:
        committed = json.load(f)
    bad = list(compare(data, committed))
    print(f"oracle: {data['oracle']}; committed with: {committed.get('oracle')}")
    if bad:
        print(f"{len(bad)} values differ from {args.check}:", file=sys.stderr)
        for line in bad[:50]:
            print("  " + line, file=sys.stderr)
        return 1
    print(f"all reference vectors in {args.check} reproduced (rtol {CHECK_RTOL})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
