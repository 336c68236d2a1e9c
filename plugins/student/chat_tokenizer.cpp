// SentencePiece training and encoding, the chat template, and records ->
// examples with the teacher's logprobs aligned to student tokens.
#include "chat_tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cmath>
#include <map>
#include <stdexcept>
#include <unordered_map>

#include "atomic_file.h"

namespace distill::student {
namespace {

const char* const kSystem = "<|system|>";
const char* const kUser = "<|user|>";
const char* const kAssistant = "<|assistant|>";
const char* const kTool = "<|tool|>";
const char* const kEnd = "<|end|>";

const char* role_marker(const std::string& role) {
  if (role == "system") return kSystem;
  if (role == "assistant") return kAssistant;
  if (role == "tool") return kTool;
  return kUser;
}

class TextIterator : public sentencepiece::SentenceIterator {
 public:
  explicit TextIterator(const std::vector<std::string>& texts) : texts_(texts) { skip_empty(); }
  bool done() const override { return next_ >= texts_.size(); }
  void Next() override {
    ++next_;
    skip_empty();
  }
  const std::string& value() const override { return texts_[next_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void skip_empty() {
    while (next_ < texts_.size() && texts_[next_].empty()) ++next_;
  }
  const std::vector<std::string>& texts_;
  std::size_t next_ = 0;
};

}  // namespace

void train_tokenizer(const std::vector<std::string>& texts, const TokenizerTraining& options,
                     const std::filesystem::path& file) {
  // Identity normalisation, no dummy prefix and kept white space make the
  // pieces cover the text byte for byte, as llama.cpp's tokenizer expects;
  // single digits help arithmetic-like tasks.
  const std::unordered_map<std::string, std::string> settings = {
      {"model_type", options.type},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"byte_fallback", "true"},
      {"character_coverage", "1.0"},
      {"split_digits", "true"},
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      {"normalization_rule_name", "identity"},
      {"user_defined_symbols", std::string(kSystem) + "," + kUser + "," + kAssistant + "," + kTool + "," + kEnd},
      {"hard_vocab_limit", "false"},
      {"num_threads", "1"},
      {"max_sentence_length", "65536"},
      {"minloglevel", "1"},
  };
  TextIterator iterator(texts);
  std::string model;
  const sentencepiece::util::Status status = sentencepiece::SentencePieceTrainer::Train(settings, &iterator, &model);
  if (!status.ok()) throw std::runtime_error("training the tokenizer failed: " + status.ToString());
  write_file_atomically(file, model);
}

std::string chat_template_jinja() {
  return "{{ bos_token }}{% for message in messages %}"
         "{% if message['role'] in ['system', 'assistant', 'tool'] %}{{ '<|' + message['role'] + '|>' }}"
         "{% else %}{{ '<|user|>' }}{% endif %}{{ message['content'] }}"
         "{% if message['role'] == 'assistant' %}{{ eos_token }}{% else %}{{ '<|end|>' }}{% endif %}"
         "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";
}

std::string render_prompt(const std::vector<Message>& prompt) {
  std::string text;
  for (const Message& m : prompt) {
    text += role_marker(m.role);
    text += m.content;
    text += m.role == "assistant" ? "</s>" : kEnd;
  }
  return text + kAssistant;
}

ChatTokenizer::ChatTokenizer(const std::filesystem::path& model_file)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  const sentencepiece::util::Status status = sp_->Load(model_file.string());
  if (!status.ok()) throw std::runtime_error("cannot load the tokenizer " + model_file.string() + ": " + status.ToString());
  if (sp_->bos_id() < 0 || sp_->eos_id() < 0)
    throw std::runtime_error("the tokenizer " + model_file.string() + " has no BOS or EOS token");
}

ChatTokenizer::~ChatTokenizer() = default;

int ChatTokenizer::vocab_size() const { return sp_->GetPieceSize(); }
std::int32_t ChatTokenizer::bos() const { return sp_->bos_id(); }
std::int32_t ChatTokenizer::eos() const { return sp_->eos_id(); }

bool ChatTokenizer::adds_space_prefix() const {
  std::vector<int> ids;
  sp_->Encode("a", &ids).IgnoreError();
  return !ids.empty() && sp_->IdToPiece(ids[0]).starts_with("\xe2\x96\x81");
}

std::vector<std::int32_t> ChatTokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  const sentencepiece::util::Status status = sp_->Encode(text, &ids);
  if (!status.ok()) throw std::runtime_error("tokenizing failed: " + status.ToString());
  return {ids.begin(), ids.end()};
}

std::string ChatTokenizer::decode(const std::vector<std::int32_t>& ids) const {
  std::string text;
  sp_->Decode(std::vector<int>(ids.begin(), ids.end()), &text).IgnoreError();
  return text;
}

// A marker is one token when the tokenizer has it (ours always does), or
// its text encoded as usual (a tokenizer given by path may not).
std::vector<std::int32_t> ChatTokenizer::marker(const std::string& text) const {
  const int id = sp_->PieceToId(text);
  if (id != sp_->unk_id()) return {id};
  return encode(text);
}

std::vector<std::int32_t> ChatTokenizer::prompt_tokens(const std::vector<Message>& prompt) const {
  std::vector<std::int32_t> tokens = {bos()};
  auto append = [&tokens](const std::vector<std::int32_t>& more) { tokens.insert(tokens.end(), more.begin(), more.end()); };
  for (const Message& m : prompt) {
    append(marker(role_marker(m.role)));
    append(encode(m.content));
    if (m.role == "assistant")
      tokens.push_back(eos());
    else
      append(marker(kEnd));
  }
  append(marker(kAssistant));
  return tokens;
}

std::int32_t ChatTokenizer::single_token(const std::string& text) const {
  auto it = single_tokens_.find(text);
  if (it != single_tokens_.end()) return it->second;
  std::vector<int> ids;
  sp_->Encode(text, &ids).IgnoreError();
  std::int32_t id = -1;
  if (ids.size() == 1 && !sp_->IsByte(ids[0]) && !sp_->IsUnknown(ids[0])) id = ids[0];
  single_tokens_.emplace(text, id);
  return id;
}

Example ChatTokenizer::example(const Record& record, Coverage& coverage) const {
  Example example;
  example.tokens = prompt_tokens(record.prompt);
  example.response_start = static_cast<std::int32_t>(example.tokens.size());
  const sentencepiece::ImmutableSentencePieceText pieces = sp_->EncodeAsImmutableProto(record.response);
  std::vector<std::int32_t> ids;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> spans;
  for (const auto& piece : pieces.pieces()) {
    ids.push_back(static_cast<std::int32_t>(piece.id()));
    spans.emplace_back(piece.begin(), piece.end());
  }
  coverage.response_tokens += static_cast<std::int64_t>(ids.size());
  if (!record.logprobs.empty()) {
    ++coverage.records_with_logprobs;
    example.soft = align(record, ids, spans, example.response_start);
    coverage.covered += static_cast<std::int64_t>(example.soft.size());
  }
  example.tokens.insert(example.tokens.end(), ids.begin(), ids.end());
  example.tokens.push_back(eos());
  return example;
}

// A student token gets a soft target when exactly one teacher token covers
// the same bytes of the response and the teacher's chosen token is that
// student token. Alternatives that are not one student token join the rest.
std::vector<SoftTarget> ChatTokenizer::align(const Record& record, const std::vector<std::int32_t>& ids,
                                             const std::vector<std::pair<std::uint32_t, std::uint32_t>>& spans,
                                             std::int32_t offset) const {
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::size_t> teacher_at;  // span -> index in record.logprobs
  std::string joined;
  for (std::size_t j = 0; j < record.logprobs.size(); ++j) {
    const auto begin = static_cast<std::uint32_t>(joined.size());
    joined += record.logprobs[j].token;
    teacher_at[{begin, static_cast<std::uint32_t>(joined.size())}] = j;
  }
  if (joined != record.response) return {};  // logprobs of another text (e.g. a redacted answer)
  std::map<std::pair<std::uint32_t, std::uint32_t>, int> student_spans;
  for (const auto& span : spans) ++student_spans[span];
  std::vector<SoftTarget> out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (student_spans[spans[i]] != 1) continue;  // bytes of one character share a span
    auto found = teacher_at.find(spans[i]);
    if (found == teacher_at.end()) continue;
    const TokenLogprob& teacher = record.logprobs[found->second];
    if (single_token(teacher.token) != ids[i]) continue;
    std::map<std::int32_t, double> mass;
    if (teacher.top.empty()) mass[ids[i]] = std::exp(teacher.logprob);
    for (const TopLogprob& alternative : teacher.top) {
      const std::int32_t id = single_token(alternative.token);
      if (id >= 0) mass[id] += std::exp(alternative.logprob);
    }
    SoftTarget target;
    target.position = offset + static_cast<std::int32_t>(i);
    double total = 0;
    for (const auto& [id, p] : mass) {
      target.ids.push_back(id);
      target.probs.push_back(static_cast<float>(std::min(1.0, p)));
      total += p;
    }
    target.rest = static_cast<float>(std::max(0.0, 1.0 - total));
    out.push_back(std::move(target));
  }
  return out;
}

}  // namespace distill::student
