#!/usr/bin/env python3
"""Federated rounds on loopback, side by side in one run (bench/federated/run_rounds.sh runs this):

  1. the ZeroMQ floor: bench_protocol's raw ZeroMQ throughput (one zero-copy frame per payload,
     10 MiB payloads, tcp loopback) without and with CURVE, measured in this run;
  2. Conflux: `conflux federate` with N `conflux-worker` processes, CURVE on (then again with
     server.insecure, as Flower runs without TLS here), FedAvg, R rounds,
     local.steps = 0 (each participant returns the global weights unchanged: no training), a GPT
     sized for a ~10 MB float32 update; per-round seconds and bytes from rounds.jsonl;
  3. Flower 1.42 (flower_round.py): legacy gRPC server + N client processes, no TLS, FedAvg, R
     rounds, the same update bytes in the same number of tensors, clients echo the weights.

Per-round figures are the steady rounds 2..R (round 1 includes connection set-up in both systems);
the table gives the median and the spread (min-max). Peak RSS is ru_maxrss of each coordinator
process (the Conflux coordinator, Flower's server) as its parent sees it (os.wait4). The floor of
a Conflux round is its measured bytes (bytes_in + bytes_out: the global down to each worker once,
each update up) over the floor throughput.

  rounds_bench.py --build BUILD | --conflux BIN --worker BIN --bench-protocol BIN  [--clients 16] [--rounds 6] [--d-model 256] [--n-layer 3]
                  [--context 256] [--workdir DIR] [--json FILE] [--skip-flower] [--secagg-clients 8,16]
Exit code 0 when every part ran (Flower's failure is reported, not an error: exit 0 with the row
marked FAILED); 1 when Conflux or the floor measurement failed.
"""
import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FORTUNES = "/usr/share/games/fortunes/food"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(args, timeout=300):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise SystemExit(f"rounds_bench: {' '.join(args)} exited {p.returncode}: {p.stderr[-2000:]}")
    return p.stdout


def safetensors_count(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return len([k for k in header if k != "__metadata__"])


def spread(xs):
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def floor(a):
    out = json.loads(run([a.bench_protocol, "--mib", str(a.floor_mib), "--reps", "8", "--trials", "3", "--json"]))
    return {"raw_plain_gbps": out["raw_plain_gbps"], "raw_curve_gbps": out["raw_curve_gbps"]}


def conflux(a, work, plain, clients=None, secagg=False):
    """One `conflux federate` run; plain: server.insecure and --insecure workers (no CURVE, as Flower
    runs here without TLS); secagg: [secure_aggregation] on (SecAgg, every other participant a
    neighbour). Returns per-round records and the coordinator's and the workers' CPU seconds."""
    conflux_bin, worker_bin = a.conflux, a.worker
    clients = clients or a.clients
    work = f"{work}/conflux-{'plain' if plain else 'curve'}{'-secagg' if secagg else ''}-{clients}"
    names = [f"p{i:02d}" for i in range(clients)]
    os.makedirs(f"{work}/keys")
    for n in ["coordinator"] + names:
        run([conflux_bin, "keygen", n, "--out-dir", f"{work}/keys"])
    with open(f"{work}/keys/allow.txt", "w") as f:
        for n in names:
            f.write(open(f"{work}/keys/{n}.pub").read())
    run([conflux_bin, "ingest", "-i", FORTUNES, "-f", "fortune", "-o", f"{work}/data"])
    port = free_port()
    cfg = f"{work}/fl.toml"
    with open(cfg, "w") as f:
        f.write(f"""[model]
vocab_size = 260
context = {a.context}
n_layer = {a.n_layer}
n_head = 4
d_model = {a.d_model}
[federate]
rounds = {a.rounds}
min_clients = {clients}
min_available = {clients}
round_timeout_s = 300
seed = 1
strategy = "fedavg"
[local]
steps = 0
val_fraction = 0.1
[evaluate]
every = 0
{"[secure_aggregation]" + chr(10) + "enabled = true" + chr(10) + "masked_input_s = 300" + chr(10) if secagg else ""}[server]
bind = "tcp://127.0.0.1:{port}"
key = "{work}/keys/coordinator.key"
allow = "{work}/keys/allow.txt"
insecure = {'true' if plain else 'false'}
wait_s = 120
[checkpoint]
dir = "{work}/ckpt"
[output]
dir = "{work}/out"
progress = false
""")
    workers = []
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    coord = subprocess.Popen([conflux_bin, "federate", cfg, "--json"], stdout=subprocess.PIPE,
                             stderr=open(f"{work}/coordinator.log", "w"), text=True)
    try:
        workers = [subprocess.Popen([worker_bin, "--connect", f"tcp://127.0.0.1:{port}", "--server-key",
                                     f"{work}/keys/coordinator.pub", "--key", f"{work}/keys/{n}.key", "--data",
                                     f"{work}/data", "--name", n, "--give-up-after", "120", "--exit-on-bye"] + (["--insecure"] if plain else []),
                                    stdout=subprocess.DEVNULL, stderr=open(f"{work}/{n}.log", "w"))
                   for n in names]
        limit = time.time() + 300 * (a.rounds + 1)
        rusage = None
        while time.time() < limit:
            pid, status, ru = os.wait4(coord.pid, os.WNOHANG)
            if pid:
                rusage, coord.returncode = ru, os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - t0
    finally:
        for p in [coord] + workers:
            if p.poll() is None:
                p.terminate()
        for p in [coord] + workers:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    if rusage is None or coord.returncode != 0:
        log = open(f"{work}/coordinator.log").read()[-3000:]
        raise SystemExit(f"rounds_bench: conflux federate failed (exit {coord.returncode}): {log}")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = lambda r: r.ru_utime + r.ru_stime  # noqa: E731
    with open(f"{work}/out/rounds.jsonl") as f:
        recs = [json.loads(l) for l in f if l.strip()]
    bad = [r["round"] for r in recs if r["clients"]["accepted"] != clients]
    if len(recs) != a.rounds or bad:
        raise SystemExit(f"rounds_bench: conflux: {len(recs)} rounds, rounds without all updates: {bad}")
    update_bytes = recs[0]["bytes_in"] // clients
    model = f"{work}/ckpt/step-{1:08d}/model-tp00-of-01.safetensors"
    return {"system": "conflux, no CURVE" if plain else "conflux", "clients": clients, "update_bytes": update_bytes,
            "tensors": safetensors_count(model) if os.path.exists(model) else 8,
            "rounds": [{"round": r["round"], "seconds": r["seconds"], "bytes": r["bytes_in"] + r["bytes_out"],
                        "bytes_in": r["bytes_in"], "bytes_out": r["bytes_out"],
                        "stages": {k: v["seconds"] for k, v in r.get("secure_aggregation", {}).get("stages", {}).items()}}
                       for r in recs],
            "peak_rss_bytes": rusage.ru_maxrss * 1024, "wall_s": wall, "coordinator_cpu_s": cpu(rusage),
            "workers_cpu_s": cpu(children) - cpu(children_before) - cpu(rusage)}


def secagg_table(a, work):
    """Secure aggregation's cost in rounds: for each cohort size, FedAvg rounds with CURVE, without
    and with [secure_aggregation], the same model and no training."""
    rows = []
    for n in a.secagg_clients:
        base = conflux(a, work, False, clients=n)
        sec = conflux(a, work, False, clients=n, secagg=True)
        row = {"clients": n}
        for key, c in (("plain", base), ("secagg", sec)):
            steady = c["rounds"][1:]
            row[key] = {"steady": spread([r["seconds"] for r in steady]),
                        "bytes_in": statistics.median([r["bytes_in"] for r in steady]),
                        "bytes_out": statistics.median([r["bytes_out"] for r in steady]),
                        "coordinator_cpu_s_per_round": c["coordinator_cpu_s"] / a.rounds,
                        "worker_cpu_s_per_round": c["workers_cpu_s"] / a.rounds / n,
                        "peak_rss_bytes": c["peak_rss_bytes"]}
        row["secagg"]["stages"] = {k: statistics.median([r["stages"][k] for r in sec["rounds"][1:]])
                                   for k in sec["rounds"][1]["stages"]}
        rows.append(row)
    print("| participants | round, FedAvg (CURVE) | round, + secure aggregation | ratio | stages (median s: advertise, "
          "share_keys, masked_input, unmask) | coordinator CPU s/round | participant CPU s/round | bytes in/round "
          "(plain, secagg) | coordinator peak RSS (plain, secagg) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        p, s = r["plain"], r["secagg"]
        st = s["stages"]
        print(f"| {r['clients']} | {fmt_spread(p['steady'])} | {fmt_spread(s['steady'])} | "
              f"{s['steady']['median'] / p['steady']['median']:.2f}x | {st.get('advertise', 0):.3f}, "
              f"{st.get('share_keys', 0):.3f}, {st.get('masked_input', 0):.3f}, {st.get('unmask', 0):.3f} | "
              f"{p['coordinator_cpu_s_per_round']:.2f} / {s['coordinator_cpu_s_per_round']:.2f} | "
              f"{p['worker_cpu_s_per_round']:.2f} / {s['worker_cpu_s_per_round']:.2f} | "
              f"{mb(p['bytes_in'])}, {mb(s['bytes_in'])} | {mb(p['peak_rss_bytes'])}, {mb(s['peak_rss_bytes'])} |")
    return rows


def flower(a, work, update_bytes, tensors):
    p = subprocess.run([sys.executable, os.path.join(HERE, "flower_round.py"), "run", "--clients", str(a.clients),
                        "--bytes", str(update_bytes), "--tensors", str(tensors), "--rounds", str(a.rounds),
                        "--workdir", f"{work}/flower", "--max-message", str(a.flower_max_message)],
                       capture_output=True, text=True, timeout=600 * (a.rounds + 1))
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"system": "flower", "ok": False, "why": f"flower_round.py exit {p.returncode}: {p.stderr[-1500:]}"}


def mb(x):
    return f"{x / 1e6:.1f} MB"


def fmt_spread(s, unit="s"):
    if not s:
        return "-"
    return f"{s['median']:.3f} {unit} ({s['min']:.3f}-{s['max']:.3f}, n={s['n']})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="", help="build directory (the three binaries below from it)")
    ap.add_argument("--conflux", default="")
    ap.add_argument("--worker", default="")
    ap.add_argument("--bench-protocol", default="")
    ap.add_argument("--floor-mib", type=int, default=10, help="payload of the ZeroMQ floor measurement")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--n-layer", type=int, default=3)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--flower-max-message", type=int, default=2_147_483_647)
    ap.add_argument("--workdir", default="")
    ap.add_argument("--json", default="")
    ap.add_argument("--skip-flower", action="store_true")
    ap.add_argument("--secagg-clients", default="",
                    help="comma-separated cohort sizes: instead of the comparison above, FedAvg rounds with and "
                         "without secure aggregation at each (e.g. 8,16)")
    a = ap.parse_args()
    a.secagg_clients = [int(x) for x in a.secagg_clients.split(",") if x]
    a.conflux = a.conflux or os.path.join(a.build, "bin", "conflux")
    a.worker = a.worker or os.path.join(a.build, "bin", "conflux-worker")
    a.bench_protocol = a.bench_protocol or os.path.join(a.build, "bench", "protocol", "bench_protocol")
    for exe in (a.conflux, a.worker, a.bench_protocol):
        if not os.access(exe, os.X_OK):
            raise SystemExit(f"rounds_bench: {exe} is not an executable (build conflux, conflux-worker, "
                             f"conflux_torch_verbs and bench_protocol, or pass --build)")
    if a.rounds < 2:
        raise SystemExit("rounds_bench: --rounds must be >= 2 (round 1 is connection set-up, not timed)")
    work = a.workdir or f"/tmp/conflux-rounds-bench-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    if a.secagg_clients:
        try:
            print(f"host: {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}; {a.rounds} rounds (round 1 = "
                  f"set-up, not in the medians); secure aggregation at {a.secagg_clients} participants", flush=True)
            rows = secagg_table(a, work)
        finally:
            if not a.workdir:
                shutil.rmtree(work, ignore_errors=True)
        if a.json:
            tmp = a.json + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"secagg": rows}, f, indent=1)
            os.replace(tmp, a.json)
        return
    try:
        print(f"host: {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}; {a.clients} participants, "
              f"{a.rounds} rounds (round 1 = set-up, not in the medians)", flush=True)
        fl = floor(a)
        cx = conflux(a, work, False)
        cp = conflux(a, work, True)
        fw = {"ok": False, "why": "skipped (--skip-flower)"} if a.skip_flower else \
            flower(a, work, cx["update_bytes"], cx["tensors"])
    finally:
        if not a.workdir:
            shutil.rmtree(work, ignore_errors=True)
    steady = cx["rounds"][1:]
    for c in (cx, cp):
        c["steady"] = spread([r["seconds"] for r in c["rounds"][1:]])
    round_bytes = statistics.median([r["bytes"] for r in steady])
    cx["round_bytes"] = round_bytes
    fl["floor_plain_s"] = round_bytes / (fl["raw_plain_gbps"] * 1e9)
    fl["floor_curve_s"] = round_bytes / (fl["raw_curve_gbps"] * 1e9)
    if fw.get("ok"):
        fw["steady"] = spread([r["seconds"] for r in fw["rounds"][1:]])
    result = {"floor": fl, "conflux": cx, "conflux_plain": cp, "flower": fw}

    print(f"update: {cx['update_bytes']} bytes ({mb(cx['update_bytes'])}) float32 in {cx['tensors']} tensors; "
          f"Conflux round bytes (in + out, median) {round_bytes} ({mb(round_bytes)})")
    print(f"ZeroMQ tcp loopback, {a.floor_mib} MiB frames (this run): {fl['raw_plain_gbps']:.2f} GB/s plain, "
          f"{fl['raw_curve_gbps']:.2f} GB/s CURVE")
    print()
    print("| system | round wall time, median (min-max) | coordinator peak RSS | whole run |")
    print("| --- | --- | --- | --- |")
    for c in (cx, cp):
        print(f"| {c['system']} | {fmt_spread(c['steady'])} | {mb(c['peak_rss_bytes'])} | {c['wall_s']:.1f} s |")
    if fw.get("ok"):
        print(f"| flower | {fmt_spread(fw['steady'])} | {mb(fw['peak_rss_bytes'])} | {fw['wall_s']:.1f} s |")
    else:
        print(f"| flower | FAILED | - | - |")
    print(f"| floor (plain) | {fl['floor_plain_s']:.3f} s | - | - |")
    print(f"| floor (CURVE) | {fl['floor_curve_s']:.3f} s | - | - |")
    print()
    med, medp = cx["steady"]["median"], cp["steady"]["median"]
    result["ratios"] = {"conflux_over_curve_floor": med / fl["floor_curve_s"],
                        "conflux_plain_over_plain_floor": medp / fl["floor_plain_s"]}
    print(f"conflux / floor: {med / fl['floor_curve_s']:.2f}x the CURVE floor (CURVE on); "
          f"{medp / fl['floor_plain_s']:.2f}x the plain floor (no CURVE) (goal <= 1.5x)")
    if fw.get("ok"):
        speed, speedp = fw["steady"]["median"] / med, fw["steady"]["median"] / medp
        mem = cx["peak_rss_bytes"] / fw["peak_rss_bytes"]
        result["ratios"].update(flower_over_conflux_time=speed, flower_over_conflux_plain_time=speedp,
                                conflux_over_flower_rss=mem)
        print(f"flower / conflux round time: {speed:.2f}x with CURVE, {speedp:.2f}x without (goal >= 5x); "
              f"conflux / flower peak RSS: {mem:.3f} (goal <= 0.333)")
    else:
        print(f"flower failed: {fw.get('why', '')}")
        for k in ("server_log_tail", "client0_log_tail"):
            if fw.get(k):
                print(f"  {k}: {fw[k][-400:]!r}")
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
