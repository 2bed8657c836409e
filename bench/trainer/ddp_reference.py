#!/usr/bin/env python3
"""PyTorch DDP (gloo) reference for bench_trainer: the same GPT (pre-LN, hand-written causal
attention, GELU-tanh MLP, tied head, GPT-2 init), AdamW, clip 1.0, random token batches of the same
shape, N processes x 1 thread. Prints one JSON line like bench_trainer and leaves with os._exit
(DDP processes can hang at interpreter exit with python3-torch 1.13).

usage: /usr/bin/python3 ddp_reference.py CONFIG STEPS WARMUP NPROCS
"""
import json
import math
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F


def config(which):
    if which == "small":
        return dict(vocab=256, n_layer=4, n_head=4, d=256, ctx=128, batch=8, seq=128)
    return dict(vocab=256, n_layer=4, n_head=12, d=768, ctx=64, batch=2, seq=64)


class Block(nn.Module):
    def __init__(self, d, h, n_layer):
        super().__init__()
        self.h = h
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        for m in (self.qkv, self.fc):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        for m in (self.proj, self.out):
            nn.init.normal_(m.weight, std=0.02 / math.sqrt(2 * n_layer))
            nn.init.zeros_(m.bias)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, 2)
        q, k, v = (z.view(b, t, self.h, c // self.h).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.h)
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.wte = nn.Embedding(c["vocab"], c["d"])
        self.wpe = nn.Embedding(c["ctx"], c["d"])
        nn.init.normal_(self.wte.weight, std=0.02)
        nn.init.normal_(self.wpe.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(c["d"], c["n_head"], c["n_layer"]) for _ in range(c["n_layer"]))
        self.ln_f = nn.LayerNorm(c["d"])

    def forward(self, ids, targets):
        t = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(t))
        for b in self.blocks:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def worker(rank, n, which, steps, warmup, port):
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=n)
    c = config(which)
    torch.manual_seed(0)
    model = Gpt(c)
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=25)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    torch.manual_seed(1 + rank)
    for s in range(warmup + steps):
        if s == warmup:
            dist.barrier()
            t0 = time.perf_counter()
        ids = torch.randint(0, c["vocab"], (c["batch"], c["seq"] + 1))
        loss = ddp(ids[:, :-1], ids[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    dist.barrier()
    secs = time.perf_counter() - t0
    if rank == 0:
        params = sum(p.numel() for p in model.parameters())
        print(json.dumps({"impl": "pytorch-ddp-gloo", "config": which, "ranks": n, "threads": 1,
                          "params": params, "tokens_per_s": steps * c["batch"] * c["seq"] * n / secs,
                          "step_ms": 1e3 * secs / steps}), flush=True)
    os._exit(0)


if __name__ == "__main__":
    which, steps, warmup, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    port = 29500 + os.getpid() % 1000
    mp.start_processes(worker, args=(n, which, steps, warmup, port), nprocs=n, start_method="fork")
