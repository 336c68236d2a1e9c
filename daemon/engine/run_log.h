// A run's log: what its plugins (and the engine) say while it runs, kept in
// memory as the newest lines of a bounded ring. Each line has a sequence
// number, so a reader (distilld run's stderr, the daemon's run_log call)
// asks only for the lines it has not seen yet.
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace distill::engine {

struct LogLine {
  std::uint64_t seq = 0;  // 1, 2, ... in the order the lines were written
  std::int64_t time_ms = 0;  // wall clock, milliseconds since the epoch
  std::string level;    // "info", "warning", "error"
  std::string step;     // the step that wrote it, or "" for the engine
  std::string message;  // cut to kMaxMessageBytes
};

class RunLog {
 public:
  static constexpr std::size_t kDefaultCapacity = 2000;
  static constexpr std::size_t kMaxMessageBytes = 4096;

  explicit RunLog(std::size_t capacity = kDefaultCapacity) : capacity_(capacity) {}

  // Thread-safe. Forgets the oldest line once `capacity` lines are held.
  void add(std::string_view level, std::string_view step, std::string_view message);
  // Thread-safe: the lines after `after_seq`, oldest first, at most `limit`.
  std::vector<LogLine> since(std::uint64_t after_seq,
                             std::size_t limit = std::numeric_limits<std::size_t>::max()) const;

 private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::deque<LogLine> lines_;
  std::uint64_t last_seq_ = 0;
};

}  // namespace distill::engine
