#!/usr/bin/env python3
"""Reference vectors for Conflux's federated aggregation strategies, computed by Flower 1.42.

For random cases (client counts, example counts, tensor shapes, outliers for the robust
strategies) this runs Flower's own code and records inputs and outputs:
- every strategy through its class's aggregate_fit (FedAvg, FedAvgM, FedProx, FedAdagrad, FedAdam,
  FedYogi, FedMedian, FedTrimmedAvg, Krum, Bulyan) without a server: results are
  (None, FitRes) pairs; the stateful ones (FedAvgM with momentum, the FedOpt family) run several
  rounds on one strategy object, so their server state carries over as in a Flower run, and each
  round's global is the previous round's output;
- for the FedOpt family also a twin object with FedAvg's inplace=False (averaging with aggregate(),
  the order Conflux folds results in; the default, aggregate_inplace, rounds differently), under
  "flower_aggregate";
- and, where the strategy class wraps one, the plain function of flwr.server.strategy.aggregate
  (aggregate, aggregate_median, aggregate_trimmed_avg, aggregate_krum, aggregate_bulyan), under
  "function".
Arrays are float32 as Flower's users send them; values are written as Python floats (exact).

Usage:
  gen_reference.py --out reference.json     write the vectors
  gen_reference.py --check reference.json   recompute and compare (exit 1 on a difference)
Exits 2 with a message if flwr or numpy is missing (pip install -r tests/requirements-federated.txt).
"""
import argparse
import json
import logging
import sys
import warnings


def die(msg):
    print(f"gen_reference.py: {msg}", file=sys.stderr)
    sys.exit(2)


try:
    import numpy as np
    import flwr
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server import strategy as fs
    from flwr.server.strategy import aggregate as fa
except ImportError as e:  # the oracle is missing: fail loudly, never skip
    die(f"cannot import flwr/numpy ({e}); pip install -r tests/requirements-federated.txt")

FLWR_VERSION = "1.42.0"
SHAPES = [[[4, 3], [5]], [[2, 2, 3]], [[7], [1], [3, 2]]]


def tensors(names_shapes, arrays):
    return [{"name": n, "shape": list(s), "values": [float(v) for v in a.ravel()]}
            for (n, s), a in zip(names_shapes, arrays)]


def layout(rng):
    shapes = SHAPES[rng.integers(len(SHAPES))]
    return [(f"layer{i}.w", s) for i, s in enumerate(shapes)]


def make_clients(rng, names_shapes, center, n, outliers=0, spread=0.1):
    """n clients near `center` (a realistic update), the last `outliers` of them far away."""
    clients = []
    for c in range(n):
        arrays = [(g + rng.normal(0, spread, size=g.shape)).astype(np.float32) for g in center]
        if c >= n - outliers:
            kind = rng.integers(2)
            arrays = [(a * 1000 if kind == 0 else a + 100).astype(np.float32) for a in arrays]
        clients.append((arrays, int(rng.integers(1, 2000))))
    # shuffle so outliers are not always last
    order = rng.permutation(n)
    return [clients[i] for i in order]


def fit_results(clients):
    return [(None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(a), n, {})) for a, n in clients]


def run_strategy(strategy, rnd, clients):
    params, _ = strategy.aggregate_fit(rnd, fit_results(clients), [])
    return parameters_to_ndarrays(params)


def case(rng, name, params, make, rounds, n_clients, outliers=0, function=None, also_aggregate=False):
    names_shapes = layout(rng)
    glob = [rng.normal(0, 1, size=s).astype(np.float32) for _, s in names_shapes]
    strategy = make(ndarrays_to_parameters(glob))
    # The FedOpt family averages through FedAvg's aggregate_inplace (default inplace=True); a
    # second object with inplace=False averages with aggregate(), the order Conflux folds in.
    twin = None
    if also_aggregate:
        twin = make(ndarrays_to_parameters(glob))
        twin.inplace = False
    out = {"strategy": name, "params": params, "rounds": []}
    for r in range(1, rounds + 1):
        clients = make_clients(rng, names_shapes, glob, n_clients, outliers)
        want = run_strategy(strategy, r, clients)
        entry = {
            "global": tensors(names_shapes, glob),
            "results": [{"num_examples": n, "weights": tensors(names_shapes, a)} for a, n in clients],
            "flower": tensors(names_shapes, want),
            "flower_dtype": str(want[0].dtype),
        }
        if function is not None:
            entry["function"] = tensors(names_shapes, function(clients))
        if twin is not None:
            entry["flower_aggregate"] = tensors(names_shapes, run_strategy(twin, r, clients))
        out["rounds"].append(entry)
        # The next round starts from this round's global, as a float32 model (what Conflux
        # stores); Flower's FedOpt keeps its own (float64) copy internally.
        glob = [np.asarray(w, dtype=np.float32) for w in want]
    return out


def generate():
    rng = np.random.default_rng(20251014)
    cases = []
    # fedavg / fedprox: FedAvg's aggregate_fit (aggregate_inplace) and the plain aggregate().
    for n in (1, 2, 5, 12):
        cases.append(case(rng, "fedavg", {}, lambda p: fs.FedAvg(), 1, n, function=fa.aggregate))
    cases.append(case(rng, "fedavg", {}, lambda p: fs.FedAvg(inplace=False), 1, 7, function=fa.aggregate))
    cases.append(case(rng, "fedprox", {"proximal_mu": 0.1},
                      lambda p: fs.FedProx(proximal_mu=0.1), 1, 4, function=fa.aggregate))
    # fedavgm: no server optimizer (= fedavg), momentum over rounds, learning rate alone.
    for lr, mom in ((1.0, 0.0), (1.0, 0.9), (0.7, 0.5), (0.5, 0.0)):
        cases.append(case(rng, "fedavgm", {"server_learning_rate": lr, "server_momentum": mom},
                          lambda p, lr=lr, mom=mom: fs.FedAvgM(initial_parameters=p, server_learning_rate=lr,
                                                               server_momentum=mom), 3, 4))
    # The FedOpt family with Flower's defaults and with other parameters, 3 rounds each.
    for cls, name, extra in ((fs.FedAdagrad, "fedadagrad", {"eta": 0.05, "tau": 1e-3}),
                             (fs.FedAdam, "fedadam", {"eta": 0.03, "beta_1": 0.8, "beta_2": 0.9, "tau": 1e-4}),
                             (fs.FedYogi, "fedyogi", {"eta": 0.1, "beta_1": 0.5, "beta_2": 0.95, "tau": 1e-2})):
        for p in ({}, extra):
            cases.append(case(rng, name, p, lambda init, cls=cls, p=p: cls(initial_parameters=init, **p), 3, 5,
                              also_aggregate=True))
    # median: odd and even counts, outliers.
    for n, bad in ((1, 0), (4, 1), (7, 2), (10, 3)):
        cases.append(case(rng, "median", {}, lambda p: fs.FedMedian(), 1, n, bad, function=fa.aggregate_median))
    # trimmed_avg: Flower's default beta 0.2 and others.
    for n, bad, beta in ((5, 1, 0.2), (10, 2, 0.2), (9, 3, 0.34), (6, 0, 0.0), (11, 4, 0.45)):
        cases.append(case(rng, "trimmed_avg", {"beta": beta}, lambda p, beta=beta: fs.FedTrimmedAvg(beta=beta), 1,
                          n, bad, function=lambda c, beta=beta: fa.aggregate_trimmed_avg(c, beta)))
    # krum and Multi-Krum.
    for n, f, keep in ((5, 1, 0), (8, 2, 0), (8, 2, 3), (12, 3, 5), (3, 0, 0), (6, 1, 6)):
        cases.append(case(rng, "krum", {"num_malicious": f, "to_keep": keep},
                          lambda p, f=f, keep=keep: fs.Krum(num_malicious_clients=f, num_clients_to_keep=keep),
                          1, n, f, function=lambda c, f=f, keep=keep: fa.aggregate_krum(c, f, keep)))
    # bulyan: n >= 4f + 3.
    for n, f in ((3, 0), (7, 1), (11, 2), (12, 2)):
        cases.append(case(rng, "bulyan", {"num_malicious": f},
                          lambda p, f=f: fs.Bulyan(num_malicious_clients=f, to_keep=0), 1, n, f,
                          function=lambda c, f=f: fa.aggregate_bulyan(list(c), f, fa.aggregate_krum, to_keep=0)))
    return {"flwr": flwr.__version__ if hasattr(flwr, "__version__") else FLWR_VERSION,
            "numpy": np.__version__, "cases": cases}


def main():
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--out")
    g.add_argument("--check")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # Flower's "No fit_metrics_aggregation_fn provided"
    warnings.simplefilter("ignore")
    import importlib.metadata
    version = importlib.metadata.version("flwr")
    if version != FLWR_VERSION:
        die(f"flwr {version} is installed; the reference is Flower {FLWR_VERSION} "
            "(pip install -r tests/requirements-federated.txt)")
    ref = generate()
    ref["flwr"] = version
    text = json.dumps(ref, separators=(",", ":")) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        return 0
    with open(args.check) as f:
        committed = f.read()
    if committed != text:
        old = json.loads(committed)
        for i, (a, b) in enumerate(zip(old["cases"], ref["cases"])):
            if a != b:
                print(f"gen_reference.py: case {i} ({b['strategy']}) differs from {args.check}", file=sys.stderr)
        if len(old["cases"]) != len(ref["cases"]):
            print(f"gen_reference.py: {len(old['cases'])} committed cases, {len(ref['cases'])} now", file=sys.stderr)
        if old.get("numpy") != ref["numpy"]:
            print(f"gen_reference.py: numpy {old.get('numpy')} made the file, {ref['numpy']} now", file=sys.stderr)
        return 1
    print(f"gen_reference.py: {args.check} reproduced exactly by Flower {version} ({len(ref['cases'])} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
