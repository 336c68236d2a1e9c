// The tiny random student of the export tests (see tiny_model.h).
#include "tiny_model.h"

#include <sentencepiece_trainer.h>

#include <fstream>
#include <random>
#include <stdexcept>

#include "layout.h"

namespace distill::student::tiny {

const std::vector<std::string> kChatMarkers = {"<|user|>", "<|assistant|>", "<|system|>", "<|end|>"};

const std::string kChatTemplate =
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}";

std::string training_text() {
  static const char* const kWords[] = {
      "the",    "student", "teacher", "learns", "model",   "data",  "token",  "river", "stone", "light",
      "quick",  "brown",   "fox",     "jumps",  "over",    "lazy",  "dog",    "and",   "of",    "to",
      "in",     "a",       "is",      "was",    "with",    "for",   "on",     "that",  "it",    "as",
      "café",   "naïve",   "über",    "Straße", "distill", "train", "export", "layer", "head",  "norm",
      "Hello,", "world!",  "yes.",    "no?",    "(maybe)", "x=1;",  "a-b",    "over-", "under", "—"};
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::size_t> word(0, std::size(kWords) - 1);
  std::uniform_int_distribution<int> number(0, 99999), length(4, 14), kind(0, 9);
  std::string text;
  while (text.size() < 20000) {
    std::string line;
    const int n = length(rng);
    for (int i = 0; i < n; ++i) {
      if (i) line += kind(rng) == 0 ? "  " : " ";
      line += kind(rng) == 1 ? std::to_string(number(rng)) : kWords[word(rng)];
    }
    if (kind(rng) < 3) line = "<|user|>" + line + "<|end|><|assistant|>" + line + "<|end|>";
    if (kind(rng) == 4) line = "<|system|>" + line + "<|end|>";
    text += line + "\n";
  }
  return text;
}

std::filesystem::path train_tokenizer(const std::filesystem::path& dir, const std::string& model_type,
                                      int vocab_size) {
  std::filesystem::create_directories(dir);
  const auto corpus = dir / "corpus.txt";
  std::ofstream(corpus, std::ios::binary) << training_text();
  std::string markers;
  for (const auto& m : kChatMarkers) markers += (markers.empty() ? "" : ",") + m;
  const std::unordered_map<std::string, std::string> args = {
      {"input", corpus.string()},
      {"model_prefix", (dir / "tokenizer").string()},
      {"model_type", model_type},
      {"vocab_size", std::to_string(vocab_size)},
      {"byte_fallback", "true"},
      {"add_dummy_prefix", "false"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"split_digits", "true"},
      {"character_coverage", "1.0"},
      {"user_defined_symbols", markers},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"num_threads", "1"},
      {"minloglevel", "2"},
  };
  if (const auto status = sentencepiece::SentencePieceTrainer::Train(args); !status.ok())
    throw std::runtime_error("SentencePiece training failed: " + status.ToString());
  return dir / "tokenizer.model";
}

ModelShape tiny_shape(int vocab_size, bool tie_embeddings) {
  ModelShape s;
  s.vocab_size = vocab_size;
  s.layers = 2;
  s.d_model = 64;
  s.heads = 4;
  s.kv_heads = 2;
  s.ffn = 128;
  s.max_seq = 256;
  s.tie_embeddings = tie_embeddings;
  s.rope_theta = 10000.0;
  s.rms_eps = 1e-5;
  return s;
}

std::vector<NamedTensor> random_weights(const ModelShape& shape, std::uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> weight(0.0f, scale), norm(1.0f, 0.1f);
  std::vector<NamedTensor> out;
  for (const auto& want : expected_tensors(shape)) {
    NamedTensor t{want.name, want.shape, {}};
    std::size_t n = 1;
    for (const auto d : want.shape) n *= static_cast<std::size_t>(d);
    t.data.resize(n);
    for (auto& x : t.data) x = want.shape.size() == 1 ? norm(rng) : weight(rng);
    out.push_back(std::move(t));
  }
  return out;
}

ExportTokenizer tiny_tokenizer(const std::filesystem::path& model_file) {
  return ExportTokenizer{model_file, kChatTemplate, true, false};
}

}  // namespace distill::student::tiny
