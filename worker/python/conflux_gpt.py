"""The Conflux GPT (trainer/src/gpt.cpp, layers.cpp) in PyTorch, and a Conflux tokens dataset
read with h5py (docs/formats.md, trainer/data.h).

Contract: GPT(config) has exactly the C++ model's parameters, with the same names, shapes and
order (tensor parallel size 1): wte.weight (V, C), wpe.weight (T, C), per block h.<i>.ln1.weight/
bias (C), h.<i>.attn.qkv.weight (3, C, C) / bias (3, C), h.<i>.attn.proj.weight (C, C) / bias (C),
h.<i>.ln2.weight/bias, h.<i>.mlp.fc.weight (4C, C) / bias (4C), h.<i>.mlp.proj.weight (C, 4C) /
bias (C), ln_f.weight/bias. The forward is the C++ one: token + learned position embeddings,
pre-LayerNorm blocks (eps 1e-5) with causal softmax attention (scores / sqrt(D), future positions
masked) and a tanh-GELU MLP of width 4C, residual adds, a final LayerNorm and logits tied to the
token embedding (h @ wte.weight^T; there is no separate output matrix). Dropout is applied where
the C++ model applies it (embeddings, attention probabilities, both branch outputs) but draws
from torch's default generator, so training with dropout is not bitwise equal to the C++ one.

TokenWindows reproduces trainer/data.h's split: the dataset's token stream (the tokens field's
values of every shard, in shard order: documents already end with EOS) cut into windows of
context + 1 tokens starting every `context` tokens; total = (tokens - 1) // context; the last
max(1, floor(val_fraction * total)) windows (0 when val_fraction = 0) are the validation split and
are never trained on. Training visits the training windows epoch by epoch in a permutation drawn
from numpy's PCG64 seeded with (seed, epoch): not the C++ shuffle, the same windows.
"""
import hashlib
import json
import math
import os

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LN_EPS = 1e-5  # trainer/layers.h LayerNormImpl::kEps


class GptConfig:
    KEYS = ("vocab_size", "context", "n_layer", "n_head", "d_model", "dropout")

    def __init__(self, vocab_size, context, n_layer, n_head, d_model, dropout=0.0):
        self.vocab_size, self.context, self.n_layer = int(vocab_size), int(context), int(n_layer)
        self.n_head, self.d_model, self.dropout = int(n_head), int(d_model), float(dropout)
        if self.vocab_size < 2 or self.context < 1 or self.n_layer < 1 or self.n_head < 1:
            raise ValueError(f"model config {self.as_dict()}: sizes must be positive (vocab_size >= 2)")
        if self.d_model % self.n_head:
            raise ValueError(f"model.d_model = {self.d_model} must be a multiple of model.n_head = {self.n_head}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"model.dropout = {self.dropout} must be in [0, 1)")

    @classmethod
    def from_params(cls, model):
        """From FitParams' `model` object (task params JSON)."""
        missing = [k for k in cls.KEYS[:5] if k not in model]
        if missing:
            raise ValueError(f"fit params: model.{missing[0]} is missing")
        return cls(**{k: model[k] for k in cls.KEYS if k in model})

    def as_dict(self):
        return {k: getattr(self, k) for k in self.KEYS}


class _Weight(nn.Module):
    """A module holding one `weight` parameter (wte, wpe): gives the C++ names."""

    def __init__(self, *shape):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(*shape))


class _Linear(nn.Module):
    """weight (out, in) or grouped (groups, out, in), bias (out) / (groups, out): y = x W^T + b."""

    def __init__(self, n_in, n_out, groups=1):
        super().__init__()
        shape = (n_out, n_in) if groups == 1 else (groups, n_out, n_in)
        self.weight = nn.Parameter(torch.zeros(*shape))
        self.bias = nn.Parameter(torch.zeros(*shape[:-1]))

    def forward(self, x):
        return F.linear(x, self.weight.reshape(-1, self.weight.shape[-1]), self.bias.reshape(-1))


class _LayerNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, LN_EPS)


class _Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_head, self.head_dim, self.p = c.n_head, c.d_model // c.n_head, c.dropout
        self.qkv = _Linear(c.d_model, c.d_model, groups=3)
        self.proj = _Linear(c.d_model, c.d_model)

    def forward(self, x):
        b, t, _ = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.n_head, self.head_dim)   # (B, T, 3, H, D)
        q, k, v = (qkv.select(2, i).transpose(1, 2) for i in range(3))  # (B, H, T, D)
        att = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, H, T, T)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        att = F.dropout(att, self.p, self.training)
        y = torch.matmul(att, v).transpose(1, 2).reshape(b, t, self.n_head * self.head_dim)
        return F.dropout(self.proj(y), self.p, self.training)


class _Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.p = c.dropout
        self.fc = _Linear(c.d_model, 4 * c.d_model)
        self.proj = _Linear(4 * c.d_model, c.d_model)

    def forward(self, x):
        return F.dropout(self.proj(F.gelu(self.fc(x), approximate="tanh")), self.p, self.training)


class _Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln1 = _LayerNorm(c.d_model)
        self.attn = _Attention(c)
        self.ln2 = _LayerNorm(c.d_model)
        self.mlp = _Mlp(c)

    def forward(self, x):
        h = x + self.attn(self.ln1(x))
        return h + self.mlp(self.ln2(h))


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = self.config = config
        self.wte = _Weight(c.vocab_size, c.d_model)
        self.wpe = _Weight(c.context, c.d_model)
        self.h = nn.ModuleList([_Block(c) for _ in range(c.n_layer)])
        self.ln_f = _LayerNorm(c.d_model)

    def forward(self, ids):
        """ids (B, T) int64 -> logits (B, T, V)."""
        t = ids.shape[1]
        if t > self.config.context:
            raise ValueError(f"sequence length {t} exceeds model.context {self.config.context}")
        x = F.embedding(ids, self.wte.weight) + self.wpe.weight[:t].unsqueeze(0)
        x = F.dropout(x, self.config.dropout, self.training)
        for block in self.h:
            x = block(x)
        return torch.matmul(self.ln_f(x), self.wte.weight.t())

    def loss(self, ids, targets):
        """Mean next-token cross-entropy (the C++ GptImpl::loss)."""
        logits = self.forward(ids)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def load_named(self, named):
        """Copies [(name, float32 array)] into the parameters; the names, order and shapes must be
        the model's exactly. Raises ValueError naming the first mismatch."""
        params = list(self.named_parameters())
        if len(named) != len(params):
            raise ValueError(f"the global model has {len(named)} tensors, the model config {len(params)}")
        with torch.no_grad():
            for i, ((name, arr), (pname, p)) in enumerate(zip(named, params)):
                if name != pname or tuple(arr.shape) != tuple(p.shape) or arr.dtype != np.float32:
                    raise ValueError(f"global tensor {i} is '{name}' {'x'.join(map(str, arr.shape))} ({arr.dtype}), "
                                     f"the model expects '{pname}' {'x'.join(map(str, p.shape))} float32")
                p.copy_(torch.from_numpy(np.array(arr, dtype=np.float32, copy=True)))


class TokenDataset:
    """A Conflux tokens dataset directory (manifest.json + part-*.h5), as one token stream in
    memory (int32). vocab_size, eos, manifest_sha256 and manifest_digest (BLAKE2b-256) from the
    manifest."""

    def __init__(self, path):
        self.path = path
        mpath = os.path.join(path, "manifest.json")
        try:
            raw = open(mpath, "rb").read()
        except OSError as e:
            raise ValueError(f"{mpath}: cannot read the dataset manifest: {e}") from None
        m = json.loads(raw)
        if m.get("format") != "conflux-dataset" or m.get("format_version") != 1:
            raise ValueError(f"{mpath}: not a conflux-dataset version 1 manifest")
        fields = [f for f in m.get("schema", []) if f.get("role") == "tokens"]
        tok = m.get("tokenizer") or {}
        if not fields or "vocab_size" not in tok:
            raise ValueError(f"{mpath}: no tokens field or no tokenizer.vocab_size (not a tokens dataset?)")
        name = fields[0]["name"]
        self.manifest = m
        self.vocab_size, self.eos = int(tok["vocab_size"]), tok.get("eos")
        self.manifest_sha256 = hashlib.sha256(raw).hexdigest()
        self.manifest_digest = hashlib.blake2b(raw, digest_size=32).hexdigest()
        self.rows = int(m.get("rows", 0))
        self.fields = [f["name"] for f in m.get("schema", [])]
        parts = []
        for s in m["shards"]:
            f = os.path.join(path, s["file"])
            with h5py.File(f, "r") as h:
                if name not in h:
                    raise ValueError(f"{f}: no HDF5 dataset '/{name}'")
                parts.append(np.asarray(h[name][()], dtype=np.int32))
        self.tokens = np.concatenate(parts) if parts else np.zeros(0, np.int32)


class TokenWindows:
    """trainer/data.h's windows over a token stream (see the module comment)."""

    def __init__(self, tokens, context, val_fraction, seed):
        self.tokens, self.context, self.seed = tokens, int(context), int(seed)
        total = (len(tokens) - 1) // self.context
        if total < 2:
            raise ValueError(f"dataset has {len(tokens)} tokens: fewer than two windows of {context} + 1 tokens")
        self.val = max(1, int(math.floor(val_fraction * total))) if val_fraction > 0 else 0
        self.train = total - self.val
        if self.train < 1:
            raise ValueError(f"local.val_fraction = {val_fraction} leaves no training windows")
        self.epoch, self.position, self._perm = 0, 0, None

    def _permutation(self):
        if self._perm is None or self._perm[0] != self.epoch:
            rng = np.random.Generator(np.random.PCG64([self.seed, self.epoch]))
            self._perm = (self.epoch, rng.permutation(self.train))
        return self._perm[1]

    def next_batch(self, n):
        """The next n training window indices, crossing into the next epoch when needed."""
        out = []
        while len(out) < n:
            if self.position >= self.train:
                self.epoch, self.position = self.epoch + 1, 0
            out.append(int(self._permutation()[self.position]))
            self.position += 1
        return out

    def val_windows(self, count=0):
        """Absolute indices of the first `count` (0: all) validation windows."""
        n = self.val if count <= 0 else min(count, self.val)
        return list(range(self.train, self.train + n))

    def batch(self, windows):
        """(ids, targets) int64 tensors (n, T) of the given windows."""
        T = self.context
        rows = np.stack([self.tokens[w * T:w * T + T + 1] for w in windows]).astype(np.int64)
        all_ = torch.from_numpy(rows)
        return all_[:, :T].contiguous(), all_[:, 1:].contiguous()
