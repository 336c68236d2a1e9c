#!/usr/bin/env node
// Runs a GGUF file in llama.cpp through node-llama-cpp (3.21.1, its prebuilt
// CPU build) and prints one JSON line per input:
//   generate --prompts FILE --max-tokens N
//       greedy completion (LlamaCompletion, temperature 0, no repeat
//       penalty) of each prompt: a string, or an array of token ids (the
//       BOS token is prepended by llama.cpp when the model asks for it)
//       -> {"prompt", "tokens", "text", "stop", "eos", "eot"}: why it
//       stopped ("maxTokens", "eogToken"), and the end-of-generation ids
//   probabilities --prompts FILE
//       for each token-id prompt, evaluated after BOS: the next-token
//       probabilities at every position (temperature 1, no top-k/p)
//       -> {"prompt", "probabilities": [[[id, p], ...] for each position]}
//   tokenize --texts FILE [--special]
//       the ids llama.cpp tokenizes each text into, without BOS
//       (model.tokenize(text, special)) -> {"text", "tokens"}
// One thread: on a small shared machine more threads spin-wait (20x slower).
// --precise keeps the KV cache in F32 and turns flash attention off: by
// default llama.cpp rounds K and V to F16 (relative error ~5e-4).
// Usage: llama_cpp_generate.mjs --package NODE_LLAMA_CPP_DIR --model FILE [--precise] MODE ...
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    package: { type: "string" },
    model: { type: "string" },
    prompts: { type: "string" },
    texts: { type: "string" },
    "max-tokens": { type: "string", default: "16" },
    special: { type: "boolean", default: false },
    precise: { type: "boolean", default: false },
  },
});
const mode = positionals[0];
if (!opts.package || !opts.model || !["generate", "probabilities", "tokenize"].includes(mode)) {
  console.error("usage: llama_cpp_generate.mjs --package DIR --model FILE generate|probabilities|tokenize ...");
  process.exit(2);
}

const { getLlama, LlamaCompletion } = await import(pathToFileURL(join(opts.package, "dist", "index.js")).href);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath: opts.model });
const readJson = (file) => JSON.parse(readFileSync(file, "utf8"));
const newContext = () =>
  model.createContext({
    contextSize: 256,
    sequences: 1,
    threads: 1,
    ...(opts.precise
      ? { flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" }
      : {}),
  });
const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");

async function generate() {
  const context = await newContext();
  const sequence = context.getSequence();
  const completion = new LlamaCompletion({ contextSequence: sequence });
  for (const prompt of readJson(opts.prompts)) {
    await sequence.clearHistory();
    const tokens = [];
    const { response, metadata } = await completion.generateCompletionWithMeta(prompt, {
      maxTokens: Number(opts["max-tokens"]),
      temperature: 0,
      repeatPenalty: false,
      onToken: (chunk) => tokens.push(...chunk),
    });
    print({ prompt, tokens, text: response, stop: metadata.stopReason, eos: model.tokens.eos, eot: model.tokens.eot });
  }
}

async function probabilities() {
  const context = await newContext();
  const sequence = context.getSequence();
  const bos = model.tokens.bos === null ? [] : [model.tokens.bos];
  const sampling = { temperature: 1, topK: 0, topP: 1, minP: 0 };
  for (const prompt of readJson(opts.prompts)) {
    await sequence.clearHistory();
    const input = [...bos, ...prompt].map((token) => [
      token,
      { generateNext: { probabilities: true, options: sampling } },
    ]);
    const results = await sequence.controlledEvaluate(input);
    print({ prompt, probabilities: results.map((result) => Array.from(result.next.probabilities)) });
  }
}

function tokenize() {
  for (const text of readJson(opts.texts)) print({ text, tokens: model.tokenize(text, opts.special) });
}

if (mode === "generate") await generate();
else if (mode === "probabilities") await probabilities();
else tokenize();
await model.dispose();
await llama.dispose();
