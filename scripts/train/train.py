#!/usr/bin/env python3
"""Train ocelot's small Llama model on the Go source tree.

The model is the Llama architecture exactly as ocelot's reference engine
(ref/forward.go, ref/math.go) and llama.cpp compute it:

  x = token_embd[ids]                                   (no scaling)
  per layer:
    h = rmsnorm(x) * attn_norm                          (x / sqrt(mean(x^2) + eps))
    q, k, v = Wq h, Wk h, Wv h                          (heads contiguous: q[h*hd + d])
    rope(q), rope(k)                                    (adjacent pairs (2i, 2i+1) of each head,
                                                         angle pos * base^(-2i/hd) / rope_freqs[i])
    query head h reads kv head h // (n_head / n_head_kv)
    att = softmax(q k^T / sqrt(hd) + causal mask) v
    x = x + Wo att
    h = rmsnorm(x) * ffn_norm
    x = x + Wdown (silu(Wgate h) * Wup h)
  logits = Wout (rmsnorm(x) * output_norm)              (Wout = token_embd when tied)

Weights are trained in this layout (ggml's "normal" RoPE mode), so the
exporter (scripts/train/export) writes them without any permutation.

Input: the directory written by `go run ./scripts/train/prepare`
(train.bin, val.bin, meta.json). Output (--out): model.safetensors,
loss.json, loss.png, check.json, train.log. See scripts/train/README.md.

Runs on PyTorch 2.x with CUDA (bf16 autocast); --smoke trains a tiny
model for 20 steps (on the CPU too) to test the whole chain. Needs numpy;
matplotlib for loss.png (optional). No network, no other packages.
"""

import argparse
import contextlib
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HAVE_SDPA = hasattr(F, "scaled_dot_product_attention")

LOG = None  # the train.log file, once open
T0 = time.time()


def log(msg):
    """Print a progress line at once, with the time since the start, and
    keep it in train.log."""
    el = time.time() - T0
    msg = f"[{int(el // 60):02d}:{el % 60:04.1f}] {msg}"
    print(msg, flush=True)
    if LOG is not None:
        LOG.write(msg + "\n")
        LOG.flush()


# ---------------------------------------------------------------- model


def llama3_rope_factors(head_dim, base=500000.0, factor=8.0, low=1.0, high=4.0, orig_ctx=8192.0):
    """Llama 3.1's RoPE frequency divisors (rope_freqs.weight), one per pair
    of a head's dimensions, exactly as synth/rope.go and llama.cpp's
    converter compute them."""
    low_wavelen = orig_ctx / low
    high_wavelen = orig_ctx / high
    out = []
    for i in range(head_dim // 2):
        freq = 1.0 / base ** (2 * i / head_dim)
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (orig_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def rope_tables(n_ctx, head_dim, base, factors):
    """cos and sin [n_ctx, head_dim/2] in float64 of the angles
    pos * base^(-2i/head_dim) / factors[i], as ref.Rope computes them."""
    i = np.arange(head_dim // 2, dtype=np.float64)
    inv = np.power(np.float64(np.float32(base)), -2.0 * i / head_dim)
    if factors is not None:
        inv = inv / factors.astype(np.float64)
    theta = np.arange(n_ctx, dtype=np.float64)[:, None] * inv[None, :]
    return np.cos(theta), np.sin(theta)


def upcast(t):
    """float32 for half types, the type itself otherwise (float32, float64)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def rope(x, cos, sin):
    """Rotate each adjacent pair (x[..., 2i], x[..., 2i+1]) of every head.
    x: [B, T, H, hd]; cos, sin: [T, hd/2]. Computed in float32 (or float64)."""
    dt = x.dtype
    xf = upcast(x)
    c = cos.to(xf.dtype)[None, :, None, :]
    s = sin.to(xf.dtype)[None, :, None, :]
    pairs = xf.reshape(*xf.shape[:-1], -1, 2)
    a, b = pairs[..., 0], pairs[..., 1]
    out = torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2)
    return out.to(dt)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        dt = x.dtype
        xf = upcast(x)
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * upcast(self.weight)).to(dt)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head, self.n_kv = cfg["n_head"], cfg["n_head_kv"]
        self.hd = cfg["n_embd"] // cfg["n_head"]
        dim = cfg["n_embd"]
        self.wq = nn.Linear(dim, self.n_head * self.hd, bias=False)
        self.wk = nn.Linear(dim, self.n_kv * self.hd, bias=False)
        self.wv = nn.Linear(dim, self.n_kv * self.hd, bias=False)
        self.wo = nn.Linear(self.n_head * self.hd, dim, bias=False)

    def forward(self, x, cos, sin, manual):
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_head, self.hd)
        k = self.wk(x).view(B, T, self.n_kv, self.hd)
        v = self.wv(x).view(B, T, self.n_kv, self.hd)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, T, hd]
        group = self.n_head // self.n_kv
        if group > 1:
            # kv head j serves query heads j*group .. j*group+group-1, as
            # ref.Attention's kvh = h / group: repeat_interleave, not repeat.
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
        if manual or not HAVE_SDPA:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd))
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            att = att.masked_fill(~mask, float("-inf"))
            att = torch.softmax(upcast(att), dim=-1).to(v.dtype)
            y = att @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # scale 1/sqrt(hd)
        y = y.transpose(1, 2).reshape(B, T, self.n_head * self.hd)
        return self.wo(y)


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        dim, ff = cfg["n_embd"], cfg["n_ff"]
        self.w_gate = nn.Linear(dim, ff, bias=False)
        self.w_up = nn.Linear(dim, ff, bias=False)
        self.w_down = nn.Linear(ff, dim, bias=False)

    def forward(self, x):
        return self.w_down(F.silu(self.w_gate(x)) * self.w_up(x))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attn_norm = RMSNorm(cfg["n_embd"], cfg["rms_eps"])
        self.attn = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg["n_embd"], cfg["rms_eps"])
        self.ffn = FeedForward(cfg)
        self.dropout = cfg.get("dropout", 0.0)

    def forward(self, x, cos, sin, manual):
        x = x + F.dropout(self.attn(self.attn_norm(x), cos, sin, manual), self.dropout, self.training)
        x = x + F.dropout(self.ffn(self.ffn_norm(x)), self.dropout, self.training)
        return x


class Llama(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        dim, vocab = cfg["n_embd"], cfg["n_vocab"]
        self.tok_embd = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg["n_layer"]))
        self.norm = RMSNorm(dim, cfg["rms_eps"])
        self.output = None if cfg["tied"] else nn.Linear(dim, vocab, bias=False)
        hd = dim // cfg["n_head"]
        self.rope_factors = llama3_rope_factors(hd, cfg["rope_freq_base"]) if cfg["rope_scaling"] else None
        cos, sin = rope_tables(cfg["n_ctx"], hd, cfg["rope_freq_base"], self.rope_factors)
        # Plain attributes, not buffers: .to(dtype) must not round them.
        self._cos64, self._sin64 = torch.from_numpy(cos), torch.from_numpy(sin)
        self._tables = {}
        self.reset_parameters()

    def reset_parameters(self):
        std0 = self.cfg.get("init_std", 0.02)
        resid = std0 / math.sqrt(2 * self.cfg["n_layer"])
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = resid if name.endswith(("wo.weight", "w_down.weight")) else std0
                nn.init.normal_(p, 0.0, std)

    def tables(self, device):
        """The float64 RoPE tables, one copy per device."""
        key = str(device)
        if key not in self._tables:
            self._tables[key] = (self._cos64.to(device), self._sin64.to(device))
        return self._tables[key]

    def forward(self, ids, manual=False):
        B, T = ids.shape
        if T > self.cfg["n_ctx"]:
            raise ValueError(f"{T} tokens exceed the context of {self.cfg['n_ctx']}")
        cos, sin = self.tables(ids.device)
        cos, sin = cos[:T], sin[:T]
        x = self.tok_embd(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, manual)
        x = self.norm(x)
        w = self.tok_embd.weight if self.output is None else self.output.weight
        return F.linear(x, w)

    def gguf_tensors(self):
        """The weights under their GGUF names, in GGUF order; matrices in
        nn.Linear's [out, in] layout (GGUF's shape is the reverse)."""
        t = {"token_embd.weight": self.tok_embd.weight}
        if self.rope_factors is not None:
            t["rope_freqs.weight"] = torch.from_numpy(self.rope_factors)
        for i, l in enumerate(self.layers):
            b = f"blk.{i}."
            t[b + "attn_norm.weight"] = l.attn_norm.weight
            t[b + "attn_q.weight"] = l.attn.wq.weight
            t[b + "attn_k.weight"] = l.attn.wk.weight
            t[b + "attn_v.weight"] = l.attn.wv.weight
            t[b + "attn_output.weight"] = l.attn.wo.weight
            t[b + "ffn_norm.weight"] = l.ffn_norm.weight
            t[b + "ffn_gate.weight"] = l.ffn.w_gate.weight
            t[b + "ffn_up.weight"] = l.ffn.w_up.weight
            t[b + "ffn_down.weight"] = l.ffn.w_down.weight
        t["output_norm.weight"] = self.norm.weight
        if self.output is not None:
            t["output.weight"] = self.output.weight
        return t

    def load_gguf_tensors(self, tensors):
        """Copy weights given under their GGUF names into the model."""
        own = self.gguf_tensors()
        missing = set(own) - set(tensors)
        extra = set(tensors) - set(own)
        if missing or extra:
            raise ValueError(f"tensor names differ: missing {sorted(missing)}, unexpected {sorted(extra)}")
        with torch.no_grad():
            for name, p in own.items():
                src = torch.as_tensor(tensors[name])
                if tuple(src.shape) != tuple(p.shape):
                    raise ValueError(f"{name}: shape {tuple(src.shape)}, want {tuple(p.shape)}")
                if name == "rope_freqs.weight":
                    if not np.array_equal(src.numpy().astype(np.float32), self.rope_factors):
                        raise ValueError("rope_freqs.weight differs from the factors this model computes")
                    continue
                p.copy_(src.to(p.dtype))


def param_count(model):
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- files


def save_safetensors(path, tensors, metadata, dtype=np.float32):
    """Write tensors (name -> torch tensor, in order) as a safetensors file:
    8-byte little-endian header length, JSON header, raw little-endian
    data. Written to a temporary name and renamed, so a reader never sees
    half a file."""
    code = {np.float32: "F32", np.float16: "F16"}[dtype]
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs, off = [], 0
    for name, t in tensors.items():
        a = t.detach().to("cpu", torch.float32).numpy()
        if name.endswith("norm.weight") or name == "rope_freqs.weight":
            a, c = a.astype("<f4"), "F32"  # vectors stay float32
        else:
            a, c = a.astype("<f4" if dtype == np.float32 else "<f2"), code
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": c, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * (-len(hb) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_safetensors(path):
    """Read a safetensors file of F32/F16 tensors: (name -> float32 numpy
    array, metadata)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n :]
    out = {}
    for name, h in header.items():
        dt = {"F32": "<f4", "F16": "<f2"}[h["dtype"]]
        b, e = h["data_offsets"]
        out[name] = np.frombuffer(body[b:e], dtype=dt).astype(np.float32).reshape(h["shape"])
    return out, meta


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, path)


def load_tokens(path, vocab):
    a = np.fromfile(path, dtype="<u2").astype(np.int64)
    if a.size == 0 or a.max() >= vocab:
        raise SystemExit(f"{path}: {a.size} tokens, largest id {a.max() if a.size else None}: not ids of a {vocab}-token vocabulary")
    return torch.from_numpy(a)


# ---------------------------------------------------------------- evaluation


@torch.no_grad()
def window_loss(model, data, starts, n_ctx, batch, amp, device):
    """Mean next-token cross-entropy over the windows data[s : s+n_ctx+1]."""
    was = model.training
    model.eval()
    ar = torch.arange(n_ctx + 1, device=device)
    total, count = 0.0, 0
    for i in range(0, len(starts), batch):
        w = data[starts[i : i + batch, None] + ar[None, :]]
        with amp():
            logits = model(w[:, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), w[:, 1:].flatten(), reduction="sum")
        total += loss.item()
        count += w[:, 1:].numel()
    model.train(was)
    return total / count


@torch.no_grad()
def llama_perplexity(model, tokens, n_ctx, bos, batch, device, max_chunks=0):
    """Perplexity by llama-perplexity's method, as `ocelot perplexity`
    computes it (cmd/ocelot/perplexity.go): chunks of n_ctx tokens, the
    first replaced by BOS, the second half scored; float32 weights, no
    autocast, float64 sums."""
    was = model.training
    model.eval()
    n_chunk = len(tokens) // n_ctx
    if max_chunks > 0:
        n_chunk = min(n_chunk, max_chunks)
    chunks = tokens[: n_chunk * n_ctx].view(n_chunk, n_ctx).clone()
    chunks[:, 0] = bos
    first = n_ctx // 2
    nll = nll2 = 0.0
    count = 0
    for i in range(0, n_chunk, batch):
        c = chunks[i : i + batch].to(device)
        logits = model(c)[:, first : n_ctx - 1].double()
        lp = torch.log_softmax(logits, dim=-1)
        v = -lp.gather(-1, c[:, first + 1 :, None]).squeeze(-1)
        nll += v.sum().item()
        nll2 += (v * v).sum().item()
        count += v.numel()
    model.train(was)
    mean = nll / count
    var = nll2 / count - mean * mean
    ppl = math.exp(mean)
    return {"n_ctx": n_ctx, "chunks": n_chunk, "scored": count, "ppl": ppl,
            "ppl_sigma": ppl * math.sqrt(max(var, 0.0) / (count - 1)), "mean_nll": mean}


@torch.no_grad()
def check_prompts(model, prompts, device, greedy_tokens=32):
    """For each prompt, the last position's logits (all of them, and the
    top 5), and a greedy continuation with each step's top-1/top-2 margin.
    The model should be float64; attention is the explicit one."""
    out = []
    for p in prompts:
        if len(p["ids"]) > model.cfg["n_ctx"]:
            log(f"check: prompt {p.get('name', '')} has {len(p['ids'])} tokens, more than n_ctx {model.cfg['n_ctx']}: left out")
            continue
        ids = torch.tensor([p["ids"]], dtype=torch.long, device=device)
        logits = model(ids, manual=True)[0, -1]
        top = torch.topk(logits, 5)
        seq, margins = list(p["ids"]), []
        for _ in range(greedy_tokens):
            if len(seq) >= model.cfg["n_ctx"]:
                break
            last = model(torch.tensor([seq], dtype=torch.long, device=device), manual=True)[0, -1]
            t2 = torch.topk(last, 2)
            seq.append(int(t2.indices[0]))
            margins.append(float(t2.values[0] - t2.values[1]))
        out.append({
            "name": p.get("name", ""),
            "text": p.get("text", ""),
            "ids": list(p["ids"]),
            "top_ids": [int(i) for i in top.indices],
            "top_logits": [float(v) for v in top.values],
            "logits": [round(float(v), 6) for v in logits],
            "greedy": seq[len(p["ids"]):],
            "greedy_margins": margins,
        })
    return out


def rounded_f16(tensors):
    """The weights as the F16 GGUF holds them: matrices rounded to float16
    (round to nearest even, as ocelot's and ggml's conversion), vectors
    float32."""
    out = {}
    for name, a in tensors.items():
        out[name] = a if a.ndim == 1 else a.astype(np.float16).astype(np.float32)
    return out


def build(cfg, tensors, dtype, device):
    m = Llama(cfg).to(dtype=dtype, device=device)
    m.load_gguf_tensors({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()})
    m.eval()
    return m


def plot(path, hist, cfg):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tok_per_step = cfg["batch"] * cfg["n_ctx"]
    tr = np.array(hist["train"], dtype=np.float64)  # rows: step, loss
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    if len(tr):
        x = tr[:, 0] * tok_per_step / 1e6
        ax.plot(x, tr[:, 1], color="#9ecae1", linewidth=0.6, label="train (per step)")
        k = max(1, len(tr) // 100)
        if len(tr) >= 2 * k and k > 1:
            sm = np.convolve(tr[:, 1], np.ones(k) / k, mode="valid")
            ax.plot(x[k - 1 :], sm, color="#3182bd", linewidth=1.4, label=f"train (mean of {k})")
    va = np.array(hist["val"], dtype=np.float64)
    if len(va):
        ax.plot(va[:, 0] * tok_per_step / 1e6, va[:, 1], "o-", color="#e6550d", markersize=3, label="held-out")
    ax.set_xlabel("training tokens (millions)")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(f"ocelot Go model: {hist['params'] / 1e6:.2f}M parameters, n_embd {cfg['n_embd']}, {cfg['n_layer']} layers")
    ys = [a[:, 1] for a in (tr, va) if len(a)]
    if ys:
        v = np.concatenate(ys)
        ax.set_ylim(max(0.0, v.min() - 0.1), min(float(np.percentile(v, 99.5)) + 0.2, v.max() + 0.1))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ---------------------------------------------------------------- training


def sanity(model, cfg, device, out):
    """Check, before any training, that the fast attention path (SDPA)
    computes what the explicit one does, and that the weights round-trip
    through the GGUF name map and a safetensors file."""
    g = torch.Generator(device="cpu").manual_seed(1)
    ids = torch.randint(0, cfg["n_vocab"], (2, min(64, cfg["n_ctx"])), generator=g).to(device)
    was = model.training
    model.eval()
    with torch.no_grad():
        a = model(ids, manual=True).float()
        b = model(ids, manual=False).float()
        err = (a - b).abs().max().item() / max(a.abs().max().item(), 1e-6)
        log(f"sanity: attention paths (sdpa={HAVE_SDPA}) agree to {err:.2e} (relative, float32)")
        if err > 1e-3:
            raise SystemExit("the SDPA attention differs from the explicit attention: not training a model that cannot be exported")
        path = os.path.join(out, "sanity.safetensors")
        save_safetensors(path, model.gguf_tensors(), {"sanity": 1})
        tensors, _ = load_safetensors(path)
        os.remove(path)
        c = build(cfg, tensors, torch.float32, device)(ids, manual=True).float()
        if (a - c).abs().max().item() > 1e-5 * max(a.abs().max().item(), 1e-6):
            raise SystemExit("the weights do not round-trip through model.safetensors")
    model.train(was)


# The model trained by default, and the one of --smoke (arguments given
# explicitly win over both).
FULL = {"n_embd": 256, "n_layer": 5, "n_head": 8, "n_head_kv": 4, "n_ff": 384, "n_ctx": 512, "batch": 128, "warmup": 200}
SMOKE = {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_head_kv": 2, "n_ff": 128, "n_ctx": 64, "batch": 8, "warmup": 5}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=".devrun/train", help="directory of prepare's train.bin, val.bin, meta.json")
    ap.add_argument("--out", default=os.environ.get("OUT", "out"), help="output directory (default $OUT)")
    ap.add_argument("--minutes", type=float, default=4.0, help="training time budget (the learning-rate schedule follows it)")
    ap.add_argument("--steps", type=int, default=0, help="train exactly this many steps instead of for --minutes")
    ap.add_argument("--smoke", action="store_true", help="a tiny model, 20 steps: a quick test of the whole chain")
    ap.add_argument("--n-embd", type=int, help="embedding width (default 256; smoke 64)")
    ap.add_argument("--n-layer", type=int, help="layers (default 5; smoke 2)")
    ap.add_argument("--n-head", type=int, help="query heads (default 8; smoke 4)")
    ap.add_argument("--n-head-kv", type=int, help="key/value heads (default 4; smoke 2)")
    ap.add_argument("--n-ff", type=int, help="feed-forward width (default 384; smoke 128)")
    ap.add_argument("--n-ctx", type=int, help="training context (default 512; smoke 64)")
    ap.add_argument("--untied", action="store_true", help="a separate output.weight (default: tied to token_embd)")
    ap.add_argument("--rope-base", type=float, default=500000.0)
    ap.add_argument("--no-rope-scaling", action="store_true", help="no Llama 3.1 rope_freqs factors")
    ap.add_argument("--rms-eps", type=float, default=1e-5)
    ap.add_argument("--batch", type=int, help="sequences per step (default 128; smoke 8)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, help="warm-up steps (default 200; smoke 5)")
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--init-std", type=float, default=0.02, help="standard deviation of the initial matrices")
    ap.add_argument("--eval-every", type=float, default=20.0, help="seconds between held-out evaluations")
    ap.add_argument("--eval-windows", type=int, default=64, help="held-out windows per evaluation during training")
    ap.add_argument("--save-every", type=float, default=2.0, help="minutes between checkpoints of model.safetensors")
    ap.add_argument("--ppl-chunks", type=int, default=0, help="chunks of the final perplexity (0: all)")
    ap.add_argument("--compile", action="store_true", help="try torch.compile (falls back to eager on failure)")
    ap.add_argument("--dtype", choices=["f32", "f16"], default="f32", help="dtype of the matrices in model.safetensors")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()

    sizes = SMOKE if args.smoke else FULL
    for k, v in sizes.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.smoke:
        args.steps = args.steps or 20
        args.eval_windows, args.ppl_chunks = 4, args.ppl_chunks or 16

    os.makedirs(args.out, exist_ok=True)
    global LOG
    LOG = open(os.path.join(args.out, "train.log"), "w")
    t_start = time.time()

    with open(os.path.join(args.data, "meta.json")) as f:
        meta = json.load(f)
    cfg = {
        "n_embd": args.n_embd, "n_layer": args.n_layer, "n_head": args.n_head, "n_head_kv": args.n_head_kv,
        "n_ff": args.n_ff, "n_vocab": meta["vocab_size"], "n_ctx": args.n_ctx, "rope_freq_base": args.rope_base,
        "rope_scaling": not args.no_rope_scaling, "rms_eps": args.rms_eps, "tied": not args.untied,
        "dropout": args.dropout, "batch": args.batch, "init_std": args.init_std,
    }
    hd = cfg["n_embd"] // cfg["n_head"]
    if cfg["n_embd"] % cfg["n_head"] or hd % 2 or cfg["n_head"] % cfg["n_head_kv"]:
        raise SystemExit(f"bad shape: n_embd {cfg['n_embd']}, n_head {cfg['n_head']}, n_head_kv {cfg['n_head_kv']}")
    for what, n in (("n_embd", cfg["n_embd"]), ("n_ff", cfg["n_ff"])):
        if n % 32:
            raise SystemExit(f"{what} {n} is not a multiple of 32 (the Q4_0/Q8_0 block)")

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    torch.manual_seed(args.seed)
    torch.set_float32_matmul_precision("highest")  # float32 evaluation stays float32 (no TF32)
    if cuda:
        log(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    else:
        log(f"device: {device}, torch {torch.__version__}")

    train = load_tokens(os.path.join(args.data, "train.bin"), cfg["n_vocab"]).to(device)
    val = load_tokens(os.path.join(args.data, "val.bin"), cfg["n_vocab"])
    val_dev = val.to(device)
    T, B = cfg["n_ctx"], args.batch
    log(f"data: {len(train):,} training tokens, {len(val):,} held-out tokens ({', '.join(meta['heldout'])}), vocab {cfg['n_vocab']}")

    model = Llama(cfg).to(device)
    n_params = param_count(model)
    log(f"model: {n_params:,} parameters: {json.dumps(cfg)}")
    sanity(model, cfg, device, args.out)

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=cuda)
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    if cuda:
        amp = lambda: torch.autocast(device_type="cuda", dtype=torch.bfloat16)  # noqa: E731
    else:
        amp = contextlib.nullcontext
    fwd = model
    if args.compile and hasattr(torch, "compile"):
        try:
            fwd = torch.compile(model)
            log("torch.compile: on")
        except Exception as e:  # noqa: BLE001
            log(f"torch.compile failed ({e!r}): eager")
            fwd = model

    gen = torch.Generator(device=device)
    gen.manual_seed(args.seed)
    ar = torch.arange(T + 1, device=device)
    n_windows = min(args.eval_windows, (len(val) - 1) // T)
    val_starts = torch.linspace(0, len(val) - T - 2, n_windows, device=device).long()

    def batch():
        ix = torch.randint(0, len(train) - T - 1, (B,), device=device, generator=gen)
        w = train[ix[:, None] + ar[None, :]]
        return w[:, :-1], w[:, 1:]

    budget = args.minutes * 60.0
    peak, floor = args.lr, args.lr * args.min_lr_ratio

    def lr_at(step, elapsed):
        p = step / args.steps if args.steps else elapsed / budget
        p = min(max(p, 0.0), 1.0)
        lr = floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * p))
        return lr * min(1.0, (step + 1) / max(1, args.warmup))

    hist = {"config": cfg, "params": n_params, "train": [], "val": [], "tokens_per_step": B * T}
    pending = []  # per-step losses still on the device
    model_path = os.path.join(args.out, "model.safetensors")

    def st_meta(step, val_loss):
        m = {k: cfg[k] for k in ("n_embd", "n_layer", "n_head", "n_head_kv", "n_ff", "n_vocab", "n_ctx", "rope_freq_base", "rms_eps")}
        m.update({"tied": str(cfg["tied"]).lower(), "format": "ocelot-llama-1", "steps": step, "tokens_seen": step * B * T,
                  "val_loss": f"{val_loss:.4f}" if val_loss is not None else "none",
                  "minutes": f"{(time.time() - t_loop) / 60:.1f}", "corpus": f"Go {meta.get('go_version', '?')} src",
                  "bos_id": meta["bos_id"], "eos_id": meta["eos_id"]})
        return m

    log(f"training: batch {B} x {T} tokens, lr {peak} (cosine to {floor}), "
        + (f"{args.steps} steps" if args.steps else f"{args.minutes} minutes"))
    step, last_eval, last_save, last_log = 0, 0.0, 0.0, time.time()
    t_loop = time.time()
    val_loss = None
    compiled_ok = fwd is model
    while True:
        elapsed = time.time() - t_loop
        if (args.steps and step >= args.steps) or (not args.steps and elapsed >= budget):
            break
        lr = lr_at(step, elapsed)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch()
        opt.zero_grad(set_to_none=True)
        try:
            with amp():
                logits = fwd(x)
            loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
            loss.backward()
        except Exception as e:  # noqa: BLE001
            if compiled_ok:
                raise
            log(f"torch.compile failed at the first step ({e!r}): eager")
            fwd, compiled_ok = model, True
            continue
        compiled_ok = True
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        pending.append(loss.detach())
        step += 1

        now = time.time()
        if now - last_log >= 10 or step == 1 or (args.steps and step == args.steps):
            losses = torch.stack(pending).float().tolist()
            base = step - len(losses)
            hist["train"].extend([base + i + 1, v] for i, v in enumerate(losses))
            pending = []
            el = now - t_loop
            log(f"step {step:6d}  loss {losses[-1]:.4f}  lr {lr:.2e}  {step * B * T / max(el, 1e-9) / 1e6:.2f}M tok/s  "
                f"{el / 60:.2f} min  epoch {step * B * T / len(train):.2f}")
            last_log = now
        if now - t_loop - last_eval >= args.eval_every:
            val_loss = window_loss(model, val_dev, val_starts, T, B, amp, device)
            hist["val"].append([step, val_loss])
            log(f"step {step:6d}  held-out loss {val_loss:.4f}")
            last_eval = now - t_loop
        if now - t_loop - last_save >= args.save_every * 60:
            save_safetensors(model_path, model.gguf_tensors(), st_meta(step, val_loss))
            write_json(os.path.join(args.out, "loss.json"), hist)
            last_save = now - t_loop

    if pending:
        losses = torch.stack(pending).float().tolist()
        base = step - len(losses)
        hist["train"].extend([base + i + 1, v] for i, v in enumerate(losses))
    train_minutes = (time.time() - t_loop) / 60
    hist["steps"], hist["train_minutes"] = step, train_minutes
    log(f"done: {step} steps, {step * B * T / 1e6:.1f}M tokens in {train_minutes:.2f} min")

    # Weights first: nothing after this may lose them. (Saved again with
    # the final held-out loss in the metadata.)
    dtype = np.float32 if args.dtype == "f32" else np.float16
    save_safetensors(model_path, model.gguf_tensors(), st_meta(step, val_loss), dtype)
    write_json(os.path.join(args.out, "loss.json"), hist)
    try:
        val_loss = window_loss(model, val_dev, val_starts, T, B, amp, device)
        hist["val"].append([step, val_loss])
        log(f"held-out loss {val_loss:.4f}")
        save_safetensors(model_path, model.gguf_tensors(), st_meta(step, val_loss), dtype)
        write_json(os.path.join(args.out, "loss.json"), hist)
    except Exception as e:  # noqa: BLE001
        log(f"final evaluation failed: {e!r}")
    log(f"wrote {model_path} ({os.path.getsize(model_path) / 1e6:.2f} MB)")

    # The check: logits of the file's own weights, read back.
    tensors, _ = load_safetensors(model_path)
    check = {"config": cfg, "params": n_params, "steps": step, "bos_id": meta["bos_id"],
             "note": "logits at the last position of each prompt, float64 with explicit attention; "
                     "f32: the weights of model.safetensors; f16: their matrices rounded to float16, as the F16 GGUF holds them"}
    try:
        full = window_loss(model, val_dev, torch.arange(0, len(val) - T - 1, T, device=device), T, B, amp, device)
        hist["val_full"] = full
        log(f"held-out loss over all {(len(val) - 1) // T} windows: {full:.4f}")
        check["perplexity"] = {}
        # The first few chunks with their tokens, for a test to recompute.
        k = min(8, len(val) // T)
        check["ppl_check"] = {"n_ctx": T, "chunks": k, "tokens": val[: k * T].tolist()}
        for name, ts in (("f32", tensors), ("f16", rounded_f16(tensors))):
            m = build(cfg, ts, torch.float32, device)
            check["perplexity"][name] = llama_perplexity(m, val, T, meta["bos_id"], max(1, B // 2), device, args.ppl_chunks)
            log(f"perplexity ({name} weights, llama-perplexity's method, n_ctx {T}): {check['perplexity'][name]}")
            check["ppl_check"][name] = llama_perplexity(m, val, T, meta["bos_id"], k, device, k)["ppl"]
            del m
        write_json(os.path.join(args.out, "loss.json"), hist)
    except Exception as e:  # noqa: BLE001
        log(f"perplexity failed: {e!r}")
    try:
        for name, ts, greedy in (("f32", tensors, 0), ("f16", rounded_f16(tensors), 32)):
            m = build(cfg, ts, torch.float64, device)
            check[name] = check_prompts(m, meta["check_prompts"], device, greedy)
            for p in check[name]:
                log(f"check {name} {p['name']}: top {p['top_ids']} {['%.3f' % v for v in p['top_logits']]} greedy {p['greedy'][:12]}")
            del m
        write_json(os.path.join(args.out, "check.json"), check)
        log(f"wrote {os.path.join(args.out, 'check.json')}")
    except Exception as e:  # noqa: BLE001
        log(f"check failed: {e!r}")
        write_json(os.path.join(args.out, "check.json"), check)
    try:
        plot(os.path.join(args.out, "loss.png"), hist, cfg)
        log(f"wrote {os.path.join(args.out, 'loss.png')}")
    except Exception as e:  # noqa: BLE001
        log(f"plot failed: {e!r}")
    log(f"total {(time.time() - t_start) / 60:.2f} min")
    LOG.close()


if __name__ == "__main__":
    sys.exit(main())
