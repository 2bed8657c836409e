#!/usr/bin/env python3
"""Reference vectors for evaluator::utf8_replace_invalid: Python's own
bytes.decode("utf-8", errors="replace") on seeded random byte strings biased towards UTF-8
edge cases (lead bytes, continuation bytes, truncated and overlong sequences, surrogates,
> U+10FFFF) plus hand-picked cases. Writes {"cases": [{"in": hex, "out": hex-of-utf8}]}.
usage: gen_utf8_reference.py --out tests/evaluator/utf8_reference.json"""
import argparse
import json
import random

INTERESTING = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
               0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFE, 0xFF]
FIXED = [b"", b"plain ascii", "h\u00e9llo \u20ac \U0001F600".encode(), b"\xe2\x82", b"\xe2\x82x",
         b"\xf0\x9f\x98", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
         b"\xf5\x80\x80\x80", b"\x80\x80", b"a\xffb", b"\xe1\x80\xe1\x80\x80", b"\xf0\x90\x80"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rng = random.Random(20261128)
    cases = list(FIXED)
    for _ in range(2000):
        n = rng.randint(1, 12)
        cases.append(bytes(rng.choice(INTERESTING) if rng.random() < 0.7 else rng.randrange(256)
                           for _ in range(n)))
    for _ in range(200):  # valid text with a random byte cut or flipped
        s = "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0xA0, 0x800),
                                    rng.randrange(0x800, 0xD800), rng.randrange(0x10000, 0x110000)]))
                    for _ in range(rng.randint(1, 5))).encode()
        i = rng.randrange(len(s))
        cases.append(s[:i] if rng.random() < 0.5 else s[:i] + bytes([rng.randrange(256)]) + s[i + 1:])
    out = [{"in": c.hex(), "out": c.decode("utf-8", errors="replace").encode().hex()} for c in cases]
    with open(args.out, "w") as f:
        json.dump({"cases": out}, f, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
