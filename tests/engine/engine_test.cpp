// Engine tests on real plugins, a real RocksDB and real files: determinism
// across thread counts, back-pressure, stop/resume, failure and resume,
// pipeline changes, drop samples, and dedupe across runs.
#include <gtest/gtest.h>

#include <oneapi/tbb/global_control.h>

#include <thread>

#include "corpus.h"
#include "engine/run.h"
#include "spec/pipeline_spec.h"
#include "store/runs.h"
#include "test_dir.h"

namespace {

using namespace distill;
using distill::testing::TempDir;
using store::RunStatus;

struct Settings {
  int threads = 2;
  int batch_size = 64;
  int max_inflight = 16;
  int checkpoint_every = 1000;
  int drop_samples = 100;
  std::string dedupe_key = "response";
  std::string test_stage = "mode: pass";
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.load_dir(std::getenv("DISTILL_PLUGIN_DIR"));
    registry_.load_dir(std::getenv("DISTILL_TEST_PLUGIN_DIR"));
    ASSERT_TRUE(registry_.find("jsonl"));
    ASSERT_TRUE(registry_.find("test_stage"));
  }

  distill::testing::CorpusStats make_corpus(std::uint64_t records, double malformed = 0.01) {
    return distill::testing::write_corpus(corpus_path(), {records, 200, 0.05, malformed, true, 7});
  }
  std::filesystem::path corpus_path() const { return dir_ / "corpus.jsonl"; }

  // Writes <variant>/pipeline.yaml for the pipeline "test" (variants differ
  // in folder only, so their outputs can be compared byte for byte).
  spec::PipelineSpec pipeline(const std::string& variant, const Settings& s) {
    std::filesystem::create_directories(dir_ / variant);
    const std::filesystem::path file = dir_ / variant / "pipeline.yaml";
    distill::testing::write_file(
        file, std::string("name: test\nstate_dir: state\n") +
                  "engine: {threads: " + std::to_string(s.threads) + ", batch_size: " + std::to_string(s.batch_size) +
                  ", max_inflight_batches: " + std::to_string(s.max_inflight) +
                  ", checkpoint_every_records: " + std::to_string(s.checkpoint_every) +
                  ", drop_samples: " + std::to_string(s.drop_samples) + "}\n" +
                  "source: {plugin: jsonl, path: ../corpus.jsonl, terms: test-terms}\n"
                  "stages:\n"
                  "  - {plugin: exact_dedupe, key: " + s.dedupe_key + "}\n"
                  "  - {plugin: test_stage, " + s.test_stage + "}\n"
                  "sinks:\n"
                  "  - {plugin: jsonl, dir: out, max_shard_bytes: 200000}\n");
    spec::LoadResult result = spec::load_pipeline(file, registry_);
    for (const Diagnostic& d : result.diagnostics) ADD_FAILURE() << spec::format(d);
    return std::move(*result.spec);
  }

  std::map<std::string, std::string> output(const std::string& variant) {
    return distill::testing::read_dir(dir_ / variant / "out");
  }

  struct Outcome {
    RunStatus status;
    engine::RunSnapshot snapshot;
  };
  Outcome execute(const spec::PipelineSpec& spec, engine::RunOptions options = {}) {
    auto store = store::Store::open(spec.state_dir);
    engine::Run run(*store, spec, options);
    const RunStatus status = run.execute();
    return {status, run.snapshot()};
  }

  TempDir dir_;
  plugins::Registry registry_;
};

const StepStats& step(const engine::RunSnapshot& s, const std::string& name) {
  for (const StepStats& st : s.steps)
    if (st.step == name) return st;
  throw std::runtime_error("no step " + name);
}

std::int64_t drops(const StepStats& s, const std::string& reason) {
  for (const auto& [r, n] : s.drops_by_reason)
    if (r == reason) return n;
  return 0;
}

TEST_F(EngineTest, CountsEveryRecordAndDropReason) {
  const auto stats = make_corpus(5000);
  Outcome out = execute(pipeline("counts", {}));
  ASSERT_EQ(out.status, RunStatus::Completed) << out.snapshot.error;
  const StepStats& source = step(out.snapshot, "source");
  EXPECT_EQ(source.records_in, static_cast<std::int64_t>(stats.lines));
  EXPECT_EQ(drops(source, "malformed_json"), static_cast<std::int64_t>(stats.malformed));
  const StepStats& dedupe = step(out.snapshot, "exact_dedupe");
  EXPECT_EQ(dedupe.records_in, source.kept);
  EXPECT_EQ(drops(dedupe, "duplicate"), static_cast<std::int64_t>(stats.duplicates));
  EXPECT_EQ(step(out.snapshot, "sink:jsonl").kept, dedupe.kept);
  EXPECT_GE(out.snapshot.checkpoints, 5);
}

TEST_F(EngineTest, SameOutputAtOneAndFourThreads) {
  make_corpus(20000);
  Settings one;
  one.threads = 1;
  one.test_stage = "mode: async";
  Settings four = one;
  four.threads = 4;
  Outcome a = execute(pipeline("one", one));
  Outcome b = execute(pipeline("four", four));
  ASSERT_EQ(a.status, RunStatus::Completed) << a.snapshot.error;
  ASSERT_EQ(b.status, RunStatus::Completed) << b.snapshot.error;
  const auto out_one = output("one");
  const auto out_four = output("four");
  ASSERT_GT(out_one.size(), 3u);  // several shards, rejects, manifest
  EXPECT_TRUE(out_one == out_four);
  EXPECT_NE(out_one.at("part-r0001-00000.jsonl").find("\"async\":1}"), std::string::npos);
}

TEST_F(EngineTest, InflightBatchesStayWithinTheLimit) {
  make_corpus(4000, 0);
  Settings limited;
  limited.batch_size = 16;
  limited.max_inflight = 3;
  limited.test_stage = "mode: slow, ms_per_batch: 1";
  Settings unlimited = limited;
  unlimited.max_inflight = 200;
  Outcome a = execute(pipeline("limited", limited));
  Outcome b = execute(pipeline("unlimited", unlimited));
  ASSERT_EQ(a.status, RunStatus::Completed) << a.snapshot.error;
  // The limiter admits max_inflight batches; the reader may hold one more it has read.
  EXPECT_LE(a.snapshot.max_inflight_batches_seen, 4u);
  EXPECT_GT(b.snapshot.max_inflight_batches_seen, 4u);
}

TEST_F(EngineTest, StopThenResumeGivesTheSameOutput) {
  make_corpus(20000);
  Settings s;
  s.test_stage = "mode: slow, ms_per_batch: 1";
  execute(pipeline("whole", s));
  const spec::PipelineSpec spec = pipeline("stopped", s);
  {
    auto store = store::Store::open(spec.state_dir);
    engine::Run run(*store, spec);
    std::thread stopper([&] {
      while (run.snapshot().records_read < 5000) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      run.stop();
    });
    EXPECT_EQ(run.execute(), RunStatus::Stopped);
    stopper.join();
    EXPECT_LT(run.snapshot().records_read, 20000);
  }
  Outcome resumed = execute(spec);
  ASSERT_EQ(resumed.status, RunStatus::Completed) << resumed.snapshot.error;
  EXPECT_TRUE(resumed.snapshot.resumed);
  EXPECT_EQ(resumed.snapshot.run, 1u);
  EXPECT_TRUE(output("whole") == output("stopped"));
}

// A stop does not wait for asynchronous work (a teacher's requests and
// retries): the batches in flight are given up and nothing since the last
// checkpoint is committed, so the resumed run ends exactly as an
// uninterrupted one, with no record dropped for having been given up.
TEST_F(EngineTest, AStopAbandonsAsynchronousWorkBackToTheLastCheckpoint) {
  make_corpus(4000, 0);
  const std::filesystem::path hold = dir_ / "hold";
  Settings s;
  s.checkpoint_every = 256;
  s.test_stage = "mode: hold, ms_per_batch: 1, while_exists: " + hold.string();
  execute(pipeline("whole", s));
  const spec::PipelineSpec spec = pipeline("stopped", s);
  {
    auto store = store::Store::open(spec.state_dir);
    engine::Run run(*store, spec);
    std::thread stopper([&] {
      while (run.snapshot().checkpoints < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      distill::testing::write_file(hold, "");  // from now on each batch is held for an hour
      while (run.snapshot().inflight_batches < 4) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      run.stop();
    });
    EXPECT_EQ(run.execute(), RunStatus::Stopped);
    stopper.join();
    EXPECT_GT(drops(step(run.snapshot(), "test_stage"), "gave_up"), 0) << "the held batches were given up";
  }
  {
    auto store = store::Store::open(spec.state_dir);
    EXPECT_EQ(store::RunStore(*store).latest_run("test")->status, RunStatus::Stopped);
  }
  std::filesystem::remove(hold);
  Outcome resumed = execute(spec);
  ASSERT_EQ(resumed.status, RunStatus::Completed) << resumed.snapshot.error;
  EXPECT_TRUE(resumed.snapshot.resumed);
  EXPECT_EQ(drops(step(resumed.snapshot, "test_stage"), "gave_up"), 0) << "a given-up batch was committed";
  EXPECT_EQ(step(resumed.snapshot, "sink:jsonl").kept,
            4000 - drops(step(resumed.snapshot, "exact_dedupe"), "duplicate"));
  EXPECT_TRUE(output("whole") == output("stopped"));
}

TEST_F(EngineTest, FailingStageFailsTheRunAndAFixedRunResumes) {
  make_corpus(6000);
  const std::filesystem::path trigger = dir_ / "trigger";
  Settings s;
  s.test_stage = "mode: fail, fail_on: question 45, while_exists: " + trigger.string();
  execute(pipeline("reference", s));  // the trigger does not exist yet: no failure
  distill::testing::write_file(trigger, "");
  const spec::PipelineSpec spec = pipeline("failing", s);
  Outcome failed = execute(spec);
  ASSERT_EQ(failed.status, RunStatus::Failed);
  EXPECT_NE(failed.snapshot.error.find(
                "test_stage (plugin test_stage) failed in process(): planted failure on a record containing 'question 45'"),
            std::string::npos)
      << failed.snapshot.error;
  EXPECT_EQ(step(failed.snapshot, "test_stage").errors, 1);
  {
    auto store = store::Store::open(spec.state_dir);
    auto meta = store::RunStore(*store).latest_run("test");
    ASSERT_TRUE(meta);
    EXPECT_EQ(meta->status, RunStatus::Failed);
    EXPECT_EQ(meta->error, failed.snapshot.error);
  }
  std::filesystem::remove(trigger);
  Outcome fixed = execute(spec);
  ASSERT_EQ(fixed.status, RunStatus::Completed) << fixed.snapshot.error;
  EXPECT_TRUE(fixed.snapshot.resumed);
  EXPECT_TRUE(output("reference") == output("failing"));
}

TEST_F(EngineTest, ChangedPipelineDoesNotResumeAnInterruptedRun) {
  make_corpus(3000);
  const std::filesystem::path trigger = dir_ / "trigger";
  distill::testing::write_file(trigger, "");
  Settings s;
  s.test_stage = "mode: fail, fail_on: question 2, while_exists: " + trigger.string();
  ASSERT_EQ(execute(pipeline("changed", s)).status, RunStatus::Failed);
  s.dedupe_key = "prompt+response";
  const spec::PipelineSpec changed = pipeline("changed", s);
  // Refused on a thread of its own, as distilld runs it: nothing may be thrown across.
  Outcome refused{RunStatus::Running, {}};
  std::thread([&] { refused = execute(changed); }).join();
  EXPECT_EQ(refused.status, RunStatus::Failed);
  EXPECT_TRUE(refused.snapshot.refused);
  EXPECT_NE(refused.snapshot.error.find("pipeline 'test' changed since its run 1 was interrupted"), std::string::npos)
      << refused.snapshot.error;
  {
    auto store = store::Store::open(changed.state_dir);
    EXPECT_EQ(store::RunStore(*store).runs("test").size(), 1u) << "a refused run must write nothing";
  }
  std::filesystem::remove(trigger);
  Outcome fresh = execute(changed, {true});
  ASSERT_EQ(fresh.status, RunStatus::Completed) << fresh.snapshot.error;
  EXPECT_EQ(fresh.snapshot.run, 2u);
  auto store = store::Store::open(changed.state_dir);
  auto runs = store::RunStore(*store).runs("test");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].status, RunStatus::Failed);
  EXPECT_EQ(runs[0].error, "abandoned: run 2 was started with --new-run");
}

TEST_F(EngineTest, SamplesAreBoundedPerStepAndReasonAndSinksSampleWhatTheyKept) {
  const auto stats = make_corpus(3000, 0.2);
  Settings s;
  s.drop_samples = 3;
  const spec::PipelineSpec spec = pipeline("samples", s);
  ASSERT_EQ(execute(spec).status, RunStatus::Completed);
  auto store = store::Store::open(spec.state_dir);
  store::RunStore runs(*store);
  auto malformed = runs.drops("test", 1, "source", "malformed_json", 100);
  ASSERT_EQ(malformed.size(), 3u);
  EXPECT_GT(stats.malformed, 100u);
  EXPECT_EQ(malformed[0].seq, 0u);
  EXPECT_NE(malformed[0].record_json.find("\"line\""), std::string::npos);
  auto duplicates = runs.drops("test", 1, "exact_dedupe", "", 100);
  ASSERT_EQ(duplicates.size(), 3u);
  EXPECT_NE(duplicates[0].record_json.find("duplicate_of"), std::string::npos);
  auto kept = runs.drops("test", 1, "sink:jsonl", "kept", 100);
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[2].seq, 2u);
  EXPECT_NE(kept[0].record_json.find("\"terms\":\"test-terms\""), std::string::npos) << kept[0].record_json;
}

TEST_F(EngineTest, FinishReportsProgressAndAStopDuringFinishResumesIt) {
  make_corpus(500, 0);
  std::filesystem::create_directories(dir_ / "finish");
  distill::testing::write_file(dir_ / "finish" / "pipeline.yaml",
                               "name: test\nsource: {plugin: jsonl, path: ../corpus.jsonl}\n"
                               "sinks: [{plugin: test_stage, finish_steps: 400, ms_per_step: 5}]\n");
  spec::LoadResult loaded = spec::load_pipeline(dir_ / "finish" / "pipeline.yaml", registry_);
  ASSERT_TRUE(loaded.spec);
  const spec::PipelineSpec& spec = *loaded.spec;
  {
    auto store = store::Store::open(spec.state_dir);
    engine::Run run(*store, spec);
    engine::RunSnapshot seen;
    std::thread stopper([&] {
      for (;;) {
        seen = run.snapshot();
        if (seen.finishing_step == "sink:test_stage" && seen.finish_done >= 3) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      run.stop();
    });
    EXPECT_EQ(run.execute(), RunStatus::Stopped);
    stopper.join();
    EXPECT_EQ(seen.finish_total, 400);
    EXPECT_EQ(seen.finish_unit, "steps");
    const auto counters = run.snapshot().steps.back().counters;  // finish() returned early
    ASSERT_EQ(counters.size(), 3u);
    EXPECT_EQ(counters[0], (std::pair<std::string, std::int64_t>{"finish_steps_run", counters[0].second}));
    EXPECT_EQ(counters[1], (std::pair<std::string, std::int64_t>{"finishes_completed", 0}));
    EXPECT_EQ(counters[2], (std::pair<std::string, std::int64_t>{"records", 500}));
    EXPECT_EQ(store::RunStore(*store).latest_run("test")->status, RunStatus::Stopped);
  }
  Outcome resumed = execute(spec);
  ASSERT_EQ(resumed.status, RunStatus::Completed) << resumed.snapshot.error;
  EXPECT_TRUE(resumed.snapshot.resumed);
  const StepStats& sink = step(resumed.snapshot, "sink:test_stage");
  EXPECT_EQ(sink.records_in, 500);
  ASSERT_EQ(sink.counters.size(), 3u);
  EXPECT_GE(sink.counters[0].second, 403);  // without commits, finish() starts again from its first step
  EXPECT_EQ(sink.counters[1], (std::pair<std::string, std::int64_t>{"finishes_completed", 1}));
  EXPECT_EQ(sink.counters[2], (std::pair<std::string, std::int64_t>{"records", 500}));
}

TEST_F(EngineTest, AFinishThatCommitsResumesWhereItCommitted) {
  make_corpus(200, 0);
  std::filesystem::create_directories(dir_ / "commit");
  distill::testing::write_file(dir_ / "commit" / "pipeline.yaml",
                               "name: test\nsource: {plugin: jsonl, path: ../corpus.jsonl}\n"
                               "sinks: [{plugin: test_stage, finish_steps: 300, ms_per_step: 5, commit_every: 10}]\n");
  spec::LoadResult loaded = spec::load_pipeline(dir_ / "commit" / "pipeline.yaml", registry_);
  ASSERT_TRUE(loaded.spec);
  const spec::PipelineSpec& spec = *loaded.spec;
  std::int64_t run_before_stop = 0;
  {
    auto store = store::Store::open(spec.state_dir);
    engine::Run run(*store, spec);
    std::thread stopper([&] {
      while (run.snapshot().finish_done < 45) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      run.stop();
    });
    EXPECT_EQ(run.execute(), RunStatus::Stopped);
    stopper.join();
    run_before_stop = run.snapshot().steps.back().counters[0].second;
    EXPECT_GE(run_before_stop, 45);
  }
  Outcome resumed = execute(spec);
  ASSERT_EQ(resumed.status, RunStatus::Completed) << resumed.snapshot.error;
  const StepStats& sink = step(resumed.snapshot, "sink:test_stage");
  // The resumed finish() starts at the last multiple of 10 before the stop:
  // at most 9 steps are done twice, never the whole 300 again.
  EXPECT_GE(sink.counters[0].second, 300);
  EXPECT_LT(sink.counters[0].second, 310);
  EXPECT_EQ(sink.gauges, (std::vector<std::pair<std::string, double>>{{"fraction_done", 1.0}}));
  auto store = store::Store::open(spec.state_dir, store::Store::Mode::ReadOnly);
  std::optional<store::Checkpoint> saved = store::RunStore(*store).checkpoint("test", 1);
  ASSERT_TRUE(saved);
  EXPECT_EQ(saved->steps.back().gauges, sink.gauges);
}

TEST_F(EngineTest, AParallelPartDeclaredSerialStillRuns) {
  make_corpus(300, 0);
  const spec::PipelineSpec spec = pipeline("serial", {.test_stage = "mode: serial_prepare"});
  Outcome outcome = execute(spec);
  ASSERT_EQ(outcome.status, RunStatus::Completed) << outcome.snapshot.error;
  EXPECT_GT(step(outcome.snapshot, "test_stage").kept, 250);
  std::string kept;
  for (const auto& [name, text] : output("serial"))
    if (name.starts_with("part-")) kept += text;
  EXPECT_NE(kept.find("\"prepared\""), std::string::npos);
}

TEST_F(EngineTest, ASecondRunIsDedupedAgainstTheFirst) {
  make_corpus(2000, 0);
  const spec::PipelineSpec spec = pipeline("twice", {});
  Outcome first = execute(spec);
  ASSERT_EQ(first.status, RunStatus::Completed);
  Outcome again = execute(spec);
  EXPECT_TRUE(again.snapshot.already_completed);
  EXPECT_EQ(again.snapshot.run, 1u);
  EXPECT_EQ(step(again.snapshot, "exact_dedupe").kept, step(first.snapshot, "exact_dedupe").kept);
  Outcome second = execute(spec, {true});
  ASSERT_EQ(second.status, RunStatus::Completed);
  EXPECT_EQ(second.snapshot.run, 2u);
  EXPECT_FALSE(second.snapshot.resumed);
  EXPECT_GT(step(first.snapshot, "exact_dedupe").kept, 1500);
  EXPECT_EQ(step(second.snapshot, "exact_dedupe").kept, 0);
  const std::string manifest = output("twice").at("manifest.json");
  EXPECT_NE(manifest.find("\"run\": 2"), std::string::npos);
}

}  // namespace

namespace {

TEST_F(EngineTest, ARunExecutesOnce) {
  make_corpus(500);
  const spec::PipelineSpec spec = pipeline("once", Settings{});
  auto store = store::Store::open(spec.state_dir);
  engine::Run run(*store, spec);
  ASSERT_EQ(run.execute(), RunStatus::Completed);
  EXPECT_EQ(run.execute(), RunStatus::Failed);
  EXPECT_EQ(run.snapshot().status, RunStatus::Completed) << "the second call must change nothing";
  EXPECT_EQ(store::RunStore(*store).runs("test").size(), 1u);
}

TEST_F(EngineTest, ARunLeavesTbbsProcessWideLimitAlone) {
  make_corpus(3000);
  Settings s;
  s.threads = 64;
  s.test_stage = "mode: slow, ms_per_batch: 5";
  const spec::PipelineSpec spec = pipeline("arena", s);
  const std::size_t before =
      tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism);
  auto store = store::Store::open(spec.state_dir);
  engine::Run run(*store, spec);
  std::thread worker([&] { run.execute(); });
  std::size_t seen_while_running = before;
  while (run.snapshot().status == RunStatus::Running) {
    if (run.snapshot().records_read > 0)
      seen_while_running = tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  worker.join();
  EXPECT_EQ(run.snapshot().status, RunStatus::Completed) << run.snapshot().error;
  EXPECT_EQ(seen_while_running, before) << "a run changed the process-wide TBB limit";
}

TEST_F(EngineTest, MaxThreadsCapsWhatPluginsAreOffered) {
  make_corpus(200);
  Settings s;
  s.threads = 8;
  const spec::PipelineSpec spec = pipeline("budget", s);
  auto store = store::Store::open(spec.state_dir);
  engine::RunOptions options;
  options.max_threads = 3;
  engine::Run run(*store, spec, options);
  ASSERT_EQ(run.execute(), RunStatus::Completed) << run.snapshot().error;
  bool found = false;
  for (const engine::LogLine& line : run.log_since(0))
    if (line.step == "test_stage" && line.message.find("threads 3") != std::string::npos) found = true;
  EXPECT_TRUE(found) << "test_stage should have been offered 3 threads";
}

TEST_F(EngineTest, PluginLogLinesAndFailuresGoToTheRunsLog) {
  make_corpus(3000);
  const std::filesystem::path trigger = dir_ / "trigger";
  distill::testing::write_file(trigger, "");
  Settings s;
  s.test_stage = "mode: fail, fail_on: question 2, while_exists: " + trigger.string();
  const spec::PipelineSpec spec = pipeline("log", s);
  auto store = store::Store::open(spec.state_dir);
  engine::Run run(*store, spec);
  ASSERT_EQ(run.execute(), RunStatus::Failed);
  const std::vector<engine::LogLine> lines = run.log_since(0);
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines.front().step, "test_stage");
  EXPECT_EQ(lines.front().level, "info");
  EXPECT_EQ(lines.back().level, "error");
  EXPECT_NE(lines.back().message.find("planted failure"), std::string::npos) << lines.back().message;
  EXPECT_EQ(run.log_since(lines.back().seq).size(), 0u);
  EXPECT_EQ(run.log_since(lines.front().seq).size(), lines.size() - 1);
}

TEST(RunLog, KeepsTheNewestLinesAndCutsLongOnes) {
  engine::RunLog log(3);
  for (int i = 1; i <= 5; ++i) log.add("info", "s", "line " + std::to_string(i));
  log.add("warning", "s", std::string(engine::RunLog::kMaxMessageBytes + 10, 'x'));
  const std::vector<engine::LogLine> lines = log.since(0);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].seq, 4u);
  EXPECT_EQ(lines[0].message, "line 4");
  EXPECT_EQ(lines[2].message.size(), engine::RunLog::kMaxMessageBytes);
  EXPECT_EQ(log.since(5, 10).size(), 1u);
}

// A resumed run's figures "since this execute()" start at zero: a
// snapshot taken at any moment must not count the records and bytes
// before the checkpoint.
TEST_F(EngineTest, SnapshotsOfAResumedRunCountOnlyWhatItRead) {
  const auto stats = make_corpus(20000);
  Settings s;
  s.test_stage = "mode: slow, ms_per_batch: 1";
  const spec::PipelineSpec spec = pipeline("resumed", s);
  {
    auto store = store::Store::open(spec.state_dir);
    engine::Run first(*store, spec);
    std::thread worker([&] { first.execute(); });
    while (first.snapshot().checkpoints < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    first.stop();
    worker.join();
  }
  auto store = store::Store::open(spec.state_dir);
  engine::Run second(*store, spec);
  std::thread worker([&] { second.execute(); });
  std::int64_t most_records = 0;
  std::uint64_t most_bytes = 0;
  for (;;) {
    const engine::RunSnapshot snap = second.snapshot();
    most_records = std::max(most_records, snap.records_read_here);
    most_bytes = std::max(most_bytes, snap.bytes_read_here);
    if (snap.status != RunStatus::Running) break;
  }
  worker.join();
  const engine::RunSnapshot last = second.snapshot();
  ASSERT_EQ(last.status, RunStatus::Completed) << last.error;
  EXPECT_TRUE(last.resumed);
  EXPECT_LT(last.records_read_here, last.records_read);
  EXPECT_LE(most_records, last.records_read_here);
  EXPECT_LE(most_bytes, last.bytes_read_here);
  EXPECT_LT(last.bytes_read_here, stats.bytes);
}

// Nothing in the fingerprint depends on where the project folder is: an
// interrupted run resumes after the folder moved.
TEST_F(EngineTest, ARunResumesAfterItsProjectFolderMoved) {
  make_corpus(20000);
  Settings s;
  s.test_stage = "mode: slow, ms_per_batch: 1";
  ASSERT_EQ(execute(pipeline("reference", s)).status, RunStatus::Completed);
  const spec::PipelineSpec before = pipeline("before", s);
  {
    auto store = store::Store::open(before.state_dir);
    engine::Run first(*store, before);
    std::thread worker([&] { first.execute(); });
    while (first.snapshot().checkpoints < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    first.stop();
    worker.join();
    ASSERT_EQ(first.snapshot().status, RunStatus::Stopped);
  }
  std::filesystem::rename(dir_ / "before", dir_ / "after");
  const spec::PipelineSpec after = pipeline("after", s);
  EXPECT_EQ(after.fingerprint, before.fingerprint);
  Outcome resumed = execute(after);
  ASSERT_EQ(resumed.status, RunStatus::Completed) << resumed.snapshot.error;
  EXPECT_TRUE(resumed.snapshot.resumed);
  EXPECT_TRUE(output("reference") == output("after"));
}

}  // namespace
