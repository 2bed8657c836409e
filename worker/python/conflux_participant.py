#!/usr/bin/python3
"""A Conflux federated participant in Python: pyzmq (CURVE) + the protobuf module `protoc`
generates from protocol/proto/conflux_protocol.proto + PyTorch. It speaks wire protocol v2
(docs/protocol.md) to `conflux federate` and runs the task kinds "fit" and
"evaluate_federated" exactly as conflux-worker's executors do (tasks/include/conflux/tasks/
fit_task.h), on the Conflux GPT re-implemented in conflux_gpt.py.

Contract of "fit": params are FitParams JSON (model, local, seed, round, evaluate); the task's
shared inputs are the global weights (float32, named and shaped like the GPT's parameters), cached
by shared_key with the LRU rule the coordinator mirrors (Hello.shared_cache_bytes). The result is
the new weights (same names, shapes, float32, in the model's order) and the summary JSON:
num_examples (training windows), steps, train_loss, update_norm, manifest_sha256, train_windows,
val_windows, round, and with params.evaluate the global model's val_loss_sum (float64 summed
token NLL) and val_tokens. The local loop is pluggable: see TrainContext and default_train, and
--train-fn MODULE:FUNCTION (README.md).

Threads: the main thread owns the socket (hello, heartbeats, tasks, cancel); one task at a time
runs on a second thread, whose result goes back through a queue. Exit codes: 0 after a bye with
--exit-on-bye or SIGINT/SIGTERM, 2 for usage errors, 3 after --give-up-after seconds without a
coordinator.
"""
import argparse
import importlib
import importlib.util
import json
import math
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import OrderedDict

import numpy as np
import torch
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import conflux_gpt as cg  # noqa: E402

PROTOCOL_VERSION = 2
SOFTWARE = "conflux-participant-python 0.1.0"
DEFAULT_PROTO = os.path.join(HERE, "..", "..", "protocol", "proto", "conflux_protocol.proto")
NP_DTYPES = {1: np.float32, 2: np.float64, 4: np.float16, 5: np.int32, 6: np.int64, 7: np.uint8}
MIN_CHUNK = 64 << 10       # the coordinator's floor for a peer's chunk size (link.cpp)
MAX_PIECES = 4096          # pieces per wire message (codec.cpp)


def load_protocol(proto=None, out_dir=None):
    """The generated module conflux_protocol_pb2: imported from sys.path / $CONFLUX_PB2_DIR when
    present, else generated with `protoc` from the project's .proto into out_dir (a temporary
    directory by default), so the generated code always matches the protobuf runtime installed
    alongside protoc (Debian: protobuf-compiler and python3-protobuf, both 3.21)."""
    extra = os.environ.get("CONFLUX_PB2_DIR")
    if extra:
        sys.path.insert(0, extra)
    if proto is None:
        try:
            import conflux_protocol_pb2
            return conflux_protocol_pb2
        except ImportError:
            pass
    proto = os.path.abspath(proto or DEFAULT_PROTO)
    if not os.path.exists(proto):
        raise SystemExit(f"conflux_participant: {proto}: no such .proto file (give --proto)")
    out_dir = out_dir or tempfile.mkdtemp(prefix="conflux-pb2-")
    p = subprocess.run(["protoc", "-I" + os.path.dirname(proto), "--python_out=" + out_dir, proto],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"conflux_participant: protoc failed on {proto}: {p.stderr.strip()}")
    sys.path.insert(0, out_dir)
    import conflux_protocol_pb2
    return conflux_protocol_pb2


def read_secret_key(path):
    """The secret key of a `conflux keygen` .key file: the one non-comment line (40 chars Z85)."""
    try:
        lines = [l.strip() for l in open(path) if l.strip() and not l.lstrip().startswith("#")]
    except OSError as e:
        raise SystemExit(f"conflux_participant: --key {path}: {e}")
    if len(lines) != 1 or len(lines[0]) != 40:
        raise SystemExit(f"conflux_participant: {path}: expected exactly one 40-character Z85 secret key")
    return lines[0]


def read_public_key(path_or_key):
    """A .pub file's key (first word of the first non-comment line), or the key itself."""
    if len(path_or_key) == 40 and not os.path.exists(path_or_key):
        return path_or_key
    try:
        lines = [l.split()[0] for l in open(path_or_key) if l.strip() and not l.lstrip().startswith("#")]
    except OSError as e:
        raise SystemExit(f"conflux_participant: --server-key {path_or_key}: {e}")
    if not lines or len(lines[0]) != 40:
        raise SystemExit(f"conflux_participant: {path_or_key}: no 40-character Z85 public key")
    return lines[0]


class TaskError(Exception):
    """A task failure with the protocol's TaskErrorKind name (DATA, CONFIG, INTERNAL, ...)."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class Cancelled(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# The local training loop (pluggable)
# ---------------------------------------------------------------------------------------------

class TrainContext:
    """What a training function gets. Attributes:
      model      the GPT (conflux_gpt.GPT) holding the global weights; train it in place
      params     the task's FitParams as a dict (model, local, seed, round, evaluate)
      local      params["local"] (steps, epochs, batch_size, optimizer, lr, momentum,
                 weight_decay, proximal_mu, grad_clip, val_fraction, eval_windows, threads)
      global_params  detached copies of the global weights, in model.parameters() order
      windows    conflux_gpt.TokenWindows: the participant's own training windows only
      steps      the number of local steps the task asks for (local.steps, or from local.epochs)
    Methods: batches() yields `steps` (ids, targets) batches of local.batch_size training
    windows; check_cancelled() raises when the coordinator cancelled the task (call it once a
    step); proximal_term() is FedProx's mu/2 ||w - w_global||^2 (0 when mu = 0)."""

    def __init__(self, model, params, global_params, windows, steps, cancel_event):
        self.model, self.params, self.local = model, params, params["local"]
        self.global_params, self.windows, self.steps = global_params, windows, steps
        self._cancel = cancel_event

    def check_cancelled(self):
        if self._cancel.is_set():
            raise Cancelled("cancelled by the coordinator")

    def batches(self):
        for _ in range(self.steps):
            self.check_cancelled()
            yield self.windows.batch(self.windows.next_batch(int(self.local["batch_size"])))

    def proximal_term(self):
        mu = float(self.local.get("proximal_mu", 0))
        if mu <= 0:
            return torch.zeros(())
        prox = torch.zeros(())
        for p, g in zip(self.model.parameters(), self.global_params):
            prox = prox + (p - g).pow(2).sum()
        return 0.5 * mu * prox


def default_train(ctx):
    """fit_executor.cpp's loop: a fresh SGD (momentum, L2 weight decay) or AdamW (decoupled
    weight decay) every round, mean cross-entropy plus the FedProx term, optional gradient-norm
    clipping. Returns {"steps": n, "train_loss": mean of the steps' losses (without the
    proximal term)}."""
    L = ctx.local
    params = list(ctx.model.parameters())
    if L.get("optimizer", "sgd") == "adamw":
        opt = torch.optim.AdamW(params, lr=L["lr"], weight_decay=L.get("weight_decay", 0.0))
    else:
        opt = torch.optim.SGD(params, lr=L["lr"], momentum=L.get("momentum", 0.0),
                              weight_decay=L.get("weight_decay", 0.0))
    ctx.model.train()
    loss_sum, steps = 0.0, 0
    for ids, targets in ctx.batches():
        opt.zero_grad()
        loss = ctx.model.loss(ids, targets)
        (loss + ctx.proximal_term()).backward()
        if L.get("grad_clip", 0) > 0:
            torch.nn.utils.clip_grad_norm_(params, L["grad_clip"])
        opt.step()
        value = loss.item()
        if not math.isfinite(value):
            raise TaskError("KIND_DATA", f"local training diverged at step {steps} (loss {value})")
        loss_sum += value
        steps += 1
    ctx.model.eval()
    return {"steps": steps, "train_loss": loss_sum / max(1, steps)}


# ---------------------------------------------------------------------------------------------
# The executors
# ---------------------------------------------------------------------------------------------

class Participant:
    """Runs "fit" / "evaluate_federated" tasks on one dataset; caches the dataset and the model."""

    def __init__(self, data_path, train_fn=default_train):
        self.data_path, self.train_fn = data_path, train_fn
        self.data = cg.TokenDataset(data_path) if data_path else None
        self.model = None

    def run(self, kind, params_json, shared, cancel_event):
        """shared: [(name, np.ndarray)]. Returns (summary dict, [(name, float32 array)])."""
        try:
            p = json.loads(params_json)
            cfg = cg.GptConfig.from_params(p["model"])
            L = p["local"]
        except (ValueError, KeyError, TypeError) as e:
            raise TaskError("KIND_CONFIG", f"{kind}: bad params: {e}")
        if p.get("secagg"):
            # The coordinator leaves participants without the secagg_* kinds out of secure rounds;
            # a masked-input task reaching this one anyway is refused rather than answered in the clear.
            raise TaskError("KIND_CONFIG", f"{kind}: secure aggregation is not supported by the Python participant "
                                           "(use conflux-worker, or secure_aggregation.enabled = false)")
        if self.data is None:
            raise TaskError("KIND_CONFIG", f"{kind}: this participant has no --data dataset")
        if self.data.vocab_size > cfg.vocab_size:
            raise TaskError("KIND_DATA", f"{self.data_path}: the tokenizer's vocabulary ({self.data.vocab_size}) "
                                         f"exceeds the model's model.vocab_size ({cfg.vocab_size})")
        torch.set_num_threads(int(L.get("threads", 1)))
        torch.manual_seed(int(p.get("seed", 0)))
        if self.model is None or self.model.config.as_dict() != cfg.as_dict():
            self.model = cg.GPT(cfg)
        try:
            self.model.load_named(shared)
        except ValueError as e:
            raise TaskError("KIND_CONFIG", f"{kind}: {e}")
        global_params = [q.detach().clone() for q in self.model.parameters()]
        try:
            windows = cg.TokenWindows(self.data.tokens, cfg.context, float(L.get("val_fraction", 0.1)),
                                      int(p.get("seed", 0)))
        except ValueError as e:
            raise TaskError("KIND_DATA", f"{self.data_path}: {e}")
        s = {"manifest_sha256": self.data.manifest_sha256, "train_windows": windows.train,
             "val_windows": windows.val, "round": p.get("round", 0)}
        fit = kind == "fit"
        if not fit or p.get("evaluate", False):
            s.update(self.validation(windows, int(L.get("eval_windows", 0)), int(L["batch_size"]), cancel_event))
        outputs = []
        if fit:
            steps = int(L.get("steps", 10))
            if float(L.get("epochs", 0)) > 0:
                steps = max(1, math.ceil(float(L["epochs"]) * windows.train / int(L["batch_size"])))
            ctx = TrainContext(self.model, p, global_params, windows, steps, cancel_event)
            got = self.train_fn(ctx) or {}
            norm2 = 0.0
            with torch.no_grad():
                for q, g in zip(self.model.parameters(), global_params):
                    norm2 += float((q - g).double().pow(2).sum())
            s.update({"num_examples": windows.train, "steps": int(got.get("steps", steps)),
                      "train_loss": float(got.get("train_loss", 0.0)), "update_norm": math.sqrt(norm2)})
            outputs = [(n, q.detach().contiguous().numpy().astype(np.float32, copy=False))
                       for n, q in self.model.named_parameters()]
            for n, a in outputs:
                if not np.isfinite(a).all():
                    raise TaskError("KIND_DATA", f"{kind}: the trained tensor '{n}' has NaN or Inf")
        return s, outputs

    def validation(self, windows, eval_windows, batch_size, cancel_event):
        """Summed token NLL (float64 logits, like the C++) over the validation windows."""
        idx = windows.val_windows(eval_windows)
        nll, tokens = 0.0, 0
        self.model.eval()
        with torch.no_grad():
            for b in range(0, len(idx), batch_size):
                if cancel_event.is_set():
                    raise Cancelled("cancelled by the coordinator")
                ids, targets = windows.batch(idx[b:b + batch_size])
                logits = self.model(ids).double()
                nll += float(torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum"))
                tokens += targets.numel()
        return {"val_loss_sum": nll, "val_tokens": tokens}


# ---------------------------------------------------------------------------------------------
# The protocol
# ---------------------------------------------------------------------------------------------

class SharedCache:
    """The worker's LRU of shared inputs (worker.cpp; the coordinator mirrors it): drop the entries
    whose keys start with `replaces` (Task.shared_replaces), replace, put first, evict the least
    recently used until the total fits; an entry larger than the cache is not kept."""

    def __init__(self, capacity):
        self.capacity, self.entries = capacity, OrderedDict()

    def put(self, key, tensors, replaces=""):
        for k in [k for k in self.entries if k == key or (replaces and k.startswith(replaces))]:
            del self.entries[k]
        nbytes = sum(a.nbytes for _, a in tensors)
        if nbytes > self.capacity:
            return
        self.entries[key] = (tensors, nbytes)
        self.entries.move_to_end(key, last=False)
        while sum(n for _, n in self.entries.values()) > self.capacity:
            self.entries.popitem(last=True)

    def get(self, key):
        if key not in self.entries:
            return None
        self.entries.move_to_end(key, last=False)
        return self.entries[key][0]


class Connection:
    """One DEALER socket to the coordinator with CURVE; encodes/decodes v2 messages with the
    generated protobuf module (chunking both ways)."""

    def __init__(self, pb, endpoint, server_key, secret_key, max_frame, chunk_bytes):
        self.pb, self.endpoint = pb, endpoint
        self.server_key, self.secret_key = server_key.encode(), secret_key.encode()
        self.public_key = zmq.curve_public(self.secret_key)
        self.max_frame, self.chunk_bytes = max_frame, chunk_bytes
        self.instance = int.from_bytes(os.urandom(8), "little") or 1
        self.sequence = 1
        self.peer_chunk = 8 << 20
        self.sock = None
        self.transfer = None
        self.reconnect()

    def reconnect(self):
        if self.sock is not None:
            self.sock.close(linger=0)
        s = zmq.Context.instance().socket(zmq.DEALER)
        s.linger = 0
        s.sndhwm = s.rcvhwm = 10000
        s.maxmsgsize = max(self.max_frame, 16 << 20)
        s.curve_serverkey, s.curve_publickey, s.curve_secretkey = self.server_key, self.public_key, self.secret_key
        s.connect(self.endpoint)
        self.sock, self.transfer = s, None
        self.wires = 0  # wire messages of the transfer in progress / last delivered

    def send(self, header, tensors=()):
        """header: a pb.Header with type/body/job/task/round set; tensors: [(name, array)]."""
        pb = self.pb
        # The coordinator's stated limit lowers our chunk size, down to the floor it keeps itself.
        chunk = min(self.chunk_bytes, max(MIN_CHUNK, self.peer_chunk))
        blobs = [np.ascontiguousarray(a) for _, a in tensors]
        codes = {np.dtype(v): k for k, v in NP_DTYPES.items()}
        plan, used = [[]], 0
        for i, b in enumerate(blobs):
            off, n = 0, b.nbytes
            while off < n:
                if used == chunk or len(plan[-1]) == MAX_PIECES:
                    plan.append([])
                    used = 0
                ln = min(chunk - used, n - off)
                plan[-1].append((i, off, ln))
                used += ln
                off += ln
        transfer_id = self.sequence
        for k, pieces in enumerate(plan):
            h = pb.Header()
            if k == 0:
                h.CopyFrom(header)
                for (name, _), b in zip(tensors, blobs):
                    h.tensors.add(name=name, dtype=codes[b.dtype], shape=list(b.shape), byte_length=b.nbytes)
            else:
                h.version, h.type, h.job_id = header.version, header.type, header.job_id
                h.task_id, h.round, h.instance = header.task_id, header.round, header.instance
            h.version, h.instance = PROTOCOL_VERSION, self.instance
            h.sequence = self.sequence
            self.sequence += 1
            if len(plan) > 1:
                h.chunk.transfer_id, h.chunk.index, h.chunk.count = transfer_id, k, len(plan)
            frames = []
            for i, off, ln in pieces:
                h.pieces.add(tensor=i, offset=off, length=ln)
                frames.append(memoryview(blobs[i].reshape(-1).view(np.uint8))[off:off + ln])
            self.sock.send_multipart([h.SerializeToString()] + frames, copy=False)
        return len(plan)

    def receive(self, frames):
        """(header, [(name, array)]) once a whole message has arrived, else None."""
        h = self.pb.Header()
        h.ParseFromString(frames[0].bytes if hasattr(frames[0], "bytes") else frames[0])
        chunked = h.HasField("chunk")
        if not chunked or h.chunk.index == 0:
            bufs = [bytearray(t.byte_length) for t in h.tensors]
            self.transfer, self.wires = (h, bufs), 0
        elif self.transfer is None:
            return None
        head, bufs = self.transfer
        self.wires += 1
        for p, f in zip(h.pieces, frames[1:]):
            data = f.bytes if hasattr(f, "bytes") else f
            bufs[p.tensor][p.offset:p.offset + len(data)] = data
        if chunked and h.chunk.index + 1 < h.chunk.count:
            return None
        self.transfer = None
        arrays = []
        for t, b in zip(head.tensors, bufs):
            if t.dtype not in NP_DTYPES:
                raise TaskError("KIND_DATA", f"tensor '{t.name}' has dtype {t.dtype}, not supported here")
            arrays.append((t.name, np.frombuffer(bytes(b), dtype=NP_DTYPES[t.dtype]).reshape(list(t.shape))))
        return head, arrays


def data_summary(pb, data):
    d = pb.DataSummary()
    if data is not None:
        d.dataset = os.path.basename(os.path.normpath(data.path))
        d.rows = data.rows
        d.fields.extend(data.fields)
        d.manifest_digest = data.manifest_digest
    return d


def serve(args, participant, pb):
    log = lambda *a: print(f"conflux-participant[{args.name}]:", *a, file=sys.stderr, flush=True)  # noqa: E731
    conn = Connection(pb, args.connect, read_public_key(args.server_key), read_secret_key(args.key),
                      args.max_frame_kib << 10, args.chunk_kib << 10)
    cache = SharedCache(args.shared_cache_mib << 20)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    results = queue.Queue()
    running = None  # (header of the task, cancel event, thread)
    welcomed, job_id = False, ""
    heartbeat_s, dead_after_s = 1.0, args.dead_after_ms / 1000.0
    next_hello = next_hb = 0.0
    last_heard = time.time()
    lost_since = time.time()

    def header(mtype, job="", task_id=0, rnd=0):
        h = pb.Header(version=PROTOCOL_VERSION, type=mtype, job_id=job, task_id=task_id, round=rnd)
        return h

    def send_hello():
        h = header(pb.HELLO)
        h.hello.name = args.name
        h.hello.task_kinds.extend(["fit", "evaluate_federated"])
        h.hello.slots = 1
        h.hello.max_chunk_bytes = args.max_frame_kib << 10
        h.hello.data.CopyFrom(data_summary(pb, participant.data))
        h.hello.software = SOFTWARE
        h.hello.shared_cache_bytes = args.shared_cache_mib << 20
        conn.send(h)

    def task_error(th, code, kind, text):
        h = header(pb.ERROR, th.job_id, th.task_id, th.round)
        h.error.code, h.error.message = code, text[:4000]
        h.error.attempt, h.error.kind = th.task.attempt, pb.TaskErrorKind.Value(kind)
        conn.send(h)

    def run_task(th, shared, cancel, wires):
        start = time.time()
        try:
            summary, outputs = participant.run(th.task.kind, th.task.params, shared, cancel)
            results.put((th, "ok", (summary, outputs, int((time.time() - start) * 1000), wires)))
        except Cancelled as e:
            results.put((th, "cancelled", str(e)))
        except TaskError as e:
            results.put((th, "error", (e.kind, str(e))))
        except Exception as e:  # an unexpected failure: report it, keep serving
            traceback.print_exc()
            results.put((th, "error", ("KIND_INTERNAL", f"{type(e).__name__}: {e}")))

    def answer(th, status, value):
        """Sends a finished task's RESULT or ERROR."""
        if status == "ok":
            summary, outputs, elapsed, wires_in = value
            h = header(pb.RESULT, th.job_id, th.task_id, th.round)
            h.result.kind, h.result.attempt = th.task.kind, th.task.attempt
            h.result.summary, h.result.elapsed_ms = json.dumps(summary), elapsed
            wires_out = conn.send(h, outputs)
            log(f"{th.task.kind}: round {th.round} task {th.task_id}: done "
                f"(train_loss {summary.get('train_loss', float('nan')):.4f}; task in {wires_in} "
                f"wire message(s), result in {wires_out})")
        elif status == "cancelled":
            log(f"{th.task.kind}: task {th.task_id} stopped: {value}")
            task_error(th, pb.TASK_CANCELLED, "KIND_CANCELLED", value)
        else:
            log(f"{th.task.kind}: task {th.task_id} failed: {value[1]}")
            task_error(th, pb.TASK_FAILED, value[0], value[1])

    def finish_running(why):
        """Stops the running task (if any), waits up to 10 s for it and answers it."""
        if running is None:
            return
        running[1].set()
        running[2].join(timeout=10)
        try:
            answer(*results.get_nowait())
        except queue.Empty:
            log(f"task {running[0].task_id} did not stop within 10 s ({why})")

    while not stop.is_set():
        now = time.time()
        if not welcomed:
            if args.give_up_after > 0 and now - lost_since > args.give_up_after:
                log(f"no coordinator at {args.connect} for {args.give_up_after} s: giving up")
                return 3
            if now >= next_hello:
                send_hello()
                next_hello = now + 1.0
        else:
            if now >= next_hb:
                hb = header(pb.HEARTBEAT, job_id)
                hb.heartbeat.SetInParent()  # an empty body, present (the oneof says the type)
                conn.send(hb)
                next_hb = now + heartbeat_s
            if now - last_heard > dead_after_s:
                log("coordinator silent: reconnecting")
                welcomed, lost_since = False, now
                conn.reconnect()
                next_hello = 0.0
        try:
            finished = results.get_nowait()
            running = None
            answer(*finished)
        except queue.Empty:
            pass
        if not conn.sock.poll(20):
            continue
        try:
            got = conn.receive(conn.sock.recv_multipart(copy=True))
        except Exception as e:
            log(f"dropped a malformed message from the coordinator: {e}")
            continue
        if got is None:
            continue
        h, tensors = got
        last_heard = time.time()
        if h.type == pb.WELCOME:
            welcomed, job_id = True, h.job_id
            heartbeat_s = max(0.01, h.welcome.heartbeat_interval_ms / 1000.0 or 1.0)
            dead_after_s = max(heartbeat_s * 2, h.welcome.dead_after_ms / 1000.0 or dead_after_s)
            if h.welcome.max_chunk_bytes:
                conn.peer_chunk = h.welcome.max_chunk_bytes
            log(f"welcomed by {args.connect} as {h.welcome.identity}")
        elif h.type == pb.TASK:
            t = h.task
            if running is not None:
                task_error(h, pb.WORKER_BUSY, "KIND_RESOURCE", "one task at a time")
                continue
            if t.kind not in ("fit", "evaluate_federated"):
                task_error(h, pb.UNKNOWN_KIND, "KIND_CONFIG", f"no executor for task kind '{t.kind}'")
                continue
            shared = []
            if t.shared_key:
                if t.shared_count > len(tensors):
                    task_error(h, pb.MALFORMED, "KIND_INTERNAL", "shared_count exceeds the tensors sent")
                    continue
                if t.shared_count > 0:
                    shared, tensors = tensors[:t.shared_count], tensors[t.shared_count:]
                    cache.put(t.shared_key, shared, t.shared_replaces)
                else:
                    held = cache.get(t.shared_key)
                    if held is None:
                        task_error(h, pb.UNKNOWN_SHARED, "KIND_RESOURCE",
                                   "no cached shared inputs under key " + t.shared_key)
                        continue
                    shared = held
            shared = shared or tensors
            cancel = threading.Event()
            thread = threading.Thread(target=run_task, args=(h, shared, cancel, conn.wires), daemon=True)
            running = (h, cancel, thread)
            thread.start()
        elif h.type == pb.CANCEL:
            if running is not None and running[0].task_id == h.task_id and running[0].task.attempt == h.cancel.attempt:
                log(f"CANCEL for task {h.task_id} attempt {h.cancel.attempt}: {h.cancel.reason}")
                running[1].set()
        elif h.type == pb.BYE:
            log(f"coordinator said bye: {h.bye.reason}")
            finish_running("bye")
            running = None
            if args.exit_on_bye:
                return 0
            welcomed, lost_since, next_hello = False, time.time(), time.time() + 1.0
        elif h.type == pb.ERROR:
            log(f"coordinator error {pb.ErrorCode.Name(h.error.code)}: {h.error.message}")
            if h.error.code == pb.UNKNOWN_SESSION and welcomed:  # a restarted coordinator: hello again
                welcomed, lost_since, next_hello = False, time.time(), 0.0
    finish_running("stopping")
    try:
        bye = header(pb.BYE, job_id)
        bye.bye.reason = "participant stopping"
        conn.send(bye)
    except zmq.ZMQError:
        pass
    return 0


def load_train_fn(spec):
    """MODULE:FUNCTION (a module on sys.path or a path to a .py file)."""
    mod, _, fn = spec.rpartition(":")
    if not mod or not fn:
        raise SystemExit(f"conflux_participant: --train-fn {spec}: expected MODULE:FUNCTION")
    if mod.endswith(".py"):
        spec_ = importlib.util.spec_from_file_location(os.path.basename(mod)[:-3], mod)
        m = importlib.util.module_from_spec(spec_)
        spec_.loader.exec_module(m)
    else:
        m = importlib.import_module(mod)
    return getattr(m, fn)


def main(argv=None, train_fn=None):
    ap = argparse.ArgumentParser(description="Conflux federated participant in Python (fit, evaluate_federated)")
    ap.add_argument("--connect", required=True, help="coordinator endpoint, e.g. tcp://127.0.0.1:5555")
    ap.add_argument("--server-key", required=True, help="the coordinator's .pub file (or its Z85 public key)")
    ap.add_argument("--key", required=True, help="this participant's .key file (conflux keygen)")
    ap.add_argument("--data", required=True, help="a Conflux tokens dataset directory")
    ap.add_argument("--name", default="python", help="display name sent in the hello")
    ap.add_argument("--exit-on-bye", action="store_true", help="exit 0 when the coordinator says bye")
    ap.add_argument("--give-up-after", type=float, default=0, help="exit 3 after this many s without coordinator")
    ap.add_argument("--dead-after-ms", type=int, default=30000,
                    help="coordinator silence before reconnecting (Welcome.dead_after_ms replaces it)")
    ap.add_argument("--shared-cache-mib", type=int, default=1024, help="LRU cache of shared inputs (0: none)")
    ap.add_argument("--max-frame-kib", type=int, default=64 << 10,
                    help="largest frame accepted: the coordinator chunks to it (Hello.max_chunk_bytes; >= 64)")
    ap.add_argument("--chunk-kib", type=int, default=8 << 10, help="largest payload per message sent (chunking)")
    ap.add_argument("--proto", default=None, help="conflux_protocol.proto to generate the module from")
    ap.add_argument("--train-fn", default=None, help="MODULE:FUNCTION replacing the local training loop")
    args = ap.parse_args(argv)
    if args.max_frame_kib < 64 or args.chunk_kib < 1:
        ap.error("--max-frame-kib must be >= 64 and --chunk-kib >= 1")
    pb = load_protocol(args.proto)
    if args.train_fn:
        train_fn = load_train_fn(args.train_fn)
    train_fn = train_fn or default_train
    print(f"conflux-participant[{args.name}]: local training: {train_fn.__module__}.{train_fn.__name__}",
          file=sys.stderr, flush=True)
    try:
        participant = Participant(args.data, train_fn)
    except (ValueError, OSError) as e:
        print(f"conflux_participant: --data {args.data}: {e}", file=sys.stderr)
        return 2
    return serve(args, participant, pb)


if __name__ == "__main__":
    sys.exit(main())
