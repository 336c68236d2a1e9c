#!/usr/bin/env python3
"""The student's training step in PyTorch, for tests/bench/student_train.sh:
the same Llama-layout model (RMSNorm, rotate_half rotary embeddings,
grouped-query attention, SwiGLU, tied embeddings), the same AdamW settings,
gradient clipping and fixed-shape random token batches as
student_train_bench. Prints one JSON line: steps, tokens per second, peak RSS.
"""
import argparse
import ctypes
import json
import math
import resource
import time

import torch
import torch.nn.functional as F


class Llama(torch.nn.Module):
    def __init__(self, vocab, layers, d_model, heads, kv_heads, ffn, max_seq, theta=10000.0, eps=1e-5):
        super().__init__()
        self.heads, self.kv_heads, self.hd, self.eps = heads, kv_heads, d_model // heads, eps
        self.embed = torch.nn.Parameter(torch.randn(vocab, d_model) * 0.02)
        residual = 0.02 / math.sqrt(2 * layers)

        def matrix(rows, cols, std=0.02):
            return torch.nn.Parameter(torch.randn(rows, cols) * std)

        self.blocks = torch.nn.ModuleList()
        for _ in range(layers):
            block = torch.nn.Module()
            block.attn_norm = torch.nn.Parameter(torch.ones(d_model))
            block.q = matrix(heads * self.hd, d_model)
            block.k = matrix(kv_heads * self.hd, d_model)
            block.v = matrix(kv_heads * self.hd, d_model)
            block.o = matrix(d_model, heads * self.hd, residual)
            block.ffn_norm = torch.nn.Parameter(torch.ones(d_model))
            block.gate = matrix(ffn, d_model)
            block.up = matrix(ffn, d_model)
            block.down = matrix(d_model, ffn, residual)
            self.blocks.append(block)
        self.norm = torch.nn.Parameter(torch.ones(d_model))
        inv_freq = 1.0 / theta ** (torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd)
        angles = torch.outer(torch.arange(max_seq, dtype=torch.float64), inv_freq)
        angles = torch.cat([angles, angles], -1)
        self.register_buffer("cos", angles.cos().float())
        self.register_buffer("sin", angles.sin().float())

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, x):
        t, half = x.shape[2], x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * self.cos[:t] + rotated * self.sin[:t]

    def forward(self, tokens):
        b, t = tokens.shape
        x = F.embedding(tokens, self.embed)
        mask = torch.full((t, t), float("-inf")).triu(1)
        for blk in self.blocks:
            h = self.rms(x, blk.attn_norm)
            q = F.linear(h, blk.q).view(b, t, self.heads, self.hd).transpose(1, 2)
            k = F.linear(h, blk.k).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
            v = F.linear(h, blk.v).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
            q, k = self.rope(q), self.rope(k)
            if self.kv_heads < self.heads:
                k = k.repeat_interleave(self.heads // self.kv_heads, 1)
                v = v.repeat_interleave(self.heads // self.kv_heads, 1)
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.hd) + mask
            attended = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(b, t, -1)
            x = x + F.linear(attended, blk.o)
            g = self.rms(x, blk.ffn_norm)
            x = x + F.linear(F.silu(F.linear(g, blk.gate)) * F.linear(g, blk.up), blk.down)
        return F.linear(self.rms(x, self.norm), self.embed)


def main():
    p = argparse.ArgumentParser()
    for name in ("vocab", "layers", "d-model", "heads", "kv-heads", "ffn"):
        p.add_argument("--" + name, type=int, required=True)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    # As the C++ trainer does: torch.set_num_threads leaves OpenBLAS's own
    # thread count (all cores) alone.
    ctypes.CDLL("libblas.so.3").openblas_set_num_threads(a.threads)
    torch.manual_seed(1)
    model = Llama(a.vocab, a.layers, a.d_model, a.heads, a.kv_heads, a.ffn, a.seq + 1)
    decay = [q for q in model.parameters() if q.dim() > 1]
    no_decay = [q for q in model.parameters() if q.dim() <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=3e-3, betas=(0.9, 0.95), eps=1e-8)
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, a.vocab, (a.batch, a.seq + 1), generator=generator) for _ in range(a.steps)]
    busy = 0.0
    for step, batch in enumerate(batches):
        start = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = 3e-3 * min(1.0, (step + 1) / 10)
        optimizer.zero_grad()
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), batch[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        busy += time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"steps": a.steps, "tokens_per_s": a.batch * a.seq * a.steps / busy, "peak_rss_mb": peak}))


if __name__ == "__main__":
    main()
