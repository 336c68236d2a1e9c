// What the teacher's two HTTP clients (chat completions online, the Files
// and Batch API in batch mode) share about failures: which statuses are
// worth another attempt, how long to wait before it (Retry-After when the
// server gave one, else exponential backoff with jitter), and the message
// of an OpenAI-style error body.
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <string>

namespace distill::teacher {

inline bool retryable_status(long status) { return status == 429 || status == 408 || status >= 500; }

// Milliseconds to wait after failed attempt number `attempt` (1, 2, ...).
inline double retry_delay_ms(int attempt, std::optional<double> retry_after_ms, int base_ms, int max_ms,
                             std::mt19937_64& rng) {
  if (retry_after_ms) return std::clamp(*retry_after_ms, 0.0, static_cast<double>(max_ms));
  const double ceiling = std::min(static_cast<double>(max_ms), base_ms * std::pow(2.0, attempt - 1));
  return std::uniform_real_distribution<double>(ceiling / 2, ceiling)(rng);
}

// The message of an OpenAI-style error body, or the start of the body.
inline std::string error_message(const std::string& body) {
  const std::string key = "\"message\"";
  const auto at = body.find(key);
  if (at != std::string::npos) {
    const auto open = body.find('"', body.find(':', at + key.size()));
    const auto close = open == std::string::npos ? open : body.find('"', open + 1);
    if (close != std::string::npos) return body.substr(open + 1, close - open - 1);
  }
  return body.substr(0, 200);
}

}  // namespace distill::teacher
