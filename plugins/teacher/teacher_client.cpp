// The client's loop thread: starts jobs when the concurrency cap and the
// token buckets allow, drives libcurl's multi handle, classifies each
// finished transfer (accept, retry later, or fail), and sleeps in
// curl_multi_poll until a transfer, a submission or a timer needs it.
#include "teacher_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <random>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "retry_policy.h"
#include "token_bucket.h"

namespace distill::teacher {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxBodyBytes = 64u << 20;
constexpr int kMaxSleepMs = 250;  // bounds how late a cancellation is seen

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

std::string trim(std::string_view text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return "";
  const auto end = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(begin, end - begin + 1));
}

}  // namespace

struct TeacherClient::Job {
  Request request;
  int attempts = 0;
  Clock::time_point not_before{};
  // Per attempt:
  std::string response;
  std::string request_id;
  std::optional<double> retry_after_ms;
  char error[CURL_ERROR_SIZE] = {};
};

struct TeacherClient::Impl {
  Impl(ClientOptions o, ClientCounters c)
      : options(std::move(o)),
        counters(c),
        requests(options.requests_per_minute, Clock::now()),
        input_tokens(options.input_tokens_per_minute, Clock::now()),
        output_tokens(options.output_tokens_per_minute, Clock::now()),
        rng(options.seed) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi = curl_multi_init();
    if (!multi) throw std::runtime_error("libcurl: cannot create a multi handle");
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(options.concurrency));
    if (!options.api_key.empty()) auth = curl_slist_append(auth, ("Authorization: Bearer " + options.api_key).c_str());
    auth = curl_slist_append(auth, "Content-Type: application/json");
    auth = curl_slist_append(auth, "Expect:");
    thread = std::thread([this] { loop(); });
  }

  ~Impl() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    curl_multi_wakeup(multi);
    thread.join();
    for (CURL* easy : idle) curl_easy_cleanup(easy);
    curl_slist_free_all(auth);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
  }

  void submit(Request request) {
    auto job = std::make_unique<Job>();
    job->request = std::move(request);
    {
      std::lock_guard lock(mutex);
      incoming.push_back(std::move(job));
    }
    curl_multi_wakeup(multi);
  }

  void loop() {
    for (;;) {
      {
        std::lock_guard lock(mutex);
        for (auto& job : incoming) waiting.emplace(job->not_before, std::move(job));
        incoming.clear();
        if (stopping && waiting.empty() && running.empty()) return;
      }
      if (options.cancelled && options.cancelled()) cancel_all();
      start_ready();
      int still_running = 0;
      curl_multi_perform(multi, &still_running);
      if (collect()) continue;  // slots were freed: start waiting jobs before sleeping
      curl_multi_poll(multi, nullptr, 0, next_wake_ms(), nullptr);
    }
  }

  // Ends every waiting and running request as "cancelled".
  void cancel_all() {
    std::vector<std::unique_ptr<Job>> ended;
    for (auto& [easy, job] : running) {
      curl_multi_remove_handle(multi, easy);
      idle.push_back(easy);
      ended.push_back(std::move(job));
    }
    running.clear();
    for (auto& [when, job] : waiting) ended.push_back(std::move(job));
    waiting.clear();
    for (auto& job : ended) {
      Outcome outcome;
      outcome.reason = "cancelled";
      outcome.message = "the run is stopping";
      outcome.attempts = job->attempts;
      job->request.done(std::move(outcome));
    }
  }

  // Starts waiting jobs in order while the cap and the buckets allow.
  void start_ready() {
    const Clock::time_point now = Clock::now();
    while (!waiting.empty() && static_cast<int>(running.size()) < options.concurrency) {
      auto first = waiting.begin();
      if (first->first > now) {
        wake_at = std::min(wake_at, first->first);
        return;
      }
      const double tokens = first->second->request.estimated_input_tokens;
      const Clock::duration wait =
          std::max({requests.wait_for(1, now), input_tokens.wait_for(tokens, now), output_tokens.wait_for(0, now)});
      if (wait > Clock::duration::zero()) {
        wake_at = std::min(wake_at, now + wait);
        return;
      }
      requests.try_take(1, now);
      input_tokens.try_take(tokens, now);
      std::unique_ptr<Job> job = std::move(first->second);
      waiting.erase(first);
      start(std::move(job));
    }
  }

  void start(std::unique_ptr<Job> job) {
    CURL* easy = idle.empty() ? curl_easy_init() : idle.back();
    if (!idle.empty()) idle.pop_back();
    curl_easy_reset(easy);
    job->response.clear();
    job->request_id.clear();
    job->retry_after_ms.reset();
    job->error[0] = '\0';
    ++job->attempts;
    curl_easy_setopt(easy, CURLOPT_URL, options.url.c_str());
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, auth);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, job->request.body.c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(job->request.body.size()));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout_ms));
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min(options.timeout_ms, 10000)));
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, job->error);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Impl::on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, job.get());
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Impl::on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, job.get());
    curl_easy_setopt(easy, CURLOPT_PRIVATE, job.get());
    curl_multi_add_handle(multi, easy);
    ++counters.attempts;
    running.emplace(easy, std::move(job));
  }

  static std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
    auto* job = static_cast<Job*>(user);
    const std::size_t bytes = size * count;
    if (job->response.size() + bytes > kMaxBodyBytes) return 0;  // aborts the transfer
    job->response.append(data, bytes);
    return bytes;
  }

  static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
    auto* job = static_cast<Job*>(user);
    const std::string_view line(data, size * count);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return size * count;
    const std::string name = lower(std::string(line.substr(0, colon)));
    const std::string value = trim(line.substr(colon + 1));
    try {
      if (name == "x-request-id") job->request_id = value;
      if (name == "retry-after-ms") job->retry_after_ms = std::stod(value);
      if (name == "retry-after" && !job->retry_after_ms) job->retry_after_ms = std::stod(value) * 1000.0;
    } catch (const std::exception&) {
      // An HTTP-date Retry-After, or garbage: the backoff schedule applies.
    }
    return size * count;
  }

  // Ends the finished transfers; true when there were any.
  bool collect() {
    bool any = false;
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &left)) {
      if (message->msg != CURLMSG_DONE) continue;
      CURL* easy = message->easy_handle;
      const CURLcode code = message->data.result;
      curl_multi_remove_handle(multi, easy);
      auto it = running.find(easy);
      std::unique_ptr<Job> job = std::move(it->second);
      running.erase(it);
      idle.push_back(easy);
      long status = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      finish_attempt(std::move(job), code, status);
      any = true;
    }
    return any;
  }

  void finish_attempt(std::unique_ptr<Job> job, CURLcode code, long status) {
    Outcome outcome;
    outcome.status = status;
    outcome.request_id = job->request_id;
    outcome.attempts = job->attempts;
    bool retryable = true;
    if (code == CURLE_OPERATION_TIMEDOUT) {
      outcome.reason = "timeout";
      outcome.message = "no answer within " + std::to_string(options.timeout_ms / 1000) + " s";
    } else if (code == CURLE_WRITE_ERROR) {
      outcome.reason = "bad_response";
      outcome.message = "response body larger than " + std::to_string(kMaxBodyBytes >> 20) + " MiB";
      retryable = false;
    } else if (code != CURLE_OK) {
      outcome.reason = "connection";
      outcome.message = std::string(curl_easy_strerror(code)) + (job->error[0] ? std::string(": ") + job->error : "");
    } else if (status == 200) {
      if (std::optional<TokenUsage> usage = job->request.check(job->response)) {
        const Clock::time_point now = Clock::now();
        input_tokens.adjust(job->request.estimated_input_tokens - usage->prompt_tokens, now);
        output_tokens.adjust(-usage->completion_tokens, now);
        outcome.ok = true;
        outcome.usage = *usage;
        outcome.body = std::move(job->response);
        job->request.done(std::move(outcome));
        return;
      }
      outcome.reason = "bad_response";
      outcome.message = "HTTP 200 with a body that is not a usable chat completion: " + job->response.substr(0, 120);
    } else {
      outcome.reason = "http_" + std::to_string(status);
      outcome.message = "HTTP " + std::to_string(status) + ": " + error_message(job->response);
      retryable = retryable_status(status);
    }
    if (!retryable || job->attempts > options.max_retries) {
      job->request.done(std::move(outcome));
      return;
    }
    ++counters.retries;
    job->not_before = Clock::now() + retry_delay(*job);
    waiting.emplace(job->not_before, std::move(job));
  }

  Clock::duration retry_delay(const Job& job) {
    const double ms =
        retry_delay_ms(job.attempts, job.retry_after_ms, options.backoff_base_ms, options.backoff_max_ms, rng);
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(ms));
  }

  int next_wake_ms() {
    const Clock::time_point now = Clock::now();
    int ms = kMaxSleepMs;
    if (wake_at != Clock::time_point::max()) {
      ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wake_at - now).count());
      ms = std::clamp(ms, 0, kMaxSleepMs);
    }
    wake_at = Clock::time_point::max();
    return ms;
  }

  ClientOptions options;
  ClientCounters counters;
  TokenBucket requests;
  TokenBucket input_tokens;
  TokenBucket output_tokens;
  std::mt19937_64 rng;
  CURLM* multi = nullptr;
  curl_slist* auth = nullptr;
  std::vector<CURL*> idle;
  std::multimap<Clock::time_point, std::unique_ptr<Job>> waiting;  // by not_before, then submission order
  std::map<CURL*, std::unique_ptr<Job>> running;
  Clock::time_point wake_at = Clock::time_point::max();

  std::mutex mutex;  // guards incoming and stopping
  std::vector<std::unique_ptr<Job>> incoming;
  bool stopping = false;
  std::thread thread;
};

TeacherClient::TeacherClient(ClientOptions options, ClientCounters counters)
    : impl_(std::make_unique<Impl>(std::move(options), counters)) {}
TeacherClient::~TeacherClient() = default;
void TeacherClient::submit(Request request) { impl_->submit(std::move(request)); }

}  // namespace distill::teacher
