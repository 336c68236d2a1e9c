// The Files and Batch API calls over libcurl's easy interface, with retries.
#include "batch_api.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "retry_policy.h"

namespace distill::teacher {
namespace {

using nlohmann::json;

struct Reply {
  long status = 0;
  std::string body;
  std::optional<double> retry_after_ms;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* reply = static_cast<Reply*>(user);
  std::string line(data, size * count);
  std::transform(line.begin(), line.end(), line.begin(), [](unsigned char c) { return std::tolower(c); });
  try {
    if (line.starts_with("retry-after-ms:")) reply->retry_after_ms = std::stod(line.substr(15));
    if (line.starts_with("retry-after:") && !reply->retry_after_ms)
      reply->retry_after_ms = std::stod(line.substr(12)) * 1000.0;
  } catch (const std::exception&) {
    // An HTTP-date Retry-After, or garbage: the backoff schedule applies.
  }
  return size * count;
}

}  // namespace

struct BatchApi::Impl {
  explicit Impl(BatchApiOptions o) : options(std::move(o)), rng(std::random_device{}()) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    while (options.base_url.ends_with("/")) options.base_url.pop_back();
  }
  ~Impl() { curl_global_cleanup(); }

  // One call with its retries; the 2xx body, or BatchApiError. Before a
  // retry, `instead` may supply the body (a create that took effect).
  std::string call(const std::string& method, const std::string& path, const std::string& json_body,
                   const std::string* upload_content, const std::string& upload_name, bool transfer,
                   const std::function<std::optional<std::string>()>& instead = {}) {
    const std::string what = method + " " + options.base_url + path;
    for (int attempt = 1;; ++attempt) {
      std::string problem;
      bool retryable = true;
      Reply reply;
      char error[CURL_ERROR_SIZE] = {};
      const CURLcode code = perform(method, path, json_body, upload_content, upload_name, transfer, reply, error);
      if (code == CURLE_OK && reply.status >= 200 && reply.status < 300) return std::move(reply.body);
      if (code == CURLE_OPERATION_TIMEDOUT) {
        problem = "no answer in time";
      } else if (code != CURLE_OK) {
        problem = std::string(curl_easy_strerror(code)) + (error[0] ? std::string(": ") + error : "");
      } else {
        problem = "HTTP " + std::to_string(reply.status) + ": " + error_message(reply.body);
        retryable = retryable_status(reply.status);
      }
      if (!retryable) throw BatchApiError(what + " failed: " + problem, reply.status);
      if (attempt > options.max_retries)
        throw BatchApiError(what + " failed after " + std::to_string(attempt) + " attempts: " + problem);
      wait(retry_delay_ms(attempt, reply.retry_after_ms, options.backoff_base_ms, options.backoff_max_ms, rng), what,
           problem);
      if (instead)
        if (std::optional<std::string> body = instead()) return std::move(*body);
    }
  }

  CURLcode perform(const std::string& method, const std::string& path, const std::string& json_body,
                   const std::string* upload_content, const std::string& upload_name, bool transfer, Reply& reply,
                   char* error) {
    CURL* easy = curl_easy_init();
    if (!easy) throw BatchApiError("libcurl: cannot create a handle");
    const std::string url = options.base_url + path;
    curl_slist* headers = nullptr;
    if (!options.api_key.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + options.api_key).c_str());
    headers = curl_slist_append(headers, "Expect:");
    curl_mime* form = nullptr;
    if (upload_content) {
      form = curl_mime_init(easy);
      curl_mimepart* purpose = curl_mime_addpart(form);
      curl_mime_name(purpose, "purpose");
      curl_mime_data(purpose, "batch", CURL_ZERO_TERMINATED);
      curl_mimepart* file = curl_mime_addpart(form);
      curl_mime_name(file, "file");
      curl_mime_filename(file, upload_name.c_str());
      curl_mime_type(file, "application/jsonl");
      curl_mime_data(file, upload_content->data(), upload_content->size());
      curl_easy_setopt(easy, CURLOPT_MIMEPOST, form);
    } else if (method == "POST") {
      headers = curl_slist_append(headers, "Content-Type: application/json");
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, json_body.c_str());
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(json_body.size()));
    }
    const long timeout = static_cast<long>(options.timeout_ms) * (transfer ? 10 : 1);
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout, 10000L));
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &reply.body);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &reply);
    const CURLcode code = curl_easy_perform(easy);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &reply.status);
    curl_mime_free(form);
    curl_slist_free_all(headers);
    curl_easy_cleanup(easy);
    return code;
  }

  void wait(double ms, const std::string& what, const std::string& problem) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double, std::milli>(ms);
    while (std::chrono::steady_clock::now() < until) {
      if (options.stopping && options.stopping()) throw BatchApiError(what + " interrupted by a stop: " + problem);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  json call_json(const std::string& method, const std::string& path, const std::string& body = "",
                 const std::function<std::optional<std::string>()>& instead = {}) {
    const std::string text = call(method, path, body, nullptr, "", false, instead);
    json parsed = json::parse(text, nullptr, false);
    if (!parsed.is_object())
      throw BatchApiError(method + " " + options.base_url + path + " answered with a body that is not a JSON object: " + text.substr(0, 200));
    return parsed;
  }

  BatchApiOptions options;
  std::mt19937_64 rng;
};

BatchApi::BatchApi(BatchApiOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
BatchApi::~BatchApi() = default;

std::string BatchApi::upload(const std::string& filename, const std::string& content) {
  const std::string text = impl_->call("POST", "/files", "", &content, filename, true);
  const json file = json::parse(text, nullptr, false);
  if (!file.is_object() || !file.contains("id") || !file["id"].is_string())
    throw BatchApiError("POST /v1/files answered without a file id: " + text.substr(0, 200));
  return file["id"].get<std::string>();
}

std::string BatchApi::content(const std::string& file_id) {
  return impl_->call("GET", "/files/" + file_id + "/content", "", nullptr, "", true);
}

json BatchApi::create(const std::string& input_file_id, const std::string& completion_window, const json& metadata,
                      const std::function<std::optional<std::string>()>& find_created) {
  const json request = {{"input_file_id", input_file_id},
                        {"endpoint", "/v1/chat/completions"},
                        {"completion_window", completion_window},
                        {"metadata", metadata}};
  const auto created_meanwhile = [&]() -> std::optional<std::string> {
    if (std::optional<std::string> batch_id = find_created()) return retrieve(*batch_id).dump();
    return std::nullopt;
  };
  json batch = impl_->call_json("POST", "/batches", request.dump(), created_meanwhile);
  if (!batch.contains("id") || !batch["id"].is_string())
    throw BatchApiError("POST /v1/batches answered without a batch id: " + batch.dump().substr(0, 200));
  return batch;
}

json BatchApi::retrieve(const std::string& batch_id) { return impl_->call_json("GET", "/batches/" + batch_id); }

json BatchApi::list(const std::string& after) {
  return impl_->call_json("GET", "/batches?limit=100" + (after.empty() ? std::string() : "&after=" + after));
}

}  // namespace distill::teacher
