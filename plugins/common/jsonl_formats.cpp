// The JSONL line parser (see jsonl_formats.h): format detection, per-format
// extraction that names the offending key in every dead letter, and the
// Batch API input index (custom_id -> line position, re-read with pread).
#include "jsonl_formats.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <utility>

#include <simdjson.h>

namespace distill::jsonl {
namespace {

namespace dom = simdjson::dom;

// A parser keeps a buffer as large as the largest line it has seen; after a
// line bigger than this it is replaced, so one huge line does not pin that
// much memory per thread for the rest of the run.
constexpr std::size_t kRetainedCapacity = std::size_t{64} << 20;

// Thrown while reading a line and turned into LineResult's dead letter by
// LineParser::parse().
struct DeadLetter {
  std::string reason;
  std::string detail;
};

[[noreturn]] void dead(std::string_view reason, std::string detail) {
  throw DeadLetter{std::string(reason), std::move(detail)};
}

std::string member_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

std::string index_path(const std::string& parent, std::size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

std::string in_quotes(std::string_view text) { return "\"" + std::string(text) + "\""; }

const char* type_name(dom::element_type type) {
  switch (type) {
    case dom::element_type::ARRAY: return "an array";
    case dom::element_type::OBJECT: return "an object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE: return "a number";
    case dom::element_type::STRING: return "a string";
    case dom::element_type::BOOL: return "a boolean";
    case dom::element_type::NULL_VALUE: return "null";
  }
  return "an unknown value";
}

[[noreturn]] void wrong_type(dom::element value, const std::string& path, std::string_view expected) {
  dead(kWrongType, in_quotes(path) + " is " + type_name(value.type()) + "; expected " + std::string(expected));
}

dom::object as_object(dom::element value, const std::string& path) {
  dom::object object;
  if (value.get_object().get(object)) wrong_type(value, path, "an object");
  return object;
}

std::vector<dom::element> as_array(dom::element value, const std::string& path) {
  dom::array array;
  if (value.get_array().get(array)) wrong_type(value, path, "an array");
  std::vector<dom::element> items;
  for (dom::element item : array) items.push_back(item);
  return items;
}

std::string_view as_string(dom::element value, const std::string& path) {
  std::string_view text;
  if (value.get_string().get(text)) wrong_type(value, path, "a string");
  return text;
}

std::int64_t as_int(dom::element value, const std::string& path) {
  std::int64_t number = 0;
  if (value.get_int64().get(number)) wrong_type(value, path, "an integer");
  return number;
}

double as_number(dom::element value, const std::string& path) {
  double number = 0;
  if (value.get_double().get(number)) wrong_type(value, path, "a number");
  return number;
}

bool has_member(dom::object object, std::string_view key) {
  dom::element value;
  return !object.at_key(key).get(value);
}

// The member `key` of `object`, or nullopt when it is absent or null.
std::optional<dom::element> find_member(dom::object object, std::string_view key) {
  dom::element value;
  if (object.at_key(key).get(value) || value.is_null()) return std::nullopt;
  return value;
}

dom::element require_member(dom::object object, std::string_view key, const std::string& path) {
  dom::element value;
  if (object.at_key(key).get(value)) dead(kMissingField, "missing key " + in_quotes(member_path(path, key)));
  return value;
}

std::string optional_string(dom::object object, std::string_view key, const std::string& path) {
  const std::optional<dom::element> value = find_member(object, key);
  return value ? std::string(as_string(*value, member_path(path, key))) : std::string();
}

std::int64_t optional_int(dom::object object, std::string_view key, const std::string& path) {
  const std::optional<dom::element> value = find_member(object, key);
  return value ? as_int(*value, member_path(path, key)) : 0;
}

// A value as text for a message: strings as they are, anything else as JSON.
std::string text_of(dom::element value) {
  std::string_view text;
  return value.get_string().get(text) ? simdjson::minify(value) : std::string(text);
}

// Message content: a string, or an array of parts whose text parts are
// joined by "\n" (other parts, e.g. images, are skipped).
std::string content_text(dom::element content, const std::string& path) {
  std::string_view plain;
  if (!content.get_string().get(plain)) return std::string(plain);
  if (!content.is_array()) wrong_type(content, path, "a string or an array of content parts");
  std::string text;
  bool first = true;
  const std::vector<dom::element> parts = as_array(content, path);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string part_path = index_path(path, i);
    const dom::object part = as_object(parts[i], part_path);
    const std::string type = optional_string(part, "type", part_path);
    if (type != "text" && !(type.empty() && find_member(part, "text"))) continue;
    if (!first) text += '\n';
    first = false;
    text += as_string(require_member(part, "text", part_path), member_path(part_path, "text"));
  }
  return text;
}

std::string reasoning_text(dom::object message, const std::string& path) {
  for (const std::string_view key : {"reasoning_content", "reasoning"})
    if (const std::optional<dom::element> value = find_member(message, key))
      return std::string(as_string(*value, member_path(path, key)));
  return {};
}

// A chat prompt: [{"role", "content"}...]; null or absent content reads as "".
std::vector<Message> read_prompt(dom::element value, const std::string& path) {
  const std::vector<dom::element> items = as_array(value, path);
  std::vector<Message> messages;
  messages.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string item_path = index_path(path, i);
    const dom::object message = as_object(items[i], item_path);
    Message out;
    out.role = as_string(require_member(message, "role", item_path), member_path(item_path, "role"));
    if (const std::optional<dom::element> content = find_member(message, "content"))
      out.content = content_text(*content, member_path(item_path, "content"));
    messages.push_back(std::move(out));
  }
  return messages;
}

// Every member of a request body except model and messages, as JSON text.
std::map<std::string, std::string> read_params(dom::object body) {
  std::map<std::string, std::string> params;
  for (const dom::key_value_pair member : body)
    if (member.key != "model" && member.key != "messages") params[std::string(member.key)] = simdjson::minify(member.value);
  return params;
}

// A Batch API input line: {"custom_id", "method", "url", "body": {"model", "messages", ...}}.
std::pair<std::string, Request> read_input_line(dom::parser& parser, const char* data, std::size_t size, bool padded) {
  dom::element root;
  if (const simdjson::error_code error = parser.parse(data, size, !padded).get(root))
    dead(kMalformedJson, std::string("malformed JSON: ") + simdjson::error_message(error));
  const dom::object line = as_object(root, "(line)");
  std::string custom_id(as_string(require_member(line, "custom_id", ""), "custom_id"));
  const dom::object body = as_object(require_member(line, "body", ""), "body");
  Request request;
  request.messages = read_prompt(require_member(body, "messages", "body"), "body.messages");
  request.model = optional_string(body, "model", "body");
  request.params = read_params(body);
  return {std::move(custom_id), std::move(request)};
}

std::vector<TokenLogprob> read_logprobs(dom::element value, const std::string& path) {
  std::vector<TokenLogprob> tokens;
  const std::string content_path = member_path(path, "content");
  const std::optional<dom::element> content = find_member(as_object(value, path), "content");
  if (!content) return tokens;
  const std::vector<dom::element> items = as_array(*content, content_path);
  tokens.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string item_path = index_path(content_path, i);
    const dom::object token = as_object(items[i], item_path);
    TokenLogprob out;
    out.token = as_string(require_member(token, "token", item_path), member_path(item_path, "token"));
    out.logprob = as_number(require_member(token, "logprob", item_path), member_path(item_path, "logprob"));
    if (const std::optional<dom::element> top = find_member(token, "top_logprobs")) {
      const std::string top_path = member_path(item_path, "top_logprobs");
      const std::vector<dom::element> alternatives = as_array(*top, top_path);
      out.top.reserve(alternatives.size());
      for (std::size_t j = 0; j < alternatives.size(); ++j) {
        const std::string alt_path = index_path(top_path, j);
        const dom::object alt = as_object(alternatives[j], alt_path);
        out.top.push_back(
            {std::string(as_string(require_member(alt, "token", alt_path), member_path(alt_path, "token"))),
             as_number(require_member(alt, "logprob", alt_path), member_path(alt_path, "logprob"))});
      }
    }
    tokens.push_back(std::move(out));
  }
  return tokens;
}

// distilld's own output shape (record_json.h): [{"token", "logprob",
// "top": [[token, logprob], ...]}, ...], so a curated set read back keeps
// the teacher's logprobs for token-level distillation.
std::vector<TokenLogprob> read_own_logprobs(dom::element value, const std::string& path) {
  const std::vector<dom::element> items = as_array(value, path);
  std::vector<TokenLogprob> tokens;
  tokens.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string item_path = index_path(path, i);
    const dom::object token = as_object(items[i], item_path);
    TokenLogprob out;
    out.token = as_string(require_member(token, "token", item_path), member_path(item_path, "token"));
    out.logprob = as_number(require_member(token, "logprob", item_path), member_path(item_path, "logprob"));
    if (const std::optional<dom::element> top = find_member(token, "top")) {
      const std::string top_path = member_path(item_path, "top");
      for (const dom::element& pair : as_array(*top, top_path)) {
        const std::vector<dom::element> parts = as_array(pair, top_path);
        if (parts.size() != 2) dead(kWrongType, top_path + " holds a pair that is not [token, logprob]");
        out.top.push_back({std::string(as_string(parts[0], top_path)), as_number(parts[1], top_path)});
      }
    }
    tokens.push_back(std::move(out));
  }
  return tokens;
}

// A token count: absent or null is 0; a negative one is refused (it would
// give money and token-bucket budget back).
std::int64_t token_count(dom::object usage, std::string_view key, const std::string& path) {
  const std::int64_t count = optional_int(usage, key, path);
  if (count < 0) dead(kWrongType, in_quotes(member_path(path, key)) + " is negative (" + std::to_string(count) + ")");
  return count;
}

Usage read_usage(dom::element value, const std::string& path) {
  const dom::object usage = as_object(value, path);
  Usage out;
  out.prompt_tokens = token_count(usage, "prompt_tokens", path);
  out.completion_tokens = token_count(usage, "completion_tokens", path);
  if (const std::optional<dom::element> details = find_member(usage, "completion_tokens_details")) {
    const std::string details_path = member_path(path, "completion_tokens_details");
    out.reasoning_tokens = token_count(as_object(*details, details_path), "reasoning_tokens", details_path);
  }
  return out;
}

// Why a choice has no text, for the no_content detail.
std::string no_content_detail(dom::object message, const std::string& path) {
  std::string detail = in_quotes(member_path(path, "content")) + " is null or absent";
  if (has_member(message, "tool_calls") || has_member(message, "function_call"))
    detail += " (the message is a tool call)";
  else if (const std::optional<dom::element> refusal = find_member(message, "refusal"))
    detail += " (refusal: " + text_of(*refusal) + ")";
  return detail;
}

// A chat.completion object at `path`; `base` carries what the line knows
// about the request (prompt, params, request id). One record per choice.
void read_completion(dom::object body, const std::string& path, Record base, LineResult& out) {
  base.teacher.response_id = optional_string(body, "id", path);
  if (std::string model = optional_string(body, "model", path); !model.empty()) base.teacher.model = std::move(model);
  if (const std::optional<dom::element> created = find_member(body, "created")) {
    const std::string created_path = member_path(path, "created");
    const std::int64_t seconds = as_int(*created, created_path);
    constexpr std::int64_t kLimit = std::numeric_limits<std::int64_t>::max() / 1000;
    if (seconds > kLimit || seconds < -kLimit)
      dead(kWrongType, in_quotes(created_path) + " is out of range for a Unix time in seconds");
    base.provenance.collected_at_ms = seconds * 1000;
  }
  if (const std::optional<dom::element> usage = find_member(body, "usage"))
    base.teacher.usage = read_usage(*usage, member_path(path, "usage"));

  const std::string choices_path = member_path(path, "choices");
  const std::optional<dom::element> choices_value = find_member(body, "choices");
  if (!choices_value) dead(kNoChoices, in_quotes(choices_path) + " is null or absent");
  const std::vector<dom::element> choices = as_array(*choices_value, choices_path);
  if (choices.empty()) dead(kNoChoices, in_quotes(choices_path) + " is empty");

  std::string first_no_content;
  for (std::size_t i = 0; i < choices.size(); ++i) {
    const std::string choice_path = index_path(choices_path, i);
    const dom::object choice = as_object(choices[i], choice_path);
    const std::string message_path = member_path(choice_path, "message");
    const dom::object message = as_object(require_member(choice, "message", choice_path), message_path);
    const std::optional<dom::element> content = find_member(message, "content");
    if (!content) {
      if (first_no_content.empty()) first_no_content = no_content_detail(message, message_path);
      continue;
    }
    Record record = base;
    record.response = content_text(*content, member_path(message_path, "content"));
    record.reasoning = reasoning_text(message, message_path);
    record.teacher.finish_reason = optional_string(choice, "finish_reason", choice_path);
    if (const std::optional<dom::element> logprobs = find_member(choice, "logprobs"))
      record.logprobs = read_logprobs(*logprobs, member_path(choice_path, "logprobs"));
    if (choices.size() > 1) {
      const std::optional<dom::element> index = find_member(choice, "index");
      const std::int64_t number = index ? as_int(*index, member_path(choice_path, "index")) : static_cast<std::int64_t>(i);
      record.annotations["choice"] = static_cast<double>(number);
    }
    out.records.push_back(std::move(record));
  }
  if (out.records.empty()) dead(kNoContent, first_no_content);
}

// A chat completion line, with the prompt from an optional sibling "request"
// object or a top-level "messages" array.
void read_chat_completion(dom::object root, LineResult& out) {
  Record base;
  if (const std::optional<dom::element> request_value = find_member(root, "request")) {
    const dom::object request = as_object(*request_value, "request");
    if (const std::optional<dom::element> messages = find_member(request, "messages"))
      base.prompt = read_prompt(*messages, "request.messages");
    base.teacher.model = optional_string(request, "model", "request");
    base.teacher.params = read_params(request);
  }
  if (base.prompt.empty())
    if (const std::optional<dom::element> messages = find_member(root, "messages"))
      base.prompt = read_prompt(*messages, "messages");
  read_completion(root, "", std::move(base), out);
}

std::string batch_error_detail(const std::string& custom_id, dom::element error) {
  std::string detail = "batch request " + in_quotes(custom_id) + " failed";
  dom::object object;
  if (error.get_object().get(object)) return detail + ": " + text_of(error);
  if (const std::optional<dom::element> code = find_member(object, "code")) detail += ": " + text_of(*code);
  if (const std::optional<dom::element> message = find_member(object, "message")) detail += ": " + text_of(*message);
  return detail;
}

void read_batch_output(dom::object root, const BatchInputIndex* requests, dom::parser& request_parser,
                       LineResult& out) {
  const std::string custom_id(as_string(require_member(root, "custom_id", ""), "custom_id"));
  if (const std::optional<dom::element> error = find_member(root, "error"))
    dead(kBatchError, batch_error_detail(custom_id, *error));
  const dom::object response = as_object(require_member(root, "response", ""), "response");
  const std::int64_t status = as_int(require_member(response, "status_code", "response"), "response.status_code");
  if (status != 200) {
    std::string detail = "batch request " + in_quotes(custom_id) + " returned HTTP " + std::to_string(status);
    dom::object body;
    dom::object error;
    std::string_view message;
    if (const std::optional<dom::element> body_value = find_member(response, "body");
        body_value && !body_value->get_object().get(body))
      if (const std::optional<dom::element> error_value = find_member(body, "error");
          error_value && !error_value->get_object().get(error))
        if (const std::optional<dom::element> message_value = find_member(error, "message");
            message_value && !message_value->get_string().get(message))
          detail += ": " + std::string(message);
    dead("http_" + std::to_string(status), std::move(detail));
  }
  const dom::object body = as_object(require_member(response, "body", "response"), "response.body");

  Record base;
  base.provenance.request_id = custom_id;
  if (requests) {
    std::optional<Request> request;
    try {
      request = requests->find(custom_id, request_parser);
    } catch (const std::runtime_error& error) {
      dead(kBatchInputError, error.what());
    }
    if (!request)
      dead(kUnknownCustomId, "custom_id " + in_quotes(custom_id) + " is not in the batch input file " + requests->path());
    base.prompt = std::move(request->messages);
    base.teacher.model = std::move(request->model);
    base.teacher.params = std::move(request->params);
  }
  read_completion(body, "response.body", std::move(base), out);
}

// {"messages": [...]}: the last message is the assistant's response.
void read_messages(dom::object root, LineResult& out) {
  const std::vector<dom::element> items = as_array(require_member(root, "messages", ""), "messages");
  if (items.empty()) dead(kNoAssistantTurn, "\"messages\" is empty");
  Record record;
  for (std::size_t i = 0; i + 1 < items.size(); ++i) {
    const std::string path = index_path("messages", i);
    const dom::object message = as_object(items[i], path);
    Message prompt;
    prompt.role = as_string(require_member(message, "role", path), member_path(path, "role"));
    if (const std::optional<dom::element> content = find_member(message, "content"))
      prompt.content = content_text(*content, member_path(path, "content"));
    record.prompt.push_back(std::move(prompt));
  }
  const std::string path = index_path("messages", items.size() - 1);
  const dom::object last = as_object(items.back(), path);
  const std::string_view role = as_string(require_member(last, "role", path), member_path(path, "role"));
  if (role != "assistant")
    dead(kNoAssistantTurn, "the last message (" + path + ") has role " + in_quotes(role) + "; expected \"assistant\"");
  const std::optional<dom::element> content = find_member(last, "content");
  if (!content) dead(kNoContent, no_content_detail(last, path));
  record.response = content_text(*content, member_path(path, "content"));
  record.reasoning = reasoning_text(last, path);
  if (record.reasoning.empty()) record.reasoning = optional_string(root, "reasoning", "");  // distilld's own output
  if (const std::optional<dom::element> logprobs = find_member(root, "logprobs"))
    record.logprobs = read_own_logprobs(*logprobs, "logprobs");
  out.records.push_back(std::move(record));
}

std::string sharegpt_role(std::string_view from) {
  if (from == "human") return "user";
  if (from == "gpt") return "assistant";
  return std::string(from);
}

// {"system"?, "conversations": [{"from", "value"}...]}: the last turn is gpt's response.
void read_sharegpt(dom::object root, LineResult& out) {
  const std::vector<dom::element> turns = as_array(require_member(root, "conversations", ""), "conversations");
  if (turns.empty()) dead(kNoAssistantTurn, "\"conversations\" is empty");
  Record record;
  if (std::string system = optional_string(root, "system", ""); !system.empty())
    record.prompt.push_back({"system", std::move(system)});
  for (std::size_t i = 0; i < turns.size(); ++i) {
    const std::string path = index_path("conversations", i);
    const dom::object turn = as_object(turns[i], path);
    std::string role = sharegpt_role(as_string(require_member(turn, "from", path), member_path(path, "from")));
    std::string value(as_string(require_member(turn, "value", path), member_path(path, "value")));
    if (i + 1 < turns.size()) {
      record.prompt.push_back({std::move(role), std::move(value)});
    } else if (role == "assistant") {
      record.response = std::move(value);
    } else {
      dead(kNoAssistantTurn, "the last turn (" + path + ") is from " + in_quotes(role) + "; expected \"gpt\"");
    }
  }
  out.records.push_back(std::move(record));
}

// {"system"?, "instruction", "input"?, "output"}.
void read_alpaca(dom::object root, LineResult& out) {
  Record record;
  if (std::string system = optional_string(root, "system", ""); !system.empty())
    record.prompt.push_back({"system", std::move(system)});
  std::string prompt(as_string(require_member(root, "instruction", ""), "instruction"));
  if (const std::string input = optional_string(root, "input", ""); !input.empty()) prompt += "\n\n" + input;
  record.prompt.push_back({"user", std::move(prompt)});
  record.response = as_string(require_member(root, "output", ""), "output");
  out.records.push_back(std::move(record));
}

std::string describe_keys(dom::object root) {
  constexpr std::size_t kMaxKeys = 8;
  constexpr std::size_t kMaxKeyLength = 40;
  std::string keys;
  std::size_t count = 0;
  for (const dom::key_value_pair member : root) {
    if (count++ == kMaxKeys) return keys + ", ...";
    if (!keys.empty()) keys += ", ";
    keys += member.key.substr(0, kMaxKeyLength);
  }
  return keys.empty() ? "none" : keys;
}

Format detect(dom::object root) {
  if (has_member(root, "custom_id") && (has_member(root, "response") || has_member(root, "error")))
    return Format::BatchOutput;
  if (has_member(root, "choices")) return Format::ChatCompletion;
  if (has_member(root, "messages")) return Format::Messages;
  if (has_member(root, "conversations")) return Format::ShareGpt;
  if (has_member(root, "instruction")) return Format::Alpaca;
  if (has_member(root, "custom_id") && has_member(root, "body"))
    dead(kUnrecognizedFormat,
         "this is a Batch API input line (custom_id and body, no response); give the input file as the batch "
         "input, and the output file as the source");
  dead(kUnrecognizedFormat,
       "no key identifies the format (expected custom_id+response, choices, messages, conversations or "
       "instruction); the line has keys: " +
           describe_keys(root));
}

bool blank(std::string_view line) { return line.find_first_not_of(" \t\r\n") == std::string_view::npos; }

}  // namespace

std::optional<Format> parse_format(std::string_view name) {
  for (const Format format :
       {Format::Auto, Format::ChatCompletion, Format::BatchOutput, Format::Messages, Format::ShareGpt, Format::Alpaca})
    if (name == format_name(format)) return format;
  return std::nullopt;
}

const char* format_name(Format format) {
  switch (format) {
    case Format::Auto: return "auto";
    case Format::ChatCompletion: return "chat_completion";
    case Format::BatchOutput: return "batch_output";
    case Format::Messages: return "messages";
    case Format::ShareGpt: return "sharegpt";
    case Format::Alpaca: return "alpaca";
  }
  return "?";
}

std::size_t BatchInputIndex::Hash::operator()(std::string_view key) const noexcept {
  return std::hash<std::string_view>{}(key);
}

BatchInputIndex::BatchInputIndex(const std::string& path) : path_(path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open batch input file " + path + ": " + std::strerror(errno));
  dom::parser parser;
  std::string line;
  std::uint64_t offset = 0;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    const std::uint64_t start = offset;
    offset += line.size() + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (blank(line)) continue;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    std::string custom_id;
    try {
      custom_id = read_input_line(parser, line.data(), line.size(), false).first;
    } catch (const DeadLetter& letter) {
      throw std::runtime_error(where + letter.detail);
    }
    if (!spans_.try_emplace(custom_id, Span{start, line.size()}).second)
      throw std::runtime_error(where + "duplicate custom_id " + in_quotes(custom_id));
  }
  if (in.bad()) throw std::runtime_error("cannot read batch input file " + path + ": " + std::strerror(errno));
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error("cannot open batch input file " + path + ": " + std::strerror(errno));
}

BatchInputIndex::~BatchInputIndex() { ::close(fd_); }

std::optional<Request> BatchInputIndex::find(std::string_view custom_id) const {
  dom::parser parser;
  return find(custom_id, parser);
}

std::optional<Request> BatchInputIndex::find(std::string_view custom_id, dom::parser& parser) const {
  const auto it = spans_.find(custom_id);
  if (it == spans_.end()) return std::nullopt;
  const Span span = it->second;
  const std::string where = "batch input file " + path_ + " at byte " + std::to_string(span.offset) + ": ";
  std::string buffer(span.length + simdjson::SIMDJSON_PADDING, '\0');
  for (std::uint64_t done = 0; done < span.length;) {
    const ssize_t got = ::pread(fd_, buffer.data() + done, span.length - done, static_cast<off_t>(span.offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw std::runtime_error(where + std::strerror(errno));
    if (got == 0) throw std::runtime_error(where + "the file is shorter than when it was indexed");
    done += static_cast<std::uint64_t>(got);
  }
  try {
    auto [found_id, request] = read_input_line(parser, buffer.data(), span.length, true);
    if (found_id != custom_id)
      throw std::runtime_error(where + "found custom_id " + in_quotes(found_id) + " instead of " + in_quotes(custom_id) +
                               " (the file changed after it was indexed)");
    return std::move(request);
  } catch (const DeadLetter& letter) {
    throw std::runtime_error(where + letter.detail + " (the file changed after it was indexed)");
  }
}

std::size_t BatchInputIndex::size() const { return spans_.size(); }

struct LineParser::Parsers {
  dom::parser line;
  dom::parser request;
};

LineParser::LineParser(Format format, const BatchInputIndex* requests)
    : format_(format), requests_(requests), parsers_(std::make_unique<Parsers>()) {}

LineParser::~LineParser() = default;
LineParser::LineParser(LineParser&&) noexcept = default;
LineParser& LineParser::operator=(LineParser&&) noexcept = default;

LineResult LineParser::parse(std::string_view line) {
  LineResult result;
  if (blank(line)) return result;
  result.format = format_;
  try {
    dom::element root;
    if (const simdjson::error_code error = parsers_->line.parse(line.data(), line.size()).get(root))
      dead(kMalformedJson, std::string("invalid JSON: ") + simdjson::error_message(error));
    dom::object object;
    if (root.get_object().get(object))
      dead(kUnrecognizedFormat, std::string("the line is ") + type_name(root.type()) + "; expected a JSON object");
    if (result.format == Format::Auto) result.format = detect(object);
    switch (result.format) {
      case Format::ChatCompletion: read_chat_completion(object, result); break;
      case Format::BatchOutput: read_batch_output(object, requests_, parsers_->request, result); break;
      case Format::Messages: read_messages(object, result); break;
      case Format::ShareGpt: read_sharegpt(object, result); break;
      case Format::Alpaca: read_alpaca(object, result); break;
      case Format::Auto: break;
    }
  } catch (const DeadLetter& letter) {
    result.records.clear();
    result.dead_reason = letter.reason;
    result.dead_detail = letter.detail;
  } catch (const std::exception& error) {
    result.records.clear();
    result.dead_reason = kInternalError;
    result.dead_detail = error.what();
  }
  for (dom::parser* parser : {&parsers_->line, &parsers_->request})
    if (parser->capacity() > kRetainedCapacity) *parser = dom::parser{};
  return result;
}

}  // namespace distill::jsonl
