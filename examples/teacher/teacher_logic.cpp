// teacher_logic: the local teacher's answers, noise, faults and JSON bodies
// (see teacher_logic.h for the rules).
#include "teacher_logic.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>
#include <xxhash.h>

namespace distill::teacher {

namespace {

using ordered_json = nlohmann::ordered_json;

constexpr std::array<std::string_view, 10> kDigitWords = {"zero", "one", "two",   "three", "four",
                                                          "five", "six", "seven", "eight", "nine"};
// Candidates for top_logprobs alternatives: up to 20 entries means up to 19
// alternatives, each different from the chosen word.
constexpr std::array<std::string_view, 24> kAlternatives = {
    "zero", "one",    "two",      "three", "four",  "five",   "six",    "seven",
    "eight", "nine",  "oh",       "ten",   "eleven", "twelve", "hundred", "thousand",
    "and",  "point",  "minus",    "double", "number", "digit", "the",     "a"};

constexpr std::string_view kNoNumber = "I can only spell numbers.";
constexpr std::string_view kRefusal = "I'm sorry, but I can't help with that.";
constexpr std::string_view kDuplicateDigits = "1234";
constexpr std::array<std::string_view, 4> kEmailNames = {"alex.kim", "maria.garcia", "j.smith", "priya.patel"};
constexpr std::array<Noise, 6> kNoiseKinds = {Noise::duplicate, Noise::near_duplicate, Noise::refusal,
                                              Noise::pii,       Noise::truncated,      Noise::wrong};

// Salts so that each decision drawn from the prompt hash is independent.
constexpr std::uint64_t kSaltNoisy = 0x6e6f697379000001ULL;
constexpr std::uint64_t kSaltKind = 0x6b696e6400000002ULL;
constexpr std::uint64_t kSaltEdit = 0x6564697400000003ULL;
constexpr std::uint64_t kSaltLogprob = 0x6c6f677000000004ULL;
constexpr std::uint64_t kSaltFault = 0x6661756c74000005ULL;

// SplitMix64's finaliser: a good 64-bit mix, cheap and deterministic everywhere.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A double in [0, 1) from 53 bits of x.
double unit(std::uint64_t x) { return static_cast<double>(x >> 11) * 0x1.0p-53; }

std::string dump(const ordered_json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ordered_json error_json(std::string_view message, std::string_view type, const std::optional<std::string>& param,
                        const std::optional<std::string>& code) {
  ordered_json error = ordered_json::object();
  error["message"] = message;
  error["type"] = type;
  error["param"] = param ? ordered_json(*param) : ordered_json(nullptr);
  error["code"] = code ? ordered_json(*code) : ordered_json(nullptr);
  ordered_json body = ordered_json::object();
  body["error"] = std::move(error);
  return body;
}

std::string in_quotes(std::string_view name) { return "'" + std::string(name) + "'"; }

RequestError invalid_type(std::string_view param, std::string_view expected, const nlohmann::json& got) {
  return {"Invalid type for " + in_quotes(param) + ": expected " + std::string(expected) + ", but got " +
              got.type_name() + " instead.",
          std::string(param)};
}

RequestError missing(std::string_view param) {
  return {"Missing required parameter: " + in_quotes(param) + ".", std::string(param)};
}

// An optional integer parameter in [lo, hi]: nullopt when absent or null.
std::variant<std::optional<long long>, RequestError> integer_param(const nlohmann::json& request,
                                                                   std::string_view name, long long lo,
                                                                   long long hi) {
  const auto it = request.find(name);
  if (it == request.end() || it->is_null()) return std::optional<long long>();
  if (!it->is_number_integer()) return invalid_type(name, "an integer", *it);
  // An unsigned value above LLONG_MAX reads as negative here and fails the range check (lo >= 0).
  const long long value = it->get<long long>();
  if (value < lo || value > hi) {
    return RequestError{"Invalid " + in_quotes(name) + ": expected an integer from " + std::to_string(lo) + " to " +
                            std::to_string(hi) + ", but got " + it->dump() + " instead.",
                        std::string(name)};
  }
  return std::optional<long long>(value);
}

std::variant<Message, RequestError> parse_message(const nlohmann::json& item, std::size_t index) {
  const std::string at = "messages[" + std::to_string(index) + "]";
  if (!item.is_object()) return invalid_type(at, "an object", item);
  Message message;
  const auto role = item.find("role");
  if (role == item.end()) return missing(at + ".role");
  if (!role->is_string()) return invalid_type(at + ".role", "a string", *role);
  message.role = role->get<std::string>();
  static constexpr std::array<std::string_view, 6> kRoles = {"system", "developer", "user",
                                                             "assistant", "tool", "function"};
  bool known = false;
  for (std::string_view r : kRoles) known = known || r == message.role;
  if (!known) {
    return RequestError{"Invalid value: " + in_quotes(message.role) +
                            ". Supported values are: 'system', 'developer', 'user', 'assistant', 'tool' and "
                            "'function'.",
                        at + ".role"};
  }
  const auto content = item.find("content");
  if (content == item.end() || content->is_null()) {
    // An assistant turn that only made tool calls has no content.
    if (message.role == "assistant") return message;
    return missing(at + ".content");
  }
  if (content->is_string()) {
    message.content = content->get<std::string>();
    return message;
  }
  if (!content->is_array()) return invalid_type(at + ".content", "a string or an array of content parts", *content);
  for (std::size_t part = 0; part < content->size(); ++part) {
    const nlohmann::json& p = (*content)[part];
    const std::string part_at = at + ".content[" + std::to_string(part) + "]";
    const auto type = p.is_object() ? p.find("type") : p.end();
    const auto text = p.is_object() ? p.find("text") : p.end();
    if (!p.is_object() || type == p.end() || *type != "text" || text == p.end() || !text->is_string()) {
      return RequestError{"Invalid " + in_quotes(part_at) + ": only {\"type\": \"text\", \"text\": string} parts are "
                              "supported by distill-teacher.",
                          part_at};
    }
    message.content += text->get_ref<const std::string&>();
  }
  return message;
}

std::string spell_shifted(std::string_view digits, int shift) {
  std::string shifted(digits);
  for (char& c : shifted) c = static_cast<char>('0' + (c - '0' + shift) % 10);
  return spell_digits(shifted);
}

ordered_json bytes_of(std::string_view token) {
  ordered_json bytes = ordered_json::array();
  for (char c : token) bytes.push_back(static_cast<unsigned char>(c));
  return bytes;
}

ordered_json token_logprob(std::string_view token, double logprob) {
  ordered_json entry = ordered_json::object();
  entry["token"] = token;
  entry["logprob"] = logprob;
  entry["bytes"] = bytes_of(token);
  return entry;
}

// logprobs.content for one choice: the chosen token gets -0.01..-0.2, the
// alternatives share the remaining probability mass, halving each step.
ordered_json logprobs_json(const std::vector<std::string>& toks, int top_logprobs, std::uint64_t seed) {
  ordered_json content = ordered_json::array();
  for (std::size_t j = 0; j < toks.size(); ++j) {
    const std::uint64_t h = mix(seed ^ mix(kSaltLogprob + j));
    const double logprob = -(0.01 + 0.19 * unit(h));
    ordered_json entry = token_logprob(toks[j], logprob);
    ordered_json top = ordered_json::array();
    if (top_logprobs > 0) {
      top.push_back(token_logprob(toks[j], logprob));
      const std::string_view word = j == 0 ? std::string_view(toks[j]) : std::string_view(toks[j]).substr(1);
      const double rest = std::log1p(-std::exp(logprob));
      std::size_t candidate = mix(h) % kAlternatives.size();
      for (int k = 1; k < top_logprobs; ++k) {
        while (kAlternatives[candidate] == word) candidate = (candidate + 1) % kAlternatives.size();
        const std::string alternative = (j == 0 ? "" : " ") + std::string(kAlternatives[candidate]);
        top.push_back(token_logprob(alternative, rest - k * std::log(2.0)));
        candidate = (candidate + 1) % kAlternatives.size();
      }
    }
    entry["top_logprobs"] = std::move(top);
    content.push_back(std::move(entry));
  }
  ordered_json logprobs = ordered_json::object();
  logprobs["content"] = std::move(content);
  logprobs["refusal"] = nullptr;
  return logprobs;
}

}  // namespace

std::string_view noise_name(Noise noise) {
  switch (noise) {
    case Noise::none: return "none";
    case Noise::duplicate: return "duplicate";
    case Noise::near_duplicate: return "near_duplicate";
    case Noise::refusal: return "refusal";
    case Noise::pii: return "pii";
    case Noise::truncated: return "truncated";
    case Noise::wrong: return "wrong";
  }
  return "none";
}

std::string_view fault_name(Fault fault) {
  switch (fault) {
    case Fault::none: return "none";
    case Fault::rate_limit: return "429";
    case Fault::server_error: return "500";
    case Fault::slow: return "slow";
    case Fault::malformed: return "malformed";
    case Fault::reset: return "reset";
    case Fault::half_sent: return "half_sent";
    case Fault::trickle: return "trickle";
  }
  return "none";
}

std::string check_fault_rates(const FaultRates& rates) {
  const std::array<std::pair<std::string_view, double>, 7> all = {{{"--rate-429", rates.rate_429},
                                                                   {"--rate-500", rates.rate_500},
                                                                   {"--rate-slow", rates.slow},
                                                                   {"--rate-malformed", rates.malformed},
                                                                   {"--rate-reset", rates.reset},
                                                                   {"--rate-half-sent", rates.half_sent},
                                                                   {"--rate-trickle", rates.trickle}}};
  double sum = 0;
  for (const auto& [name, rate] : all) {
    if (!(rate >= 0 && rate <= 1)) return std::string(name) + " must be in [0, 1]";
    sum += rate;
  }
  if (sum > 1 + 1e-9) return "the fault rates add up to more than 1";
  return {};
}

Fault draw_fault(const FaultRates& rates, std::uint64_t seed, std::uint64_t sequence) {
  double u = unit(mix(mix(seed ^ kSaltFault) ^ sequence));
  const std::array<std::pair<double, Fault>, 7> bands = {{{rates.rate_429, Fault::rate_limit},
                                                          {rates.rate_500, Fault::server_error},
                                                          {rates.slow, Fault::slow},
                                                          {rates.malformed, Fault::malformed},
                                                          {rates.reset, Fault::reset},
                                                          {rates.half_sent, Fault::half_sent},
                                                          {rates.trickle, Fault::trickle}}};
  for (const auto& [rate, fault] : bands) {
    if (u < rate) return fault;
    u -= rate;
  }
  return Fault::none;
}

std::string canonical_messages(const std::vector<Message>& messages) {
  nlohmann::json array = nlohmann::json::array();
  for (const Message& message : messages) array.push_back({{"content", message.content}, {"role", message.role}});
  return array.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::uint64_t prompt_hash(const std::vector<Message>& messages) {
  const std::string canonical = canonical_messages(messages);
  return XXH3_64bits(canonical.data(), canonical.size());
}

std::string hex64(std::uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

std::optional<std::string_view> last_digit_run(std::string_view text) {
  std::size_t end = text.size();
  while (end > 0 && !(text[end - 1] >= '0' && text[end - 1] <= '9')) --end;
  if (end == 0) return std::nullopt;
  std::size_t begin = end;
  while (begin > 0 && text[begin - 1] >= '0' && text[begin - 1] <= '9') --begin;
  return text.substr(begin, end - begin);
}

std::string spell_digits(std::string_view digits) {
  std::string words;
  words.reserve(digits.size() * 6);
  for (char c : digits) {
    if (!words.empty()) words += ' ';
    words += kDigitWords[static_cast<std::size_t>(c - '0')];
  }
  return words;
}

Answer answer(const std::vector<Message>& messages, std::uint64_t hash, double noise_rate) {
  const Message* user = nullptr;
  for (const Message& message : messages) {
    if (message.role == "user") user = &message;
  }
  const std::optional<std::string_view> digits = user ? last_digit_run(user->content) : std::nullopt;
  if (!digits) return {std::string(kNoNumber), false, Noise::none};
  const std::string right = spell_digits(*digits);
  if (!(unit(mix(hash ^ kSaltNoisy)) < noise_rate)) return {right, false, Noise::none};

  const Noise kind = kNoiseKinds[mix(hash ^ kSaltKind) % kNoiseKinds.size()];
  const std::uint64_t edit = mix(hash ^ kSaltEdit);
  switch (kind) {
    case Noise::duplicate: return {spell_digits(kDuplicateDigits), false, kind};
    case Noise::near_duplicate: {
      std::string changed(*digits);
      char& digit = changed[edit % changed.size()];
      digit = static_cast<char>('0' + (digit - '0' + 1) % 10);
      return {spell_digits(changed), false, kind};
    }
    case Noise::refusal: return {std::string(kRefusal), false, kind};
    case Noise::pii: {
      char phone[32];
      std::snprintf(phone, sizeof phone, "+1 202-555-01%02u", static_cast<unsigned>(edit % 100));
      const std::string_view name = kEmailNames[(edit / 100) % kEmailNames.size()];
      return {right + ". Questions? Write to " + std::string(name) + "@example.com or call " + phone + ".", false,
              kind};
    }
    case Noise::truncated: {
      std::string half = right.substr(0, right.size() / 2);
      while (!half.empty() && half.back() == ' ') half.pop_back();
      return {half, true, kind};
    }
    case Noise::wrong: return {spell_shifted(*digits, 1 + static_cast<int>(edit % 9)), false, kind};
    case Noise::none: break;
  }
  return {right, false, Noise::none};
}

std::vector<std::string> tokens(std::string_view content) {
  std::vector<std::string> result;
  std::size_t i = 0;
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  while (i < content.size()) {
    while (i < content.size() && space(content[i])) ++i;
    const std::size_t begin = i;
    while (i < content.size() && !space(content[i])) ++i;
    if (i > begin) result.push_back((result.empty() ? "" : " ") + std::string(content.substr(begin, i - begin)));
  }
  return result;
}

std::variant<ChatRequest, RequestError> parse_chat_request(std::string_view body) {
  const nlohmann::json request = nlohmann::json::parse(body, nullptr, false);
  if (request.is_discarded()) {
    return RequestError{"We could not parse the JSON body of your request. The OpenAI API expects a JSON payload, "
                        "but what was sent was not valid JSON.",
                        std::nullopt};
  }
  if (!request.is_object()) {
    return RequestError{std::string("The request body must be a JSON object, but got ") + request.type_name() + ".",
                        std::nullopt};
  }
  ChatRequest chat;
  const auto model = request.find("model");
  if (model == request.end() || model->is_null()) return RequestError{"You must provide a model parameter.", "model"};
  if (!model->is_string()) return invalid_type("model", "a string", *model);
  chat.model = model->get<std::string>();

  const auto messages = request.find("messages");
  if (messages == request.end()) return missing("messages");
  if (!messages->is_array()) return invalid_type("messages", "an array", *messages);
  if (messages->empty()) {
    return RequestError{"Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
                        "empty array instead.",
                        "messages"};
  }
  chat.messages.reserve(messages->size());
  for (std::size_t i = 0; i < messages->size(); ++i) {
    auto message = parse_message((*messages)[i], i);
    if (auto* error = std::get_if<RequestError>(&message)) return std::move(*error);
    chat.messages.push_back(std::move(std::get<Message>(message)));
  }

  const auto stream = request.find("stream");
  if (stream != request.end() && !stream->is_null()) {
    if (!stream->is_boolean()) return invalid_type("stream", "a boolean", *stream);
    if (stream->get<bool>()) return RequestError{"Streaming is not supported by distill-teacher.", "stream"};
  }

  auto n = integer_param(request, "n", 1, 8);
  if (auto* error = std::get_if<RequestError>(&n)) return std::move(*error);
  chat.n = static_cast<int>(std::get<std::optional<long long>>(n).value_or(1));

  for (std::string_view name : {"max_tokens", "max_completion_tokens"}) {
    auto limit = integer_param(request, name, 1, 1LL << 40);
    if (auto* error = std::get_if<RequestError>(&limit)) return std::move(*error);
    if (auto value = std::get<std::optional<long long>>(limit)) chat.max_tokens = value;
  }

  const auto logprobs = request.find("logprobs");
  if (logprobs != request.end() && !logprobs->is_null()) {
    if (!logprobs->is_boolean()) return invalid_type("logprobs", "a boolean", *logprobs);
    chat.logprobs = logprobs->get<bool>();
  }
  auto top = integer_param(request, "top_logprobs", 0, 20);
  if (auto* error = std::get_if<RequestError>(&top)) return std::move(*error);
  if (auto value = std::get<std::optional<long long>>(top)) {
    if (!chat.logprobs) {
      return RequestError{"Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is "
                          "used.",
                          "top_logprobs"};
    }
    chat.top_logprobs = static_cast<int>(*value);
  }
  return chat;
}

std::string completion_body(const ChatRequest& request, const Answer& answer, std::uint64_t prompt_hash,
                            std::int64_t created) {
  const std::string id_key = hex64(prompt_hash) + '\n' + request.model + '\n' + std::to_string(request.n) + '\n' +
                             std::to_string(request.max_tokens.value_or(0)) + '\n' +
                             std::to_string(request.logprobs) + '\n' + std::to_string(request.top_logprobs);

  std::vector<std::string> toks = tokens(answer.content);
  bool length = answer.truncated;
  std::string content = answer.content;
  if (request.max_tokens && toks.size() > static_cast<std::size_t>(*request.max_tokens)) {
    toks.resize(static_cast<std::size_t>(*request.max_tokens));
    content.clear();
    for (const std::string& token : toks) content += token;
    length = true;
  }

  ordered_json choices = ordered_json::array();
  for (int i = 0; i < request.n; ++i) {
    ordered_json message = ordered_json::object();
    message["role"] = "assistant";
    message["content"] = content;
    message["refusal"] = nullptr;
    ordered_json choice = ordered_json::object();
    choice["index"] = i;
    choice["message"] = std::move(message);
    choice["logprobs"] = request.logprobs
                             ? logprobs_json(toks, request.top_logprobs, mix(prompt_hash ^ static_cast<unsigned>(i)))
                             : ordered_json(nullptr);
    choice["finish_reason"] = length ? "length" : "stop";
    choices.push_back(std::move(choice));
  }

  std::size_t prompt_chars = 0;
  for (const Message& message : request.messages) prompt_chars += message.content.size();
  const std::size_t prompt_tokens = std::max<std::size_t>(1, (prompt_chars + 3) / 4);
  const std::size_t completion_tokens = toks.size() * static_cast<std::size_t>(request.n);

  ordered_json usage = ordered_json::object();
  usage["prompt_tokens"] = prompt_tokens;
  usage["completion_tokens"] = completion_tokens;
  usage["total_tokens"] = prompt_tokens + completion_tokens;

  ordered_json body = ordered_json::object();
  body["id"] = "chatcmpl-" + hex64(XXH3_64bits(id_key.data(), id_key.size()));
  body["object"] = "chat.completion";
  body["created"] = created;
  body["model"] = request.model;
  body["system_fingerprint"] = "fp_distill";
  body["choices"] = std::move(choices);
  body["usage"] = std::move(usage);
  return dump(body);
}

std::string error_body(std::string_view message, std::string_view type, const std::optional<std::string>& param,
                       const std::optional<std::string>& code) {
  return dump(error_json(message, type, param, code));
}

std::string server_error_body() {
  return error_body("The server had an error while processing your request. Sorry about that!", "server_error",
                    std::nullopt, std::nullopt);
}

std::string malformed_body(std::string_view body) { return std::string(body.substr(0, body.size() / 2)); }

std::size_t half_sent_bytes(std::size_t bytes) { return std::clamp<std::size_t>(bytes / 2, 1, bytes - 1); }

Trickle trickle(std::size_t bytes, int total_ms) {
  constexpr std::size_t kPieceBytes = 8;
  const std::size_t pieces = std::max<std::size_t>(1, (bytes + kPieceBytes - 1) / kPieceBytes);
  return {kPieceBytes, static_cast<int>((static_cast<std::size_t>(std::max(total_ms, 0)) + pieces - 1) / pieces)};
}

std::string models_body(std::string_view model, std::int64_t created) {
  ordered_json entry = ordered_json::object();
  entry["id"] = model;
  entry["object"] = "model";
  entry["created"] = created;
  entry["owned_by"] = "distill-teacher";
  ordered_json body = ordered_json::object();
  body["object"] = "list";
  body["data"] = ordered_json::array({std::move(entry)});
  return dump(body);
}

std::string log_line(const LogEntry& entry) {
  ordered_json line = ordered_json::object();
  line["t_ms"] = entry.t_ms;
  line["status"] = entry.status;
  if (!entry.api.empty()) {
    line["api"] = entry.api;
    if (!entry.batch_id.empty()) line["batch_id"] = entry.batch_id;
    if (!entry.lines.empty()) line["lines"] = entry.lines;
    return dump(line) + '\n';
  }
  line["model"] = entry.model;
  line["prompt_sha"] = entry.prompt_sha;
  line["n"] = entry.n;
  line["fault"] = fault_name(entry.fault);
  line["noise"] = noise_name(entry.noise);
  line["request_id"] = entry.request_id;
  if (!entry.batch_id.empty()) {
    line["batch_id"] = entry.batch_id;
    line["custom_id"] = entry.custom_id;
  }
  return dump(line) + '\n';
}

}  // namespace distill::teacher
