#!/usr/bin/python3
"""Unit checks of the Python participant (worker/python) without a coordinator: trainer/data.h's
window split and per-epoch permutations (training windows only, each once per epoch), FedProx's
term mu/2 ||w - w_g||^2 and its gradient mu (w - w_g), the shared-input LRU rule the coordinator
mirrors (dispatcher.cpp cache_insert), and a message chunked into 64 KiB wire messages by the
sender decoded back exactly by the receiver (the protoc-generated module, no socket traffic).
Exits 77 (ctest SKIP) only when python3-torch, python3-h5py or python3-zmq is missing.

usage: python_participant_unit_test.py WORKDIR
"""
import os
import shutil
import sys
import threading

try:
    import h5py  # noqa: F401
    import torch
    import zmq
except ImportError as e:
    print(f"SKIP: {e}")
    sys.exit(77)
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "worker", "python"))
import conflux_gpt as cg  # noqa: E402
import conflux_participant as cp  # noqa: E402

WORK = sys.argv[1]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def windows():
    for n, T, frac in [(1000, 32, 0.1), (65, 32, 0.1), (1001, 10, 0.0), (5000, 7, 0.25)]:
        w = cg.TokenWindows(np.arange(n, dtype=np.int32), T, frac, seed=5)
        total = (n - 1) // T
        val = max(1, int(np.floor(frac * total))) if frac > 0 else 0
        check((w.train, w.val) == (total - val, val), f"split of {n} tokens, T={T}, f={frac}: {w.train}, {w.val}")
        seen = w.next_batch(w.train * 2 + 3)
        every = list(range(w.train))
        check(sorted(seen[:w.train]) == every and sorted(seen[w.train:2 * w.train]) == every,
              f"each epoch visits every training window once ({n}, {T})")
        check(max(seen) < w.train, "training batches never include a validation window")
        check(w.val_windows() == list(range(w.train, total)), "validation windows are the last ones")
        ids, tg = w.batch([0, total - 1])
        check(ids.shape == (2, T) and torch.equal(ids[:, 1:], tg[:, :-1]) and int(ids[1, 0]) == (total - 1) * T
              and int(tg[1, -1]) == total * T,
              "a window is tokens [w*T, w*T + T + 1)")
    try:
        cg.TokenWindows(np.arange(40, dtype=np.int32), 32, 0.1, 0)
        check(False, "a stream with fewer than two windows is refused")
    except ValueError:
        pass


def fedprox():
    torch.manual_seed(0)
    model = cg.GPT(cg.GptConfig(16, 8, 1, 2, 8))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    g = [p.detach().clone() + 0.01 * torch.randn_like(p) for p in model.parameters()]
    ctx = cp.TrainContext(model, {"local": {"proximal_mu": 0.3, "batch_size": 2}}, g, None, 0, threading.Event())
    term = ctx.proximal_term()
    want = 0.15 * sum(float((p.detach() - q).double().pow(2).sum()) for p, q in zip(model.parameters(), g))
    check(abs(float(term) - want) <= 1e-6 * want, f"FedProx term {float(term)} == mu/2 ||w - w_g||^2 {want}")
    term.backward()
    err = max(float((p.grad - 0.3 * (p.detach() - q)).abs().max()) for p, q in zip(model.parameters(), g))
    check(err < 1e-6, f"FedProx gradient is mu (w - w_g) (max error {err})")
    ctx0 = cp.TrainContext(model, {"local": {"proximal_mu": 0}}, g, None, 0, threading.Event())
    check(float(ctx0.proximal_term()) == 0.0, "no proximal term when mu = 0")


def lru():
    a = lambda n: [("t", np.zeros(n, np.uint8))]  # noqa: E731
    c = cp.SharedCache(100)
    c.put("a", a(60))
    c.put("b", a(30))
    check(c.get("a") is not None, "a held")
    c.put("c", a(20))  # 110 > 100: the least recently used (b, since a was just read) goes
    check(c.get("b") is None and c.get("a") is not None and c.get("c") is not None,
          f"LRU eviction: {list(c.entries)}")
    c.put("big", a(101))
    check(c.get("big") is None, "an entry larger than the cache is not kept")
    z = cp.SharedCache(0)
    z.put("x", a(1))
    check(z.get("x") is None, "a zero cache keeps nothing")


class FakeSocket:
    def __init__(self):
        self.sent = []

    def send_multipart(self, frames, copy=False):
        self.sent.append([bytes(f) for f in frames])

    def close(self, linger=0):
        pass


def chunking():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    pb = cp.load_protocol(os.path.join(HERE, "..", "..", "protocol", "proto", "conflux_protocol.proto"), WORK)
    pub, sec = zmq.curve_keypair()
    conn = cp.Connection(pb, "tcp://127.0.0.1:9", pub.decode(), sec.decode(), 64 << 20, 64 << 10)
    conn.sock.close(linger=0)
    conn.sock = FakeSocket()
    rng = np.random.default_rng(1)
    tensors = [("a", rng.standard_normal((300, 100)).astype(np.float32)), ("empty", np.zeros((0,), np.float32)),
               ("b", rng.integers(0, 9, (5000,)).astype(np.int64)), ("c", np.arange(3, dtype=np.float64))]
    h = pb.Header(version=2, type=pb.RESULT, job_id="j", task_id=7, round=3)
    h.result.kind, h.result.summary = "fit", '{"x": 1}'
    n = conn.send(h, tensors)
    total = sum(t.nbytes for _, t in tensors)
    check(n == -(-total // (64 << 10)) and len(conn.sock.sent) == n, f"{total} bytes in {n} wire messages of 64 KiB")
    seqs = []
    got = None
    for frames in conn.sock.sent:
        w = pb.Header()
        w.ParseFromString(frames[0])
        seqs.append(w.sequence)
        check(sum(len(f) for f in frames[1:]) <= 64 << 10, "each wire message carries at most the chunk size")
        check(w.chunk.count == n and w.chunk.transfer_id == seqs[0] and w.task_id == 7 and w.round == 3,
              "chunk fields, task and round on every chunk")
        check(w.HasField("result") == (w.chunk.index == 0), "only chunk 0 carries the body")
        got = conn.receive(frames)
    check(seqs == list(range(seqs[0], seqs[0] + n)), f"sequences increase by one per wire message: {seqs}")
    if check(got is not None, "the message is delivered after the last chunk") or got:
        head, arrays = got
        check(head.result.summary == '{"x": 1}' and [a for a, _ in arrays] == [a for a, _ in tensors],
              "body and tensor names survive")
        check(all(x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)
                  for (_, x), (_, y) in zip(arrays, tensors)), "tensor bytes, dtypes and shapes survive")
    conn.sock.sent.clear()
    conn.send(pb.Header(version=2, type=pb.HEARTBEAT))
    w = pb.Header()
    w.ParseFromString(conn.sock.sent[0][0])
    check(not w.HasField("chunk") and len(conn.sock.sent) == 1, "a small message is a single wire message")


def main():
    windows()
    fedprox()
    lru()
    chunking()
    print("python_participant_unit_test:", "OK" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
