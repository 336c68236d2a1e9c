// A stage for engine tests, built against the SDK like any plugin:
//   mode: async  -- completes batches on its own thread (prepare_async)
//   mode: slow   -- sleeps ms_per_batch in process(), to make runs long enough to kill
//   mode: fail   -- throws on a record whose last prompt message contains fail_on, while
//                   the file while_exists exists (so a test can "fix" it
//                   without changing the pipeline)
#include <distill/plugin.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

namespace {

using namespace distill;

// One background thread that runs completion callbacks in FIFO order.
class Completer {
 public:
  Completer() : thread_([this] { loop(); }) {}
  ~Completer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  void post(std::function<void()> work) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(work));
    }
    wake_.notify_one();
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto work = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      work();
      lock.lock();
    }
  }
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

class TestStage : public Stage {
 public:
  explicit TestStage(Context& ctx)
      : mode_(ctx.params().str("mode")),
        ms_per_batch_(ctx.params().integer("ms_per_batch")),
        fail_on_(ctx.params().str("fail_on")),
        while_exists_(ctx.params().str("while_exists")),
        batches_(ctx.counter("batches")) {}

  bool is_async() const override { return mode_ == "async"; }

  void prepare_async(Batch& batch, std::function<void()> done) override {
    completer_.post([&batch, done = std::move(done)] {
      batch.for_each_live([](Slot& slot) { slot.record.annotations["async"] = 1.0; });
      done();
    });
  }

  void process(Batch& batch) override {
    ++batches_;
    if (mode_ == "slow") std::this_thread::sleep_for(std::chrono::milliseconds(ms_per_batch_));
    if (mode_ != "fail" || !std::filesystem::exists(while_exists_)) return;
    batch.for_each_live([this](Slot& slot) {
      if (!slot.record.prompt.empty() && slot.record.prompt.back().content.find(fail_on_) != std::string::npos)
        throw std::runtime_error("planted failure on a record containing '" + fail_on_ + "'");
    });
  }

 private:
  std::string mode_;
  std::int64_t ms_per_batch_;
  std::string fail_on_;
  std::string while_exists_;
  std::atomic<std::int64_t>& batches_;
  Completer completer_;
};

}  // namespace

DISTILL_PLUGIN("test_stage", "engine test helper: async, slow or failing stage",
               distill::stage<TestStage>({
                   distill::param::Choice("mode", "behaviour", {"pass", "async", "slow", "fail"}).default_value("pass"),
                   distill::param::Int("ms_per_batch", "sleep per batch in slow mode").default_value("1").min(0),
                   distill::param::String("fail_on", "prompt text that triggers the failure").default_value("\"\""),
                   distill::param::String("while_exists", "fail only while this file exists").default_value("\"\""),
               }))
