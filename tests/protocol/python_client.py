#!/usr/bin/python3
"""A Conflux worker written from docs/protocol.md alone: pyzmq + numpy + a hand-written protobuf
codec (no generated code), to prove the wire protocol is implementable in another language.
Runs `reduce_sum` tasks until it has done N of them, then says bye.

usage: python_client.py ENDPOINT SERVER_PUB_FILE KEY_FILE N_TASKS
"""
import json
import os
import sys
import time

import numpy as np
import zmq

HELLO, WELCOME, TASK, RESULT, HEARTBEAT, ERROR, BYE, CANCEL = range(1, 9)
PROTOCOL_VERSION = 2
NP = {1: np.float32, 2: np.float64, 4: np.float16, 5: np.int32, 6: np.int64, 7: np.uint8}


# ---- protobuf wire format (varint, length-delimited) ----
def varint(v):
    v &= (1 << 64) - 1  # negative int64 -> two's complement, 10 bytes
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, value):
    """Encodes one field: int -> varint, bytes/str -> length-delimited, list -> repeated."""
    if isinstance(value, list):
        return b"".join(field(num, v) for v in value)
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def message(*fields):
    return b"".join(field(n, v) for n, v in fields if v is not None)


def parse(buf):
    """Decodes a message into {field: [values]} (ints for varints, bytes otherwise)."""
    out, i = {}, 0

    def read_varint():
        nonlocal i
        shift = result = 0
        while True:
            b = buf[i]
            i += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    while i < len(buf):
        key = read_varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            val = read_varint()
        elif wt == 2:
            n = read_varint()
            val = bytes(buf[i:i + n])
            i += n
        elif wt == 1:
            val = int.from_bytes(buf[i:i + 8], "little")
            i += 8
        elif wt == 5:
            val = int.from_bytes(buf[i:i + 4], "little")
            i += 4
        else:
            raise ValueError("bad wire type %d" % wt)
        out.setdefault(num, []).append(val)
    return out


def one(d, num, default=0):
    return d.get(num, [default])[-1]


def packed_ints(d, num):
    vals = []
    for v in d.get(num, []):
        if isinstance(v, int):
            vals.append(v)
        else:  # packed
            j = 0
            while j < len(v):
                shift = r = 0
                while True:
                    b = v[j]
                    j += 1
                    r |= (b & 0x7F) << shift
                    shift += 7
                    if not b & 0x80:
                        break
                vals.append(r - (1 << 64) if r >= 1 << 63 else r)
    return vals


class Client:
    def __init__(self, endpoint, server_pub, pub, sec):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.linger = 2000
        self.sock.curve_serverkey = server_pub.encode()
        self.sock.curve_publickey = pub.encode()
        self.sock.curve_secretkey = sec.encode()
        self.sock.connect(endpoint)
        self.instance = int.from_bytes(os.urandom(8), "little") or 1
        self.seq = 1
        self.job = ""
        self.transfer = None

    def send(self, mtype, body_field, body, task_id=0, rnd=0, tensors=()):
        descs, pieces, frames = [], [], []
        for i, (name, code, arr) in enumerate(tensors):
            data = np.ascontiguousarray(arr).tobytes()
            descs.append(message((1, name), (2, code), (3, [int(s) for s in arr.shape]),
                                 (4, len(data))))
            if data:
                pieces.append(message((1, i), (2, 0), (3, len(data))))
                frames.append(data)
        header = message((1, PROTOCOL_VERSION), (2, mtype), (3, self.job), (4, task_id), (5, rnd),
                         (7, self.seq), (8, self.instance), (9, descs), (10, pieces),
                         (body_field, body))
        self.seq += 1
        self.sock.send_multipart([header] + frames)

    def receive(self, frames):
        """Returns (header dict, [numpy arrays]) for a complete message, else None."""
        h = parse(frames[0])
        chunk = parse(one(h, 11, b"")) if 11 in h else None
        if chunk is None or one(chunk, 2) == 0:
            descs = [parse(t) for t in h.get(9, [])]
            bufs = [bytearray(one(t, 4)) for t in descs]
            self.transfer = (h, descs, bufs)
        head, descs, bufs = self.transfer
        for p, frame in zip(h.get(10, []), frames[1:]):
            p = parse(p)
            off = one(p, 2)
            bufs[one(p, 1)][off:off + len(frame)] = frame
        if chunk is not None and one(chunk, 2) + 1 < one(chunk, 3):
            return None
        arrays = [np.frombuffer(bytes(b), dtype=NP[one(t, 2)]).reshape(packed_ints(t, 3))
                  for t, b in zip(descs, bufs)]
        return head, arrays


def main():
    endpoint, server_pub_file, key_file, n_tasks = sys.argv[1:5]
    server_pub = open(server_pub_file).read().split()[0]
    sec = [l.strip() for l in open(key_file) if l.strip() and not l.startswith("#")][0]
    pub = zmq.curve_public(sec.encode()).decode()
    c = Client(endpoint, server_pub, pub, sec)
    c.send(HELLO, 20, message((1, "python"), (2, ["reduce_sum"]), (3, 1)))
    done, welcomed, next_hb = 0, False, 0.0
    deadline = time.time() + 120
    while time.time() < deadline:
        if welcomed and time.time() > next_hb:
            c.send(HEARTBEAT, 24, b"")
            next_hb = time.time() + 0.1
        if not c.sock.poll(50):
            continue
        got = c.receive(c.sock.recv_multipart())
        if got is None:
            continue
        h, arrays = got
        mtype = one(h, 2)
        if mtype == WELCOME:
            welcomed, c.job = True, one(h, 3, b"").decode()
        elif mtype == TASK:
            task = parse(one(h, 22, b""))
            acc = arrays[0].astype(np.float32 if arrays[0].dtype == np.float16 else arrays[0].dtype)
            for a in arrays[1:]:
                acc = acc + a.astype(acc.dtype)
            acc = acc.astype(arrays[0].dtype)
            code = [k for k, v in NP.items() if v == arrays[0].dtype][0]
            summary = json.dumps({"inputs": len(arrays), "elements": int(acc.size)})
            c.send(RESULT, 23, message((1, one(task, 1, b"").decode()), (2, one(task, 2)), (3, summary)),
                   task_id=one(h, 4), rnd=one(h, 5), tensors=[("sum", code, acc)])
            done += 1
            if done == int(n_tasks):
                c.send(BYE, 26, message((1, "python client done")))
                return 0
        elif mtype == ERROR:
            err = parse(one(h, 25, b""))
            print("coordinator error %d: %s" % (one(err, 1), one(err, 2, b"").decode()), file=sys.stderr)
            return 1
    print("timed out", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())
