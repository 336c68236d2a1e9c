// tiny_student: the exports the llama.cpp and PyTorch checks read.
//   tiny_student make OUT_DIR     trains a BPE and a unigram tokenizer and
//     writes, for each, OUT_DIR/TYPE/{tokenizer.model, hf/, f32.gguf,
//     f16.gguf} of a tiny random student, and OUT_DIR/summary.json
//   tiny_student encode MODEL TEXTS_JSON
//     prints SentencePiece's EncodeAsIds of each text (a JSON array)
#include <sentencepiece_processor.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "export.h"
#include "tiny_model.h"

namespace {

using namespace distill::student;
using Json = nlohmann::json;

int piece_count(const std::filesystem::path& model) {
  sentencepiece::SentencePieceProcessor sp;
  if (const auto status = sp.Load(model.string()); !status.ok()) throw std::runtime_error(status.ToString());
  return sp.GetPieceSize();
}

template <typename F>
double seconds(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The unigram student's vocabulary is padded past the tokenizer's pieces,
// so that the "[PADn]" path is loaded by llama.cpp too.
Json make(const std::filesystem::path& out, const std::string& type, std::uint32_t seed, int padding) {
  const auto dir = out / type;
  const auto model = tiny::train_tokenizer(dir, type, 400);
  const auto shape = tiny::tiny_shape(piece_count(model) + padding, true);
  const auto weights = tiny::random_weights(shape, seed, 0.7f);
  const auto tokenizer = tiny::tiny_tokenizer(model);
  Json summary = {{"vocab_size", shape.vocab_size}, {"pieces", shape.vocab_size - padding}};
  summary["hf_seconds"] = seconds([&] { write_hf(dir / "hf", shape, weights, tokenizer, 64); });
  summary["gguf_f32_seconds"] = seconds([&] { write_gguf(dir / "f32.gguf", shape, weights, tokenizer, GgufType::F32); });
  summary["gguf_f16_seconds"] = seconds([&] { write_gguf(dir / "f16.gguf", shape, weights, tokenizer, GgufType::F16); });
  return summary;
}

Json encode(const std::filesystem::path& model, const std::filesystem::path& texts) {
  sentencepiece::SentencePieceProcessor sp;
  if (const auto status = sp.Load(model.string()); !status.ok()) throw std::runtime_error(status.ToString());
  Json out = Json::array();
  for (const auto& text : Json::parse(std::ifstream(texts))) out.push_back(sp.EncodeAsIds(text.get<std::string>()));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string usage = "usage: tiny_student make OUT_DIR | tiny_student encode MODEL TEXTS_JSON";
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 2 && args[0] == "make") {
      const Json summary = {{"bpe", make(args[1], "bpe", 11, 0)}, {"unigram", make(args[1], "unigram", 13, 8)}};
      std::ofstream(std::filesystem::path(args[1]) / "summary.json") << summary.dump(2) << "\n";
      std::cout << summary.dump() << "\n";
      return 0;
    }
    if (args.size() == 3 && args[0] == "encode") {
      std::cout << encode(args[1], args[2]).dump() << "\n";
      return 0;
    }
    std::cerr << usage << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "tiny_student: " << e.what() << "\n";
    return 1;
  }
}
