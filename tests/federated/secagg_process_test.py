#!/usr/bin/env python3
"""Secure aggregation in `conflux federate` rounds, end to end: real conflux-worker processes,
CURVE on, loopback ZeroMQ, no mocks.

Four participants (fortunes files of different sizes: different num_examples, so the
example weighting matters), SGD, 16-bit quantization (so that the quantization bound is far above
float rounding and the bound check means something):
  A. secagg off, 2 rounds (the reference); A3: secagg off with p0..p2 only, 1 round.
  B. secagg on, 2 rounds: round 1's global equals run A's within the recorded quantization bound
     (+ float rounding); each round's global equals global + the example-weighted mean of the
     participants' own (debug-dumped) clipped updates within the bound; every masked vector the
     coordinator received (debug dump) is far from the participant's plain weighted update.
  C. dropout: p3 exits (test hook) when the masked-input stage reaches it, after sharing keys:
     the round completes with 3 survivors (p3's pairwise masks rebuilt from shares) and equals
     run A3's 3-participant FedAvg within the bound.
  E. SecAgg+ with 2 neighbours per participant: round 1 equals run A's within the bound.
  D. below threshold (t = 3, p2 and p3 exit at masked input): the round fails with the named
     reason "secure aggregation below threshold" and the run stops (no retries).
  G. the coordinator SIGKILLed once round 2's masked inputs are being made, restarted: it resumes
     after round 1, and rounds 2 and 3 are each the previous global + the example-weighted mean
     of the updates within the bound (secure randomness: correct, not bit-identical).
  F. DP-FedAvg under secure aggregation (distributed noise, seeded so the check is repeatable),
     q = 4/4, z = 1, S = 0.05, 2 rounds: each participant's (debug-dumped) update is clipped to L2
     norm S; round 2's global = round 1's + (sum of the clipped updates + noise) / qN where the
     noise per coordinate has the standard deviation z*S of the central mechanism (4 shares of
     z*S/2); epsilon after each round equals `conflux privacy dpfedavg`'s; the record says
     seeded (not private).

usage: secagg_process_test.py CONFLUX CONFLUX_WORKER WORKDIR
"""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
from safetensors.numpy import load_file

from procs import check, failures, free_port, fresh_participants, run, stop

CONFLUX, WORKER, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
FORTUNES = "/usr/share/games/fortunes"
FILES = ["food", "love", "wisdom", "literature"]
NAMES = ["p0", "p1", "p2", "p3"]
CLIP = 0.5
BITS = 16


def config(port, name, secagg, rounds=2, min_clients=4, min_available=4, threshold=0, retries=2, neighbours=0,
           privacy="", clients_per_round=0):
    sa = f"""
[secure_aggregation]
enabled = true
clip = {CLIP}
modulus_bits = {BITS}
threshold = {threshold}
neighbours = {neighbours}
advertise_s = 20
share_keys_s = 20
masked_input_s = 60
unmask_s = 20
""" if secagg else ""
    return f"""
[model]
vocab_size = 260
context = 32
n_layer = 1
n_head = 2
d_model = 32
init_seed = 7
[federate]
rounds = {rounds}
clients_per_round = {clients_per_round}
min_clients = {min_clients}
min_available = {min_available}
round_timeout_s = 60
round_retries = {retries}
seed = 11
strategy = "fedavg"
[local]
steps = 4
batch_size = 8
optimizer = "sgd"
lr = 0.2
[evaluate]
every = 0
{sa}
{privacy}
[server]
bind = "tcp://127.0.0.1:{port}"
key = "{WORK}/keys/coordinator.key"
allow = "{WORK}/keys/allow.txt"
heartbeat_ms = 200
dead_after_ms = 1500
wait_s = 60
[checkpoint]
dir = "{WORK}/{name}/ckpt"
[output]
dir = "{WORK}/{name}/out"
progress = false
"""


def start_worker(port, name, log, env_extra=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    args = [WORKER, "--connect", f"tcp://127.0.0.1:{port}", "--server-key", f"{WORK}/keys/coordinator.pub",
            "--key", f"{WORK}/keys/{name}.key", "--data", f"{WORK}/data/{name}", "--name", name,
            "--give-up-after", "60", "--exit-on-bye"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env)


def federation(name, workers_env, **cfg):
    """Runs one federation to its end; returns (exit code, coordinator log)."""
    port = free_port()
    path = f"{WORK}/{name}.toml"
    open(path, "w").write(config(port, name, **cfg))
    dbg = f"{WORK}/{name}/debug"
    os.makedirs(dbg, exist_ok=True)
    env = {"CONFLUX_SECAGG_DEBUG_DIR": dbg}
    workers = []
    try:
        workers = [start_worker(port, n, f"{WORK}/{name}-{n}.log", {**env, **e}) for n, e in workers_env.items()]
        log = f"{WORK}/{name}-coordinator.log"
        coord = subprocess.Popen([CONFLUX, "federate", path, "--json"], stdout=subprocess.PIPE,
                                 stderr=open(log, "w"), text=True, env={**os.environ, **env})
        try:
            coord.communicate(timeout=400)
        except subprocess.TimeoutExpired:
            coord.kill()
            coord.communicate()
        return coord.returncode, open(log).read()
    finally:
        stop(workers)


def records(name):
    with open(f"{WORK}/{name}/out/rounds.jsonl") as f:
        return [json.loads(l) for l in f if l.strip()]


def flat(name, round_):
    """The global model of a round, flattened in parameter (file) order as float64."""
    if round_ == 0:
        return None
    t = load_file(f"{WORK}/{name}/ckpt/step-{round_:08d}/model-tp00-of-01.safetensors")
    return t


def order():
    """Parameter order as the participants flatten it (the model's own order, from the header of a
    round checkpoint: safetensors keeps insertion order in its JSON header)."""
    path = glob.glob(f"{WORK}/a/ckpt/step-00000001/model-tp00-of-01.safetensors")[0]
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    keys = [k for k in header if k != "__metadata__"]
    return sorted(keys, key=lambda k: header[k]["data_offsets"][0])


def vec(tensors, keys):
    return np.concatenate([tensors[k].astype(np.float64).ravel() for k in keys])


def tag(round_, attempt=0):
    return (round_ << 16) | attempt


def plain(name, round_, ids):
    return {i: np.fromfile(f"{WORK}/{name}/debug/plain-r{tag(round_)}-{i}.f32", dtype=np.float32).astype(np.float64)
            for i in ids}


def within(a, b, bound, what):
    """|a - b| <= bound + float32 rounding of the weights, per coordinate."""
    slack = bound + 1e-6 * (1.0 + np.abs(b))
    diff = np.abs(a - b)
    worst = float(np.max(diff - slack))
    return check(worst <= 0, f"{what}: max |diff| {diff.max():.3g}, bound {bound:.3g} (worst excess {worst:.3g})")


def main():
    fresh_participants(CONFLUX, WORK, FORTUNES, NAMES, FILES)
    everyone = {n: {} for n in NAMES}

    # ---- A, A3: the plain references ----
    rc, log = federation("a", everyone, secagg=False)
    check(rc == 0, f"run A (secagg off) exit {rc}: {log[-1500:]}")
    rc, log = federation("a3", {n: {} for n in NAMES[:3]}, secagg=False, rounds=1, min_clients=3, min_available=3)
    check(rc == 0, f"run A3 (secagg off, 3 participants) exit {rc}: {log[-1500:]}")
    if failures:
        return 1
    keys = order()
    rec_a = records("a")
    examples = {p["participant"]: p["num_examples"] for p in rec_a[0]["clients"]["participants"]}
    cohort = sorted(examples)
    check(len(set(examples.values())) > 1, f"the participants' num_examples differ (weighting matters): {examples}")

    # ---- B: secagg on, 4 participants, 2 rounds ----
    rc, log = federation("b", everyone, secagg=True)
    check(rc == 0, f"run B (secagg on) exit {rc}: {log[-2000:]}")
    if rc == 0:
        rec_b = records("b")
        check([r["round"] for r in rec_b] == [1, 2], f"run B rounds {[r['round'] for r in rec_b]}")
        prev = None
        for r in rec_b:
            sa = r.get("secure_aggregation", {})
            check(sa.get("survivors") == 4 and r["clients"]["accepted"] == 4, f"round {r['round']}: {sa} {r['clients']}")
            check(all("update_norm" not in p for p in r["clients"]["participants"]),
                  "no individual update norm reaches the coordinator")
            bound = sa.get("bound", 0)
            check(0 < bound < 1e-3, f"round {r['round']}: quantization bound {bound}")
            g = vec(flat("b", r["round"]), keys)
            ids = list(range(4))  # secagg ids: the cohort's authenticated identities, sorted
            deltas = plain("b", r["round"], ids)
            n = np.array([examples[cohort[i]] for i in ids], dtype=np.float64)
            mean = sum(n[i] * deltas[i] for i in ids) / n.sum()
            if r["round"] == 1:
                # global_0 is not on disk: take it from run A's round-1 FedAvg (identical updates).
                g_a1 = vec(flat("a", 1), keys)
                within(g, g_a1, bound, "round 1: secagg global vs the plain FedAvg run")
                diff = np.abs(g - g_a1).max()
                check(diff > bound / 1000, f"round 1 differs from plain by quantization only, not 0 ({diff:.3g})")
                check(max(np.abs(d).max() for d in deltas.values()) < CLIP, "no update coordinate was clipped")
                prev = g_a1 - mean  # global_0 (plain FedAvg = global_0 + example-weighted mean delta)
            within(g, prev + mean, bound, f"round {r['round']}: global = previous + weighted mean of the plain updates")
            # The coordinator held only masked vectors: each is far from its plain weighted update.
            scale = sa["scale"]
            for i in ids:
                m = np.fromfile(f"{WORK}/b/debug/masked-r{tag(r['round'])}-{i}.u32", dtype=np.uint32)
                signed = m.astype(np.int64)
                signed[signed >= 2 ** (BITS - 1)] -= 2 ** BITS
                as_float = signed / scale
                close = np.mean(np.abs(as_float - deltas[i] * n[i] / n.sum()) <= 2 / scale)
                check(m.size == deltas[i].size and close < 0.01,
                      f"round {r['round']}: participant {i}'s masked vector matches its update at {close:.2%} of coords")
            prev = g
        for ra, rb in zip(rec_a, rec_b):  # the cost, for docs/federated.md
            print(f"round {rb['round']}: plain {ra['seconds']:.2f} s, {ra['bytes_in']} B in; secagg "
                  f"{rb['seconds']:.2f} s, {rb['bytes_in']} B in; stages "
                  f"{ {k: round(v['seconds'], 3) for k, v in rb['secure_aggregation']['stages'].items()} }")
        g2a, g2b = vec(flat("a", 2), keys), vec(flat("b", 2), keys)
        print(f"round 2, secagg vs plain run (quantization propagated through training): max |diff| "
              f"{np.abs(g2a - g2b).max():.3g}")
        check(np.abs(g2a - g2b).max() < 1e-2, "round 2 stays close to the plain run")

    # ---- C: p3 drops after sharing keys ----
    rc, log = federation("c", {**{n: {} for n in NAMES[:3]}, "p3": {"CONFLUX_SECAGG_TEST_EXIT_AT": "masked_input"}},
                         secagg=True, rounds=1, min_clients=3)
    check(rc == 0, f"run C (dropout) exit {rc}: {log[-2000:]}")
    if rc == 0:
        r = records("c")[0]
        sa = r["secure_aggregation"]
        dropped = [(d["participant"], d["stage"]) for d in r["clients"]["dropped"]]
        check(sa["survivors"] == 3 and dropped == [("p3", "masked_input")], f"run C: {sa} dropped {dropped}")
        check(sa["stages"]["share_keys"]["answered"] == 4, "p3 shared its keys before dropping")
        within(vec(flat("c", 1), keys), vec(flat("a3", 1), keys), sa["bound"],
               "dropout round = the 3-participant FedAvg")

    # ---- E: SecAgg+ (2 neighbours each of the 4): round 1 equals the plain run's within the bound ----
    rc, log = federation("e", everyone, secagg=True, rounds=1, neighbours=2)
    check(rc == 0, f"run E (SecAgg+, 2 neighbours) exit {rc}: {log[-2000:]}")
    if rc == 0:
        sa = records("e")[0]["secure_aggregation"]
        check(sa["neighbours"] == 2 and sa["threshold"] == 2 and sa["survivors"] == 4, f"run E: {sa}")
        within(vec(flat("e", 1), keys), vec(flat("a", 1), keys), sa["bound"], "SecAgg+ round 1 vs the plain run")

    # ---- D: below threshold ----
    ex = {"CONFLUX_SECAGG_TEST_EXIT_AT": "masked_input"}
    rc, log = federation("d", {"p0": {}, "p1": {}, "p2": ex, "p3": ex}, secagg=True, rounds=1, min_clients=2,
                         threshold=3, retries=0)
    check(rc != 0 and "secure aggregation below threshold: 2 participant(s) survived the masked_input stage" in log,
          f"run D fails with the named reason: exit {rc}: {log[-1500:]}")
    check(not os.path.exists(f"{WORK}/d/ckpt/step-00000001"), "run D wrote no round checkpoint")

    # ---- F: DP-FedAvg with each participant adding its share of the noise ----
    S, Z = 0.05, 1.0
    dp = f"""[privacy]
enabled = true
clip = {S}
noise_multiplier = {Z}
population = 4
delta = 1e-5
noise_seed = 3
"""
    rc, log = federation("f", everyone, secagg=True, rounds=2, privacy=dp, clients_per_round=4)
    check(rc == 0, f"run F (secagg + DP) exit {rc}: {log[-2000:]}")
    if rc == 0:
        rec_f = records("f")
        for r in rec_f:
            sa = r["secure_aggregation"]
            want = json.loads(run([CONFLUX, "privacy", "dpfedavg", "--clients-per-round", "4", "--population", "4",
                                   "--noise-multiplier", str(Z), "--rounds", str(r["round"]), "--delta", "1e-5",
                                   "--json"]).stdout)
            check(abs(r["epsilon"] - want["epsilon"]) <= 1e-9 * want["epsilon"],
                  f"round {r['round']}: epsilon {r['epsilon']} vs privacy dpfedavg {want['epsilon']}")
            check(r["noise"] == "seeded (not private)", f"round {r['round']}: noise {r['noise']}")
            check(sa["dp"]["min_summed"] == 4 and abs(sa["dp"]["noise_stddev_each"] - Z * S / 2) < 1e-12,
                  f"round {r['round']}: {sa['dp']}")
            check(sa["survivors"] == 4 and sa["clip"] >= S + 6 * Z * S / 2 - 1e-12, f"round {r['round']}: {sa}")
        deltas = plain("f", 2, range(4))
        norms = [float(np.linalg.norm(d)) for d in deltas.values()]
        check(all(n <= S * (1 + 1e-5) for n in norms) and max(norms) > S * 0.999,
              f"the updates are clipped to L2 norm S = {S}: {norms}")
        g1, g2 = vec(flat("f", 1), keys), vec(flat("f", 2), keys)
        residual = 4 * (g2 - g1) - sum(deltas.values())   # qN (g2 - g1) = sum of clipped + noise
        sd = float(np.std(residual))
        check(abs(sd / (Z * S) - 1) < 0.03 and abs(float(np.mean(residual))) < 0.03 * Z * S,
              f"round 2's noise: std {sd:.5g} (want z*S = {Z * S}), mean {np.mean(residual):.3g}, "
              f"over {residual.size} coordinates")
        print(f"run F: noise std {sd:.5g} for z*S = {Z * S} over {residual.size} coordinates; epsilon "
              f"{rec_f[-1]['epsilon']:.4f} after {len(rec_f)} rounds")

    # ---- G: the coordinator SIGKILLed inside round 2's secure stages, restarted ----
    port = free_port()
    path = f"{WORK}/g.toml"
    open(path, "w").write(config(port, "g", secagg=True, rounds=3))
    dbg = f"{WORK}/g/debug"
    os.makedirs(dbg, exist_ok=True)
    env = {**os.environ, "CONFLUX_SECAGG_DEBUG_DIR": dbg}
    workers = [start_worker(port, n, f"{WORK}/g-{n}.log", {"CONFLUX_SECAGG_DEBUG_DIR": dbg}) for n in NAMES]
    try:
        coord = subprocess.Popen([CONFLUX, "federate", path], stdout=subprocess.DEVNULL,
                                 stderr=open(f"{WORK}/g-coordinator-1.log", "w"), env=env)
        # A participant's masked-input stage of round 2 has run: the coordinator is inside the round.
        end = time.time() + 120
        while time.time() < end and not glob.glob(f"{dbg}/plain-r{tag(2)}-*.f32") and coord.poll() is None:
            time.sleep(0.01)
        coord.send_signal(signal.SIGKILL)
        coord.wait()
        mid = not os.path.exists(f"{WORK}/g/ckpt/step-00000002")
        check(os.path.exists(f"{WORK}/g/ckpt/step-00000001"), "run G: killed after round 1 was written")
        coord = subprocess.Popen([CONFLUX, "federate", path], stdout=subprocess.DEVNULL,
                                 stderr=open(f"{WORK}/g-coordinator-2.log", "w"), env=env)
        try:
            coord.wait(timeout=300)
        except subprocess.TimeoutExpired:
            coord.kill()
            coord.wait()
    finally:
        stop(workers)
    log = open(f"{WORK}/g-coordinator-2.log").read()
    check(coord.returncode == 0, f"run G restart exit {coord.returncode}: {log[-2000:]}")
    if coord.returncode == 0:
        rec_g = records("g")
        check("resuming after round 1" in log, f"run G resumed after round 1: {log[-800:]}")
        check([r["round"] for r in rec_g] == [1, 2, 3], f"run G rounds {[r['round'] for r in rec_g]}")
        # The participants start the restarted coordinator's round afresh (its session differs),
        # rather than failing an attempt on the killed one's state.
        check([r["attempt"] for r in rec_g] == [1, 1, 1], f"run G attempts {[r['attempt'] for r in rec_g]}")
        # Each round after the restart is the previous global + the weighted mean of the updates.
        for r in rec_g[1:]:
            sa = r["secure_aggregation"]
            check(sa["survivors"] == 4, f"run G round {r['round']}: {sa}")
            deltas = plain("g", r["round"], range(4))
            n = np.array([examples[cohort[i]] for i in range(4)], dtype=np.float64)
            mean = sum(n[i] * deltas[i] for i in range(4)) / n.sum()
            within(vec(flat("g", r["round"]), keys), vec(flat("g", r["round"] - 1), keys) + mean, sa["bound"],
                   f"run G round {r['round']} (after the restart) = previous + weighted mean")
        print(f"run G: killed {'inside round 2' if mid else 'after round 2 was written'}; resumed and completed")

    print("secagg_process_test:", "OK" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
