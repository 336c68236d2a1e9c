// BatchCollector: the teacher stage's batch mode. Requests (the exact
// bodies the online mode sends, under the same cache keys) are gathered
// into OpenAI Batch API input files, uploaded, turned into batches, polled,
// and their output and error files joined back by custom_id
// ("dl-" + cache key). One thread does all of it.
//
// Durability (a KeyValue whose writes are durable at once, not rolled back):
// per submission, its lines and attempt numbers are recorded before the
// file is uploaded; the file id before the batch is created; the batch id
// once it exists. Per line, the submission it is in (or, between
// attempts, its attempt count and last failure). On start, submissions
// are re-attached: one only recorded is forgotten (nothing was created),
// one uploaded but not known to be created is looked up among the
// account's batches by its metadata (distilld_submission) and created only
// when absent, and created ones are polled. So a crash at any moment
// submits no line twice.
//
// Results: a 200 line whose body check() accepts is an answer; an error or
// non-200 line, or a line a completed batch does not answer, is a failed
// attempt, retried in a later batch until max_attempts, then reported as
// failed ("batch_<reason>"); lines an expired or cancelled batch did not
// answer are resubmitted without counting an attempt; an answer to a line
// the batch does not hold, or a second answer to one, is ignored and counted.
// A Files/Batch API call that still fails after its retries, or an output
// file that cannot be read, halts the collector: every waiting line is
// reported with reason kUnfinished and the message. A stop of the run
// halts it too, with reason kCancelled (the engine then commits nothing
// of the records in flight). Either way the recorded batches are
// re-attached by the next run.
//
// Status: the table "batches" (Context::table) has a row per batch of the
// run: id, state, the provider's request counts, created and expected-by
// (created + completion_window) times; updated at creation and at each
// poll, kept once the batch ends, and carried over from the checkpoint
// when the run resumes.
#pragma once

#include <distill/plugin.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "batch_api.h"
#include "teacher_client.h"

namespace distill::teacher {

// The reasons of a line that is neither answered nor failed: the collector
// met an error it cannot get past (the run must fail), or the run stops.
inline constexpr const char* kUnfinished = "batch_unfinished";
inline constexpr const char* kCancelled = "cancelled";

struct BatchSettings {
  std::size_t max_requests = 50000;      // lines per input file
  std::size_t max_file_bytes = 190000000;
  std::size_t max_batches = 100;         // batches in flight at once
  std::string completion_window = "24h";
  std::chrono::milliseconds poll{60000};
  std::chrono::milliseconds gather{1000};  // a partial file goes once no line came for this long
  int max_attempts = 9;                    // retries.max + 1
  std::string pipeline;
  std::string step;
  std::uint64_t run = 0;
};

struct BatchHooks {
  // A 200 body: its usage when usable, nullopt when not (a failed attempt).
  std::function<std::optional<TokenUsage>(const std::string& body)> check;
  // True when the cache already holds this key's answer.
  std::function<bool(const std::string& cache_key)> cached;
  // A line's outcome (ok: the answer; else why it failed), with the batch it came from.
  std::function<void(const std::string& cache_key, Outcome outcome, const std::string& batch_id)> done;
  // True once the run is stopping.
  std::function<bool()> cancelled;
};

struct BatchCounters {
  std::atomic<std::int64_t>& batches_created;
  std::atomic<std::int64_t>& lines_submitted;
  std::atomic<std::int64_t>& lines_retried;
  std::atomic<std::int64_t>& lines_resubmitted;
  std::atomic<std::int64_t>& answers_ignored;
};

class BatchCollector {
 public:
  BatchCollector(BatchSettings settings, std::unique_ptr<BatchApi> api, KeyValue& durable, Context& ctx,
                 BatchHooks hooks, BatchCounters counters);
  ~BatchCollector();  // stops the thread; recorded batches stay for the next run
  BatchCollector(const BatchCollector&) = delete;
  BatchCollector& operator=(const BatchCollector&) = delete;

  // Asks for the answer to `body` (cache key `cache_key`), once per key
  // until its outcome is reported. Thread-safe.
  void request(const std::string& cache_key, std::string body);

 private:
  struct Line {
    std::string body;  // empty while no record of this process waits for the line
    int attempts = 0;  // attempts made so far
  };
  struct Submission {
    std::string id;
    std::string state;  // "recorded", "uploaded", "created"
    std::string file_id;
    std::string batch_id;
    std::int64_t recorded_ms = 0;
    std::vector<std::string> keys;
    std::vector<int> attempts;  // the attempt each line is in this batch (1 = first)
    std::string last_report;    // the status line last logged
    struct {
      int total = 0;
      int completed = 0;
      int failed = 0;
    } counts;  // the provider's request_counts at the last poll (under mutex_)
    std::chrono::steady_clock::time_point next_poll{};
  };
  using Delivery = std::pair<std::string, Outcome>;
  using Deliveries = std::vector<Delivery>;

  void loop();
  void reattach();
  void submit_ready();
  void submit(std::vector<std::string> keys);
  void create(Submission& submission);
  std::optional<std::string> find_created(const Submission& submission);
  void poll_due();
  void finish(Submission& submission, const nlohmann::json& batch);
  void halt(const std::string& reason, const std::string& message);
  void deliver(const Deliveries& deliveries, const std::string& batch_id);
  void report(Submission& submission, const nlohmann::json& batch);
  void publish(const std::string& batch_id, const nlohmann::json& batch);
  void update_gauges();

  std::string key(std::string_view kind, std::string_view id) const;
  void put_submission(const Submission& submission);
  nlohmann::json line_record(const std::string& cache_key);
  std::string request_line(const std::string& cache_key, const std::string& body) const;

  BatchSettings settings_;
  std::unique_ptr<BatchApi> api_;
  KeyValue& durable_;
  Context& ctx_;
  BatchHooks hooks_;
  BatchCounters counters_;
  std::string prefix_;  // pipeline \0 step \0
  std::optional<std::int64_t> window_s_;  // completion_window in seconds, when it reads as one
  // The "batches" table's rows; touched by the constructor, then by the thread only.
  std::vector<std::vector<std::string>> rows_;

  std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  std::unordered_map<std::string, Line> waiting_;  // keys a record waits for, by cache key
  std::deque<std::string> queue_;                  // keys for the next input file
  std::size_t queued_bytes_ = 0;
  std::chrono::steady_clock::time_point last_arrival_{};
  std::map<std::string, Submission> open_;  // by submission id
  std::uint64_t submissions_made_ = 0;
  bool halted_ = false;
  std::string halt_reason_;
  std::string halt_message_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace distill::teacher
