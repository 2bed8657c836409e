#!/usr/bin/env python3
"""`conflux federate` end to end with real processes on loopback, CURVE on.

Four conflux-worker participants, each with its own non-IID dataset (a different fortunes file,
so a different style of text), FedAvg, 3 rounds of local AdamW training:
  A. uninterrupted: every round accepts the 4 updates; the weighted validation loss of the
     global model falls; every round's global model is a trainer-format checkpoint that
     `conflux generate` reads; the round-3 global equals `conflux federate aggregate` (the
     in-process FedAvg) applied to the round's saved updates, bit for bit.
  B. the coordinator SIGKILLed once round 1's checkpoint exists (a test-controlled condition,
     not a timer) and restarted with the same config: it resumes at round 2 and its final
     global model equals run A's bit for bit; the workers reconnected by themselves.
  C. faults: a participant that does not answer within the round's deadline is cancelled (the
     round closes with the other three, the straggler is reported dropped: cancelled) and a
     participant joining after round 1 takes part in the later rounds.

usage: federate_process_test.py CONFLUX CONFLUX_WORKER WORKDIR
"""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
from safetensors.numpy import load_file

from procs import check, failures, free_port, fresh_participants, run, stop

CONFLUX, WORKER, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
FORTUNES = "/usr/share/games/fortunes"
FILES = ["food", "love", "wisdom", "literature"]
NAMES = ["p0", "p1", "p2", "p3"]


def wait_for(cond, seconds, what):
    end = time.time() + seconds
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    check(False, f"timed out after {seconds} s waiting for {what}")
    return False


def config(port, name, **extra):
    local = extra.get("local", "")
    fed = extra.get("federate", "")
    return f"""
[model]
vocab_size = 260
context = 32
n_layer = 1
n_head = 2
d_model = 32
init_seed = 7
[federate]
rounds = 3
min_clients = {extra.get("min_clients", 4)}
min_available = {extra.get("min_available", 4)}
round_timeout_s = {extra.get("timeout", 60)}
seed = 11
strategy = "fedavg"
{fed}
[local]
steps = 6
batch_size = 8
optimizer = "adamw"
lr = 0.01
val_fraction = 0.1
eval_windows = 16
{local}
{extra.get("sections", "")}
[server]
bind = "tcp://127.0.0.1:{port}"
key = "{WORK}/keys/coordinator.key"
allow = "{WORK}/keys/allow.txt"
heartbeat_ms = 200
dead_after_ms = {extra.get("dead_after_ms", 1500)}
wait_s = 60
[checkpoint]
dir = "{WORK}/{name}/ckpt"
[output]
dir = "{WORK}/{name}/out"
save_updates = true
progress = false
"""


def start_worker(port, name, exit_on_bye, log, env=None):
    args = [WORKER, "--connect", f"tcp://127.0.0.1:{port}", "--server-key", f"{WORK}/keys/coordinator.pub",
            "--key", f"{WORK}/keys/{name}.key", "--data", f"{WORK}/data/{name}", "--name", name,
            "--give-up-after", "60"]
    if exit_on_bye:
        args.append("--exit-on-bye")
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                            env=None if env is None else {**os.environ, **env})


def records(name):
    with open(f"{WORK}/{name}/out/rounds.jsonl") as f:
        return [json.loads(l) for l in f if l.strip()]


def model(name, round_):
    return load_file(f"{WORK}/{name}/ckpt/step-{round_:08d}/model-tp00-of-01.safetensors")


def same_tensors(a, b):
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


def federate(cfg_path, log, extra=()):
    return subprocess.Popen([CONFLUX, "federate", cfg_path, "--json", *extra], stdout=subprocess.PIPE,
                            stderr=open(log, "w"), text=True)


def scrape_until(port, needle, seconds):
    """The coordinator's /metrics text once it contains `needle` (polled, bounded)."""
    end = time.time() + seconds
    text = ""
    while time.time() < end:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            if needle in text:
                return text
        except OSError:
            pass
        time.sleep(0.1)
    return text


def main():
    fresh_participants(CONFLUX, WORK, FORTUNES, NAMES + ["late"], FILES + ["science"])

    # ---- A: uninterrupted ----
    port = free_port()
    cfg = f"{WORK}/a.toml"
    open(cfg, "w").write(config(port, "a"))
    workers = [start_worker(port, n, True, f"{WORK}/a-{n}.log") for n in NAMES]
    mport = free_port()
    # The final values stay up until one scrape has read them (metrics.final_scrape_timeout_s).
    coord = federate(cfg, f"{WORK}/a-coordinator.log",
                     ["--metrics-listen", f"127.0.0.1:{mport}", "--set", "metrics.final_scrape_timeout_s=60"])
    text = scrape_until(mport, "conflux_federate_round 3", 240)
    check("conflux_federate_round 3" in text and "conflux_federate_updates_accepted_total 12" in text,
          f"Prometheus metrics of the coordinator: {[l for l in text.splitlines() if 'federate' in l][:12]}")
    out, _ = coord.communicate(timeout=300)
    stop(workers)
    check(coord.returncode == 0, f"run A exit code {coord.returncode}: {open(f'{WORK}/a-coordinator.log').read()[-2000:]}")
    if coord.returncode == 0:
        summary = json.loads(out)
        check(summary["rounds"] == 3 and summary["status"] == "completed", f"run A summary {summary}")
        recs = records("a")
        check([r["round"] for r in recs] == [1, 2, 3], f"rounds.jsonl rounds {[r['round'] for r in recs]}")
        for r in recs:
            check(r["clients"]["accepted"] == 4 and r["clients"]["asked"] == 4, f"round {r['round']} clients {r['clients']}")
            check(r["bytes_out"] > 0 and r["bytes_in"] > 0, "bytes in/out recorded")
        losses = [r["eval"]["loss"] for r in recs]
        check(losses[2] < losses[1] < losses[0], f"weighted validation loss falls: {losses}")
        check(len(recs[0]["eval"]["per_participant"]) == 4 and recs[0]["eval"]["largest_gap"] >= 0,
              "per-participant evaluation and the largest gap")
        # The round-3 global equals FedAvg of the round's updates applied offline.
        ups = sorted(recs[2]["clients"]["participants"], key=lambda p: NAMES.index(p["participant"]))
        inputs = [f"{WORK}/a/out/updates/round-00003/{p['participant']}.safetensors:{p['num_examples']}" for p in ups]
        p = run([CONFLUX, "federate", "aggregate", "--strategy", "fedavg", "--out", f"{WORK}/agg3.safetensors", *inputs])
        check(p.returncode == 0, f"federate aggregate: {p.stderr}")
        if p.returncode == 0:
            check(same_tensors(load_file(f"{WORK}/agg3.safetensors"), model("a", 3)),
                  "round-3 global == conflux federate aggregate of the round's updates")
        g = run([CONFLUX, "generate", "--checkpoint", f"{WORK}/a/ckpt", "--prompt", "The ", "--max-tokens", "8",
                 "--seed", "1"])
        check(g.returncode == 0 and len(g.stdout) > 0, f"conflux generate reads the round checkpoint: {g.stderr}")

    # ---- B: the coordinator SIGKILLed after round 1, restarted: same final weights ----
    port = free_port()
    cfg = f"{WORK}/b.toml"
    open(cfg, "w").write(config(port, "b"))
    workers = [start_worker(port, n, False, f"{WORK}/b-{n}.log") for n in NAMES]
    coord = federate(cfg, f"{WORK}/b-coordinator-1.log")
    wait_for(lambda: os.path.exists(f"{WORK}/b/ckpt/step-00000001/federated_state.json"), 120, "round 1 of run B")
    coord.send_signal(signal.SIGKILL)
    coord.wait()
    coord = federate(cfg, f"{WORK}/b-coordinator-2.log")
    out, _ = coord.communicate(timeout=300)
    stop(workers)
    log2 = open(f"{WORK}/b-coordinator-2.log").read()
    check(coord.returncode == 0, f"run B restart exit code {coord.returncode}: {log2[-2000:]}")
    if coord.returncode == 0:
        check("resuming after round" in log2, "the restarted coordinator resumed from a round checkpoint")
        check([r["round"] for r in records("b")] == [1, 2, 3], f"run B rounds.jsonl: {[r['round'] for r in records('b')]}")
        check(same_tensors(model("a", 3), model("b", 3)),
              "the restarted run's final global model equals the uninterrupted run's, bit for bit")
        # Killed between publishing round 3 and rewriting rounds.jsonl: the line comes back from
        # the checkpoint when the (complete) run is started again, with no participant connected.
        path = f"{WORK}/b/out/rounds.jsonl"
        lines = open(path).read().splitlines()
        open(path, "w").write("\n".join(lines[:2]) + "\n")
        p = run([CONFLUX, "federate", cfg, "--json"], timeout=60)
        check(p.returncode == 0 and [r["round"] for r in records("b")] == [1, 2, 3] and
              records("b")[2] == json.loads(lines[2]), f"round 3's line restored from its checkpoint: {p.stderr[-500:]}")

    # ---- C: a straggler is cancelled; a participant joining late takes part in the next round ----
    # p3 is stopped (SIGSTOP) after its welcome and before round 1 can start (the round waits for
    # 4 participants): it holds its task past the 8 s deadline while the coordinator still counts
    # it alive (dead_after_ms 60 s), so the round closes with the other 3 and cancels p3's task.
    port = free_port()
    cfg = f"{WORK}/c.toml"
    open(cfg, "w").write(config(port, "c", min_clients=3, min_available=4, timeout=8, dead_after_ms=60000))
    coord = federate(cfg, f"{WORK}/c-coordinator.log")
    p3 = start_worker(port, "p3", False, f"{WORK}/c-p3.log")
    wait_for(lambda: "welcomed" in open(f"{WORK}/c-p3.log").read(), 60, "p3's welcome")
    p3.send_signal(signal.SIGSTOP)
    workers = [start_worker(port, n, False, f"{WORK}/c-{n}.log") for n in NAMES[:3]] + [p3]
    # "late" joins once round 1 has sampled its cohort (and while p3 holds that round open).
    wait_for(lambda: "round 1 attempt 1: sampled" in open(f"{WORK}/c-coordinator.log").read(), 120,
             "round 1's sampling")
    late = start_worker(port, "late", False, f"{WORK}/c-late.log")
    wait_for(lambda: os.path.exists(f"{WORK}/c/ckpt/step-00000001/federated_state.json"), 120, "round 1 of run C")
    p3.send_signal(signal.SIGCONT)
    out, _ = coord.communicate(timeout=300)
    stop(workers + [late])
    logc = open(f"{WORK}/c-coordinator.log").read()
    check(coord.returncode == 0, f"run C exit code {coord.returncode}: {logc[-2000:]}")
    if coord.returncode == 0:
        recs = records("c")
        r1 = recs[0]["clients"]
        check(r1["accepted"] == 3 and [d["participant"] for d in r1["dropped"]] == ["p3"] and
              r1["dropped"][0]["why"] == "cancelled", f"round 1: the straggler p3 is cancelled: {r1}")
        later = [set(p["participant"] for p in r["clients"]["participants"]) for r in recs[1:]]
        check(all("late" in s for s in later), f"the late participant took part in rounds 2 and 3: {later}")
        check(all("p3" in s for s in later), f"p3 took part again once resumed: {later}")

    print("federate_process_test:", "OK" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
