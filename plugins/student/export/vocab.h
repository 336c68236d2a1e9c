// The SentencePiece vocabulary as both exports describe it: pieces, scores,
// llama.cpp token types and the special token ids, read with the
// SentencePiece library and checked against the export settings.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "export.h"

namespace distill::student {

// llama.cpp's token types (gguf-py TokenType).
enum class TokenType : std::int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<TokenType> types;
  int bos = -1, eos = -1, unk = -1, pad = -1;  // -1: the model has none
};

// Reads tokenizer.model (its bytes: `model_bytes`). Its size must be at most vocab_size; when smaller
// the vocabulary is padded with unused "[PADn]" tokens (as llama.cpp's
// converter does) up to the embedding's rows. Throws std::runtime_error
// naming the file when it cannot be read, lacks byte-fallback pieces, unk or
// eos (or bos while add_bos), or when add_space_prefix disagrees with it.
Vocab read_vocab(const ExportTokenizer& tokenizer, std::string_view model_bytes, int vocab_size);

// The bytes of a file; throws std::runtime_error naming it and the cause.
std::string read_file(const std::filesystem::path& file);

}  // namespace distill::student
