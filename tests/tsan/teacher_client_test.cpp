// ThreadSanitizer target: the teacher's HTTP client (plugins/teacher's
// TeacherClient, its loop thread, token buckets and retry timers) driven
// by several submitting threads, as the engine's threads drive it, against
// the local teacher (examples/teacher, itself built with TSan here) with
// injected 429s, 500s, resets, malformed and slow answers; and cancelled
// or destroyed with requests still waiting and in flight.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "teacher_client.h"
#include "teacher_server.h"
#include "test_dir.h"

namespace {

using namespace distill::testing;
using namespace distill::teacher;
using namespace std::chrono_literals;

std::string body_for(int number) {
  return R"({"model":"teacher","messages":[{"role":"user","content":"Spell )" + std::to_string(number) + R"(."}]})";
}

// A usable chat completion names its choices; a cut-off body does not close.
std::optional<TokenUsage> check(const std::string& body) {
  if (body.find("\"choices\"") == std::string::npos || body.empty() || body.back() != '}') return std::nullopt;
  return TokenUsage{10, 5};
}

// Every outcome, by reason, filled from the client's thread and read by the test's.
class Outcomes {
 public:
  std::function<void(Outcome)> recorder() {
    return [this](Outcome outcome) {
      std::lock_guard lock(mutex_);
      ++by_reason_[outcome.ok ? "ok" : outcome.reason];
      ++ended_;
      changed_.notify_all();
    };
  }
  bool wait_for(int count, std::chrono::seconds limit) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return ended_ >= count; });
  }
  std::map<std::string, int> by_reason() {
    std::lock_guard lock(mutex_);
    return by_reason_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, int> by_reason_;
  int ended_ = 0;
};

ClientOptions options_for(const TeacherServer& server) {
  ClientOptions options;
  options.url = server.base_url() + "/chat/completions";
  options.concurrency = 8;
  options.requests_per_minute = 60000;
  options.input_tokens_per_minute = 600000;
  options.max_retries = 30;
  options.backoff_base_ms = 5;
  options.backoff_max_ms = 50;
  options.timeout_ms = 5000;
  return options;
}

// `threads` threads submit `each` requests apiece, at once.
void submit_from_threads(TeacherClient& client, Outcomes& outcomes, int threads, int each) {
  std::vector<std::thread> submitters;
  for (int t = 0; t < threads; ++t)
    submitters.emplace_back([&, t] {
      for (int i = 0; i < each; ++i) client.submit({body_for(t * 1000 + i), 10, check, outcomes.recorder()});
    });
  for (std::thread& s : submitters) s.join();
}

TEST(TeacherClientTsan, ConcurrentSubmittersThroughAFaultStormAllEndAnswered) {
  TempDir dir;
  TeacherServer server(dir.path(), {"--threads", "8", "--rate-429", "0.15", "--retry-after-ms", "10", "--rate-500",
                                    "0.1", "--rate-reset", "0.05", "--rate-malformed", "0.05", "--rate-slow", "0.05",
                                    "--slow-ms", "100"});
  std::atomic<std::int64_t> attempts{0};
  std::atomic<std::int64_t> retries{0};
  Outcomes outcomes;
  {
    TeacherClient client(options_for(server), {attempts, retries});
    submit_from_threads(client, outcomes, 4, 40);
    ASSERT_TRUE(outcomes.wait_for(160, 120s));
  }
  EXPECT_EQ(outcomes.by_reason(), (std::map<std::string, int>{{"ok", 160}}));
  EXPECT_GT(retries.load(), 0);
  EXPECT_EQ(attempts.load(), 160 + retries.load());
}

TEST(TeacherClientTsan, CancellingEndsEveryWaitingAndRunningRequest) {
  TempDir dir;
  TeacherServer server(dir.path(), {"--threads", "8", "--latency-ms", "200"});
  std::atomic<std::int64_t> attempts{0};
  std::atomic<std::int64_t> retries{0};
  std::atomic<bool> stopping{false};
  Outcomes outcomes;
  ClientOptions options = options_for(server);
  options.cancelled = [&stopping] { return stopping.load(); };
  TeacherClient client(std::move(options), {attempts, retries});
  std::thread canceller([&] {
    std::this_thread::sleep_for(300ms);
    stopping = true;
  });
  submit_from_threads(client, outcomes, 4, 50);
  canceller.join();
  ASSERT_TRUE(outcomes.wait_for(200, 60s));
  const std::map<std::string, int> ended = outcomes.by_reason();
  EXPECT_GT(ended.count("cancelled") ? ended.at("cancelled") : 0, 0);
  EXPECT_EQ((ended.count("ok") ? ended.at("ok") : 0) + (ended.count("cancelled") ? ended.at("cancelled") : 0), 200);
}

TEST(TeacherClientTsan, DestroyingWaitsForRequestsStillInFlight) {
  TempDir dir;
  TeacherServer server(dir.path(), {"--threads", "8", "--latency-ms", "50", "--rate-429", "0.2",
                                    "--retry-after-ms", "10"});
  std::atomic<std::int64_t> attempts{0};
  std::atomic<std::int64_t> retries{0};
  Outcomes outcomes;
  {
    TeacherClient client(options_for(server), {attempts, retries});
    submit_from_threads(client, outcomes, 4, 10);
  }  // the destructor returns once each request has ended
  EXPECT_EQ(outcomes.by_reason(), (std::map<std::string, int>{{"ok", 40}}));
}

}  // namespace
