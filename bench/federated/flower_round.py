#!/usr/bin/env python3
"""Flower 1.42 side of the federated round benchmark (bench/federated/run_rounds.sh).

Flower's real network path, not its simulation engine: the legacy gRPC server
(`flwr.server.start_server`, one process) and N legacy gRPC clients (`flwr.client.start_client`,
one process each) on 127.0.0.1 without TLS, FedAvg, R rounds, no training: each client returns the
weights it was sent, unchanged, with num_examples = 1 (FedAvg of identical weights). The update is
K float32 arrays totalling BYTES bytes (run_rounds.sh passes the exact size of Conflux's update).

  flower_round.py run --clients N --bytes B [--tensors K] --rounds R [--port P]
                      [--max-message BYTES] [--timeout S]
prints one JSON object: per-round seconds (configure_fit start to aggregate_fit end, measured in
the server), the server process's peak RSS (ru_maxrss of the child, so the same measure as for
Conflux's coordinator), the whole run's wall time, the gRPC message limit, and on failure
"ok": false with what failed (exit codes and the tails of the server's and clients' stderr).
Exit code 0 when the run completed, 1 when Flower failed (the JSON says how).
The `server` and `client` sub-commands are the two processes `run` starts.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time


def arrays(total_bytes, tensors):
    import numpy as np
    n = total_bytes // 4
    sizes = [n // tensors + (1 if i < n % tensors else 0) for i in range(tensors)]
    rng = np.random.default_rng(1)
    return [rng.standard_normal(s, dtype=np.float32) for s in sizes]


def server(a):
    import flwr as fl
    from flwr.common import ndarrays_to_parameters

    times = []

    class TimedFedAvg(fl.server.strategy.FedAvg):
        def configure_fit(self, server_round, parameters, client_manager):
            times.append([server_round, time.perf_counter(), None])
            return super().configure_fit(server_round, parameters, client_manager)

        def aggregate_fit(self, server_round, results, failures):
            out = super().aggregate_fit(server_round, results, failures)
            times[-1][2] = time.perf_counter()
            times[-1].append(len(results))
            times[-1].append(len(failures))
            return out

    strategy = TimedFedAvg(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=a.clients,
                           min_evaluate_clients=0, min_available_clients=a.clients,
                           initial_parameters=ndarrays_to_parameters(arrays(a.bytes, a.tensors)))
    fl.server.start_server(server_address=f"127.0.0.1:{a.port}",
                           config=fl.server.ServerConfig(num_rounds=a.rounds, round_timeout=a.timeout),
                           strategy=strategy, grpc_max_message_length=a.max_message)
    rounds = [{"round": r, "seconds": (t1 - t0) if t1 else None, "results": rest[0] if rest else 0,
               "failures": rest[1] if rest else 0} for r, t0, t1, *rest in times]
    print(json.dumps({"rounds": rounds}), flush=True)


def client(a):
    import flwr as fl

    class Echo(fl.client.NumPyClient):
        def get_parameters(self, config):
            return []

        def fit(self, parameters, config):
            return parameters, 1, {}

    fl.client.start_client(server_address=f"127.0.0.1:{a.port}", client=Echo().to_client(), insecure=True,
                           grpc_max_message_length=a.max_message, max_retries=20, max_wait_time=60)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tail(path, n=600):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def run(a):
    port = a.port or free_port()
    work = a.workdir or f"/tmp/flower-round-{os.getpid()}"
    os.makedirs(work, exist_ok=True)
    common = ["--port", str(port), "--max-message", str(a.max_message)]
    me = [sys.executable, os.path.abspath(__file__)]
    t0 = time.perf_counter()
    srv = subprocess.Popen(me + ["server", "--clients", str(a.clients), "--bytes", str(a.bytes), "--tensors",
                                 str(a.tensors), "--rounds", str(a.rounds), "--timeout", str(a.timeout)] + common,
                           stdout=subprocess.PIPE, stderr=open(f"{work}/server.log", "w"), text=True)
    clients = []
    try:
        deadline = time.time() + 60
        while time.time() < deadline and srv.poll() is None:  # the server listens before clients start
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        clients = [subprocess.Popen(me + ["client"] + common, stdout=subprocess.DEVNULL,
                                    stderr=open(f"{work}/client-{i}.log", "w")) for i in range(a.clients)]
        budget = a.timeout * (a.rounds + 1) + 120
        limit = time.time() + budget
        rusage, hung, clients_gone = None, "", None
        while time.time() < limit:
            pid, status, ru = os.wait4(srv.pid, os.WNOHANG)
            if pid:
                rusage, srv.returncode = ru, os.waitstatus_to_exitcode(status)
                break
            if clients_gone is None and all(p.poll() is not None for p in clients):
                clients_gone = time.time()
            if clients_gone and time.time() - clients_gone > 15:  # Flower's server waits for clients forever
                hung = (f"every client exited (exit codes {sorted({p.returncode for p in clients})}) and the "
                        f"server was still waiting for clients 15 s later")
                break
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        out = {"system": "flower", "flwr": __import__("flwr").__version__, "clients": a.clients, "bytes": a.bytes,
               "tensors": a.tensors, "rounds_asked": a.rounds, "grpc_max_message_length": a.max_message,
               "wall_s": wall}
        if rusage is None:
            out.update(ok=False, why=hung or f"server did not finish within {budget:.0f} s")
        else:
            out["peak_rss_bytes"] = rusage.ru_maxrss * 1024
            text = srv.stdout.read()
            try:
                out["rounds"] = json.loads(text.strip().splitlines()[-1])["rounds"]
            except (ValueError, IndexError):
                out["rounds"] = []
            complete = [r for r in out["rounds"] if r["seconds"] is not None and r["results"] == a.clients]
            out["ok"] = srv.returncode == 0 and len(complete) == a.rounds
            if not out["ok"]:
                out["why"] = (f"server exit {srv.returncode}, {len(complete)} of {a.rounds} rounds with all "
                              f"{a.clients} results; rounds {out['rounds']}")
        if not out.get("ok"):
            out["server_log_tail"] = tail(f"{work}/server.log")
            out["client0_log_tail"] = tail(f"{work}/client-0.log")
    finally:
        for p in [srv] + clients:
            if p.poll() is None:
                p.terminate()
        for p in [srv] + clients:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    out["client_exit_codes"] = sorted({p.returncode for p in clients})
    print(json.dumps(out), flush=True)
    return 0 if out.get("ok") else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["run", "server", "client"])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--bytes", type=int, default=10 << 20)
    ap.add_argument("--tensors", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=120, help="per-round timeout (s)")
    ap.add_argument("--max-message", type=int, default=2_147_483_647,
                    help="gRPC max message length, server and clients (Flower's default: 2 GiB - 1)")
    ap.add_argument("--workdir", default="")
    a = ap.parse_args()
    if a.mode == "server":
        server(a)
    elif a.mode == "client":
        client(a)
    else:
        sys.exit(run(a))


if __name__ == "__main__":
    main()
