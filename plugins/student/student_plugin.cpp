// The student plugin: its parameter table, the settings read from it, the
// `distilld generate` command, and the plugin's registration.
#include <CLI/CLI.hpp>
#include <distill/plugin.h>

#include <fstream>
#include <iostream>

#include "student_files.h"
#include "student_sink.h"

namespace distill::student {

using nlohmann::json;
namespace p = distill::param;

std::vector<ParamSpec> student_params() {
  return {
      p::Path("dir", "folder for the kept records, checkpoints and the exported student").is_required(),
      p::Object("tokenizer", "SentencePiece tokenizer: trained on the kept records, or an existing model",
                {
                    p::Object("train", "training a tokenizer (byte fallback: no text is ever unknown)",
                              {
                                  p::Choice("type", "SentencePiece model type (llama.cpp reproduces bpe exactly)",
                                            {"bpe", "unigram"})
                                      .default_value("bpe"),
                                  p::Int("vocab_size", "vocabulary size").default_value("512").min(300).max(262144),
                              }),
                    p::Path("path", "an existing SentencePiece tokenizer.model instead (e.g. the teacher's)"),
                }),
      p::Object("model", "the decoder-only student (Llama layout)",
                {
                    p::Int("layers", "transformer blocks").default_value("4").min(1).max(256),
                    p::Int("d_model", "hidden size").default_value("256").min(8).max(65536),
                    p::Int("heads", "attention heads").default_value("4").min(1).max(1024),
                    p::Int("kv_heads", "key/value heads (grouped-query attention; divides heads)")
                        .default_value("4")
                        .min(1)
                        .max(1024),
                    p::Int("ffn", "SwiGLU hidden size").default_value("1024").min(1).max(262144),
                    p::Int("max_seq", "longest sequence in tokens (prompt + answer)")
                        .default_value("128")
                        .min(8)
                        .max(65536),
                    p::Bool("tie_embeddings", "share the input embedding and the output layer").default_value("true"),
                    p::Double("rope_theta", "rotary embedding base").default_value("10000").min(1),
                }),
      p::Object("train", "optimisation",
                {
                    p::Int("epochs", "passes over the training examples").default_value("20").min(1).max(100000),
                    p::Int("batch_size", "examples per step").default_value("64").min(1).max(65536),
                    p::Double("lr", "peak learning rate (AdamW)").default_value("3e-3").min(0).max(10),
                    p::Double("min_lr_ratio", "the cosine decay ends at lr times this").default_value("0.1").min(0).max(1),
                    p::Int("warmup_steps", "linear warmup steps").default_value("100").min(0),
                    p::Double("weight_decay", "AdamW weight decay on matrices").default_value("0.1").min(0),
                    p::Double("grad_clip", "largest gradient norm").default_value("1.0").min(0),
                    p::Int("seed", "initial weights and data order").default_value("1").min(0),
                    p::Int("threads", "threads for training (0: the pipeline's engine.threads)").default_value("0").min(0).max(1024),
                }),
      p::Object("kd", "token-level distillation on the teacher's top-k logprobs",
                {
                    p::Choice("token_level", "auto: when coverage reaches min_coverage; on: low coverage is an error",
                              {"auto", "on", "off"})
                        .default_value("auto"),
                    p::Double("temperature", "softens the student's distribution in the KL term").default_value("1.0").min(0.05).max(100),
                    p::Double("alpha", "loss = (1 - alpha) * cross-entropy + alpha * KL").default_value("0.5").min(0).max(1),
                    p::Double("min_coverage", "share of response tokens the logprobs must cover").default_value("0.5").min(0).max(1),
                }),
      p::Object("eval", "held-out evaluation",
                {
                    p::Double("holdout_fraction", "records held out, chosen by id").default_value("0.05").min(0).max(0.9),
                    p::Int("every_steps", "evaluate every N steps (0: only at the end)").default_value("200").min(0),
                    p::Int("max_prompts", "held-out prompts answered greedily for exact match").default_value("200").min(0),
                    p::Int("max_new_tokens", "longest greedy answer").default_value("64").min(1),
                }),
      p::Int("checkpoint_every_steps", "save a resumable checkpoint every N steps (0: never)").default_value("500").min(0),
      p::Choice("gguf", "GGUF export for llama.cpp", {"f32", "f16", "none"}).default_value("f32"),
  };
}

StudentConfig read_config(const Params& params) {
  StudentConfig c;
  const Params tokenizer = params.object("tokenizer");
  c.tokenizer.type = tokenizer.object("train").str("type");
  c.tokenizer.vocab_size = static_cast<int>(tokenizer.object("train").integer("vocab_size"));
  if (tokenizer.has("path")) c.tokenizer_path = tokenizer.path("path");
  const Params model = params.object("model");
  c.shape.layers = static_cast<int>(model.integer("layers"));
  c.shape.d_model = static_cast<int>(model.integer("d_model"));
  c.shape.heads = static_cast<int>(model.integer("heads"));
  c.shape.kv_heads = static_cast<int>(model.integer("kv_heads"));
  c.shape.ffn = static_cast<int>(model.integer("ffn"));
  c.shape.max_seq = static_cast<int>(model.integer("max_seq"));
  c.shape.tie_embeddings = model.flag("tie_embeddings");
  c.shape.rope_theta = model.number("rope_theta");
  const Params train = params.object("train");
  c.train.epochs = static_cast<int>(train.integer("epochs"));
  c.train.batch_size = static_cast<int>(train.integer("batch_size"));
  c.train.lr = train.number("lr");
  c.train.min_lr_ratio = train.number("min_lr_ratio");
  c.train.warmup_steps = static_cast<int>(train.integer("warmup_steps"));
  c.train.weight_decay = train.number("weight_decay");
  c.train.grad_clip = train.number("grad_clip");
  c.train.seed = static_cast<std::uint64_t>(train.integer("seed"));
  c.train.threads = static_cast<unsigned>(train.integer("threads"));
  const Params kd = params.object("kd");
  c.kd_mode = kd.str("token_level");
  c.train.kd_temperature = kd.number("temperature");
  c.train.kd_alpha = kd.number("alpha");
  c.kd_min_coverage = kd.number("min_coverage");
  const Params eval = params.object("eval");
  c.holdout_fraction = eval.number("holdout_fraction");
  c.train.eval_every_steps = static_cast<int>(eval.integer("every_steps"));
  c.eval_max_prompts = static_cast<int>(eval.integer("max_prompts"));
  c.train.eval_max_new_tokens = static_cast<int>(eval.integer("max_new_tokens"));
  c.train.checkpoint_every_steps = static_cast<int>(params.integer("checkpoint_every_steps"));
  c.gguf = params.str("gguf");
  return c;
}

void validate_config(const Params& params) {
  const StudentConfig c = read_config(params);
  if (c.shape.d_model % c.shape.heads != 0 || (c.shape.d_model / c.shape.heads) % 2 != 0)
    throw ParamError("model.d_model", "d_model " + std::to_string(c.shape.d_model) + " must be an even multiple of heads (" +
                                          std::to_string(c.shape.heads) + ") for rotary embeddings");
  if (c.shape.heads % c.shape.kv_heads != 0)
    throw ParamError("model.kv_heads", "kv_heads " + std::to_string(c.shape.kv_heads) + " must divide heads " +
                                           std::to_string(c.shape.heads));
  if (!c.tokenizer_path.empty() && !std::filesystem::exists(c.tokenizer_path))
    throw ParamError("tokenizer.path", "no tokenizer at " + c.tokenizer_path.string());
}


namespace {

std::vector<Message> prompt_of(const json& line, const std::string& system) {
  std::vector<Message> messages;
  if (const auto m = line.find("messages"); m != line.end()) {
    for (const json& message : *m) messages.push_back({message.at("role").get<std::string>(), message.at("content").get<std::string>()});
  } else {
    messages.push_back({"user", line.at("prompt").get<std::string>()});
  }
  if (!system.empty() && (messages.empty() || messages.front().role != "system"))
    messages.insert(messages.begin(), {"system", system});
  return messages;
}

int run_generate(const std::vector<std::string>& args) {
  CLI::App app{"the student's answers: greedy by default, in the chat template of training", "distilld generate"};
  std::string dir, prompt, file, system;
  bool no_system = false;
  bool logits = false;
  SamplingOptions options;
  unsigned threads = 1;
  app.add_option("student", dir, "the student folder (the student sink's dir)")->required();
  app.add_option("prompt", prompt, "one prompt (a user message)");
  app.add_option("--file", file, "JSONL of {\"prompt\": ...} or {\"messages\": [...]} lines; answers as JSONL");
  app.add_option("--system", system, "system message (default: the one most training records had)");
  app.add_flag("--no-system", no_system, "no system message");
  app.add_option("--max-tokens", options.max_new_tokens, "longest answer")->capture_default_str();
  app.add_option("--temperature", options.temperature, "0: greedy")->capture_default_str();
  app.add_option("--top-p", options.top_p, "nucleus sampling mass")->capture_default_str();
  app.add_option("--seed", options.seed, "sampling seed")->capture_default_str();
  app.add_option("--threads", threads, "threads")->capture_default_str();
  app.add_flag("--logits", logits,
               "instead of answering, print the prompt's tokens (chat template applied) and the next-token logits "
               "at each position as JSON, to check the model against another implementation");
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (prompt.empty() == file.empty()) {
    std::cerr << "distilld generate: give either a prompt or --file\n";
    return 2;
  }
  const json summary = read_student_json(dir);
  if (system.empty() && !no_system) system = summary.value("default_system", "");
  if (no_system) system.clear();
  const ModelShape shape = shape_from_json(summary.at("model"));
  const ChatTokenizer tokenizer(std::filesystem::path(dir) / "tokenizer.model");
  const std::unique_ptr<Generator> generator =
      torch_backend().generator(shape, read_safetensors(std::filesystem::path(dir) / "hf" / "model.safetensors"), threads);
  auto answer = [&](const std::vector<Message>& messages) {
    return tokenizer.decode(generator->generate(tokenizer.prompt_tokens(messages), tokenizer.eos(), options));
  };
  if (!prompt.empty() && logits) {
    const std::vector<std::int32_t> tokens = tokenizer.prompt_tokens(prompt_of({{"prompt", prompt}}, system));
    std::cout << json({{"tokens", tokens}, {"logits", generator->logits(tokens)}}).dump() << "\n";
    return 0;
  }
  if (!prompt.empty()) {
    std::cout << answer(prompt_of({{"prompt", prompt}}, system)) << "\n";
    return 0;
  }
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json request;
    try {
      request = json::parse(line);
      json out = {{"answer", answer(prompt_of(request, system))}};
      if (request.contains("id")) out["id"] = request["id"];
      if (request.contains("prompt")) out["prompt"] = request["prompt"];
      std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    } catch (const json::exception& e) {
      throw std::runtime_error(file + ":" + std::to_string(number) + ": " + e.what());
    }
  }
  return 0;
}

}  // namespace

Component generate_command() {
  return command("generate", "STUDENT_DIR PROMPT | --file PROMPTS.jsonl: the trained student's answers", run_generate);
}

}  // namespace distill::student

namespace {
distill::Component sink_with_checks() {
  distill::Component c = distill::student::student_sink_component();
  c.validate = distill::student::validate_config;
  return c;
}
}  // namespace

DISTILL_PLUGIN("student", "trains a small Llama-layout student on the kept records; exports Hugging Face and GGUF",
               sink_with_checks(), distill::student::generate_command())
