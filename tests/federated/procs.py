"""Shared helpers of the federated process tests (federate_process_test.py,
python_participant_test.py): failure collection, subprocess runs, free loopback ports, and
stopping the processes a test started (SIGTERM, then SIGKILL after 20 s), and a fresh work
directory with CURVE keys and one ingested fortunes dataset per participant."""
import os
import shutil
import signal
import socket
import subprocess

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


def run(args, **kw):
    p = subprocess.run(args, capture_output=True, text=True, timeout=kw.pop("timeout", 300), **kw)
    if p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:], sep="\n")
    return p


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def fresh_participants(conflux, work, fortunes, names, files):
    """Empties `work`, creates keys/{coordinator,NAME}.{key,pub} and keys/allow.txt (the
    participants' public keys) and ingests fortunes/FILE as work/data/NAME for each pair."""
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(f"{work}/keys")
    for n in ["coordinator"] + list(names):
        assert run([conflux, "keygen", n, "--out-dir", f"{work}/keys"]).returncode == 0
    with open(f"{work}/keys/allow.txt", "w") as f:
        for n in names:
            f.write(open(f"{work}/keys/{n}.pub").read())
    for name, src in zip(names, files):
        p = run([conflux, "ingest", "-i", f"{fortunes}/{src}", "-f", "fortune", "-o", f"{work}/data/{name}"])
        assert p.returncode == 0, p.stderr
