#!/usr/bin/env python3
"""A replayed update is rejected as stale, end to end: `conflux federate` (FedAvg, 3 rounds) with
three real conflux-worker participants over CURVE on loopback, one of which (p2) runs with the
worker's test hook CONFLUX_TEST_REPLAY_RESULTS=1: in every round after the first it re-sends its
previous round's RESULT (old task id, attempt and round, a fresh wire sequence) just before its
honest one. Checked:
  - every round accepts exactly the three honest updates, and rounds 2 and 3 record one stale
    result each (rounds.jsonl `stale_results`); the coordinator logs the rejection and Prometheus
    counts it (conflux_coordinator_stale_results_total 2);
  - the global model of rounds 2 and 3 equals `conflux federate aggregate` of the round's honest
    updates (saved with output.save_updates), bit for bit, and differs from the aggregate with p2's
    replayed (previous-round) update in place of its honest one;
  - the run completes all rounds.

usage: replay_process_test.py CONFLUX CONFLUX_WORKER WORKDIR
"""
import json
import sys

import federate_process_test as fpt
from procs import check, failures, free_port, fresh_participants, run, stop

CONFLUX, WORK = fpt.CONFLUX, fpt.WORK
NAMES = fpt.NAMES[:3]


def aggregate(out, updates):
    """`conflux federate aggregate --strategy fedavg` of [(path, num_examples)]: the output's tensors."""
    p = run([CONFLUX, "federate", "aggregate", "--strategy", "fedavg", "--out", out,
             *[f"{path}:{n}" for path, n in updates]])
    check(p.returncode == 0, f"federate aggregate: {p.stderr}")
    return fpt.load_file(out) if p.returncode == 0 else None


def main():
    fresh_participants(CONFLUX, WORK, fpt.FORTUNES, NAMES, fpt.FILES)

    port, mport = free_port(), free_port()
    cfg = f"{WORK}/replay.toml"
    text = fpt.config(port, "replay", min_clients=3, min_available=3, local="steps = 2")
    open(cfg, "w").write(text.replace("steps = 6\n", "", 1))
    workers = [fpt.start_worker(port, n, True, f"{WORK}/{n}.log",
                                env={"CONFLUX_TEST_REPLAY_RESULTS": "1"} if n == "p2" else None) for n in NAMES]
    coord = fpt.federate(cfg, f"{WORK}/coordinator.log",
                         ["--metrics-listen", f"127.0.0.1:{mport}", "--set", "metrics.final_scrape_timeout_s=60"])
    metrics = fpt.scrape_until(mport, "conflux_federate_round 3", 240)
    out, _ = coord.communicate(timeout=300)
    stop(workers)
    log = open(f"{WORK}/coordinator.log").read()
    check(coord.returncode == 0, f"exit code {coord.returncode}: {log[-2000:]}")
    if coord.returncode == 0:
        check(json.loads(out)["rounds"] == 3, f"summary {out}")
        recs = fpt.records("replay")
        check([r["round"] for r in recs] == [1, 2, 3], f"rounds {[r['round'] for r in recs]}")
        check([r["stale_results"] for r in recs] == [0, 1, 1],
              f"stale results per round (the replay in rounds 2 and 3): {[r['stale_results'] for r in recs]}")
        for r in recs:
            check(r["clients"]["accepted"] == 3 and not r["clients"]["rejected"] and not r["clients"]["dropped"],
                  f"round {r['round']}: the three honest updates accepted: {r['clients']}")
        check("replaying the result of task" in open(f"{WORK}/p2.log").read(), "p2's test hook replayed a result")
        check(log.count("rejected as stale") == 2, f"the coordinator logged 2 stale results: {log.count('rejected as stale')}")
        line = [l for l in metrics.splitlines() if l.startswith("conflux_coordinator_stale_results_total ")]
        check(line == ["conflux_coordinator_stale_results_total 2"], f"Prometheus stale counter: {line}")
        for r in recs[1:]:
            k = r["round"]
            ups = {p["participant"]: p["num_examples"] for p in r["clients"]["participants"]}
            path = lambda rnd, n: f"{WORK}/replay/out/updates/round-{rnd:05d}/{n}.safetensors"
            honest = aggregate(f"{WORK}/honest-{k}.safetensors", [(path(k, n), ups[n]) for n in NAMES])
            replayed = aggregate(f"{WORK}/replayed-{k}.safetensors",
                                 [(path(k if n != "p2" else k - 1, n), ups[n]) for n in NAMES])
            if honest is not None and replayed is not None:
                check(fpt.same_tensors(honest, fpt.model("replay", k)),
                      f"round {k}'s global == the aggregate of the honest updates")
                check(not fpt.same_tensors(replayed, fpt.model("replay", k)),
                      f"round {k}'s global != the aggregate with p2's replayed update")

    print("replay_process_test:", "OK" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
