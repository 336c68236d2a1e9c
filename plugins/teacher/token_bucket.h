// A token bucket for one per-minute limit (requests, input tokens or
// output tokens). Tokens refill continuously at limit/60 per second up to
// one second's worth, so the achieved rate never exceeds the limit by more
// than a one-second burst. Usage reported after a response may push the
// level below zero (debt), which delays later requests.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace distill::teacher {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // per_minute <= 0: unlimited.
  TokenBucket(double per_minute, Clock::time_point now)
      : per_second_(per_minute / 60.0), capacity_(std::max(1.0, per_minute / 60.0)), level_(capacity_), last_(now) {}

  bool unlimited() const { return per_second_ <= 0; }

  // Takes `amount` if the level (after refill) is positive; a request bigger
  // than the capacity may go once the bucket is full.
  bool try_take(double amount, Clock::time_point now) {
    if (unlimited()) return true;
    refill(now);
    if (level_ <= 0 || (level_ < amount && level_ < capacity_)) return false;
    level_ -= amount;
    return true;
  }

  // Adds (or, negative, removes) tokens: the correction once actual usage is known.
  void adjust(double amount, Clock::time_point now) {
    if (unlimited()) return;
    refill(now);
    level_ = std::min(capacity_, level_ + amount);
  }

  // How long until try_take(amount) could succeed.
  Clock::duration wait_for(double amount, Clock::time_point now) {
    if (unlimited()) return Clock::duration::zero();
    refill(now);
    const double needed = std::max(std::min(amount, capacity_), 1e-9) - level_;
    if (needed <= 0 && level_ > 0) return Clock::duration::zero();
    const double seconds = std::max(needed, 1e-9 - level_) / per_second_;
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  }

 private:
  void refill(Clock::time_point now) {
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    if (elapsed > 0) level_ = std::min(capacity_, level_ + elapsed * per_second_);
  }

  double per_second_;
  double capacity_;
  double level_;
  Clock::time_point last_;
};

}  // namespace distill::teacher
