#!/usr/bin/env python3
"""`conflux federate aggregate` end to end against Flower 1.42.

Client weights are written with the safetensors package (float32 numpy arrays); the command's
output is read back with it and compared with Flower's strategy classes (aggregate_fit) on the
same arrays: |got - want| <= 1e-6 * max(1, |want|). FedAdam runs two rounds through --state-out /
--state-in against one Flower strategy object. Bad inputs must exit 1 (2 for a malformed command
line) with a message naming the file and tensor, print nothing on stdout and leave no output.

Usage: cli_check.py CONFLUX WORKDIR. Exits 2 if flwr or safetensors is missing.
"""
import logging
import os
import shutil
import subprocess
import sys

try:
    import numpy as np
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server import strategy as fs
    from safetensors.numpy import load_file, save_file
except ImportError as e:
    print(f"cli_check.py: cannot import flwr/safetensors/numpy ({e}); "
          "pip install -r tests/requirements-federated.txt", file=sys.stderr)
    sys.exit(2)

conflux, work = sys.argv[1], sys.argv[2]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
logging.disable(logging.WARNING)
rng = np.random.default_rng(7)
NAMES = {"tok.emb": (6, 4), "blk.0.w": (4, 4), "head.b": (3,)}
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def weights(center=None, scale=0.1):
    return {k: ((center[k] if center else 0) + rng.normal(0, scale if center else 1, size=s)).astype(np.float32)
            for k, s in NAMES.items()}


def write(name, w):
    path = os.path.join(work, name)
    save_file(w, path)
    return path


def conflux_run(*args):
    return subprocess.run([conflux, "federate", "aggregate", *args], capture_output=True, text=True, timeout=60)


def flower(strategy, clients, rnd=1):
    keys = list(NAMES)
    res = [(None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters([w[k] for k in keys]), n, {}))
           for w, n in clients]
    params, _ = strategy.aggregate_fit(rnd, res, [])
    return dict(zip(keys, parameters_to_ndarrays(params)))


def close(got, want, what):
    for k in NAMES:
        g, w = got[k].astype(np.float64), want[k].astype(np.float64)
        check(g.shape == w.shape, f"{what}: {k} shape {g.shape} vs {w.shape}")
        bad = np.abs(g - w) > 1e-6 * np.maximum(1.0, np.abs(w))
        check(not bad.any(), f"{what}: {k} differs from Flower by up to {np.abs(g - w).max():.3g}")


glob = weights()
gpath = write("global.safetensors", glob)
clients = [(weights(glob), int(rng.integers(1, 500))) for _ in range(7)]
clients[2] = ({k: (v * 1000).astype(np.float32) for k, v in clients[2][0].items()}, clients[2][1])  # an outlier
inputs = [f"{write(f'c{i}.safetensors', w)}:{n}" for i, (w, n) in enumerate(clients)]
init = ndarrays_to_parameters([glob[k] for k in NAMES])

cases = [
    ("fedavg", [], fs.FedAvg()),
    ("fedprox", ["strategy.fedprox.proximal_mu=0.1"], fs.FedProx(proximal_mu=0.1)),
    ("fedavgm", ["strategy.fedavgm.server_momentum=0.9", "strategy.fedavgm.server_learning_rate=0.5"],
     fs.FedAvgM(initial_parameters=init, server_momentum=0.9, server_learning_rate=0.5)),
    ("fedadagrad", [], fs.FedAdagrad(initial_parameters=init)),
    ("fedyogi", [], fs.FedYogi(initial_parameters=init)),
    ("median", [], fs.FedMedian()),
    ("trimmed_avg", ["strategy.trimmed_avg.beta=0.3"], fs.FedTrimmedAvg(beta=0.3)),
    ("krum", ["strategy.krum.num_malicious=1"], fs.Krum(num_malicious_clients=1)),
    ("krum", ["strategy.krum.num_malicious=1", "strategy.krum.to_keep=3"],
     fs.Krum(num_malicious_clients=1, num_clients_to_keep=3)),
    ("bulyan", ["strategy.bulyan.num_malicious=1"], fs.Bulyan(num_malicious_clients=1, to_keep=0)),
]
for name, params, strategy in cases:
    out = os.path.join(work, f"out_{name}.safetensors")
    sets = [a for p in params for a in ("--set", p)]
    r = conflux_run("--strategy", name, *sets, "--global", gpath, "--out", out, *inputs)
    check(r.returncode == 0, f"{name} {params}: exit {r.returncode}: {r.stderr.strip()}")
    check(r.stdout == "" and r.stderr == "", f"{name}: printed {r.stdout!r} {r.stderr!r}")
    if r.returncode == 0:
        close(load_file(out), flower(strategy, clients), f"{name} {params}")

# FedAdam over two rounds, the server state carried in a file.
adam = fs.FedAdam(initial_parameters=init)
g1 = os.path.join(work, "adam1.safetensors")
st = os.path.join(work, "adam.state")
r = conflux_run("--strategy", "fedadam", "--global", gpath, "--out", g1, "--state-out", st, *inputs)
check(r.returncode == 0, f"fedadam round 1: {r.stderr.strip()}")
close(load_file(g1), flower(adam, clients, 1), "fedadam round 1")
clients2 = [(weights(load_file(g1)), n) for _, n in clients]
inputs2 = [f"{write(f'd{i}.safetensors', w)}:{n}" for i, (w, n) in enumerate(clients2)]
g2 = os.path.join(work, "adam2.safetensors")
r = conflux_run("--strategy", "fedadam", "--global", g1, "--state-in", st, "--out", g2, *inputs2)
check(r.returncode == 0, f"fedadam round 2: {r.stderr.strip()}")
close(load_file(g2), flower(adam, clients2, 2), "fedadam round 2")

# Bad inputs: exit code and a message naming the file and the tensor; no output file.
c0 = inputs[0].rsplit(":", 1)[0]
bad_shape = dict(clients[1][0]); bad_shape["blk.0.w"] = np.zeros((2, 8), np.float32)
bad_nan = dict(clients[1][0]); bad_nan["head.b"] = np.array([1, np.nan, 2], np.float32)
bad_dtype = dict(clients[1][0]); bad_dtype["tok.emb"] = bad_dtype["tok.emb"].astype(np.float16)
missing = {k: v for k, v in clients[1][0].items() if k != "head.b"}
errors = [
    ([write("shape.safetensors", bad_shape) + ":5"], 1,
     "shape.safetensors: tensor 'blk.0.w' has shape [2, 8], " + inputs[0].rsplit(":", 1)[0]
     + " (the first result)'s is [4, 4]"),
    ([write("nan.safetensors", bad_nan) + ":5"], 1, "nan.safetensors: tensor 'head.b' has NaN at index 1"),
    ([write("f16.safetensors", bad_dtype) + ":5"], 1,
     "f16.safetensors: tensor 'tok.emb' has dtype F16; federated aggregation takes float32 (F32)"),
    ([write("missing.safetensors", missing) + ":5"], 1, "missing.safetensors: tensor 'head.b' is missing"),
    ([c0 + ":0"], 1, "c0.safetensors: NUM_EXAMPLES '0' is not a positive integer"),
    ([c0 + ":12x"], 1, "c0.safetensors: NUM_EXAMPLES '12x' is not a positive integer"),
    ([c0 + ":-3"], 1, "c0.safetensors: NUM_EXAMPLES '-3' is not a positive integer"),
    ([c0], 2, "must be FILE:NUM_EXAMPLES"),
    ([os.path.join(work, "nope.safetensors:4")], 1, "nope.safetensors"),
]
for extra, code, message in errors:
    out = os.path.join(work, "bad_out.safetensors")
    r = conflux_run("--strategy", "fedavg", "--out", out, inputs[0], *extra)
    check(r.returncode == code, f"{extra}: exit {r.returncode}, want {code} ({r.stderr.strip()})")
    check(message in r.stderr, f"{extra}: stderr lacks {message!r}: {r.stderr.strip()}")
    check(r.stdout == "", f"{extra}: printed on stdout {r.stdout!r}")
    check(not os.path.exists(out), f"{extra}: left {out}")
for args, code, message in [
    (["--strategy", "fedsgd"], 1, "unknown strategy 'fedsgd'"),
    (["--strategy", "fedadam"], 1, "strategy fedadam needs the current global weights"),
    (["--strategy", "fedavg", "--set", "strategy.fedavg.eta=1"], 1, "strategy.fedavg.eta"),
    (["--strategy", "krum", "--set", "strategy.krum.to_keep=9"], 1, "krum: to_keep is 9 but the round has only 7"),
]:
    r = conflux_run(*args, "--out", os.path.join(work, "bad_out.safetensors"), *inputs)
    check(r.returncode == code, f"{args}: exit {r.returncode}, want {code} ({r.stderr.strip()})")
    check(message in r.stderr, f"{args}: stderr lacks {message!r}: {r.stderr.strip()}")

if failures:
    print(f"cli_check.py: {len(failures)} failure(s)", file=sys.stderr)
    sys.exit(1)
print(f"cli_check.py: {len(cases) + 2} aggregations equal Flower; {len(errors) + 4} bad inputs refused")
