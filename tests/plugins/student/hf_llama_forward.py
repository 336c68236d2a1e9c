#!/usr/bin/env python3
"""A reference Llama forward pass over a Hugging Face export, in PyTorch
without transformers, written from Hugging Face's Llama conventions:
RMSNorm x*rsqrt(mean(x^2)+eps)*w, rotate_half rotary embeddings with
inv_freq = 1/theta^(arange(0,hd,2)/hd), grouped-query attention by repeating
each kv head, causal softmax attention scaled by 1/sqrt(hd), a SwiGLU MLP
down(silu(gate(x))*up(x)), the final norm, and lm_head or the tied
embeddings. Reads model.safetensors by its header and config.json; renders
tokenizer_config.json's chat_template with jinja2.

  hf_llama_forward.py HF_DIR --tokens 1,5,9          {"logits": [[...], ...]}
  hf_llama_forward.py HF_DIR --tokens 1,5 --greedy N  {"greedy": [...], "margins": [...]}
  hf_llama_forward.py HF_DIR --render-template MESSAGES_JSON [--add-generation-prompt]
                                                      {"text": "..."}
Computes in float64 so that it is the more exact side of any comparison.
"""
import argparse
import json
import math
import os
import struct
import sys

import torch

DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2),
          "F64": (torch.float64, 8)}


def read_safetensors(path):
    """Returns {name: float64 tensor}; checks that the header's offsets cover
    the data exactly, without gaps or overlaps."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    (length,) = struct.unpack("<Q", raw[:8])
    if 8 + length > len(raw):
        raise ValueError(f"{path}: header length {length} runs past the end of the file")
    header = json.loads(raw[8:8 + length])
    data = raw[8 + length:]
    tensors, spans = {}, []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in DTYPES:
            raise ValueError(f"{path}: {name} has unsupported dtype {info['dtype']}")
        dtype, size = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        count = math.prod(info["shape"])
        if end - begin != count * size:
            raise ValueError(f"{path}: {name} spans {end - begin} bytes, its shape needs {count * size}")
        spans.append((begin, end, name))
        buffer = bytearray(data[begin:end])
        tensors[name] = torch.frombuffer(buffer, dtype=dtype).reshape(info["shape"]).to(torch.float64)
    at = 0
    for begin, end, name in sorted(spans):
        if begin != at:
            raise ValueError(f"{path}: {name} starts at {begin}, expected {at} (gap or overlap)")
        at = end
    if at != len(data):
        raise ValueError(f"{path}: tensors cover {at} bytes of {len(data)}")
    return tensors


class Llama:
    def __init__(self, hf_dir):
        with open(os.path.join(hf_dir, "config.json")) as f:
            self.config = json.load(f)
        c = self.config
        self.w = read_safetensors(os.path.join(hf_dir, "model.safetensors"))
        self.layers = c["num_hidden_layers"]
        self.heads = c["num_attention_heads"]
        self.kv_heads = c.get("num_key_value_heads", self.heads)
        self.hd = c.get("head_dim") or c["hidden_size"] // self.heads
        self.eps = c["rms_norm_eps"]
        self.theta = c.get("rope_theta", 10000.0)
        self.lm_head = self.w["model.embed_tokens.weight"] if c.get("tie_word_embeddings", True) \
            else self.w["lm_head.weight"]

    def rms_norm(self, x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * weight

    @staticmethod
    def rotate_half(x):
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    def rope(self, x, positions):
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd))
        freqs = torch.outer(positions.to(torch.float64), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return x * emb.cos() + self.rotate_half(x) * emb.sin()

    def attention(self, x, p, positions):
        t = x.shape[0]
        q = (x @ self.w[p + "q_proj.weight"].T).view(t, self.heads, self.hd).transpose(0, 1)
        k = (x @ self.w[p + "k_proj.weight"].T).view(t, self.kv_heads, self.hd).transpose(0, 1)
        v = (x @ self.w[p + "v_proj.weight"].T).view(t, self.kv_heads, self.hd).transpose(0, 1)
        q, k = self.rope(q, positions), self.rope(k, positions)
        groups = self.heads // self.kv_heads
        k = k.repeat_interleave(groups, dim=0)
        v = v.repeat_interleave(groups, dim=0)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.hd)
        mask = torch.triu(torch.full((t, t), float("-inf"), dtype=torch.float64), diagonal=1)
        out = torch.softmax(scores + mask, dim=-1) @ v
        return out.transpose(0, 1).reshape(t, self.heads * self.hd) @ self.w[p + "o_proj.weight"].T

    def mlp(self, x, p):
        gate = x @ self.w[p + "gate_proj.weight"].T
        up = x @ self.w[p + "up_proj.weight"].T
        return (torch.nn.functional.silu(gate) * up) @ self.w[p + "down_proj.weight"].T

    def logits(self, tokens):
        x = self.w["model.embed_tokens.weight"][torch.tensor(tokens)]
        positions = torch.arange(len(tokens))
        for n in range(self.layers):
            p = f"model.layers.{n}."
            x = x + self.attention(self.rms_norm(x, self.w[p + "input_layernorm.weight"]), p + "self_attn.",
                                   positions)
            x = x + self.mlp(self.rms_norm(x, self.w[p + "post_attention_layernorm.weight"]), p + "mlp.")
        return self.rms_norm(x, self.w["model.norm.weight"]) @ self.lm_head.T

    def greedy(self, tokens, n):
        """n greedy next tokens, and each step's margin (top-1 minus top-2 logit)."""
        tokens, out, margins = list(tokens), [], []
        for _ in range(n):
            top = torch.topk(self.logits(tokens)[-1], 2)
            out.append(int(top.indices[0]))
            margins.append(float(top.values[0] - top.values[1]))
            tokens.append(out[-1])
        return out, margins


def render_template(hf_dir, messages, add_generation_prompt):
    """Renders the chat template the way transformers' apply_chat_template does."""
    import jinja2.sandbox

    with open(os.path.join(hf_dir, "tokenizer_config.json")) as f:
        config = json.load(f)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(config["chat_template"])
    specials = {k: config.get(k) for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    return template.render(messages=messages, add_generation_prompt=add_generation_prompt, **specials)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("hf_dir")
    parser.add_argument("--tokens", help="comma-separated token ids (include BOS if the model wants it)")
    parser.add_argument("--greedy", type=int, metavar="N", help="print N greedy next-token ids")
    parser.add_argument("--render-template", metavar="MESSAGES_JSON",
                        help="a JSON file of messages, or the JSON itself")
    parser.add_argument("--add-generation-prompt", action="store_true")
    args = parser.parse_args()

    if args.render_template is not None:
        source = args.render_template
        messages = json.load(open(source)) if os.path.exists(source) else json.loads(source)
        print(json.dumps({"text": render_template(args.hf_dir, messages, args.add_generation_prompt)}))
        return 0
    if not args.tokens:
        parser.error("--tokens is needed (or --render-template)")
    tokens = [int(t) for t in args.tokens.split(",")]
    model = Llama(args.hf_dir)
    with torch.no_grad():
        if args.greedy is not None:
            ids, margins = model.greedy(tokens, args.greedy)
            print(json.dumps({"greedy": ids, "margins": margins}))
        else:
            print(json.dumps({"logits": model.logits(tokens).tolist()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
