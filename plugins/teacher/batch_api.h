// BatchApi: the OpenAI Files and Batch API calls that batch mode needs
// (upload a file, download a file's content, create, retrieve and list
// batches), one blocking call at a time over libcurl. 429, 408, 5xx,
// timeouts and connection errors are retried with exponential backoff and
// jitter (or after Retry-After); what still fails, and every other 4xx,
// throws BatchApiError naming the call, the status and the provider's
// message. The API key goes only into the Authorization header.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace distill::teacher {

class BatchApiError : public std::runtime_error {
 public:
  explicit BatchApiError(const std::string& message, long status = 0) : std::runtime_error(message), status_(status) {}
  // The HTTP status of a refusal that retrying cannot change (a 4xx other
  // than 408 and 429), else 0.
  long refused_with() const { return status_; }

 private:
  long status_;
};

struct BatchApiOptions {
  std::string base_url;  // the API root, e.g. https://api.openai.com/v1
  std::string api_key;   // empty: no Authorization header
  int max_retries = 8;
  int backoff_base_ms = 500;
  int backoff_max_ms = 60000;
  int timeout_ms = 120000;  // JSON calls; file transfers get ten times as long
  std::function<bool()> stopping;  // ends a backoff wait early (the call then throws)
};

class BatchApi {
 public:
  explicit BatchApi(BatchApiOptions options);
  ~BatchApi();
  BatchApi(const BatchApi&) = delete;
  BatchApi& operator=(const BatchApi&) = delete;

  // POST /v1/files (multipart, purpose "batch"): the new file's id.
  std::string upload(const std::string& filename, const std::string& content);
  // GET /v1/files/{id}/content.
  std::string content(const std::string& file_id);
  // POST /v1/batches for /v1/chat/completions: the batch object. A failed
  // attempt may have created the batch all the same (a 500 or a lost
  // connection after the provider acted): before each retry,
  // `find_created` looks for it, and a batch it names is the result.
  nlohmann::json create(const std::string& input_file_id, const std::string& completion_window,
                        const nlohmann::json& metadata,
                        const std::function<std::optional<std::string>()>& find_created);
  // GET /v1/batches/{id}.
  nlohmann::json retrieve(const std::string& batch_id);
  // GET /v1/batches?limit=100[&after=ID]: one page, newest first ({data, has_more, last_id}).
  nlohmann::json list(const std::string& after);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace distill::teacher
