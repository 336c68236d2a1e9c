// BatchStore: the local teacher's Files API (/v1/files) and Batch API
// (/v1/batches) without HTTP. Uploaded files live in memory; a batch's
// state follows the clock (validating for the first tenth of --batch-delay-ms,
// then in_progress, then completed), and when it completes its lines run
// through the same answer logic as /v1/chat/completions. Injected batch
// faults: failed lines (HTTP 500 lines in the error file), batches that
// expire with half of their lines answered, and output files whose first
// downloads are cut off. Each answered line and each API call is logged.
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "teacher_logic.h"

namespace distill::teacher {

struct BatchOptions {
  int delay_ms = 2000;                  // from creation to completion
  double line_failure_rate = 0;         // share of lines answered with HTTP 500 (drawn per line run)
  int expire_first = 0;                 // the first N batches expire, half of their lines answered
  int malformed_output_downloads = 0;   // the first N downloads of output files are cut off
  std::uint64_t seed = 1;
  double noise = 0;                     // as for /v1/chat/completions
};

struct Reply {
  int status = 200;
  std::string body;
};

class BatchStore {
 public:
  BatchStore(BatchOptions options, std::function<void(const LogEntry&)> log);

  Reply upload(std::string_view purpose, std::string_view filename, std::string content);
  Reply file_content(const std::string& file_id);
  Reply create(std::string_view body);
  Reply retrieve(const std::string& batch_id);
  Reply list(const std::optional<std::string>& after, int limit);
  Reply cancel(const std::string& batch_id);

 private:
  struct File {
    std::string id;
    std::string purpose;
    std::string filename;
    std::string content;
    std::int64_t created_at = 0;
    bool batch_output = false;
  };
  struct Batch {
    std::string id;
    std::string input_file_id;
    std::string completion_window;
    std::string status = "validating";
    std::string output_file_id;
    std::string error_file_id;
    std::string metadata;  // JSON object text, or "null"
    std::string errors = "null";
    std::int64_t created_ms = 0;
    std::int64_t ended_ms = 0;
    int total = 0;
    int completed = 0;
    int failed = 0;
    bool expires = false;
  };

  void advance(Batch& batch);
  void run_lines(Batch& batch);
  std::string batch_json(const Batch& batch) const;
  std::string store_file(std::string purpose, std::string filename, std::string content, bool batch_output);
  void log_api(std::string_view api, int status, const Batch* created = nullptr);

  BatchOptions options_;
  std::function<void(const LogEntry&)> log_;
  std::mutex mutex_;
  std::map<std::string, File> files_;
  std::vector<Batch> batches_;  // in creation order
  std::uint64_t next_id_ = 0;
  std::uint64_t lines_run_ = 0;
  int malformed_left_ = 0;
};

}  // namespace distill::teacher
