// teacher_logic: everything the local teacher decides, without HTTP. Parsing
// and validating a chat-completions request, the deterministic answer (number
// spelling), the deliberate noise, the per-request fault draw, logprobs, and
// the OpenAI-shaped JSON bodies. teacher_server.cpp only moves bytes.
//
// The task: the last run of ASCII digits in the last user message, spelled
// digit by digit ("Spell 4721." -> "four seven two one"). A message without
// digits gets "I can only spell numbers." and is never noisy.
//
// Noise is a pure function of the prompt hash: a prompt is noisy when a hash
// of it falls below the noise rate, and its kind is another hash of it modulo
// the six kinds below, so the same prompt always gets the same answer.
//   duplicate       the answer of a fixed other prompt ("Spell 1234.")
//   near_duplicate  the right answer with one digit word replaced by the next
//   refusal         "I'm sorry, but I can't help with that."
//   pii             the right answer plus an e-mail address and a phone number
//   truncated       the first half of the right answer's characters,
//                   finish_reason "length"
//   wrong           the spelling of a different number of the same length
//                   (every digit shifted by the same 1..9)
//
// Faults are not a function of the prompt: draw_fault() maps (seed, request
// sequence number) to a fault, so a retried request can succeed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace distill::teacher {

struct Message {
  std::string role;
  std::string content;  // text parts of an array content are concatenated
};

enum class Noise { none, duplicate, near_duplicate, refusal, pii, truncated, wrong };
enum class Fault { none, rate_limit, server_error, slow, malformed, reset, half_sent, trickle };

// "none", "duplicate", "near_duplicate", ... as written in the request log.
std::string_view noise_name(Noise noise);
// "none", "429", "500", "slow", "malformed", "reset", "half_sent", "trickle" as
// written in the request log.
std::string_view fault_name(Fault fault);

struct FaultRates {
  double rate_429 = 0;
  double rate_500 = 0;
  double slow = 0;
  double malformed = 0;
  double reset = 0;
  double half_sent = 0;  // a 200 announcing the whole body's length, closed after part of it
  double trickle = 0;    // a 200 whose body arrives a few bytes at a time
};

// Empty when every rate is in [0, 1] and they add up to at most 1; else why not.
std::string check_fault_rates(const FaultRates& rates);

// The fault for the request with this sequence number under this seed. Each
// fault takes its rate's share of [0, 1), in the order of FaultRates.
Fault draw_fault(const FaultRates& rates, std::uint64_t seed, std::uint64_t sequence);

// Compact JSON of [{"content":..,"role":..}, ...] (keys sorted, no spaces,
// UTF-8 unescaped): the same bytes as Python's
// json.dumps(messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False).
std::string canonical_messages(const std::vector<Message>& messages);
// XXH3-64 of canonical_messages().
std::uint64_t prompt_hash(const std::vector<Message>& messages);
// 16 lowercase hex digits.
std::string hex64(std::uint64_t value);

// The last run of ASCII digits in text, if any.
std::optional<std::string_view> last_digit_run(std::string_view text);
// "4721" -> "four seven two one"; digits only.
std::string spell_digits(std::string_view digits);

struct Answer {
  std::string content;
  bool truncated = false;  // finish_reason "length"
  Noise noise = Noise::none;
};

// The answer for these messages, whose prompt_hash() is hash; noise_rate in
// [0, 1] is the share of noisy prompts.
Answer answer(const std::vector<Message>& messages, std::uint64_t hash, double noise_rate);

// Whitespace tokens as OpenAI reports them: every token but the first keeps
// one leading space, so the tokens concatenate back to single-spaced text.
std::vector<std::string> tokens(std::string_view content);

struct ChatRequest {
  std::string model;
  std::vector<Message> messages;
  int n = 1;                          // 1..8
  std::optional<long long> max_tokens;  // >= 1; max_completion_tokens wins over max_tokens
  bool logprobs = false;
  int top_logprobs = 0;  // 0..20, only with logprobs
};

struct RequestError {
  std::string message;
  std::optional<std::string> param;  // the offending parameter, as OpenAI names it
};

std::variant<ChatRequest, RequestError> parse_chat_request(std::string_view body);

// The full chat.completion JSON body. created is in Unix seconds.
std::string completion_body(const ChatRequest& request, const Answer& answer, std::uint64_t prompt_hash,
                            std::int64_t created);

// {"error":{"message":..,"type":..,"param":..,"code":..}}
std::string error_body(std::string_view message, std::string_view type, const std::optional<std::string>& param,
                       const std::optional<std::string>& code);

// The body of an injected HTTP 500, as OpenAI words it.
std::string server_error_body();

// The first half of a body: a 200 whose JSON does not parse.
std::string malformed_body(std::string_view body);

// How many bytes of a body of `bytes` (>= 2) a half-sent answer sends before
// closing the connection: its first half, at least one byte and never all.
std::size_t half_sent_bytes(std::size_t bytes);

// How a trickled answer sends a body of `bytes`: pieces of piece_bytes, each
// after a pause of pause_ms, the pauses adding up to at least total_ms. Every
// pause is short (a client with only a per-read timeout keeps waiting) while
// the whole lasts total_ms.
struct Trickle {
  std::size_t piece_bytes = 0;
  int pause_ms = 0;
};
Trickle trickle(std::size_t bytes, int total_ms);

// GET /v1/models.
std::string models_body(std::string_view model, std::int64_t created);

struct LogEntry {
  std::int64_t t_ms = 0;
  int status = 0;  // 0 for a reset connection
  std::string model;
  std::string prompt_sha;  // empty for a request that failed validation
  int n = 0;
  Fault fault = Fault::none;
  Noise noise = Noise::none;
  std::string request_id;
  std::string batch_id;   // a Batch API line: its batch
  std::string custom_id;  // a Batch API line: its custom_id
  std::string api;        // a Files or Batch API call, e.g. "POST /v1/batches" (no prompt fields)
  std::vector<std::string> lines;  // POST /v1/batches: the custom_ids the new batch holds (batch_id: its id)
};

// One line of the request log, with its trailing newline.
std::string log_line(const LogEntry& entry);

}  // namespace distill::teacher
