#!/usr/bin/env python3
"""DP-FedAvg with adaptive clipping (Andrew et al. 2021) end to end: `conflux federate` with three
real conflux-worker participants over CURVE on loopback, q = 1, seeded noise (reproducible, so the
runs can be compared; the record says "not private").

  H. the initial bound is far above every update norm (privacy.clip = 20; two AdamW steps at
     lr 0.01 move this GPT by about 3): every bit is 1, so
     the bound falls toward the target quantile round after round. Each round's record obeys the
     rule S_{t+1} = S_t * exp(-clip_lr * (clip_fraction - target_quantile)) exactly, the next
     round uses S_{t+1}, and Prometheus shows conflux_federate_clip_norm.
  L. the initial bound is far below every update norm (privacy.clip = 1e-3): every bit is 0 and
     the bound grows.
  R. run H again, the coordinator SIGKILLed once round 1's checkpoint exists and restarted: the
     bound of every round and the final model equal run H's bit for bit.

usage: adaptive_clip_process_test.py CONFLUX CONFLUX_WORKER WORKDIR
"""
import json
import math
import os
import signal
import sys

import federate_process_test as fpt
from procs import check, failures, free_port, fresh_participants, run, stop

CONFLUX, WORK = fpt.CONFLUX, fpt.WORK
NAMES = fpt.NAMES[:3]
ROUNDS, LR, GAMMA = 3, 0.5, 0.5
HIGH, LOW = 20.0, 1e-3  # initial bounds
# z = 0.001 keeps the model usable (the update noise is z_delta * S / 3 per coordinate); sigma_b =
# 0.2 noises the count (b_bar's std 1/15), so the bound's path is the rule's, not a constant
# factor, while its direction stays certain (the bounds below hold with a margin of 6 std).


def privacy(clip):
    return f"""[privacy]
enabled = true
clip = {clip}
noise_multiplier = 0.001
population = 3
delta = 1e-5
noise_seed = 5
adaptive_clip = true
target_quantile = {GAMMA}
clip_lr = {LR}
clip_count_stddev = 0.2
"""


def write_config(name, port, clip):
    cfg = f"{WORK}/{name}.toml"
    text = fpt.config(port, name, min_clients=3, min_available=3, sections=privacy(clip),
                      federate="clients_per_round = 3", local="steps = 2")
    # A key may appear once: the test's [local] steps replaces the default's.
    text = text.replace("steps = 6\n", "", 1).replace("rounds = 3", f"rounds = {ROUNDS}", 1)
    open(cfg, "w").write(text)
    return cfg


def check_rule(name, recs, c0):
    """Every round: the recorded bound is the previous round's next bound, and the next bound
    follows the geometric rule from the recorded noisy fraction."""
    clip = c0
    for r in recs:
        check(r["clip_norm"] == clip, f"{name} round {r['round']}: clip_norm {r['clip_norm']} == previous next {clip}")
        want = r["clip_norm"] * math.exp(-LR * (r["clip_fraction"] - GAMMA))
        check(abs(r["next_clip_norm"] - want) <= 1e-12 * want,
              f"{name} round {r['round']}: next_clip_norm {r['next_clip_norm']} == S exp(-eta (b - gamma)) = {want}")
        check(r["noise"] == "seeded (not private)" and r["epsilon"] > 0, f"{name} round {r['round']}: privacy fields")
        clip = r["next_clip_norm"]
    return clip


def state_clip(name, round_):
    with open(f"{WORK}/{name}/ckpt/step-{round_:08d}/federated_state.json") as f:
        return json.load(f)["clip_norm"]


def main():
    fresh_participants(CONFLUX, WORK, fpt.FORTUNES, NAMES, fpt.FILES)

    # ---- H: the bound starts far above every norm and falls ----
    port, mport = free_port(), free_port()
    cfg_h = write_config("h", port, HIGH)
    workers = [fpt.start_worker(port, n, True, f"{WORK}/h-{n}.log") for n in NAMES]
    coord = fpt.federate(cfg_h, f"{WORK}/h-coordinator.log",
                         ["--metrics-listen", f"127.0.0.1:{mport}", "--set", "metrics.final_scrape_timeout_s=60"])
    text = fpt.scrape_until(mport, f"conflux_federate_round {ROUNDS}", 240)
    out, _ = coord.communicate(timeout=300)
    stop(workers)
    check(coord.returncode == 0, f"run H exit code {coord.returncode}: {open(f'{WORK}/h-coordinator.log').read()[-2000:]}")
    final_h = None
    if coord.returncode == 0:
        recs = fpt.records("h")
        check([r["round"] for r in recs] == list(range(1, ROUNDS + 1)), f"run H rounds {[r['round'] for r in recs]}")
        for r in recs:
            norms = [p["update_norm"] for p in r["clients"]["participants"]]
            check(len(norms) == 3 and max(norms) < r["clip_norm"] and r["clipped"] == 0,
                  f"run H round {r['round']}: every update norm {norms} is under the bound {r['clip_norm']}")
        final_h = check_rule("H", recs, HIGH)
        # Every bit is 1: b_bar - gamma is 1/2 plus noise of std 1/15 a round.
        check(HIGH * math.exp(-LR * ROUNDS * 1.0) < final_h < HIGH * math.exp(-LR * ROUNDS * 0.25),
              f"run H: the bound fell toward the target quantile ({HIGH} -> {final_h})")
        check(state_clip("h", ROUNDS) == final_h, "run H: the checkpoint holds the next round's bound")
        line = [l for l in text.splitlines() if l.startswith("conflux_federate_clip_norm ")]
        check(len(line) == 1 and math.isclose(float(line[0].split()[1]), final_h, rel_tol=1e-9),
              f"Prometheus conflux_federate_clip_norm {line} == {final_h}")

    # ---- L: the bound starts far below every norm and grows ----
    port = free_port()
    cfg_l = write_config("l", port, LOW)
    workers = [fpt.start_worker(port, n, True, f"{WORK}/l-{n}.log") for n in NAMES]
    coord = fpt.federate(cfg_l, f"{WORK}/l-coordinator.log")
    out, _ = coord.communicate(timeout=300)
    stop(workers)
    check(coord.returncode == 0, f"run L exit code {coord.returncode}: {open(f'{WORK}/l-coordinator.log').read()[-2000:]}")
    if coord.returncode == 0:
        recs = fpt.records("l")
        for r in recs:
            norms = [p["update_norm"] for p in r["clients"]["participants"]]
            check(min(norms) > r["clip_norm"] and r["clipped"] == 3,
                  f"run L round {r['round']}: every update norm {norms} is above the bound {r['clip_norm']}")
        final_l = check_rule("L", recs, LOW)
        # Every bit is 0: b_bar - gamma is -1/2 plus the noise.
        check(LOW * math.exp(LR * ROUNDS * 0.25) < final_l < LOW * math.exp(LR * ROUNDS * 1.0),
              f"run L: the bound grew toward the target quantile ({LOW} -> {final_l})")

    # ---- R: run H killed after round 1 and resumed: the same bounds and model, bit for bit ----
    port = free_port()
    cfg_r = write_config("r", port, HIGH)
    workers = [fpt.start_worker(port, n, False, f"{WORK}/r-{n}.log") for n in NAMES]
    coord = fpt.federate(cfg_r, f"{WORK}/r-coordinator-1.log")
    fpt.wait_for(lambda: os.path.exists(f"{WORK}/r/ckpt/step-00000001/federated_state.json"), 120, "round 1 of run R")
    coord.send_signal(signal.SIGKILL)
    coord.wait()
    coord = fpt.federate(cfg_r, f"{WORK}/r-coordinator-2.log")
    out, _ = coord.communicate(timeout=300)
    stop(workers)
    log2 = open(f"{WORK}/r-coordinator-2.log").read()
    check(coord.returncode == 0, f"run R restart exit code {coord.returncode}: {log2[-2000:]}")
    if coord.returncode == 0 and final_h is not None:
        check("resuming after round" in log2, "run R resumed from a round checkpoint")
        bounds = lambda n: [(r["clip_norm"], r["next_clip_norm"]) for r in fpt.records(n)]
        check(bounds("r") == bounds("h"), f"resumed bounds {bounds('r')} == uninterrupted {bounds('h')}")
        check(state_clip("r", ROUNDS) == final_h, "resumed checkpoint's bound == uninterrupted")
        check(fpt.same_tensors(fpt.model("h", ROUNDS), fpt.model("r", ROUNDS)),
              "the resumed run's final global model equals the uninterrupted run's, bit for bit")

    print("adaptive_clip_process_test:", "OK" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
