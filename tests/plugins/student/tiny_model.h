// A tiny random Llama student for the export tests: a SentencePiece
// tokenizer trained on generated text, and random weights scaled so that
// greedy choices are decisive.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "export.h"

namespace distill::student::tiny {

// The chat markers trained as user-defined symbols.
extern const std::vector<std::string> kChatMarkers;
// A chat template over those markers, in Hugging Face's Jinja dialect.
extern const std::string kChatTemplate;

// Deterministic text (about 20 KB): words, digits, chat turns, a few
// non-ASCII letters; rare scripts are left out so byte fallback is needed.
std::string training_text();

// Trains `dir`/tokenizer.model with SentencePiece: `model_type` "bpe" or
// "unigram", byte_fallback, no dummy prefix, identity normalisation, split
// digits, the chat markers as user-defined symbols. Returns the model path.
std::filesystem::path train_tokenizer(const std::filesystem::path& dir, const std::string& model_type,
                                      int vocab_size);

// The tiny shape: 2 layers, d_model 64, 4 heads, 2 kv heads, ffn 128.
ModelShape tiny_shape(int vocab_size, bool tie_embeddings);

// Random weights for every tensor of `shape` in Hugging Face layout: norms
// around 1, other weights with standard deviation `scale`.
std::vector<NamedTensor> random_weights(const ModelShape& shape, std::uint32_t seed, float scale);

// Tokenizer settings matching train_tokenizer().
ExportTokenizer tiny_tokenizer(const std::filesystem::path& model_file);

}  // namespace distill::student::tiny
