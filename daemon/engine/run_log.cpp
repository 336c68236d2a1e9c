// The bounded, sequence-numbered log ring of a run.
#include "engine/run_log.h"

#include <algorithm>
#include <chrono>

namespace distill::engine {

void RunLog::add(std::string_view level, std::string_view step, std::string_view message) {
  LogLine line;
  line.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  line.level = level;
  line.step = step;
  line.message = message.substr(0, kMaxMessageBytes);
  std::lock_guard lock(mutex_);
  line.seq = ++last_seq_;
  lines_.push_back(std::move(line));
  if (lines_.size() > capacity_) lines_.pop_front();
}

std::vector<LogLine> RunLog::since(std::uint64_t after_seq, std::size_t limit) const {
  std::lock_guard lock(mutex_);
  auto first = std::find_if(lines_.begin(), lines_.end(), [&](const LogLine& l) { return l.seq > after_seq; });
  std::vector<LogLine> out;
  for (auto it = first; it != lines_.end() && out.size() < limit; ++it) out.push_back(*it);
  return out;
}

}  // namespace distill::engine
