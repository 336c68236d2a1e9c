// The student's tokenizer and chat template: training a SentencePiece
// model on the kept records (byte fallback, so no text is ever unknown),
// the template that turns messages into tokens (and its Jinja twin for the
// exports), and records -> training examples, with the teacher's top-k
// logprobs aligned to student tokens for token-level KD.
#pragma once

#include <distill/record.h>

#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "student.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace distill::student {

struct TokenizerTraining {
  std::string type = "bpe";  // bpe | unigram
  int vocab_size = 512;
};

// Trains a SentencePiece model on `texts` and writes it to `file` atomically.
void train_tokenizer(const std::vector<std::string>& texts, const TokenizerTraining& options,
                     const std::filesystem::path& file);

// The template as text: <s><|system|>...<|end|><|user|>...<|end|><|assistant|>answer</s>
std::string chat_template_jinja();
// The prompt as text, without the BOS token, ending with the assistant marker.
std::string render_prompt(const std::vector<Message>& prompt);

// How much of the response the teacher's logprobs covered.
struct Coverage {
  std::int64_t response_tokens = 0;  // student tokens of responses (EOS excluded)
  std::int64_t covered = 0;          // of which have a soft target
  std::int64_t records_with_logprobs = 0;
  double fraction() const { return response_tokens ? static_cast<double>(covered) / static_cast<double>(response_tokens) : 0; }
};

class ChatTokenizer {
 public:
  explicit ChatTokenizer(const std::filesystem::path& model_file);
  ~ChatTokenizer();
  ChatTokenizer(const ChatTokenizer&) = delete;
  ChatTokenizer& operator=(const ChatTokenizer&) = delete;

  int vocab_size() const;
  std::int32_t bos() const;
  std::int32_t eos() const;
  bool adds_space_prefix() const;
  std::vector<std::int32_t> encode(const std::string& text) const;
  std::string decode(const std::vector<std::int32_t>& ids) const;

  // BOS, the messages in the template, and the assistant marker.
  std::vector<std::int32_t> prompt_tokens(const std::vector<Message>& prompt) const;
  // The prompt, the response and EOS; soft targets from record.logprobs
  // where the teacher's token covers the same text as one student token.
  Example example(const Record& record, Coverage& coverage) const;

 private:
  std::vector<std::int32_t> marker(const std::string& text) const;
  // The id of the student token that is exactly `text`, or -1.
  std::int32_t single_token(const std::string& text) const;
  std::vector<SoftTarget> align(const Record& record, const std::vector<std::int32_t>& ids,
                                const std::vector<std::pair<std::uint32_t, std::uint32_t>>& spans,
                                std::int32_t offset) const;

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  mutable std::unordered_map<std::string, std::int32_t> single_tokens_;
};

}  // namespace distill::student
