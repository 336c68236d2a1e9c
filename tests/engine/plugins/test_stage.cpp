// A stage for engine tests, built against the SDK like any plugin:
//   mode: async  -- completes batches on its own thread (prepare_async)
//   mode: slow   -- sleeps ms_per_batch in process(), to make runs long enough to kill
//   mode: fail   -- throws on a record whose last prompt message contains fail_on, while
//                   the file while_exists exists (so a test can "fix" it
//                   without changing the pipeline)
//   mode: crash  -- the process dies of SIGSEGV in process(), as a plugin that
//                   dereferences a bad pointer would (the default action is
//                   restored first, so a sanitizer's handler does not turn
//                   it into an exit code)
//   mode: serial_prepare -- declares a prepare() with parallelism 0, which must
//                   still run before process()
//   mode: hold   -- asynchronous: holds each batch ms_per_batch (an hour while
//                   the file while_exists exists), or until the run is
//                   cancelled, when it gives the batch up (its records
//                   dropped as gave_up), as a teacher abandons its requests
// and, as a sink, one whose finish() is long, reports progress and a gauge,
// and commits its progress every commit_every steps.
#include <distill/plugin.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

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

// Holds batches until their time is up or the run is cancelled.
class Holder {
 public:
  explicit Holder(const Context& ctx) : ctx_(ctx), thread_([this] { loop(); }) {}
  ~Holder() {
    stopping_ = true;
    thread_.join();
  }
  void hold(Batch& batch, std::function<void()> done, std::chrono::milliseconds time) {
    std::lock_guard lock(mutex_);
    held_.push_back({&batch, std::move(done), std::chrono::steady_clock::now() + time});
  }

 private:
  struct Held {
    Batch* batch;
    std::function<void()> done;
    std::chrono::steady_clock::time_point until;
  };
  void loop() {
    while (!stopping_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      std::vector<Held> ready;
      {
        std::lock_guard lock(mutex_);
        const bool give_up = ctx_.cancelled();
        const auto now = std::chrono::steady_clock::now();
        for (auto it = held_.begin(); it != held_.end();) {
          if (!give_up && it->until > now) {
            ++it;
            continue;
          }
          if (give_up) it->batch->for_each_live([](Slot& slot) { slot.drop_reason = "gave_up"; });
          ready.push_back(std::move(*it));
          it = held_.erase(it);
        }
      }
      for (Held& held : ready) held.done();
    }
  }
  const Context& ctx_;
  std::mutex mutex_;
  std::vector<Held> held_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

class TestStage : public Stage {
 public:
  explicit TestStage(Context& ctx)
      : holder_(ctx),
        mode_(ctx.params().str("mode")),
        ms_per_batch_(ctx.params().integer("ms_per_batch")),
        fail_on_(ctx.params().str("fail_on")),
        while_exists_(ctx.params().str("while_exists")),
        batches_(ctx.counter("batches")) {
    ctx.log().info("mode " + mode_ + ", threads " + std::to_string(ctx.threads()));
  }

  bool is_async() const override { return mode_ == "async" || mode_ == "hold"; }

  void prepare(Batch& batch) override {
    batch.for_each_live([](Slot& slot) { slot.record.annotations["prepared"] = 1.0; });
  }

  void prepare_async(Batch& batch, std::function<void()> done) override {
    if (mode_ == "hold") {
      const bool long_hold = !while_exists_.empty() && std::filesystem::exists(while_exists_);
      holder_.hold(batch, std::move(done),
                   long_hold ? std::chrono::milliseconds(std::chrono::hours(1)) : std::chrono::milliseconds(ms_per_batch_));
      return;
    }
    completer_.post([&batch, done = std::move(done)] {
      batch.for_each_live([](Slot& slot) { slot.record.annotations["async"] = 1.0; });
      done();
    });
  }

  void process(Batch& batch) override {
    ++batches_;
    if (mode_ == "serial_prepare")
      batch.for_each_live([](Slot& slot) {
        if (!slot.record.annotations.contains("prepared")) throw std::logic_error("prepare() was not called");
      });
    if (mode_ == "slow") std::this_thread::sleep_for(std::chrono::milliseconds(ms_per_batch_));
    if (mode_ == "crash") {
      std::signal(SIGSEGV, SIG_DFL);
      std::raise(SIGSEGV);
    }
    if (mode_ != "fail" || !std::filesystem::exists(while_exists_)) return;
    batch.for_each_live([this](Slot& slot) {
      if (!slot.record.prompt.empty() && slot.record.prompt.back().content.find(fail_on_) != std::string::npos)
        throw std::runtime_error("planted failure on a record containing '" + fail_on_ + "'");
    });
  }

 private:
  Holder holder_;
  std::string mode_;
  std::int64_t ms_per_batch_;
  std::string fail_on_;
  std::string while_exists_;
  std::atomic<std::int64_t>& batches_;
  Completer completer_;
};

// A sink whose finish() takes finish_steps * ms_per_step, reporting
// progress and returning early when the run is stopped.
class TestSink : public Sink {
 public:
  explicit TestSink(Context& ctx)
      : ctx_(ctx),
        steps_(ctx.params().integer("finish_steps")),
        ms_per_step_(ctx.params().integer("ms_per_step")),
        commit_every_(ctx.params().integer("commit_every")),
        records_(ctx.counter("records")),
        steps_run_(ctx.counter("finish_steps_run")),
        finishes_(ctx.counter("finishes_completed")) {}

  void write(Batch& batch) override { batch.for_each_live([this](Slot&) { ++records_; }); }
  void flush() override { ctx_.state().put("records", std::to_string(records_.load())); }
  void finish() override {
    std::int64_t step = 0;
    if (std::optional<std::string> committed = ctx_.state().get("finish_step")) step = std::stoll(*committed);
    for (; step < steps_; ++step) {
      if (ctx_.cancelled()) return;
      ctx_.progress(static_cast<double>(step), static_cast<double>(steps_), "steps");
      std::this_thread::sleep_for(std::chrono::milliseconds(ms_per_step_));
      ++steps_run_;
      ctx_.gauge("fraction_done", static_cast<double>(step + 1) / static_cast<double>(steps_));
      if (commit_every_ > 0 && (step + 1) % commit_every_ == 0) {
        ctx_.state().put("finish_step", std::to_string(step + 1));
        ctx_.commit();
      }
    }
    ++finishes_;
  }

 private:
  Context& ctx_;
  std::int64_t steps_;
  std::int64_t ms_per_step_;
  std::int64_t commit_every_;
  std::atomic<std::int64_t>& records_;
  std::atomic<std::int64_t>& steps_run_;
  std::atomic<std::int64_t>& finishes_;
};

}  // namespace

DISTILL_PLUGIN("test_stage", "engine test helper: async, slow or failing stage; a slow-finishing sink",
               distill::stage<TestStage>({
                   distill::param::Choice("mode", "behaviour", {"pass", "async", "slow", "fail", "crash", "serial_prepare", "hold"}).default_value("pass"),
                   distill::param::Int("ms_per_batch", "sleep per batch in slow mode; hold per batch in hold mode").default_value("1").min(0),
                   distill::param::String("fail_on", "prompt text that triggers the failure").default_value("\"\""),
                   distill::param::String("while_exists", "fail only while this file exists").default_value("\"\""),
               }),
               distill::sink<TestSink>({
                   distill::param::Int("finish_steps", "steps of work in finish()").default_value("10").min(0),
                   distill::param::Int("ms_per_step", "sleep per finish step").default_value("10").min(0),
                   distill::param::Int("commit_every", "commit progress every N finish steps (0: never)")
                       .default_value("0")
                       .min(0),
               }))
