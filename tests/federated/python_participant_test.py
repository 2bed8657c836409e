#!/usr/bin/python3
"""The Python participant (worker/python/conflux_participant.py) in real federations with C++
conflux-worker participants, on loopback with CURVE:
  1. mixed cohort: 3 conflux-worker participants + 1 Python participant (bringing its own
     training loop: worker/python/example_own_loop.py), FedAvg, 2 rounds,
     min_clients 4: every round accepts the Python participant's update (rounds.jsonl
     clients.participants), with num_examples = its training windows and a non-zero update
     norm; the run completes and the Python participant exits 0 on the coordinator's bye.
  2. same architecture: a C++ participant and the Python participant given the same dataset
     evaluate the initial global model (evaluate.every = 1): their validation losses agree to
     1e-6 relative (the PyTorch GPT computes the C++ GPT's function), and their local training
     losses on the same data stay close (same objective; the window order differs). The Python
     participant receives the global model and sends its update in 64 KiB chunks here.
  3. a straggler: the Python participant's loop (python_slow_loop.py) outlasts the 6 s round
     deadline; the round closes with the three C++ updates and reports it dropped: cancelled;
     its loop stops on the coordinator's CANCEL and it exits 0 on bye.
  4. the coordinator SIGKILLed once round 1's checkpoint exists (round 2's local loop first
     pauses 2 s: python_slow_loop.py) and restarted with the same
     config: the Python participant (no --exit-on-bye) rejoins by itself and round 2 accepts
     its update; it exits 0 on SIGTERM.
  5. a Byzantine participant (python_slow_loop.py:train_scaled) sends 1000x the global weights:
     under fedavg the global model follows it; under median and krum (f = 1) the global step
     stays within 2x the largest honest update.
With secure aggregation on, the Python participant (no secagg task kinds) is left out of the
cohort with a reason naming it.

Runs under /usr/bin/python3 (Debian's torch, h5py, zmq, protobuf). Exits 77 (ctest SKIP) only
when python3-torch, python3-h5py or python3-zmq is missing; protoc / python3-protobuf missing
is a failure (scripts/install-deps.sh installs them).

usage: python_participant_test.py CONFLUX CONFLUX_WORKER WORKDIR
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

from procs import check, failures, free_port, run, stop

SKIP = 77
try:
    import h5py  # noqa: F401
    import torch  # noqa: F401
    import zmq  # noqa: F401
except ImportError as e:
    print(f"SKIP: {e} (apt-get install python3-torch python3-h5py python3-zmq)")
    sys.exit(SKIP)

CONFLUX, WORKER, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
HERE = os.path.dirname(os.path.abspath(__file__))
PARTICIPANT = os.path.join(HERE, "..", "..", "worker", "python", "conflux_participant.py")
OWN_LOOP = os.path.join(HERE, "..", "..", "worker", "python", "example_own_loop.py") + ":train"
SCALED_LOOP = f"{os.path.join(HERE, 'python_slow_loop.py')}:train_scaled"
SLOW_LOOP = os.path.join(HERE, "python_slow_loop.py") + ":train"
PAUSED_LOOP = os.path.join(HERE, "python_slow_loop.py") + ":train_after_pause"
FORTUNES = "/usr/share/games/fortunes"


def config(port, name, rounds, min_clients, steps, timeout=120, available=None, strategy="fedavg", secagg=False,
           wait_s=120):
    return f"""
[model]
vocab_size = 260
context = 32
n_layer = 2
n_head = 2
d_model = 32
init_seed = 7
[federate]
rounds = {rounds}
clients_per_round = {available or min_clients}
min_clients = {min_clients}
min_available = {available or min_clients}
round_timeout_s = {timeout}
seed = 11
strategy = "{strategy}"
{"[strategy.krum]" + chr(10) + "num_malicious = 1" if strategy == "krum" else ""}
{"round_retries = 0" + chr(10) + "[secure_aggregation]" + chr(10) + "enabled = true" if secagg else ""}
[local]
steps = {steps}
batch_size = 8
optimizer = "adamw"
lr = 0.01
val_fraction = 0.1
eval_windows = 16
[evaluate]
every = 1
[server]
bind = "tcp://127.0.0.1:{port}"
key = "{WORK}/keys/coordinator.key"
allow = "{WORK}/keys/allow.txt"
heartbeat_ms = 200
dead_after_ms = 5000
wait_s = {wait_s}
[checkpoint]
dir = "{WORK}/{name}/ckpt"
[output]
dir = "{WORK}/{name}/out"
progress = false
"""


def cpp_worker(port, key, data, log):
    return subprocess.Popen([WORKER, "--connect", f"tcp://127.0.0.1:{port}", "--server-key",
                             f"{WORK}/keys/coordinator.pub", "--key", f"{WORK}/keys/{key}.key", "--data", data,
                             "--name", key, "--give-up-after", "120", "--exit-on-bye"],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def py_worker(port, key, data, log, *extra):
    env = dict(os.environ, CONFLUX_PB2_DIR=f"{WORK}/pb2")
    return subprocess.Popen([sys.executable, PARTICIPANT, "--connect", f"tcp://127.0.0.1:{port}", "--server-key",
                             f"{WORK}/keys/coordinator.pub", "--key", f"{WORK}/keys/{key}.key", "--data", data,
                             "--name", key, "--give-up-after", "120", "--exit-on-bye", *extra],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env)


def federate(name, rounds, workers_fn, min_clients, steps=4, **kw):
    """Runs `conflux federate` with the workers started by workers_fn(port); returns
    (exit code, rounds.jsonl records, the workers' exit codes)."""
    port = free_port()
    cfg = f"{WORK}/{name}.toml"
    open(cfg, "w").write(config(port, name, rounds, min_clients, steps, **kw))
    procs = []
    try:
        procs = workers_fn(port)
        coord = subprocess.Popen([CONFLUX, "federate", cfg, "--json"], stdout=subprocess.PIPE,
                                 stderr=open(f"{WORK}/{name}-coordinator.log", "w"), text=True)
        try:
            coord.communicate(timeout=400)
        except subprocess.TimeoutExpired:
            coord.kill()
            coord.wait()
        codes = []
        for p in procs:  # after a completed run every participant has had its bye
            try:
                codes.append(p.wait(timeout=30 if coord.returncode == 0 else 0.1))
            except subprocess.TimeoutExpired:
                codes.append(None)
    finally:
        stop(procs)
    recs = []
    if os.path.exists(f"{WORK}/{name}/out/rounds.jsonl"):
        recs = [json.loads(l) for l in open(f"{WORK}/{name}/out/rounds.jsonl") if l.strip()]
    if coord.returncode != 0:
        print(open(f"{WORK}/{name}-coordinator.log").read()[-3000:])
        for f in sorted(os.listdir(WORK)):
            if f.startswith(name + "-") and f.endswith(".log"):
                print(f"--- {f}\n" + open(f"{WORK}/{f}").read()[-1500:])
    return coord.returncode, recs, codes


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(f"{WORK}/keys")
    os.makedirs(f"{WORK}/pb2")
    # The protobuf module generated from the project's .proto with protoc, for the python3 that runs it.
    proto = os.path.join(HERE, "..", "..", "protocol", "proto", "conflux_protocol.proto")
    p = run(["protoc", "-I" + os.path.dirname(proto), f"--python_out={WORK}/pb2", proto])
    if not check(p.returncode == 0, f"protoc generates the Python module: {p.stderr}"):
        return 1
    names = ["p0", "p1", "p2", "py"]
    for n in ["coordinator"] + names:
        assert run([CONFLUX, "keygen", n, "--out-dir", f"{WORK}/keys"]).returncode == 0
    with open(f"{WORK}/keys/allow.txt", "w") as f:
        for n in names:
            f.write(open(f"{WORK}/keys/{n}.pub").read())
    for name, src in zip(names, ["food", "love", "wisdom", "literature"]):
        p = run([CONFLUX, "ingest", "-i", f"{FORTUNES}/{src}", "-f", "fortune", "-o", f"{WORK}/data/{name}"])
        assert p.returncode == 0, p.stderr

    # ---- 1: a mixed cohort, 2 rounds ----
    def mixed(port):
        return [cpp_worker(port, n, f"{WORK}/data/{n}", f"{WORK}/mixed-{n}.log") for n in names[:3]] + \
               [py_worker(port, "py", f"{WORK}/data/py", f"{WORK}/mixed-py.log", "--train-fn", OWN_LOOP)]
    rc, recs, codes = federate("mixed", 2, mixed, 4)
    check(rc == 0, f"mixed run: coordinator exit code {rc}")
    check([r["round"] for r in recs] == [1, 2], f"mixed run: rounds.jsonl rounds {[r['round'] for r in recs]}")
    for r in recs:
        c = r["clients"]
        py = [p for p in c["participants"] if p["participant"] == "py"]
        check(c["accepted"] == 4 and len(py) == 1,
              f"round {r['round']}: 4 accepted including the Python participant: {c}")
        if py:
            check(py[0]["num_examples"] > 0 and py[0]["update_norm"] > 0 and py[0]["train_loss"] > 0,
                  f"round {r['round']}: the Python participant's update {py[0]}")
        check("py" in r.get("eval", {}).get("per_participant", {}),
              f"round {r['round']}: the Python participant's evaluation is merged: {r.get('eval')}")
    check(codes[3] == 0, f"the Python participant exits 0 on bye (exit code {codes[3]})")
    log = open(f"{WORK}/mixed-py.log").read()
    check("local training: example_own_loop.train" in log, "the Python participant ran its own training loop")
    check("coordinator error" not in log and "Traceback" not in log,
          f"the coordinator accepted every message of the Python participant: {log[-2000:]}")

    # ---- 2: the same data on a C++ and the Python participant: the same validation loss ----
    def same_data(port):
        return [cpp_worker(port, "p0", f"{WORK}/data/py", f"{WORK}/same-p0.log"),
                # 64 KiB both ways: the global model (~140 KB) and the update travel chunked.
                py_worker(port, "py", f"{WORK}/data/py", f"{WORK}/same-py.log", "--max-frame-kib", "64",
                          "--chunk-kib", "64")]
    # Round 1 evaluates the initial global model (near-uniform predictions: weak evidence), round
    # 2 the global model after 30 local AdamW steps on both, whose loss depends on every part of
    # the architecture: there the tolerance must catch, e.g., erf-GELU for tanh-GELU (1e-5).
    rc, recs, _ = federate("same", 2, same_data, 2, steps=30)
    check(rc == 0 and len(recs) == 2, f"same-data run: coordinator exit code {rc}, {len(recs)} round(s)")
    for r in recs:
        per = r.get("eval", {}).get("per_participant", {})
        if check("p0" in per and "py" in per, f"round {r['round']}: both participants evaluated: {per}"):
            rel = abs(per["py"] - per["p0"]) / abs(per["p0"])
            print(f"round {r['round']}: validation loss of the global model of round {r['round'] - 1}: "
                  f"C++ {per['p0']:.9f}, Python {per['py']:.9f}, relative difference {rel:.3g}")
            check(rel <= 1e-6, f"round {r['round']}: validation losses agree to 1e-6 relative: C++ {per['p0']}, "
                               f"Python {per['py']}")
        parts = {p["participant"]: p for p in r["clients"]["participants"]}
        if check(set(parts) == {"p0", "py"}, f"round {r['round']}: both updates accepted: {r['clients']}"):
            check(parts["p0"]["num_examples"] == parts["py"]["num_examples"],
                  f"the same training windows: {parts['p0']['num_examples']} vs {parts['py']['num_examples']}")
            a, b = parts["p0"]["train_loss"], parts["py"]["train_loss"]
            check(abs(a - b) / a < 0.05, f"round {r['round']}: local training losses close on the same data: "
                                         f"C++ {a}, Python {b}")

    m = re.search(r"task in (\d+) wire message\(s\), result in (\d+)", open(f"{WORK}/same-py.log").read())
    check(m is not None and int(m.group(1)) > 1 and int(m.group(2)) > 1,
          f"the task and the result travelled chunked: {m.group(0) if m else 'no task done'}")

    # ---- 3: a straggler: the Python participant's task is cancelled when the round closes ----
    def straggler(port):
        return [cpp_worker(port, n, f"{WORK}/data/{n}", f"{WORK}/slow-{n}.log") for n in names[:3]] + \
               [py_worker(port, "py", f"{WORK}/data/py", f"{WORK}/slow-py.log", "--train-fn", SLOW_LOOP)]
    rc, recs, codes = federate("slow", 1, straggler, 3, timeout=6, available=4)
    check(rc == 0 and len(recs) == 1, f"straggler run: coordinator exit code {rc}, {len(recs)} round(s)")
    if recs:
        c = recs[0]["clients"]
        check(c["accepted"] == 3 and [d["participant"] for d in c["dropped"]] == ["py"] and
              c["dropped"][0]["why"] == "cancelled", f"the Python straggler is cancelled, the round closes: {c}")
    log = open(f"{WORK}/slow-py.log").read()
    check("CANCEL for task" in log and "stopped: cancelled by the coordinator" in log,
          f"the Python participant received the CANCEL and answered it: {log[-1500:]}")
    check("Traceback" not in log and "not cancelled" not in log and codes[3] == 0,
          f"the Python participant stopped its loop on CANCEL and exited 0 on bye ({codes[3]}): {log[-1500:]}")

    # ---- 5: a 1000x update (Byzantine participant) under fedavg, median and krum ----
    # FedAvg lets it move the global model by ~250x the weights (weighted by examples); the
    # coordinate-wise median and Krum (f = 1) leave it without effect: the global step stays the
    # size of the honest updates.
    def byzantine(port, tag):
        return [cpp_worker(port, n, f"{WORK}/data/{n}", f"{WORK}/byz-{tag}-{n}.log") for n in names[:3]] + \
               [py_worker(port, "py", f"{WORK}/data/py", f"{WORK}/byz-{tag}-py.log", "--train-fn", SCALED_LOOP)]
    for strategy in ("fedavg", "median", "krum"):
        rc, recs, _ = federate(f"byz-{strategy}", 1, lambda port: byzantine(port, strategy), 4, strategy=strategy)
        if not check(rc == 0 and len(recs) == 1, f"{strategy} with a Byzantine participant: exit code {rc}"):
            continue
        parts = {p["participant"]: p["update_norm"] for p in recs[0]["clients"]["participants"]}
        honest = max(v for k, v in parts.items() if k != "py")
        step = recs[0]["update_norm"]
        print(f"{strategy}: honest update norms <= {honest:.4g}, Byzantine {parts.get('py', 0):.4g}, "
              f"global step {step:.4g}")
        check(parts.get("py", 0) > 100 * honest, f"{strategy}: the Byzantine update is 1000x: {parts}")
        if strategy == "fedavg":
            check(step > 50 * honest, f"fedavg follows the Byzantine update: step {step}, honest {honest}")
        else:
            # Krum picks one honest update; the median lies between honest values per coordinate.
            check(step <= 2 * honest, f"{strategy}: the Byzantine update has no effect: step {step}, honest <= {honest}")

    # ---- 4: the coordinator SIGKILLed after round 1 and restarted: the participant rejoins ----
    port = free_port()
    cfg = f"{WORK}/restart.toml"
    open(cfg, "w").write(config(port, "restart", 2, 1, 4))
    py = subprocess.Popen([sys.executable, PARTICIPANT, "--connect", f"tcp://127.0.0.1:{port}", "--server-key",
                           f"{WORK}/keys/coordinator.pub", "--key", f"{WORK}/keys/py.key", "--data", f"{WORK}/data/py",
                           "--name", "py", "--give-up-after", "120", "--train-fn", PAUSED_LOOP],
                          stdout=subprocess.DEVNULL, stderr=open(f"{WORK}/restart-py.log", "w"),
                          env=dict(os.environ, CONFLUX_PB2_DIR=f"{WORK}/pb2"))
    coord = None
    try:
        coord = subprocess.Popen([CONFLUX, "federate", cfg, "--set", "federate.round_timeout_s=300"],
                                 stdout=subprocess.DEVNULL, stderr=open(f"{WORK}/restart-coordinator-1.log", "w"))
        end = time.time() + 120
        state = f"{WORK}/restart/ckpt/step-00000001/federated_state.json"
        while time.time() < end and not os.path.exists(state) and coord.poll() is None:
            time.sleep(0.05)
        check(os.path.exists(state), "round 1 of the restart run completed")
        coord.send_signal(signal.SIGKILL)
        coord.wait()
        coord = subprocess.Popen([CONFLUX, "federate", cfg, "--set", "federate.round_timeout_s=300"],
                                 stdout=subprocess.DEVNULL, stderr=open(f"{WORK}/restart-coordinator-2.log", "w"))
        try:
            coord.wait(timeout=180)
        except subprocess.TimeoutExpired:
            coord.kill()
            coord.wait()
        check(coord.returncode == 0, f"the restarted coordinator completes (exit code {coord.returncode}): "
                                     f"{open(f'{WORK}/restart-coordinator-2.log').read()[-1500:]}")
    finally:
        stop([p for p in (coord, py) if p is not None])
    recs = [json.loads(l) for l in open(f"{WORK}/restart/out/rounds.jsonl") if l.strip()] \
        if os.path.exists(f"{WORK}/restart/out/rounds.jsonl") else []
    # (A kill between round 1's checkpoint and its rounds.jsonl line is repaired on resume: the
    # line comes back from the checkpoint.)
    check([r["round"] for r in recs] == [1, 2] and
          [p["participant"] for p in recs[-1]["clients"]["participants"]] == ["py"],
          f"round 2 after the restart accepted the Python participant: {[r['clients'] for r in recs]}")
    check("resuming after round 1" in open(f"{WORK}/restart-coordinator-2.log").read(),
          "the restarted coordinator resumed after round 1")
    log = open(f"{WORK}/restart-py.log").read()
    check(log.count("welcomed by") == 2 and "Traceback" not in log,
          f"the Python participant rejoined the restarted coordinator once: {log[-1500:]}")
    check(py.returncode == 0, f"the Python participant stops on SIGTERM with exit code 0 ({py.returncode})")

    # ---- secure aggregation on: the Python participant (no secagg task kinds) is left out, named ----
    # min_available = 4 cannot be met by the 3 secagg-capable C++ participants: the run stops after
    # server.wait_s with a reason naming the Python participant.
    rc, recs, codes = federate("secagg", 1, mixed, 3, available=4, secagg=True, wait_s=45)
    logs = open(f"{WORK}/secagg-coordinator.log").read()
    check(rc != 0 and "offering 'fit' and secure aggregation" in logs and
          "left out for lacking secure aggregation: py" in logs and
          "participant 'py' offers 'fit' but not secure aggregation" in logs,
          f"secure aggregation leaves the Python participant out with a clear reason: exit {rc}: {logs[-1500:]}")

    print("python_participant_test:", "OK" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
