// Tests of the minhash_dedupe stage itself, loaded from its shared object
// and driven as the engine drives it (prepare, then process, batch by
// batch) with an in-memory state that buffers writes until a checkpoint:
// recall and precision on planted near-duplicates against their exact
// Jaccard, the verification modes, annotations, replay after a crash,
// index parameters that may not change, and parameter validation.
#include <gtest/gtest.h>

#include <distill/content_id.h>

#include <algorithm>
#include <map>

#include "planted_corpus.h"
#include "spec/pipeline_spec.h"
#include "test_dir.h"

namespace {

using namespace distill;
using distill::testing::Decision;
using distill::testing::PlantedRecord;
using distill::testing::TempDir;

// Key-value state with the engine's semantics: writes are readable at
// once and become durable at commit(); rollback() loses them (a crash).
class MemoryState : public KeyValue {
 public:
  std::optional<std::string> get(std::string_view key) override {
    if (auto it = pending_.find(key); it != pending_.end()) return it->second;
    if (auto it = committed_.find(key); it != committed_.end()) return it->second;
    return std::nullopt;
  }
  void put(std::string_view key, std::string_view value) override { pending_[std::string(key)] = std::string(value); }
  void erase(std::string_view key) override { pending_[std::string(key)] = std::nullopt; }
  void scan(std::string_view prefix,
            const std::function<bool(std::string_view, std::string_view)>& visit) override {
    std::map<std::string, std::string, std::less<>> merged = committed_;
    for (const auto& [key, value] : pending_)
      if (value) merged[key] = *value;
      else merged.erase(key);
    for (auto it = merged.lower_bound(std::string(prefix)); it != merged.end() && it->first.starts_with(prefix); ++it)
      if (!visit(it->first, it->second)) break;
  }
  void commit() {
    for (auto& [key, value] : pending_)
      if (value) committed_[key] = *value;
      else committed_.erase(key);
    pending_.clear();
  }
  void rollback() { pending_.clear(); }

 private:
  std::map<std::string, std::string, std::less<>> committed_;
  std::map<std::string, std::optional<std::string>, std::less<>> pending_;
};

class CollectingLogger : public Logger {
 public:
  void info(std::string_view m) override { lines.emplace_back(m); }
  void warn(std::string_view m) override { lines.emplace_back(m); }
  void error(std::string_view m) override { lines.emplace_back(m); }
  std::vector<std::string> lines;
};

class TestContext : public Context {
 public:
  TestContext(Params params, KeyValue& state, RunInfo info)
      : params_(std::move(params)), state_(state), info_(std::move(info)) {}
  const Params& params() const override { return params_; }
  KeyValue& state() override { return state_; }
  KeyValue& shared(std::string_view) override { throw std::logic_error("minhash_dedupe uses no shared state"); }
  Logger& log() override { return logger_; }
  std::atomic<std::int64_t>& counter(std::string_view name) override { return counters_[std::string(name)]; }
  void gauge(std::string_view, double) override {}
  void table(Table) override {}
  unsigned threads() const override { return 1; }
  void commit() override { throw std::logic_error("minhash_dedupe is a stage: it never commits"); }
  bool cancelled() const override { return false; }
  void progress(double, double, std::string_view) override {}
  const RunInfo& run() const override { return info_; }
  std::vector<StepStats> stats() const override { return {}; }

  std::int64_t count(const std::string& name) { return counters_[name].load(); }
  CollectingLogger logger_;

 private:
  Params params_;
  KeyValue& state_;
  RunInfo info_;
  std::map<std::string, std::atomic<std::int64_t>> counters_;
};

// One stage instance with its context (the stage keeps a reference to it).
struct Instance {
  std::unique_ptr<TestContext> ctx;
  std::unique_ptr<Stage> stage;
};

Record make_record(const PlantedRecord& p, std::int64_t offset) {
  Record r;
  r.prompt = {{"user", p.prompt}};
  r.response = p.response;
  r.provenance.uri = "planted.jsonl";
  r.provenance.offset = offset;
  r.id = content_id(r);
  return r;
}

std::vector<Record> make_records(const std::vector<PlantedRecord>& planted) {
  std::vector<Record> records;
  for (std::size_t i = 0; i < planted.size(); ++i) records.push_back(make_record(planted[i], 1000 * static_cast<std::int64_t>(i)));
  return records;
}

const std::string* text_annotation(const Slot& slot, const std::string& name) {
  auto it = slot.record.annotations.find(name);
  return it == slot.record.annotations.end() ? nullptr : std::get_if<std::string>(&it->second);
}

double number_annotation(const Slot& slot, const std::string& name) {
  auto it = slot.record.annotations.find(name);
  if (it == slot.record.annotations.end() || !std::holds_alternative<double>(it->second)) return -1;
  return std::get<double>(it->second);
}

// Decisions in the scorer's terms: a dropped record names the index of the kept record with that id.
std::vector<Decision> decisions(const std::vector<Slot>& slots) {
  std::map<std::string, std::size_t> kept;
  std::vector<Decision> out(slots.size());
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].live()) {
      kept.emplace(slots[i].record.id, i);
      continue;
    }
    out[i].dropped = true;
    out[i].jaccard = number_annotation(slots[i], "jaccard");
    if (const std::string* of = text_annotation(slots[i], "near_duplicate_of"))
      if (auto it = kept.find(*of); it != kept.end()) out[i].duplicate_of = it->second;
  }
  return out;
}

// Every record decided as in `expected`: kept or dropped, with the same annotations.
void expect_same_decisions(const std::vector<Slot>& actual, const std::vector<Slot>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(actual[i].live(), expected[i].live()) << "record " << i;
    EXPECT_EQ(actual[i].record.annotations, expected[i].record.annotations) << "record " << i;
  }
}

class MinhashStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.load_dir(std::getenv("DISTILL_PLUGIN_DIR"));
    ASSERT_TRUE(registry_.find("minhash_dedupe"));
    distill::testing::write_file(dir_ / "in.jsonl", "");
  }

  // Validates a pipeline with one minhash_dedupe block (e.g. "verify: none").
  spec::LoadResult load(const std::string& block) {
    distill::testing::write_file(dir_ / "pipeline.yaml",
                                 "name: t\nsource: {plugin: jsonl, path: in.jsonl}\nstages:\n"
                                 "  - {plugin: minhash_dedupe" + (block.empty() ? "" : ", " + block) + "}\n"
                                 "sinks: [{plugin: jsonl, dir: out}]\n");
    return spec::load_pipeline(dir_ / "pipeline.yaml", registry_);
  }

  Params params(const std::string& block) {
    spec::LoadResult loaded = load(block);
    for (const Diagnostic& d : loaded.diagnostics) ADD_FAILURE() << spec::format(d);
    if (!loaded.spec) throw std::runtime_error("invalid block: " + block);
    return loaded.spec->stages.at(0).params;
  }

  Instance make(const std::string& block, KeyValue& state, std::uint64_t run = 1, bool resumed = false) {
    Instance instance;
    instance.ctx = std::make_unique<TestContext>(params(block), state, RunInfo{"t", run, "minhash_dedupe", resumed});
    instance.stage = registry_.find("minhash_dedupe")->component(Kind::Stage)->make_stage(*instance.ctx);
    return instance;
  }

  // Runs records through prepare() and process() in batches, as the engine does.
  static std::vector<Slot> feed(Stage& stage, const std::vector<Record>& records, std::size_t batch_size = 64) {
    std::vector<Slot> out;
    for (std::size_t first = 0; first < records.size(); first += batch_size) {
      Batch batch;
      for (std::size_t i = first; i < std::min(records.size(), first + batch_size); ++i)
        batch.slots.push_back({records[i], "", ""});
      stage.prepare(batch);
      stage.process(batch);
      for (Slot& slot : batch.slots) out.push_back(std::move(slot));
    }
    return out;
  }

  TempDir dir_;
  plugins::Registry registry_;
};

std::vector<PlantedRecord> planted(std::size_t records, std::uint64_t seed) {
  return distill::testing::planted_corpus({records, 170, 0.4, 8, seed});
}

// A planted corpus run through a new stage, scored against the exact Jaccard.
struct Trial {
  std::unique_ptr<MemoryState> state = std::make_unique<MemoryState>();
  Instance mh;
  std::vector<Slot> slots;
  distill::testing::Score score;
};

class MinhashQualityTest : public MinhashStageTest {
 protected:
  Trial trial(const std::string& block, std::size_t records, std::uint64_t seed, double threshold = 0.8) {
    const auto corpus = planted(records, seed);
    Trial t;
    t.mh = make(block, *t.state);
    t.slots = feed(*t.mh.stage, make_records(corpus));
    t.score = distill::testing::score(corpus, decisions(t.slots), threshold);
    std::cout << block << " at " << threshold << ": " << t.score.true_duplicates << " true near-duplicates, recall "
              << t.score.recall() << ", precision " << t.score.precision() << " (" << t.score.dropped
              << " dropped), largest error of the reported Jaccard " << t.score.max_reported_error << "\n";
    return t;
  }
};

TEST_F(MinhashQualityTest, ExactVerificationHasHighRecallAndFullPrecision) {
  const Trial t = trial("text: response", 3000, 1);
  ASSERT_GT(t.score.true_duplicates, 400u);
  EXPECT_GE(t.score.recall(), 0.9);
  EXPECT_EQ(t.score.correct_drops, t.score.dropped);
  EXPECT_LT(t.score.max_reported_error, 0.005);
  EXPECT_GT(t.mh.ctx->count("below_threshold"), 0);  // LSH candidates that verification turned down
  EXPECT_GE(t.mh.ctx->count("candidates"), static_cast<std::int64_t>(t.score.dropped));
}

TEST_F(MinhashQualityTest, EstimatedVerificationIsCloseToExact) {
  const Trial t = trial("text: response, verify: estimate", 3000, 2);
  ASSERT_GT(t.score.true_duplicates, 400u);
  EXPECT_GE(t.score.recall(), 0.85);
  EXPECT_GE(t.score.precision(), 0.8);  // pairs just below 0.8 are now and then estimated above it
  EXPECT_LT(t.score.max_reported_error, 0.2);
}

TEST_F(MinhashQualityTest, WithoutVerificationASharedBandIsEnough) {
  const Trial t = trial("text: response, verify: none", 3000, 3);
  EXPECT_GE(t.score.recall(), 0.9);
  EXPECT_LT(t.score.precision(), 1.0);  // pairs below 0.8 share a band now and then
  EXPECT_EQ(t.mh.ctx->count("below_threshold"), 0);
  for (const Slot& slot : t.slots)
    if (!slot.live()) {
      EXPECT_GE(number_annotation(slot, "jaccard"), 0.0);
    }
}

TEST_F(MinhashQualityTest, BandingDerivedForALowerThresholdKeepsRecallThere) {
  const Trial t = trial("text: response, lsh_threshold: 0.6, threshold: 0.6", 2000, 4, 0.6);
  ASSERT_EQ(t.mh.ctx->logger_.lines.size(), 1u);
  EXPECT_EQ(t.mh.ctx->logger_.lines[0], "lsh_threshold 0.6: 17 bands x 4 rows");
  EXPECT_GE(t.score.recall(), 0.9);
  EXPECT_EQ(t.score.correct_drops, t.score.dropped);
}

TEST_F(MinhashStageTest, DroppedRecordsNameTheirHeadWithJaccardAndClusterSize) {
  const auto corpus = planted(1, 5);
  std::vector<PlantedRecord> family = {corpus[0], corpus[0], corpus[0]};
  family[1].response += " extra";                 // one word more: 5 new shingles of 171
  family[2].response = "lead " + family[2].response;  // one word more at the front
  MemoryState state;
  Instance mh = make("text: response", state);
  const auto slots = feed(*mh.stage, make_records(family));
  ASSERT_TRUE(slots[0].live());
  ASSERT_FALSE(slots[1].live());
  ASSERT_FALSE(slots[2].live());
  EXPECT_TRUE(slots[0].record.annotations.empty());
  for (std::size_t i : {1u, 2u}) {
    EXPECT_EQ(slots[i].drop_reason, "near_duplicate");
    ASSERT_TRUE(text_annotation(slots[i], "near_duplicate_of"));
    EXPECT_EQ(*text_annotation(slots[i], "near_duplicate_of"), slots[0].record.id);
    const double truth = distill::testing::jaccard(distill::testing::word_shingles(family[i].response),
                                                   distill::testing::word_shingles(family[0].response));
    EXPECT_NEAR(number_annotation(slots[i], "jaccard"), truth, 1e-4);
    EXPECT_EQ(number_annotation(slots[i], "cluster_size"), static_cast<double>(i + 1));
  }
}

TEST_F(MinhashStageTest, AnIdenticalRecordFromAnotherLineIsADuplicate) {
  const auto corpus = planted(2, 6);
  std::vector<Record> records = make_records({corpus[0], corpus[1], corpus[0]});
  ASSERT_EQ(records[0].id, records[2].id);
  MemoryState state;
  Instance mh = make("", state);
  const auto slots = feed(*mh.stage, records);
  EXPECT_TRUE(slots[0].live());
  EXPECT_TRUE(slots[1].live());
  ASSERT_FALSE(slots[2].live());
  EXPECT_EQ(number_annotation(slots[2], "jaccard"), 1.0);
}

TEST_F(MinhashStageTest, IdenticalAnswersOnOneLineAreDuplicates) {
  // A response line with n > 1 identical choices: same id, same offset, same process.
  const auto corpus = planted(1, 7);
  const Record r = make_record(corpus[0], 0);
  MemoryState state;
  Instance mh = make("", state);
  const auto slots = feed(*mh.stage, {r, r});
  EXPECT_TRUE(slots[0].live());
  EXPECT_FALSE(slots[1].live());
}

TEST_F(MinhashStageTest, ARecordThatFindsItsOwnEntryAfterACrashIsNotItsOwnDuplicate) {
  // The state was committed with the records, but the source position was
  // not: a resumed run replays them over an index that already holds them.
  const auto corpus = planted(600, 8);
  const auto records = make_records(corpus);
  MemoryState state;
  Instance first = make("text: response", state);
  const auto before = feed(*first.stage, records);
  state.commit();
  Instance resumed = make("text: response", state, 1, true);
  const auto replayed = feed(*resumed.stage, records);
  ASSERT_EQ(before.size(), replayed.size());
  std::size_t dropped = 0;
  for (std::size_t i = 0; i < before.size(); ++i) {
    // A dropped record may now name a later record of its cluster (the index holds more), but stays dropped.
    EXPECT_EQ(before[i].live(), replayed[i].live()) << "record " << i;
    dropped += !before[i].live();
  }
  EXPECT_GT(dropped, 50u);
}

TEST_F(MinhashStageTest, AReplayAfterACrashEndsAsAnUninterruptedRun) {
  const auto records = make_records(planted(900, 9));
  MemoryState straight_state;
  Instance straight = make("", straight_state);
  const auto expected = feed(*straight.stage, records);

  MemoryState state;
  const std::vector<Record> head(records.begin(), records.begin() + 400);
  const std::vector<Record> lost(records.begin() + 400, records.begin() + 650);
  const std::vector<Record> replay(records.begin() + 400, records.end());
  Instance first = make("", state);
  auto actual = feed(*first.stage, head);
  state.commit();  // checkpoint after record 400
  feed(*first.stage, lost);
  state.rollback();  // crash before the next checkpoint
  Instance resumed = make("", state, 1, true);
  for (Slot& slot : feed(*resumed.stage, replay)) actual.push_back(std::move(slot));
  expect_same_decisions(actual, expected);
}

// A second run over the records that `first` kept or dropped drops them all, the kept ones as duplicates of themselves.
void expect_a_rerun_drops_everything(const std::vector<Record>& records, const std::vector<Slot>& first,
                                     const std::vector<Slot>& second) {
  ASSERT_EQ(second.size(), records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    ASSERT_FALSE(second[i].live()) << "record " << i;
    if (first[i].live()) {
      EXPECT_EQ(*text_annotation(second[i], "near_duplicate_of"), records[i].id);
    }
  }
}

std::size_t keys_under(KeyValue& state, std::string_view prefix) {
  std::size_t keys = 0;
  state.scan(prefix, [&](std::string_view, std::string_view) { return ++keys, true; });
  return keys;
}

// The record numbers listed in the state's buckets ('b' keys) and in its
// in-memory records' band hashes ('h' keys), and the largest of the latter.
struct IndexedRecords {
  std::uint64_t in_memory = 0;
  std::uint64_t last_in_memory = 0;
  std::vector<std::uint64_t> in_buckets;
};

std::uint64_t big_endian(std::string_view bytes) {
  std::uint64_t value = 0;
  for (char c : bytes) value = (value << 8) | static_cast<unsigned char>(c);
  return value;
}

IndexedRecords indexed_records(KeyValue& state) {
  IndexedRecords out;
  state.scan("h", [&](std::string_view key, std::string_view hashes) {
    out.in_memory += hashes.size() / (8 * 14);
    out.last_in_memory = big_endian(key.substr(1)) + hashes.size() / (8 * 14) - 1;
    return true;
  });
  state.scan("b", [&](std::string_view, std::string_view bucket) {
    for (std::size_t at = 0; at + 8 <= bucket.size(); at += 8) {
      std::uint64_t record = 0;
      for (int i = 7; i >= 0; --i) record = (record << 8) | static_cast<unsigned char>(bucket[at + i]);
      out.in_buckets.push_back(record);
    }
    return true;
  });
  return out;
}

bool logged(const TestContext& ctx, std::string_view part) {
  for (const std::string& line : ctx.logger_.lines)
    if (line.find(part) != std::string::npos) return true;
  return false;
}

// index_mb 1 holds the buckets of 2,340 records at 14 bands; the buckets of later ones are keys of the state.
TEST_F(MinhashStageTest, RecordsBeyondTheInMemoryIndexAreIndexedInTheStateWithTheSameDecisions) {
  const auto records = make_records(planted(8000, 14));
  MemoryState in_memory_state;
  Instance in_memory = make("", in_memory_state);
  const auto expected = feed(*in_memory.stage, records);
  EXPECT_EQ(keys_under(in_memory_state, "b"), 0u);
  EXPECT_FALSE(logged(*in_memory.ctx, "takes no more records"));

  MemoryState state;
  Instance small = make("index_mb: 1", state);
  const auto actual = feed(*small.stage, records);
  EXPECT_GT(keys_under(state, "b"), 5000u);
  EXPECT_GT(keys_under(state, "h"), 0u);
  EXPECT_TRUE(logged(*small.ctx, "the in-memory index (index_mb 1) takes no more records after "));
  expect_same_decisions(actual, expected);
  EXPECT_GT(std::count_if(actual.begin(), actual.end(), [](const Slot& slot) { return !slot.live(); }), 1000);
}

// Restarts before, across and after the moment the in-memory index fills,
// one of them after a crash that loses a checkpoint's worth of records,
// with buckets full at max_bucket 2: the index each restart rebuilds is
// the one the uninterrupted run had, so every decision is the same.
TEST_F(MinhashStageTest, RestartsAroundAFullInMemoryIndexDecideAsAnUninterruptedRun) {
  const auto records = make_records(planted(8000, 16));
  const std::string block = "index_mb: 1, max_bucket: 2";
  MemoryState straight_state;
  Instance straight = make(block, straight_state);
  const auto expected = feed(*straight.stage, records);
  ASSERT_TRUE(logged(*straight.ctx, "takes no more records after "));

  auto part = [&](std::size_t from, std::size_t to) {
    return std::vector<Record>(records.begin() + static_cast<std::ptrdiff_t>(from),
                               records.begin() + static_cast<std::ptrdiff_t>(to));
  };
  MemoryState state;
  std::vector<Slot> actual;
  auto keep = [&](std::vector<Slot> slots) {
    for (Slot& slot : slots) actual.push_back(std::move(slot));
  };
  std::vector<Instance> instances;
  instances.push_back(make(block, state));
  keep(feed(*instances.back().stage, part(0, 2000)));
  state.commit();
  for (std::size_t at : {2000u, 3500u, 5000u}) {  // each instance reads the index the last one committed
    instances.push_back(make(block, state, 1, true));
    keep(feed(*instances.back().stage, part(at, at + 1500)));
    state.commit();
  }
  feed(*instances.back().stage, part(6500, 7200));
  state.rollback();  // a crash: records 6500 to 7200 are replayed
  instances.push_back(make(block, state, 1, true));
  keep(feed(*instances.back().stage, part(6500, 8000)));
  expect_same_decisions(actual, expected);
  // The records in memory are the first ones.
  const IndexedRecords indexed = indexed_records(state);
  ASSERT_GT(indexed.in_memory, 0u);
  ASSERT_FALSE(indexed.in_buckets.empty());
  EXPECT_EQ(indexed.last_in_memory + 1, indexed.in_memory);
  EXPECT_GT(*std::min_element(indexed.in_buckets.begin(), indexed.in_buckets.end()), indexed.last_in_memory);
}

TEST_F(MinhashStageTest, ASmallerIndexMbInALaterRunMovesRecordsToTheState) {
  const auto records = make_records(planted(6000, 15));
  MemoryState state;
  Instance run1 = make("", state, 1);
  const auto first = feed(*run1.stage, records);
  state.commit();
  const std::size_t groups = keys_under(state, "h");
  ASSERT_EQ(keys_under(state, "b"), 0u);

  Instance run2 = make("index_mb: 1", state, 2);
  EXPECT_TRUE(logged(*run2.ctx, "index_mb 1 holds fewer records than the last run indexed in memory"));
  EXPECT_LT(keys_under(state, "h"), groups);
  const IndexedRecords moved = indexed_records(state);  // the first records stay in memory, the others move
  ASSERT_FALSE(moved.in_buckets.empty());
  EXPECT_EQ(moved.last_in_memory + 1, moved.in_memory);
  EXPECT_EQ(*std::min_element(moved.in_buckets.begin(), moved.in_buckets.end()), moved.in_memory);
  const auto second = feed(*run2.stage, records);
  expect_a_rerun_drops_everything(records, first, second);
  state.commit();
  Instance run3 = make("index_mb: 1", state, 3);  // nothing more to move
  EXPECT_FALSE(logged(*run3.ctx, "holds fewer"));
  EXPECT_TRUE(logged(*run3.ctx, "this index keeps buckets in the state"));
  EXPECT_TRUE(logged(*run3.ctx, "records read in "));
}

TEST_F(MinhashStageTest, ANewRunOverTheSameInputDropsEverything) {
  const auto records = make_records(planted(300, 10));
  MemoryState state;
  Instance run1 = make("", state, 1);
  const auto first = feed(*run1.stage, records);
  state.commit();
  Instance run2 = make("", state, 2);
  const auto second = feed(*run2.stage, records);
  expect_a_rerun_drops_everything(records, first, second);
}

TEST_F(MinhashStageTest, ShortAndEmptyTexts) {
  Record empty;
  empty.id = "empty";
  Record empty_too = empty;
  empty_too.id = "empty-too";
  Record short_a;
  short_a.response = "Yes, it is.";
  short_a.id = "a";
  Record short_b = short_a;
  short_b.response = "yes,   IT is.";  // the same after normalisation
  short_b.id = "b";
  Record short_c = short_a;
  short_c.response = "No, it is not.";
  short_c.id = "c";
  MemoryState state;
  Instance mh = make("text: response", state);
  const auto slots = feed(*mh.stage, {empty, empty_too, short_a, short_b, short_c});
  EXPECT_TRUE(slots[0].live());
  EXPECT_TRUE(slots[1].live());  // no text: kept and not indexed
  EXPECT_EQ(mh.ctx->count("no_text"), 2);
  EXPECT_TRUE(slots[2].live());
  EXPECT_FALSE(slots[3].live());
  EXPECT_TRUE(slots[4].live());
}

TEST_F(MinhashStageTest, SystemMessagesAreNotCompared) {
  const auto corpus = planted(3, 12);
  auto chat = [](const std::string& system, const std::string& user, const std::string& answer, const std::string& id) {
    Record r;
    r.prompt = {{"system", system}, {"user", user}};
    r.response = answer;
    r.id = id;
    return r;
  };
  // A long shared system prompt would make these two unrelated answers look alike.
  const Record a = chat(corpus[0].response, "What is the capital of France?", "Paris is the capital of France.", "a");
  const Record b = chat(corpus[0].response, "Name a large planet.", "Jupiter is the largest planet.", "b");
  // The same question and answer under another system prompt is a duplicate.
  const Record c = chat(corpus[1].response, "What is the capital of France?", "Paris is the capital of France.", "c");
  MemoryState state;
  Instance mh = make("", state);
  const auto slots = feed(*mh.stage, {a, b, c});
  EXPECT_TRUE(slots[0].live());
  EXPECT_TRUE(slots[1].live());
  ASSERT_FALSE(slots[2].live());
  EXPECT_EQ(*text_annotation(slots[2], "near_duplicate_of"), "a");
}

TEST_F(MinhashStageTest, ParametersTheIndexDependsOnCannotChange) {
  MemoryState state;
  Instance run1 = make("seed: 1", state);
  feed(*run1.stage, make_records(planted(10, 11)));
  state.commit();
  EXPECT_NO_THROW(make("seed: 1, threshold: 0.9, max_bucket: 4, verify: exact", state, 2));
  try {
    make("seed: 2", state, 2);
    FAIL() << "a changed seed was accepted over an existing index";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "the index was built with seed=1, this run has seed=2: the index depends on them (give the stage a new "
              "id to start a new index)");
  }
  EXPECT_THROW(make("verify: estimate", state, 2), std::runtime_error);  // signatures cannot stand in for shingles
  EXPECT_THROW(make("normalize: [nfkc]", state, 2), std::runtime_error);
}

TEST_F(MinhashStageTest, ValidationNamesTheKeyAndLine) {
  auto message = [&](const std::string& block) {
    spec::LoadResult r = load(block);
    return r.diagnostics.empty() ? std::string() : spec::format(r.diagnostics[0]);
  };
  EXPECT_NE(message("bands: 20").find("pipeline.yaml:4:37: stages[0].bands: bands x rows = 20 x 8 = 160 exceeds hashes (112)"),
            std::string::npos)
      << message("bands: 20");
  EXPECT_NE(message("hashes: 64").find("stages[0].hashes: bands x rows = 14 x 8 = 112 exceeds hashes (64)"),
            std::string::npos)
      << message("hashes: 64");
  EXPECT_NE(message("lsh_threshold: 0.7, rows: 4").find("stages[0].lsh_threshold: set either lsh_threshold or bands"),
            std::string::npos);
  EXPECT_NE(message("verify: maybe").find("stages[0].verify"), std::string::npos);
  EXPECT_EQ(message("hashes: 128, bands: 16, rows: 8, shingles: char, shingle_size: 7"), "");
}

}  // namespace
