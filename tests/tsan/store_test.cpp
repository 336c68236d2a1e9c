// ThreadSanitizer target: the store and a step's Context as the engine
// uses them, with plain threads in place of TBB's: parallel parts writing
// through the shared namespace (the teacher's cache), bumping counters and
// gauges and logging, while the serial part writes its
// checkpointed state (the write buffer) and commits checkpoints with the
// counters' snapshots, and a reader (a status display) reads the run's
// records, the checkpoints and the log.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "engine/run_log.h"
#include "engine/step.h"
#include "store/plugin_state.h"
#include "store/runs.h"
#include "store/store.h"
#include "test_dir.h"

namespace {

using namespace distill;
using namespace distill::testing;

constexpr int kWriters = 4;
constexpr int kRecordsPerWriter = 400;
constexpr int kRecordsPerCheckpoint = 100;

// The run a step's Context reaches back to, over a real store.
class FakeRun : public engine::RunServices {
 public:
  FakeRun(store::Store& store, engine::StepCounters& counters) : store_(store), counters_(counters) {}
  store::Store& store() override { return store_; }
  bool cancelled() const override { return false; }
  std::vector<StepStats> stats() const override { return {counters_.snapshot("stage", "tsan")}; }
  void progress(const std::string&, double, double, std::string_view) override {}
  unsigned threads() const override { return kWriters; }
  engine::RunLog& log() override { return log_; }
  std::unique_ptr<KeyValue> open_shared(std::string_view name) override {
    return std::make_unique<store::SharedNamespace>(store_, store::shared_prefix(name));
  }
  void commit_step(engine::StepContext&) override {}

 private:
  store::Store& store_;
  engine::StepCounters& counters_;
  engine::RunLog log_;
};

TEST(StoreTsan, ParallelPartsSerialCheckpointsAndAReaderAtOnce) {
  TempDir dir;
  std::unique_ptr<store::Store> store = store::Store::open(dir / "state");
  store::RunStore runs(*store);
  engine::StepCounters counters;
  FakeRun run(*store, counters);
  spec::StepSpec spec;
  spec.name = "stage";
  engine::StepContext context(run, spec, {"p", 1, "stage", false}, counters);
  {
    store::WriteSet begin(*store);
    runs.put_meta(begin, "p", {1, store::RunStatus::Running, "fingerprint", 0, 0, ""});
    store->write(begin, true);
  }

  std::atomic<int> finished_writers{0};
  std::vector<std::thread> threads;
  // Parallel parts: what a teacher's prepare_async and done callbacks do.
  for (int w = 0; w < kWriters; ++w)
    threads.emplace_back([&, w] {
      for (int i = 0; i < kRecordsPerWriter; ++i) {
        const std::string key = "prompt " + std::to_string(w) + "/" + std::to_string(i);
        KeyValue& cache = context.shared("teacher_cache");
        if (!cache.get(key)) cache.put(key, "answer " + key);
        ++context.counter("requests");
        context.gauge("in_flight", i);
        if (i % 40 == 0) context.log().info("writer " + std::to_string(w) + " at " + std::to_string(i));
        if (i % 9 == 0) counters.count_drop("refusal");
        counters.in.fetch_add(1, std::memory_order_relaxed);
      }
      ++finished_writers;
    });
  // A reader: the status display and the daemon's questions.
  threads.emplace_back([&] {
    std::uint64_t seen = 0;
    while (finished_writers < kWriters) {
      if (const auto latest = runs.latest_run("p")) {
        EXPECT_EQ(latest->run, 1u);
      }
      runs.checkpoint("p", 1);
      for (const engine::LogLine& line : run.log().since(seen)) seen = line.seq;
      int cached = 0;
      context.shared("teacher_cache").scan("prompt ", [&](std::string_view, std::string_view) { return ++cached < 100; });
      run.stats();
    }
  });
  // The serial part and its checkpoints, on this thread.
  int committed = 0;
  for (int i = 0; finished_writers < kWriters || i < kRecordsPerWriter; ++i) {
    const std::string key = "seen " + std::to_string(i % 300);
    KeyValue& state = context.state();
    const std::optional<std::string> before = state.get(key);
    state.put(key, std::to_string(std::stoi(before.value_or("0")) + 1));
    if (i % kRecordsPerCheckpoint == kRecordsPerCheckpoint - 1) {
      store::WriteSet checkpoint(*store);
      context.checkpointed_state().move_pending_to(checkpoint);
      runs.put_drop(checkpoint, "p", 1, 1, {"stage", "refusal", static_cast<std::uint64_t>(i), "{}"});
      runs.put_checkpoint(checkpoint, "p", 1, {std::to_string(i), i + 1, run.stats()});
      store->write(checkpoint, committed % 2 == 0);
      ++committed;
    }
  }
  for (std::thread& t : threads) t.join();

  EXPECT_GT(committed, 0);
  for (int w = 0; w < kWriters; ++w)
    for (int i = 0; i < kRecordsPerWriter; i += 37) {
      const std::string key = "prompt " + std::to_string(w) + "/" + std::to_string(i);
      EXPECT_EQ(context.shared("teacher_cache").get(key), "answer " + key);
    }
  const StepStats stats = counters.snapshot("stage", "tsan");
  EXPECT_EQ(stats.records_in, kWriters * kRecordsPerWriter);
  ASSERT_EQ(stats.counters.size(), 1u);
  EXPECT_EQ(stats.counters[0].second, kWriters * kRecordsPerWriter);
  const std::optional<store::Checkpoint> last = runs.checkpoint("p", 1);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->records_read % kRecordsPerCheckpoint, 0);
}

}  // namespace
