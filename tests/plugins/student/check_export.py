#!/usr/bin/env python3
"""End-to-end checks of the student exports on a tiny random Llama.

  check_export.py --tiny-student BIN hf
      the Hugging Face export read back by hf_llama_forward.py: every
      tensor and the config, a finite forward pass, the chat template
  check_export.py --tiny-student BIN llama-cpp --setup SETUP_SH --node-script MJS
      llama.cpp (node-llama-cpp) loads the GGUF exports; its greedy
      continuations and next-token probabilities must match
      hf_llama_forward.py on the same weights, and its tokenization must
      match SentencePiece's (asserted for BPE, reported for unigram)

tiny_student makes the models (a BPE and a unigram tokenizer, each with
its own random student). Prints the measured figures; exits non-zero when a
check fails. node-llama-cpp is installed once into $DISTILL_LLAMA_CPP_DIR
(default ~/.cache/distilld/node-llama-cpp-3.21.1).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_llama_forward import Llama, render_template  # noqa: E402

MESSAGES = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello, world! 12345"},
            {"role": "assistant", "content": "café — naïve"},
            {"role": "user", "content": "日本語 😀?"}]
RENDERED = ("<|system|>Be brief.<|end|>\n<|user|>Hello, world! 12345<|end|>\n"
            "<|assistant|>café — naïve<|end|>\n<|user|>日本語 😀?<|end|>\n<|assistant|>")
TEXTS = ["Hello, world! 12345",
         "the quick brown fox jumps over the lazy dog",
         "  leading,  double  and trailing spaces  ",
         "line one\nline two\n\ttabbed\r\n",
         "digits 3.14159, 2025-01-01 and 1000000",
         "café naïve über Straße — ok",
         "日本語 😀 ñ ø ŵ",
         "x=1;a-b(maybe)under over-",
         "<|user|>hi<|end|><|assistant|>",
         RENDERED,
         ""]
GREEDY_TOKENS = 16
TIE_MARGIN = 1e-3        # below it, the top-1 is a near tie and may break either way
F32_LOGPROB_TOLERANCE = 1e-3   # F32 weights, F32 KV cache; rounding to F16 anywhere shows as ~1e-1
F16_PROB_TOLERANCE = 0.05       # F16 weights: the largest change of any next-token probability
F16_PREFIX = 3           # F16 greedy must agree on at least this many first tokens


class Checks:
    def __init__(self):
        self.passed, self.failed = 0, 0

    def expect(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {what}", flush=True)
        return ok


def run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def expected_names(config):
    names = ["model.embed_tokens.weight", "model.norm.weight"]
    for n in range(config["num_hidden_layers"]):
        p = f"model.layers.{n}."
        names += [p + "input_layernorm.weight", p + "post_attention_layernorm.weight"]
        names += [p + f"self_attn.{m}_proj.weight" for m in "qkvo"]
        names += [p + f"mlp.{m}_proj.weight" for m in ("gate", "up", "down")]
    if not config["tie_word_embeddings"]:
        names.append("lm_head.weight")
    return sorted(names)


def check_hf(checks, work, kind):
    hf = os.path.join(work, kind, "hf")
    model = Llama(hf)
    c = model.config
    checks.expect(sorted(model.w) == expected_names(c), f"{kind}: safetensors holds exactly the Llama tensors")
    d, hd = c["hidden_size"], c["head_dim"]
    shapes = {"model.embed_tokens.weight": [c["vocab_size"], d],
              "model.layers.1.self_attn.k_proj.weight": [c["num_key_value_heads"] * hd, d],
              "model.layers.0.mlp.down_proj.weight": [d, c["intermediate_size"]]}
    for name, shape in shapes.items():
        checks.expect(list(model.w[name].shape) == shape, f"{kind}: {name} has shape {shape}")
    with torch.no_grad():
        logits = model.logits([c["bos_token_id"], 5, 6, 7])
    checks.expect(list(logits.shape) == [4, c["vocab_size"]] and bool(torch.isfinite(logits).all()),
                  f"{kind}: the forward pass gives finite [4, vocab] logits")
    text = render_template(hf, MESSAGES, True)
    checks.expect(text == RENDERED, f"{kind}: chat template renders {RENDERED!r}, got {text!r}")
    checks.expect(render_template(hf, MESSAGES[:1], False) == "<|system|>Be brief.<|end|>\n",
                  f"{kind}: chat template without generation prompt")
    return model


def node_llama_cpp(setup):
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    target = os.environ.get("DISTILL_LLAMA_CPP_DIR") or os.path.join(cache, "distilld", "node-llama-cpp-3.21.1")
    return run(["bash", setup, target]).strip().splitlines()[-1]


class LlamaCpp:
    def __init__(self, script, package, work):
        self.script, self.package, self.work = script, package, work

    def __call__(self, gguf, mode, items, *flags):
        path = os.path.join(self.work, "items.json")
        with open(path, "w") as f:
            json.dump(items, f)
        option = "--texts" if mode == "tokenize" else "--prompts"
        return json_lines(run(["node", self.script, "--package", self.package, "--model", gguf, *flags,
                               mode, option, path, "--max-tokens", str(GREEDY_TOKENS)]))


def agreeing_prefix(llama_tokens, reference, margins):
    """How many first tokens agree, and whether a disagreement is a near tie."""
    n = 0
    while n < min(len(llama_tokens), len(reference)) and llama_tokens[n] == reference[n]:
        n += 1
    tie = n < len(llama_tokens) and n < len(reference) and margins[n] < TIE_MARGIN
    return n, tie


def check_greedy(checks, model, runs, prompts, bos, kind, label, strict):
    """strict: every token must agree (up to a near tie); else at least F16_PREFIX."""
    agreed = total = 0
    endings = {}
    for prompt, out in zip(prompts, runs):
        reference, margins = model.greedy([bos] + prompt, GREEDY_TOKENS)
        got = out["tokens"]
        n, tie = agreeing_prefix(got, reference, margins)
        agreed += n
        total += len(reference)
        eog = {out["eos"], out["eot"]} - {None}
        stopped_right = (out["stop"] == "eogToken" and n == len(got) and n < len(reference)
                         and reference[n] in eog)
        # LlamaCompletion holds back tokens that end inside a UTF-8 character
        # and drops them when maxTokens ends the generation there.
        held_back = out["stop"] == "maxTokens" and n == len(got) and len(reference) - n <= 3
        complete = n == len(reference) or tie or stopped_right or held_back
        ending = ("all" if n == len(reference) else "near tie" if tie else "end of generation" if stopped_right
                  else "UTF-8 tail held back" if held_back else "differ")
        endings[ending] = endings.get(ending, 0) + 1
        if strict:
            checks.expect(complete, f"{kind} {label}: llama.cpp {got} vs reference {reference} "
                                    f"(margins {[round(m, 4) for m in margins]}) for prompt {prompt}")
        else:
            checks.expect(complete or n >= F16_PREFIX, f"{kind} {label}: only {n} first tokens agree: "
                                                       f"{got} vs {reference} for prompt {prompt}")
    print(f"{kind} {label}: {agreed}/{total} greedy tokens agree with the PyTorch reference; prompts: {endings}")


def probability_diffs(model, runs, bos):
    """Max |log p diff| (over p > 1e-6), max |p diff|, and the row sizes."""
    worst_log, worst_p, counts = 0.0, 0.0, set()
    for out in runs:
        with torch.no_grad():
            reference = torch.log_softmax(model.logits([bos] + out["prompt"]), dim=-1)
        for position, row in enumerate(out["probabilities"]):
            counts.add(len(row))
            for token, p in row:
                expected = reference[position, token].item()
                worst_p = max(worst_p, abs(math.exp(expected) - p))
                if p > 1e-6:
                    worst_log = max(worst_log, abs(expected - math.log(p)))
    return worst_log, worst_p, counts


def check_probabilities(checks, model, llama_cpp, work, kind, prompts, bos):
    vocab = model.config["vocab_size"]
    figures = {}
    for name, flags in (("f32", ["--precise"]), ("f16", ["--precise"]), ("f32", []), ("f16", [])):
        runs = llama_cpp(os.path.join(work, kind, f"{name}.gguf"), "probabilities", prompts, *flags)
        worst_log, worst_p, counts = probability_diffs(model, runs, bos)
        setting = "F32 KV cache, no flash attention" if flags else "llama.cpp defaults (F16 KV cache)"
        figures[f"{name}.gguf, {setting}"] = {"max_abs_logprob_diff": worst_log, "max_abs_prob_diff": worst_p}
        print(f"{kind} {name}.gguf, {setting}: max |log p diff| {worst_log:.3g}, max |p diff| {worst_p:.3g}")
        if not flags:
            continue
        checks.expect(counts == {vocab}, f"{kind} {name}: llama.cpp gave probabilities for {counts} tokens, "
                                         f"not the {vocab} of the vocabulary")
        if name == "f32":
            checks.expect(worst_log < F32_LOGPROB_TOLERANCE,
                          f"{kind} f32: max |log p diff| {worst_log:.3g} >= {F32_LOGPROB_TOLERANCE}")
        else:
            checks.expect(worst_p < F16_PROB_TOLERANCE,
                          f"{kind} f16: max |p diff| {worst_p:.3g} >= {F16_PROB_TOLERANCE}")
    return figures


def check_tokenization(checks, llama_cpp, tiny_student, work, kind):
    texts_file = os.path.join(work, "texts.json")
    with open(texts_file, "w") as f:
        json.dump(TEXTS, f)
    spm = json.loads(run([tiny_student, "encode", os.path.join(work, kind, "tokenizer.model"), texts_file]))
    gguf = os.path.join(work, kind, "f32.gguf")
    special = llama_cpp(gguf, "tokenize", TEXTS, "--special")
    plain = llama_cpp(gguf, "tokenize", TEXTS)
    differ = [(t, s, l["tokens"]) for t, s, l in zip(TEXTS, spm, special) if s != l["tokens"]]
    differ_plain = [t for t, s, l in zip(TEXTS, spm, plain) if s != l["tokens"]]
    print(f"{kind}: llama.cpp tokenize(special=true) equals SentencePiece on "
          f"{len(TEXTS) - len(differ)}/{len(TEXTS)} texts; special=false on {len(TEXTS) - len(differ_plain)}")
    for text, s, l in differ:
        print(f"  {kind} differs on {text!r}:\n    SentencePiece {s}\n    llama.cpp     {l}")
    for text in differ_plain:
        print(f"  {kind} special=false differs on {text!r}")
    if kind == "bpe":
        checks.expect(not differ, "bpe: llama.cpp tokenizes like SentencePiece")
    return len(TEXTS) - len(differ)


def prompts_for(tiny_student, work, kind):
    texts_file = os.path.join(work, "prompt-texts.json")
    with open(texts_file, "w") as f:
        json.dump(TEXTS[:4] + [TEXTS[6], RENDERED], f)
    encoded = json.loads(run([tiny_student, "encode", os.path.join(work, kind, "tokenizer.model"), texts_file]))
    return [ids[:40] for ids in encoded] + [[37], [300, 12, 250, 7, 99, 150, 8, 42]]


def check_llama_cpp(checks, args, work):
    package = node_llama_cpp(args.setup)
    llama_cpp = LlamaCpp(args.node_script, package, work)
    figures = {}
    for kind in ("bpe", "unigram"):
        model = check_hf(checks, work, kind)
        bos = model.config["bos_token_id"]
        prompts = prompts_for(args.tiny_student, work, kind)
        with torch.no_grad():
            for name, flags, strict in (("f32", ["--precise"], True), ("f32", [], True), ("f16", ["--precise"], False)):
                runs = llama_cpp(os.path.join(work, kind, f"{name}.gguf"), "generate", prompts, *flags)
                label = f"{name}.gguf{' precise' if flags else ''}"
                check_greedy(checks, model, runs, prompts, bos, kind, label, strict)
        figures[kind] = check_probabilities(checks, model, llama_cpp, work, kind, prompts[:4], bos)
        figures[kind]["tokenization_matches"] = check_tokenization(checks, llama_cpp, args.tiny_student, work,
                                                                   kind)
    print(json.dumps(figures))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny-student", required=True)
    parser.add_argument("--setup", help="setup_llama_cpp.sh")
    parser.add_argument("--node-script", help="llama_cpp_generate.mjs")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("mode", choices=["hf", "llama-cpp"])
    args = parser.parse_args()
    if args.mode == "llama-cpp" and not (args.setup and args.node_script):
        parser.error("llama-cpp needs --setup and --node-script")
    if args.mode == "llama-cpp" and shutil.which("node") is None:
        sys.exit("node (Node.js >= 20) is not on PATH: it runs llama.cpp through node-llama-cpp")

    work = tempfile.mkdtemp(prefix="student-export-")
    checks = Checks()
    try:
        summary = json.loads(run([args.tiny_student, "make", work]))
        for kind, s in summary.items():
            print(f"{kind}: vocab {s['vocab_size']}; export seconds: hf {s['hf_seconds']:.3f}, "
                  f"gguf f32 {s['gguf_f32_seconds']:.3f}, gguf f16 {s['gguf_f16_seconds']:.3f}")
        if args.mode == "hf":
            for kind in summary:
                check_hf(checks, work, kind)
        else:
            check_llama_cpp(checks, args, work)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
