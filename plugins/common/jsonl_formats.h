// The JSONL line parser the jsonl source and the teacher stage share: turns
// one JSONL line of teacher output (OpenAI chat completion, Batch API
// output, `messages`, ShareGPT or Alpaca) into distill::Record values or a
// dead letter, and indexes a Batch API input file so output lines can be
// joined to their prompts. The teacher reads each HTTP response body with
// it (Format::ChatCompletion). Pure: no plugin, Context or I/O other than
// reading the batch input file.
//
// Decisions worth knowing:
// - Content given as an array of parts keeps its text parts, joined by "\n";
//   other parts (images, audio) are skipped.
// - A chat completion with several choices gives one record per choice that
//   has text content (annotation "choice" = its index); a choice with null
//   content is skipped, and only when none has content is the line a dead
//   letter ("no_content"). Every record of a response carries the response's
//   usage (all choices together).
// - Reasoning text is read from "reasoning_content" or "reasoning" (of the
//   message; in the `messages` shape also beside it, where distilld's own
//   output puts it, so a curated set read back keeps it).
// - Times come only from the data ("created"), never from the clock.
// - Alpaca and ShareGPT lines may carry a top-level "system" string; it
//   becomes a leading system message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <distill/record.h>

namespace simdjson::dom {
class parser;
}  // namespace simdjson::dom

namespace distill::jsonl {

enum class Format { Auto, ChatCompletion, BatchOutput, Messages, ShareGpt, Alpaca };

// "auto", "chat_completion", "batch_output", "messages", "sharegpt", "alpaca".
std::optional<Format> parse_format(std::string_view name);
const char* format_name(Format format);

// One request of a Batch API input file: its body.messages, body.model, and
// every other body member (sampling parameters) as minified JSON text.
struct Request {
  std::vector<distill::Message> messages;
  std::string model;
  std::map<std::string, std::string> params;
};

// Prompts of an OpenAI Batch API *input* file, found by custom_id. The file
// is indexed once (custom_id -> position of its line; nothing else is kept in
// memory) and the line is re-read with pread when needed. Every line is fully
// checked while indexing. Thread-safe after construction.
class BatchInputIndex {
 public:
  // Throws std::runtime_error naming the file and line on an unreadable file,
  // a malformed line, a line without custom_id/body.messages, or a duplicate
  // custom_id.
  explicit BatchInputIndex(const std::string& path);
  ~BatchInputIndex();
  BatchInputIndex(const BatchInputIndex&) = delete;
  BatchInputIndex& operator=(const BatchInputIndex&) = delete;

  // The request for custom_id, or nullopt when the file has none. Throws
  // std::runtime_error when the line can no longer be read or no longer
  // matches (the file changed after indexing).
  std::optional<Request> find(std::string_view custom_id) const;
  // The same, parsing with the caller's parser (saves an allocation per call).
  std::optional<Request> find(std::string_view custom_id, simdjson::dom::parser& parser) const;
  std::size_t size() const;
  const std::string& path() const { return path_; }

 private:
  struct Span {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const noexcept;
  };

  std::string path_;
  int fd_ = -1;
  std::unordered_map<std::string, Span, Hash, std::equal_to<>> spans_;
};

// What one line yields: records, or a dead letter (reason code + human detail).
// An empty or whitespace-only line yields neither (the caller skips it).
struct LineResult {
  std::vector<distill::Record> records;  // n>1 choices give several records
  std::string dead_reason;               // empty = OK; else a short code (see below)
  std::string dead_detail;               // a message a person can act on
  Format format = Format::Auto;          // the format the line was read as (Auto: not known)
  bool ok() const { return dead_reason.empty(); }
};

// Dead-letter reason codes.
inline constexpr std::string_view kMalformedJson = "malformed_json";          // not JSON / bad UTF-8 / too deep
inline constexpr std::string_view kUnrecognizedFormat = "unrecognized_format";  // Auto: no format matches; or not an object
inline constexpr std::string_view kMissingField = "missing_field";            // a required key is absent
inline constexpr std::string_view kWrongType = "wrong_type";                  // a key holds the wrong JSON type
inline constexpr std::string_view kNoChoices = "no_choices";                  // chat completion without choices
inline constexpr std::string_view kNoContent = "no_content";                  // the response text is null (tool calls, refusal)
inline constexpr std::string_view kNoAssistantTurn = "no_assistant_turn";     // messages/sharegpt not ending with the assistant
inline constexpr std::string_view kBatchError = "batch_error";                // Batch API output with a non-null "error"
// Batch API output with status_code != 200 gives "http_<status_code>", e.g. "http_429".
inline constexpr std::string_view kUnknownCustomId = "unknown_custom_id";     // custom_id not in the batch input index
inline constexpr std::string_view kBatchInputError = "batch_input_error";     // the batch input file changed or cannot be read
inline constexpr std::string_view kInternalError = "internal_error";          // e.g. out of memory

// Parses lines of one format, or detects the format per line with
// Format::Auto (by keys: custom_id+response/error -> batch_output, choices
// -> chat_completion, messages -> messages, conversations -> sharegpt,
// instruction -> alpaca). One LineParser per thread (it owns simdjson
// parsers); parse() is not thread-safe and never throws.
//
// Records get prompt, response, reasoning, logprobs, teacher.{model,
// response_id, finish_reason, params, usage}, provenance.request_id (the
// batch custom_id) and provenance.collected_at_ms (created * 1000). The
// caller sets id and provenance.source/uri/offset/terms.
class LineParser {
 public:
  explicit LineParser(Format format, const BatchInputIndex* requests = nullptr);
  ~LineParser();
  LineParser(LineParser&&) noexcept;
  LineParser& operator=(LineParser&&) noexcept;

  LineResult parse(std::string_view line);

 private:
  struct Parsers;

  Format format_;
  const BatchInputIndex* requests_;
  std::unique_ptr<Parsers> parsers_;
};

}  // namespace distill::jsonl
