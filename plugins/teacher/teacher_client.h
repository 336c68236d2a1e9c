// TeacherClient: many HTTP POSTs in flight on one thread with libcurl's
// multi interface (keep-alive connections, HTTPS when the URL says so),
// under a concurrency cap and three per-minute token buckets (requests,
// input tokens, output tokens). Retries 429, 5xx, timeouts, connection
// errors and unusable 200 bodies with exponential backoff and jitter,
// honouring Retry-After; other 4xx are final. The API key goes only into
// the Authorization header: no message or log line ever contains it. A
// stopping run does not wait for retries: see ClientOptions::cancelled.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace distill::teacher {

struct ClientOptions {
  std::string url;      // the chat-completions URL
  std::string api_key;  // empty: no Authorization header
  int concurrency = 64;
  double requests_per_minute = 0;  // 0: unlimited
  double input_tokens_per_minute = 0;
  double output_tokens_per_minute = 0;
  int max_retries = 8;
  int backoff_base_ms = 500;
  int backoff_max_ms = 60000;
  int timeout_ms = 120000;
  std::uint64_t seed = 1;  // for the backoff jitter
  // When it turns true (the run is stopping), every request still waiting
  // or in flight ends at once as "cancelled" (checked at least every 250 ms).
  std::function<bool()> cancelled;
};

struct TokenUsage {
  double prompt_tokens = 0;
  double completion_tokens = 0;
};

// How one request ended, after all its attempts.
struct Outcome {
  bool ok = false;
  long status = 0;          // HTTP status of the last attempt (0: no response)
  std::string body;         // the accepted response body
  std::string request_id;   // the response's x-request-id header
  TokenUsage usage;         // when ok: as check() read it
  std::string reason;       // when !ok: "http_<status>", "timeout", "connection", "bad_response", "cancelled"
  std::string message;      // when !ok: what went wrong, for a person
  int attempts = 0;
};

struct Request {
  std::string body;                   // JSON
  double estimated_input_tokens = 0;  // taken from the input bucket before sending
  // Called on the client's thread for a 200 body: its usage when usable,
  // nullopt to retry it as a bad response.
  std::function<std::optional<TokenUsage>(const std::string& body)> check;
  // Called once, on the client's thread, when the request has ended.
  std::function<void(Outcome)> done;
};

// Counters the client keeps up to date (the stage's, so they show in status).
struct ClientCounters {
  std::atomic<std::int64_t>& attempts;  // HTTP requests sent, retries included
  std::atomic<std::int64_t>& retries;
};

class TeacherClient {
 public:
  TeacherClient(ClientOptions options, ClientCounters counters);
  ~TeacherClient();  // waits for every submitted request to end
  TeacherClient(const TeacherClient&) = delete;
  TeacherClient& operator=(const TeacherClient&) = delete;

  void submit(Request request);  // thread-safe

 private:
  struct Job;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace distill::teacher
