// Unit tests of the RocksDB store (daemon/store): opening, plugin state namespaces, runs, checkpoints and drops;
// the integrity check on damaged databases; the free-space reserve and failed writes on a full tmpfs.
#include "store/integrity.h"
#include "store/plugin_state.h"
#include "store/runs.h"
#include "store/store.h"
#include "tmpfs.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace distill::store {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

std::string state_prefix(const std::string& pipeline, const std::string& step) {
  return pipeline + '\0' + step + '\0';
}

Pairs scan_all(KeyValue& kv, std::string_view prefix) {
  Pairs out;
  kv.scan(prefix, [&out](std::string_view key, std::string_view value) {
    out.emplace_back(std::string(key), std::string(value));
    return true;
  });
  return out;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "distill-store-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    dir_ = root_ / "state";
    store_ = Store::open(dir_);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(root_);
  }

  void reopen() {
    store_.reset();
    store_ = Store::open(dir_);
  }

  // Commits the pending writes of `state` as the engine does at a checkpoint.
  void commit(CheckpointedState& state) {
    WriteSet batch(*store_);
    state.move_pending_to(batch);
    store_->write(batch, true);
  }

  std::filesystem::path root_;
  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, OpenCreatesTheFolderAndEveryColumnFamily) {
  EXPECT_TRUE(std::filesystem::is_directory(dir_));
  EXPECT_EQ(store_->dir(), dir_);
  std::vector<std::string> families;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir_.string(), &families).ok());
  for (const char* name : {"default", "runs", "checkpoints", "plugin_state", "drops", "shared"})
    EXPECT_NE(std::find(families.begin(), families.end(), name), families.end()) << name;
  EXPECT_EQ(store_->family(Family::Runs)->GetName(), "runs");
  EXPECT_EQ(store_->family(Family::Checkpoints)->GetName(), "checkpoints");
  EXPECT_EQ(store_->family(Family::PluginState)->GetName(), "plugin_state");
  EXPECT_EQ(store_->family(Family::Drops)->GetName(), "drops");
  EXPECT_EQ(store_->family(Family::Shared)->GetName(), "shared");
}

TEST_F(StoreTest, FamiliesAreSeparateNamespaces) {
  store_->put(Family::Runs, "k", "runs");
  store_->put(Family::Shared, "k", "shared");
  EXPECT_EQ(store_->get(Family::Runs, "k"), "runs");
  EXPECT_EQ(store_->get(Family::Shared, "k"), "shared");
  EXPECT_EQ(store_->get(Family::Drops, "k"), std::nullopt);
}

TEST_F(StoreTest, ScanVisitsPrefixInByteOrderAndStops) {
  for (const char* key : {"b/2", "a/1", "b/1", "b/3", "c/1"}) store_->put(Family::Runs, key, key);
  std::vector<std::string> seen;
  store_->scan(Family::Runs, "b/", [&seen](std::string_view key, std::string_view) {
    seen.emplace_back(key);
    return seen.size() < 2;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"b/1", "b/2"}));
}

TEST_F(StoreTest, SecondOpenInTheSameProcessFailsNamingTheFolder) {
  try {
    Store::open(dir_);
    FAIL() << "a second Store opened a database that is already open";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open the state database in " + dir_.string()), std::string::npos)
        << e.what();
  }
}

TEST_F(StoreTest, OpenFailsWhenTheFolderCannotBeCreated) {
  const std::filesystem::path file = root_ / "plain-file";
  { std::FILE* f = std::fopen(file.c_str(), "w"); ASSERT_NE(f, nullptr); std::fclose(f); }
  try {
    Store::open(file / "state");
    FAIL() << "opened a store below a plain file";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot create state folder " + (file / "state").string()), std::string::npos)
        << e.what();
  }
}

TEST_F(StoreTest, CheckpointedStateReadsItsOwnPendingWrites) {
  CheckpointedState state(*store_, state_prefix("p", "dedupe"));
  EXPECT_EQ(state.get("k"), std::nullopt);
  state.put("k", "v1");
  EXPECT_EQ(state.get("k"), "v1");
  state.put("k", "v2");
  EXPECT_EQ(state.get("k"), "v2");
  state.erase("k");
  EXPECT_EQ(state.get("k"), std::nullopt);
  // Nothing reached the database yet.
  state.put("k", "v3");
  EXPECT_EQ(store_->get(Family::PluginState, state_prefix("p", "dedupe") + "k"), std::nullopt);
}

TEST_F(StoreTest, CheckpointedStateSeesCommittedDataAndShadowsIt) {
  CheckpointedState writer(*store_, state_prefix("p", "s"));
  writer.put("a", "committed-a");
  writer.put("b", "committed-b");
  commit(writer);

  CheckpointedState state(*store_, state_prefix("p", "s"));
  EXPECT_EQ(state.get("a"), "committed-a");
  state.put("a", "pending-a");
  state.erase("b");
  EXPECT_EQ(state.get("a"), "pending-a");
  EXPECT_EQ(state.get("b"), std::nullopt);
  EXPECT_EQ(store_->get(Family::PluginState, state_prefix("p", "s") + "b"), "committed-b");
}

TEST_F(StoreTest, CheckpointedStateScanMergesPendingAndCommittedInKeyOrder) {
  CheckpointedState state(*store_, state_prefix("p", "s"));
  state.put("k1", "c1");
  state.put("k3", "c3");
  state.put("k5", "c5");
  state.put("other", "c");
  commit(state);

  state.put("k2", "p2");   // new, between committed keys
  state.put("k3", "p3");   // overwrites a committed key
  state.erase("k5");       // hides a committed key
  state.put("k0", "p0");
  EXPECT_EQ(scan_all(state, "k"), (Pairs{{"k0", "p0"}, {"k1", "c1"}, {"k2", "p2"}, {"k3", "p3"}}));
  EXPECT_EQ(scan_all(state, ""), (Pairs{{"k0", "p0"}, {"k1", "c1"}, {"k2", "p2"}, {"k3", "p3"}, {"other", "c"}}));

  std::vector<std::string> first_two;
  state.scan("k", [&first_two](std::string_view key, std::string_view) {
    first_two.emplace_back(key);
    return first_two.size() < 2;
  });
  EXPECT_EQ(first_two, (std::vector<std::string>{"k0", "k1"}));
}

TEST_F(StoreTest, CheckpointedStateKeepsEmptyLargeAndManyValuesUntilTheCheckpoint) {
  CheckpointedState state(*store_, state_prefix("p", "s"));
  const std::string large(3u << 20, 'x');  // larger than a buffer chunk
  state.put("empty", "");
  state.put("large", large);
  for (int i = 0; i < 20000; ++i) state.put("n" + std::to_string(i), std::string(100, static_cast<char>('a' + i % 26)));
  state.put("large", large + "y");  // an overwrite replaces the buffered value
  EXPECT_EQ(state.get("empty"), "");
  EXPECT_EQ(state.get("large")->size(), large.size() + 1);
  EXPECT_EQ(state.get("n19999"), std::string(100, static_cast<char>('a' + 19999 % 26)));
  commit(state);
  EXPECT_EQ(store_->get(Family::PluginState, state_prefix("p", "s") + "empty"), "");
  EXPECT_EQ(state.get("large")->back(), 'y');
  std::size_t numbered = 0;
  std::string previous;
  state.scan("n", [&](std::string_view key, std::string_view value) {
    EXPECT_LT(previous, key);
    EXPECT_EQ(value.size(), 100u);
    previous = key;
    ++numbered;
    return true;
  });
  EXPECT_EQ(numbered, 20000u);
}

TEST_F(StoreTest, CheckpointedStateScanShowsValuesAsTheyWereWhenItStarted) {
  CheckpointedState state(*store_, state_prefix("p", "s"));
  state.put("a", "first-a");
  state.put("b", "first-b-longer");
  Pairs seen;
  state.scan("", [&](std::string_view key, std::string_view value) {
    seen.emplace_back(key, value);
    state.put("b", "short");  // overwrites, in place, a key the scan has not reached
    state.put("c", "new");
    return true;
  });
  EXPECT_EQ(seen, (Pairs{{"a", "first-a"}, {"b", "first-b-longer"}}));
  EXPECT_EQ(state.get("b"), "short");
}

TEST(WriteBufferTest, OverwritesThatFitReuseTheirBytes) {
  WriteBuffer buffer;
  const std::string value(1000, 'v');
  for (int i = 0; i < 100000; ++i) buffer.put("counter", value.substr(0, 1000 - i % 10));
  EXPECT_EQ(buffer.find("counter")->value, value.substr(0, 1000 - 99999 % 10));
  EXPECT_LE(buffer.arena_bytes(), 1u << 20);  // one chunk, not 100 MB
  for (int i = 0; i < 1000; ++i) buffer.put("growing", std::string(static_cast<std::size_t>(i), 'g'));
  EXPECT_EQ(buffer.find("growing")->value.size(), 999u);
  buffer.erase("counter");
  buffer.put("counter", "x");
  EXPECT_EQ(buffer.find("counter")->value, "x");
  EXPECT_FALSE(buffer.find("counter")->erased);
  buffer.clear();
  EXPECT_EQ(buffer.find("counter"), nullptr);
  EXPECT_EQ(buffer.arena_bytes(), 0u);
}

TEST_F(StoreTest, CheckpointedStateInstancesDoNotSeeEachOther) {
  CheckpointedState a(*store_, state_prefix("p", "a"));
  CheckpointedState ab(*store_, state_prefix("p", "ab"));
  CheckpointedState other_pipeline(*store_, state_prefix("q", "a"));
  a.put("k", "from-a");
  ab.put("k", "from-ab");
  commit(a);
  commit(ab);
  EXPECT_EQ(a.get("k"), "from-a");
  EXPECT_EQ(ab.get("k"), "from-ab");
  EXPECT_EQ(other_pipeline.get("k"), std::nullopt);
  EXPECT_EQ(scan_all(a, ""), (Pairs{{"k", "from-a"}}));
  EXPECT_TRUE(scan_all(other_pipeline, "").empty());
}

TEST_F(StoreTest, DiscardPendingDropsUncommittedWrites) {
  CheckpointedState state(*store_, state_prefix("p", "s"));
  state.put("kept", "1");
  commit(state);
  state.put("lost", "2");
  state.erase("kept");
  state.discard_pending();
  EXPECT_EQ(state.get("lost"), std::nullopt);
  EXPECT_EQ(state.get("kept"), "1");
  EXPECT_EQ(scan_all(state, ""), (Pairs{{"kept", "1"}}));
}

TEST_F(StoreTest, MovePendingToCommitsWithTheRestOfTheBatchAndClearsThePending) {
  RunStore runs(*store_);
  CheckpointedState state(*store_, state_prefix("p", "s"));
  state.put("a", "1");
  state.put("b", "2");
  state.erase("b");

  WriteSet batch(*store_);
  state.move_pending_to(batch);
  runs.put_checkpoint(batch, "p", 1, Checkpoint{"pos-1", 1, {}});
  // Moved, not yet written: invisible everywhere.
  EXPECT_EQ(state.get("a"), std::nullopt);
  EXPECT_EQ(runs.checkpoint("p", 1), std::nullopt);

  store_->write(batch, true);
  EXPECT_EQ(state.get("a"), "1");
  EXPECT_EQ(state.get("b"), std::nullopt);
  EXPECT_EQ(runs.checkpoint("p", 1)->position, "pos-1");
  // Discarding after the move loses nothing.
  state.discard_pending();
  EXPECT_EQ(state.get("a"), "1");
}

TEST_F(StoreTest, CommittedStateSurvivesReopening) {
  {
    CheckpointedState state(*store_, state_prefix("p", "s"));
    state.put("durable", "yes");
    commit(state);
    state.put("pending", "lost");
    SharedNamespace shared(*store_, std::string("cache") + '\0');
    shared.put("hit", "cached");
  }
  reopen();
  CheckpointedState state(*store_, state_prefix("p", "s"));
  EXPECT_EQ(state.get("durable"), "yes");
  EXPECT_EQ(state.get("pending"), std::nullopt);
  SharedNamespace shared(*store_, std::string("cache") + '\0');
  EXPECT_EQ(shared.get("hit"), "cached");
}

TEST_F(StoreTest, SharedNamespaceWritesThrough) {
  const std::string prefix = std::string("teacher_cache") + '\0';
  SharedNamespace shared(*store_, prefix);
  shared.put("k2", "v2");
  shared.put("k1", "v1");
  EXPECT_EQ(store_->get(Family::Shared, prefix + "k1"), "v1");
  SharedNamespace other_view(*store_, prefix);
  EXPECT_EQ(other_view.get("k2"), "v2");
  EXPECT_EQ(scan_all(other_view, "k"), (Pairs{{"k1", "v1"}, {"k2", "v2"}}));

  shared.erase("k1");
  EXPECT_EQ(other_view.get("k1"), std::nullopt);
  EXPECT_EQ(store_->get(Family::Shared, prefix + "k1"), std::nullopt);

  SharedNamespace different(*store_, std::string("teacher_cache2") + '\0');
  EXPECT_EQ(different.get("k2"), std::nullopt);
  EXPECT_TRUE(scan_all(different, "").empty());
}

RunMeta meta(std::uint64_t run, RunStatus status, const std::string& fingerprint) {
  RunMeta m;
  m.run = run;
  m.status = status;
  m.fingerprint = fingerprint;
  m.started_ms = 1700000000000 + static_cast<std::int64_t>(run);
  m.ended_ms = status == RunStatus::Running ? 0 : m.started_ms + 500;
  m.error = status == RunStatus::Failed ? "sink: disk full" : "";
  return m;
}

void expect_same(const RunMeta& got, const RunMeta& want) {
  EXPECT_EQ(got.run, want.run);
  EXPECT_EQ(got.status, want.status);
  EXPECT_EQ(got.fingerprint, want.fingerprint);
  EXPECT_EQ(got.started_ms, want.started_ms);
  EXPECT_EQ(got.ended_ms, want.ended_ms);
  EXPECT_EQ(got.error, want.error);
}

TEST_F(StoreTest, RunMetaRoundTripsInRunOrderPerPipeline) {
  RunStore runs(*store_);
  EXPECT_EQ(runs.latest_run("p"), std::nullopt);
  EXPECT_TRUE(runs.runs("p").empty());

  WriteSet batch(*store_);
  // Written out of order; run 256 must sort after run 2 (big-endian keys).
  runs.put_meta(batch, "p", meta(256, RunStatus::Running, "fp3"));
  runs.put_meta(batch, "p", meta(2, RunStatus::Failed, "fp2"));
  runs.put_meta(batch, "p", meta(1, RunStatus::Completed, "fp1"));
  runs.put_meta(batch, "p2", meta(7, RunStatus::Stopped, "other"));
  runs.put_meta(batch, "", meta(9, RunStatus::Stopped, "empty-name"));
  store_->write(batch, false);

  const std::vector<RunMeta> all = runs.runs("p");
  ASSERT_EQ(all.size(), 3u);
  expect_same(all[0], meta(1, RunStatus::Completed, "fp1"));
  expect_same(all[1], meta(2, RunStatus::Failed, "fp2"));
  expect_same(all[2], meta(256, RunStatus::Running, "fp3"));
  expect_same(*runs.latest_run("p"), meta(256, RunStatus::Running, "fp3"));
  expect_same(*runs.latest_run("p2"), meta(7, RunStatus::Stopped, "other"));
  ASSERT_EQ(runs.runs("").size(), 1u);
  EXPECT_EQ(runs.runs("")[0].run, 9u);

  WriteSet update(*store_);
  runs.put_meta(update, "p", meta(256, RunStatus::Completed, "fp3"));
  store_->write(update, false);
  EXPECT_EQ(runs.runs("p").size(), 3u);
  EXPECT_EQ(runs.latest_run("p")->status, RunStatus::Completed);
}

TEST_F(StoreTest, RunStatusNames) {
  EXPECT_STREQ(to_string(RunStatus::Running), "running");
  EXPECT_STREQ(to_string(RunStatus::Stopped), "stopped");
  EXPECT_STREQ(to_string(RunStatus::Failed), "failed");
  EXPECT_STREQ(to_string(RunStatus::Completed), "completed");
}

TEST_F(StoreTest, CheckpointRoundTrips) {
  RunStore runs(*store_);
  StepStats source;
  source.step = "source";
  source.plugin = "jsonl";
  source.records_in = 1000;
  source.kept = 990;
  source.dropped = 10;
  source.errors = 1;
  source.busy_ns = 123456789;
  source.drops_by_reason = {{"bad_json", 7}, {"empty_response", 3}};
  StepStats dedupe;
  dedupe.step = "exact_dedupe";
  dedupe.plugin = "exact_dedupe";
  dedupe.records_in = 990;
  dedupe.kept = 900;
  dedupe.dropped = 90;
  dedupe.counters = {{"index_size", 900}};
  // A plugin's table; a cell that is not UTF-8 is stored with a replacement character.
  dedupe.tables = {{"batches", {"batch", "state"}, {{"batch_1", "completed"}, {"batch_2", "bad \xff"}}}};
  const Checkpoint written{std::string("file\0offset=42", 14), 1000, {source, dedupe}};

  WriteSet batch(*store_);
  runs.put_checkpoint(batch, "p", 3, written);
  store_->write(batch, true);
  EXPECT_EQ(runs.checkpoint("p", 2), std::nullopt);
  EXPECT_EQ(runs.checkpoint("q", 3), std::nullopt);

  const std::optional<Checkpoint> read = runs.checkpoint("p", 3);
  ASSERT_TRUE(read);
  EXPECT_EQ(read->position, written.position);
  EXPECT_EQ(read->records_read, 1000);
  ASSERT_EQ(read->steps.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    const StepStats& got = read->steps[i];
    const StepStats& want = written.steps[i];
    EXPECT_EQ(got.step, want.step);
    EXPECT_EQ(got.plugin, want.plugin);
    EXPECT_EQ(got.records_in, want.records_in);
    EXPECT_EQ(got.kept, want.kept);
    EXPECT_EQ(got.dropped, want.dropped);
    EXPECT_EQ(got.errors, want.errors);
    EXPECT_EQ(got.busy_ns, want.busy_ns);
    EXPECT_EQ(got.drops_by_reason, want.drops_by_reason);
    EXPECT_EQ(got.counters, want.counters);
  }
  EXPECT_TRUE(read->steps[0].tables.empty());
  ASSERT_EQ(read->steps[1].tables.size(), 1u);
  const Table& table = read->steps[1].tables[0];
  EXPECT_EQ(table.name, "batches");
  EXPECT_EQ(table.columns, (std::vector<std::string>{"batch", "state"}));
  EXPECT_EQ(table.rows,
            (std::vector<std::vector<std::string>>{{"batch_1", "completed"}, {"batch_2", "bad \xEF\xBF\xBD"}}));
}

class DropsTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    RunStore runs(*store_);
    WriteSet batch(*store_);
    // step index 1 = "dedupe", 0 = "source"; seq 10 must sort after seq 2.
    runs.put_drop(batch, "p", 1, 1, {"dedupe", "duplicate", 10, R"({"id":"d10"})"});
    runs.put_drop(batch, "p", 1, 1, {"dedupe", "duplicate", 2, R"({"id":"d2"})"});
    runs.put_drop(batch, "p", 1, 0, {"source", "bad_json", 0, R"({"id":"s0"})"});
    runs.put_drop(batch, "p", 1, 1, {"dedupe", "anear", 0, R"({"id":"a0"})"});
    runs.put_drop(batch, "p", 1, 0, {"source", "bad_json", 1, R"({"id":"s1"})"});
    runs.put_drop(batch, "p", 2, 1, {"dedupe", "duplicate", 0, R"({"id":"run2"})"});
    runs.put_drop(batch, "p2", 1, 1, {"dedupe", "duplicate", 0, R"({"id":"other"})"});
    store_->write(batch, false);
  }

  std::vector<std::string> records(const std::string& step, const std::string& reason, std::size_t limit) {
    std::vector<std::string> out;
    for (const DropSample& s : RunStore(*store_).drops("p", 1, step, reason, limit)) out.push_back(s.record_json);
    return out;
  }
};

TEST_F(DropsTest, AllDropsOfARunInStepReasonSeqOrder) {
  EXPECT_EQ(records("", "", 100), (std::vector<std::string>{R"({"id":"s0"})", R"({"id":"s1"})", R"({"id":"a0"})",
                                                            R"({"id":"d2"})", R"({"id":"d10"})"}));
  const std::vector<DropSample> samples = RunStore(*store_).drops("p", 1, "", "", 100);
  ASSERT_EQ(samples.size(), 5u);
  EXPECT_EQ(samples[4].step, "dedupe");
  EXPECT_EQ(samples[4].reason, "duplicate");
  EXPECT_EQ(samples[4].seq, 10u);
}

TEST_F(DropsTest, FilterByStep) {
  EXPECT_EQ(records("source", "", 100), (std::vector<std::string>{R"({"id":"s0"})", R"({"id":"s1"})"}));
  EXPECT_TRUE(records("nope", "", 100).empty());
}

TEST_F(DropsTest, FilterByReason) {
  EXPECT_EQ(records("", "duplicate", 100), (std::vector<std::string>{R"({"id":"d2"})", R"({"id":"d10"})"}));
  EXPECT_EQ(records("dedupe", "anear", 100), (std::vector<std::string>{R"({"id":"a0"})"}));
  EXPECT_TRUE(records("source", "duplicate", 100).empty());
}

TEST_F(DropsTest, Limit) {
  EXPECT_EQ(records("", "", 3), (std::vector<std::string>{R"({"id":"s0"})", R"({"id":"s1"})", R"({"id":"a0"})"}));
  EXPECT_EQ(records("dedupe", "duplicate", 1), (std::vector<std::string>{R"({"id":"d2"})"}));
}

TEST_F(DropsTest, OtherRunsAndPipelinesAreSeparate) {
  const std::vector<DropSample> run2 = RunStore(*store_).drops("p", 2, "", "", 100);
  ASSERT_EQ(run2.size(), 1u);
  EXPECT_EQ(run2[0].record_json, R"({"id":"run2"})");
  const std::vector<DropSample> other = RunStore(*store_).drops("p2", 1, "", "", 100);
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].record_json, R"({"id":"other"})");
}

TEST_F(DropsTest, InvalidUtf8InARecordIsStoredWithReplacementCharacters) {
  RunStore runs(*store_);
  WriteSet batch(*store_);
  runs.put_drop(batch, "bin", 1, 0, {"source", "bad_utf8", 0, "{\"raw\":\"a\xFF" "b\"}"});
  store_->write(batch, false);
  const std::vector<DropSample> samples = runs.drops("bin", 1, "", "", 10);
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].record_json, "{\"raw\":\"a\xEF\xBF\xBD" "b\"}");
}

// The integrity check (store/integrity.h) on databases damaged the ways disks and people damage them.
class DamagedStoreTest : public StoreTest {
 protected:
  // Commits `commits` times into every family, flushing each commit to table files.
  void fill(int commits) {
    for (int i = 0; i < commits; ++i) {
      WriteSet batch(*store_);
      for (Family family : {Family::Runs, Family::Checkpoints, Family::PluginState, Family::Drops, Family::Shared})
        for (int k = 0; k < 200; ++k)
          batch.put(family, "p" + std::to_string(i) + "/" + std::to_string(k), std::string(100, static_cast<char>('a' + k % 26)));
      store_->write(batch, true);
      ASSERT_TRUE(store_->db().Flush(rocksdb::FlushOptions(), {store_->family(Family::Runs), store_->family(Family::Checkpoints),
                                                              store_->family(Family::PluginState), store_->family(Family::Drops),
                                                              store_->family(Family::Shared)}).ok());
    }
  }

  // The first file of the folder whose name starts with `prefix` and ends with `suffix`.
  std::filesystem::path file_like(const std::string& prefix, const std::string& suffix) const {
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with(prefix) && name.ends_with(suffix)) return entry.path();
    }
    ADD_FAILURE() << "no file " << prefix << "*" << suffix << " in " << dir_;
    return {};
  }

  std::map<std::string, std::string> contents() const {
    std::map<std::string, std::string> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      std::ifstream in(entry.path(), std::ios::binary);
      files[entry.path().filename().string()] = std::string(std::istreambuf_iterator<char>(in), {});
    }
    return files;
  }

  // Opening (in `mode`) must report the damage with `reason` and what to do, and change no file.
  void expect_damaged(const std::string& reason, Store::Mode mode = Store::Mode::ReadWrite) {
    store_.reset();
    const auto before = contents();
    try {
      Store::open(dir_, mode);
      ADD_FAILURE() << "a damaged store opened";
    } catch (const StoreDamaged& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("the state database in " + dir_.string() + " is damaged ("), std::string::npos) << message;
      EXPECT_NE(message.find(reason), std::string::npos) << message;
      EXPECT_NE(message.find("restore the folder from a backup, or delete it to start the pipeline over; nothing was changed"),
                std::string::npos)
          << message;
    }
    EXPECT_EQ(contents(), before);
  }
};

TEST_F(DamagedStoreTest, EveryFamilyHoldsTheLastCommitsMarker) {
  fill(2);
  for (Family family : {Family::Runs, Family::Checkpoints, Family::PluginState, Family::Drops, Family::Shared}) {
    std::string marker;
    ASSERT_TRUE(store_->db().Get(rocksdb::ReadOptions(), store_->family(family), kCommitKey, &marker).ok());
    EXPECT_EQ(marker, encode_commit(3));  // the mark of the new database, then two commits
  }
  reopen();
  WriteSet batch(*store_);
  store_->write(batch, true);
  std::string marker;
  ASSERT_TRUE(store_->db().Get(rocksdb::ReadOptions(), store_->family(Family::Drops), kCommitKey, &marker).ok());
  EXPECT_EQ(marker, encode_commit(4));
}

TEST_F(DamagedStoreTest, ScansNeverShowTheMarker) {
  store_->put(Family::Runs, "a", "1");
  std::vector<std::string> keys;
  store_->scan(Family::Runs, "", [&keys](std::string_view key, std::string_view) {
    keys.emplace_back(key);
    return true;
  });
  EXPECT_EQ(keys, std::vector<std::string>{"a"});
}

TEST_F(DamagedStoreTest, FamiliesThatDisagreeOnTheLastCommit) {
  fill(1);
  ASSERT_TRUE(store_->db().Put(rocksdb::WriteOptions(), store_->family(Family::PluginState), kCommitKey, encode_commit(1)).ok());
  expect_damaged("column family runs was last written by commit 2, column family plugin_state by commit 1");
}

TEST_F(DamagedStoreTest, AFamilyWithoutTheMarker) {
  fill(1);
  ASSERT_TRUE(store_->db().Delete(rocksdb::WriteOptions(), store_->family(Family::Drops), kCommitKey).ok());
  expect_damaged("column family drops lacks the marker of commit 2 that the others hold");
}

TEST_F(DamagedStoreTest, AMissingFamily) {
  fill(1);
  ASSERT_TRUE(store_->db().DropColumnFamily(store_->family(Family::PluginState)).ok());
  expect_damaged("column family plugin_state is missing");
}

TEST_F(DamagedStoreTest, AMissingCurrentFile) {
  fill(1);
  store_.reset();
  std::filesystem::remove(dir_ / "CURRENT");
  expect_damaged("its CURRENT file is missing");
  expect_damaged("its CURRENT file is missing", Store::Mode::ReadOnly);
}

// RocksDB writes CURRENT last when it creates a database: a first open
// killed before it leaves no data, and the database is created again.
TEST_F(DamagedStoreTest, ACreationCutShortIsNotDamage) {
  store_.reset();
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  for (const char* name : {"IDENTITY", "MANIFEST-000001", "LOCK"}) std::ofstream(dir_ / name) << "cut short";
  store_ = Store::open(dir_);
  store_->put(Family::Runs, "k", "v");
  reopen();
  EXPECT_EQ(store_->get(Family::Runs, "k"), "v");
}

TEST_F(DamagedStoreTest, FamiliesMissingAfterAFirstOpenCutShortAreCreated) {
  ASSERT_TRUE(store_->db().DropColumnFamily(store_->family(Family::Drops)).ok());
  store_.reset();
  std::filesystem::remove(dir_ / std::string(kMarkedFile));
  store_ = Store::open(dir_);
  store_->put(Family::Drops, "k", "v");
  EXPECT_TRUE(std::filesystem::exists(dir_ / std::string(kMarkedFile)));
}

TEST_F(DamagedStoreTest, AMissingManifest) {
  fill(1);
  store_.reset();
  std::filesystem::remove(file_like("MANIFEST-", ""));
  expect_damaged("MANIFEST-");
}

TEST_F(DamagedStoreTest, ATruncatedManifest) {
  fill(4);
  store_.reset();
  const std::filesystem::path manifest = file_like("MANIFEST-", "");
  std::filesystem::resize_file(manifest, std::filesystem::file_size(manifest) / 2);
  expect_damaged("");
}

TEST_F(DamagedStoreTest, ABitFlipInAManifest) {
  fill(4);
  store_.reset();
  const std::filesystem::path manifest = file_like("MANIFEST-", "");
  std::fstream file(manifest, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(static_cast<std::streamoff>(std::filesystem::file_size(manifest) / 2));
  const char byte = static_cast<char>(file.peek() ^ 0x10);
  file.seekp(static_cast<std::streamoff>(std::filesystem::file_size(manifest) / 2));
  file.put(byte);
  file.close();
  expect_damaged("Corruption");
}

// Point-in-time recovery would end the log at the bad record and drop
// every commit after it without a word.
TEST_F(DamagedStoreTest, ABitFlipInTheMiddleOfTheWal) {
  for (int i = 0; i < 20; ++i) {
    WriteSet batch(*store_);
    batch.put(Family::Runs, "k" + std::to_string(i), std::string(1000, 'w'));
    store_->write(batch, true);
  }
  store_.reset();
  const std::filesystem::path wal = file_like("", ".log");
  std::fstream file(wal, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(static_cast<std::streamoff>(std::filesystem::file_size(wal) / 2));
  const char byte = static_cast<char>(file.peek() ^ 0x01);
  file.seekp(static_cast<std::streamoff>(std::filesystem::file_size(wal) / 2));
  file.put(byte);
  file.close();
  expect_damaged("Corruption: checksum mismatch");
}

TEST_F(DamagedStoreTest, ABitFlipInATableFileIsFoundByReadingEveryBlock) {
  fill(1);
  store_.reset();
  const std::filesystem::path table = file_like("", ".sst");
  std::fstream file(table, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(100);  // inside the first data block
  const char byte = static_cast<char>(file.peek() ^ 0x01);
  file.seekp(100);
  file.put(byte);
  file.close();
  expect_damaged("Corruption");
}

TEST_F(DamagedStoreTest, ATruncatedTableFile) {
  fill(1);
  store_.reset();
  const std::filesystem::path table = file_like("", ".sst");
  std::filesystem::resize_file(table, std::filesystem::file_size(table) / 2);
  expect_damaged("Corruption");
}

TEST_F(DamagedStoreTest, AStoreFromBeforeMarkersIsMarkedWhenOpened) {
  store_.reset();
  std::filesystem::remove_all(dir_);
  {
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {{rocksdb::kDefaultColumnFamilyName, {}}};
    for (const char* name : {"runs", "checkpoints", "plugin_state", "drops", "shared"}) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.string(), families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[1], "old", "run").ok());
    for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
  }
  store_ = Store::open(dir_);
  EXPECT_EQ(store_->get(Family::Runs, "old"), "run");
  std::string marker;
  ASSERT_TRUE(store_->db().Get(rocksdb::ReadOptions(), store_->family(Family::Shared), kCommitKey, &marker).ok());
  EXPECT_EQ(marker, encode_commit(1));
}

TEST_F(DamagedStoreTest, ASecondWriterIsRefusedBeforeTheCheckReadsAnything) {
  try {
    Store::open(dir_);
    FAIL() << "a second writer opened the store";
  } catch (const StoreDamaged& e) {
    FAIL() << "a store in use was called damaged: " << e.what();
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("it is in use (the lock on " + (dir_ / "LOCK").string()), std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(Store::open(dir_, Store::Mode::ReadOnly));
}

// A store on a tmpfs of its own, filled up.
class FullDiskStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "distill-store-disk-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    std::string why;
    disk_ = distill::testing::Tmpfs::mount(root_ / "disk", "1m", why);
    if (!disk_) GTEST_SKIP() << why;
    dir_ = root_ / "disk" / "state";
  }
  void TearDown() override {
    disk_.reset();
    std::filesystem::remove_all(root_);
  }
  // Fills the disk with a file until `left` bytes are free.
  void fill_disk_leaving(std::uint64_t left) {
    const std::uint64_t free = std::filesystem::space(dir_.parent_path()).available;
    std::ofstream(root_ / "disk" / "filler", std::ios::binary) << std::string(free > left ? free - left : 0, 'x');
  }

  std::filesystem::path root_;
  std::unique_ptr<distill::testing::Tmpfs> disk_;
  std::filesystem::path dir_;
};

TEST_F(FullDiskStoreTest, OpeningForWritesNeedsTheReserveFree) {
  Store::open(dir_);
  fill_disk_leaving(16 << 10);
  try {
    Store::open(dir_);
    FAIL() << "opened on a full disk";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("the disk holding the state folder " + dir_.string() + " is full: "),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find(" kB free, and distilld keeps 66 kB free so that the database is never cut "
                                         "off mid-write; "),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("free some space or move the state folder, then run again to resume"),
              std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(Store::open(dir_, Store::Mode::ReadOnly));
  disk_->resize("4m");
  EXPECT_NO_THROW(Store::open(dir_));
}

TEST_F(FullDiskStoreTest, AWriteThatWouldEatTheReserveIsRefused) {
  auto store = Store::open(dir_);
  fill_disk_leaving(200 << 10);
  store->put(Family::Runs, "small", "fits");
  try {
    store->put(Family::Runs, "large", std::string(180 << 10, 'v'));
    FAIL() << "a write ate the reserve";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("is full"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(this write needs 184 kB more)"), std::string::npos) << e.what();
  }
  store->put(Family::Runs, "after", "still writable: nothing failed");
  store.reset();
  EXPECT_EQ(Store::open(dir_, Store::Mode::ReadOnly)->get(Family::Runs, "after"), "still writable: nothing failed");
}

// RocksDB runs out of space itself (a flush it needs does not fit): the
// failed write is reported, no later write reaches RocksDB's failed
// writers (which would abort the process), and closing does not abort.
TEST_F(FullDiskStoreTest, AfterAFailedWriteTheStoreTakesNoMoreAndClosesCleanly) {
  auto store = Store::open(dir_);
  std::mt19937_64 random(7);
  std::string noise(300 << 10, '\0');
  for (char& c : noise) c = static_cast<char>(random());
  WriteSet batch(*store);
  batch.put(Family::PluginState, "noise", noise);
  store->write(batch, false);
  fill_disk_leaving(100 << 10);
  EXPECT_FALSE(store->db().Flush(rocksdb::FlushOptions(), store->family(Family::PluginState)).ok());
  try {
    store->put(Family::Runs, "k", "v");
    FAIL() << "a write succeeded after RocksDB failed to flush";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot write the state database in " + dir_.string() + ": "), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("No space left on device"), std::string::npos) << e.what();
  }
  try {
    WriteSet next(*store);
    store->write(next, true);
    FAIL() << "a commit went to RocksDB after a failed write";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("takes no more writes after a failed one"), std::string::npos) << e.what();
  }
  store.reset();
  std::filesystem::remove(root_ / "disk" / "filler");
  store = Store::open(dir_);
  EXPECT_EQ(store->get(Family::PluginState, "noise"), noise);
}

}  // namespace
}  // namespace distill::store
