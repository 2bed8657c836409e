#!/usr/bin/env python3
"""Independent TensorBoard event-file reader: TFRecord framing with masked CRC-32C checks and a
minimal protobuf decoder for Event / Summary / Summary.Value (python3 only).

usage: read_tfevents.py FILE -> prints JSON {"file_version": ..., "scalars": [[step, tag, value]]}
Fails (exit 1) on any length or data CRC mismatch or malformed record.
"""
import json
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def fields(buf):
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(buf, i)
        elif wire == 1:
            v = buf[i:i + 8]
            i += 8
        elif wire == 2:
            n, i = varint(buf, i)
            v = buf[i:i + n]
            i += n
        elif wire == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield num, wire, v


def main(path):
    blob = open(path, "rb").read()
    i = 0
    events = []
    while i < len(blob):
        header = blob[i:i + 8]
        (n,) = struct.unpack("<Q", header)
        (crc_len,) = struct.unpack("<I", blob[i + 8:i + 12])
        if crc_len != masked(header):
            sys.exit(f"length CRC mismatch at offset {i}")
        data = blob[i + 12:i + 12 + n]
        (crc_data,) = struct.unpack("<I", blob[i + 12 + n:i + 16 + n])
        if len(data) != n or crc_data != masked(data):
            sys.exit(f"data CRC mismatch at offset {i}")
        events.append(data)
        i += 16 + n
    out = {"file_version": None, "scalars": []}
    for k, ev in enumerate(events):
        step = 0
        for num, wire, v in fields(ev):
            if num == 2:
                step = v
            if num == 3:
                if k != 0:
                    sys.exit("file_version not in the first event")
                out["file_version"] = v.decode()
            if num == 5:
                for snum, _, sv in fields(v):
                    if snum != 1:
                        continue
                    tag, val = None, None
                    for vnum, vwire, vv in fields(sv):
                        if vnum == 1:
                            tag = vv.decode()
                        if vnum == 2 and vwire == 5:
                            (val,) = struct.unpack("<f", vv)
                    out["scalars"].append([step, tag, val])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
