#!/usr/bin/env python3
"""Independent safetensors reader (python3 + numpy only, no safetensors package).

usage: read_safetensors.py FILE  -> prints JSON {"metadata": {...}, "tensors": {name: {"dtype",
"shape", "values": [...]}}} with values in row-major order. Checks that the header is valid,
offsets are contiguous, in bounds and match dtype x shape, as the safetensors spec requires.
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8,
          "F16": np.float16, "I8": np.int8, "BOOL": np.bool_}


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    out = {}
    spans = []
    for name, e in header.items():
        dt = np.dtype(DTYPES[e["dtype"]]).newbyteorder("<")
        b, end = e["data_offsets"]
        count = int(np.prod(e["shape"])) if e["shape"] else 1
        assert end - b == count * dt.itemsize, f"{name}: size mismatch"
        assert end <= len(data), f"{name}: out of bounds"
        spans.append((b, end))
        arr = np.frombuffer(data[b:end], dtype=dt).reshape(e["shape"])
        out[name] = {"dtype": e["dtype"], "shape": list(e["shape"]),
                     "values": arr.astype(np.float64).ravel().tolist()}
    spans.sort()
    pos = 0
    for b, end in spans:
        assert b == pos, "tensor data not contiguous"
        pos = end
    assert pos == len(data), "trailing bytes after tensor data"
    return {"metadata": meta, "tensors": out}


if __name__ == "__main__":
    json.dump(read(sys.argv[1]), sys.stdout)
