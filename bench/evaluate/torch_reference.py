#!/usr/bin/env python3
"""python3-torch reference for the evaluation benchmark: the perplexity `conflux evaluate`
computes, done with plain PyTorch (Debian's python3-torch 1.13, 1 thread) from the same files.

Loads the checkpoint's safetensors (model-tp00-of-01.safetensors, read with json + torch, no
safetensors package) into the same GPT (pre-LN, causal attention, GELU-tanh MLP, tied head,
LayerNorm eps 1e-5), reads the dataset's token stream from its HDF5 shards (h5py), and evaluates
the same windows: window w starts at s = w*T and predicts s+1..s+L, L = min(T, N-1-s), in
(B, T) batches padded with zeros; NLL = logsumexp - logit of the target, from the float32
logits in float64 (as the evaluator's perplexity), summed. Prints one JSON line: tokens, nll_sum,
perplexity, seconds and cpu (the loop only, after the model and tokens are loaded: wall and
process CPU time), tokens_per_s, tokens_per_cpu_s.
usage: /usr/bin/python3 torch_reference.py CHECKPOINT_STEP_DIR DATASET_DIR CONTEXT BATCH
"""
import json
import math
import os
import struct
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F

ckpt, data, T, B = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(1)
state = json.load(open(os.path.join(ckpt, "trainer_state.json")))
cfg = state["model"]
C, H, L = cfg["d_model"], cfg["n_head"], cfg["n_layer"]

with open(os.path.join(ckpt, "model-tp00-of-01.safetensors"), "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    blob = f.read()
W = {}
for name, d in header.items():
    if name == "__metadata__":
        continue
    assert d["dtype"] == "F32", (name, d["dtype"])
    a, b = d["data_offsets"]
    W[name] = torch.from_numpy(np.frombuffer(blob, dtype="<f4", count=(b - a) // 4, offset=a)
                               .reshape(d["shape"]).copy())


def forward(ids):  # ids (B, T) int64 -> logits (B, T, V)
    b, t = ids.shape
    x = F.embedding(ids, W["wte.weight"]) + W["wpe.weight"][:t].unsqueeze(0)  # (B, T, C)
    mask = torch.ones(t, t, dtype=torch.bool).triu(1)
    for i in range(L):
        p = f"h.{i}."
        h = F.layer_norm(x, (C,), W[p + "ln1.weight"], W[p + "ln1.bias"], 1e-5)
        qkv = F.linear(h, W[p + "attn.qkv.weight"].reshape(-1, C), W[p + "attn.qkv.bias"].reshape(-1))
        qkv = qkv.view(b, t, 3, H, C // H)
        q, k, v = (qkv.select(2, j).transpose(1, 2) for j in range(3))  # (B, H, T, D)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // H)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, C)
        x = x + F.linear(y, W[p + "attn.proj.weight"], W[p + "attn.proj.bias"])
        h = F.layer_norm(x, (C,), W[p + "ln2.weight"], W[p + "ln2.bias"], 1e-5)
        h = F.gelu(F.linear(h, W[p + "mlp.fc.weight"], W[p + "mlp.fc.bias"]), approximate="tanh")
        x = x + F.linear(h, W[p + "mlp.proj.weight"], W[p + "mlp.proj.bias"])
    x = F.layer_norm(x, (C,), W["ln_f.weight"], W["ln_f.bias"], 1e-5)
    return x @ W["wte.weight"].t()


manifest = json.load(open(os.path.join(data, "manifest.json")))
parts = []
for s in manifest["shards"]:
    with h5py.File(os.path.join(data, s["file"]), "r") as f:
        parts.append(f["tokens"][()].astype(np.int64))
stream = torch.from_numpy(np.concatenate(parts))
N = stream.numel()
windows = (N - 1 + T - 1) // T
nll, tokens = 0.0, 0
t0, c0 = time.perf_counter(), time.process_time()
with torch.no_grad():
    for w0 in range(0, windows, B):
        ids = torch.zeros(B, T, dtype=torch.int64)
        tgt = torch.full((B, T), -100, dtype=torch.int64)
        for i in range(min(B, windows - w0)):
            s = (w0 + i) * T
            ln = min(T, N - 1 - s)
            ids[i, :ln] = stream[s:s + ln]
            tgt[i, :ln] = stream[s + 1:s + ln + 1]
        keep = tgt >= 0
        logits = forward(ids)[keep]  # (real positions, V) float32
        lp = torch.log_softmax(logits.double(), -1)  # float64, like the evaluator's logsumexp
        nll -= lp.gather(1, tgt[keep].unsqueeze(1)).sum().item()
        tokens += int(keep.sum())
secs, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"impl": "python3-torch", "tokens": tokens, "nll_sum": nll,
                  "perplexity": math.exp(nll / tokens), "seconds": secs, "cpu": cpu,
                  "tokens_per_s": tokens / secs, "tokens_per_cpu_s": tokens / cpu}))
