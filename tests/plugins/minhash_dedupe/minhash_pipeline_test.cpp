// minhash_dedupe in real pipelines (jsonl source -> minhash_dedupe -> jsonl
// sink, real RocksDB): the same output byte for byte at 1 and 2 threads,
// a second run deduped against the first, and a distilld process killed
// with SIGKILL several times that ends with an uninterrupted run's output.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <random>
#include <sstream>
#include <thread>

#include "engine/run.h"
#include "planted_corpus.h"
#include "process.h"
#include "spec/pipeline_spec.h"
#include "test_dir.h"

namespace {

using namespace distill;
using distill::testing::TempDir;
using nlohmann::json;

std::string pipeline_yaml(unsigned threads, const std::string& extra_stage = "") {
  return "name: mh\nstate_dir: state\n"
         "engine: {threads: " + std::to_string(threads) +
         ", batch_size: 64, max_inflight_batches: 8, checkpoint_every_records: 1000}\n"
         "source: {plugin: jsonl, path: ../corpus.jsonl}\n"
         "stages:\n"
         "  - {plugin: minhash_dedupe}\n" + extra_stage +
         "sinks:\n"
         "  - {plugin: jsonl, dir: out, max_shard_bytes: 1000000, rejects: all}\n";
}

// Every JSON line of the files in `dir` whose names start with `prefix`.
std::vector<json> lines_of(const std::filesystem::path& dir, const std::string& prefix) {
  std::vector<json> lines;
  for (const auto& [name, content] : distill::testing::read_dir(dir)) {
    if (!name.starts_with(prefix)) continue;
    std::istringstream in(content);
    for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  }
  return lines;
}

class MinhashPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.load_dir(std::getenv("DISTILL_PLUGIN_DIR"));
    ASSERT_TRUE(registry_.find("minhash_dedupe"));
    ASSERT_TRUE(registry_.find("jsonl"));
  }

  spec::PipelineSpec pipeline(const std::string& variant, unsigned threads) {
    std::filesystem::create_directories(dir_ / variant);
    distill::testing::write_file(dir_ / variant / "pipeline.yaml", pipeline_yaml(threads));
    spec::LoadResult result = spec::load_pipeline(dir_ / variant / "pipeline.yaml", registry_);
    for (const Diagnostic& d : result.diagnostics) ADD_FAILURE() << spec::format(d);
    return std::move(*result.spec);
  }

  store::RunStatus execute(const spec::PipelineSpec& spec, engine::RunOptions options = {}) {
    auto store = store::Store::open(spec.state_dir);
    engine::Run run(*store, spec, options);
    const store::RunStatus status = run.execute();
    EXPECT_EQ(run.snapshot().error, "");
    return status;
  }

  TempDir dir_;
  plugins::Registry registry_;
};

TEST_F(MinhashPipelineTest, SameOutputAtOneAndTwoThreads) {
  const auto corpus = distill::testing::planted_corpus({6000, 170, 0.4, 8, 21});
  distill::testing::write_planted_jsonl(dir_ / "corpus.jsonl", corpus);
  ASSERT_EQ(execute(pipeline("one", 1)), store::RunStatus::Completed);
  ASSERT_EQ(execute(pipeline("two", 2)), store::RunStatus::Completed);
  const auto one = distill::testing::read_dir(dir_ / "one" / "out");
  ASSERT_GT(one.size(), 4u);  // several shards, rejects, manifest
  EXPECT_TRUE(one == distill::testing::read_dir(dir_ / "two" / "out"));

  const auto rejects = lines_of(dir_ / "one" / "out", "rejects-");
  EXPECT_GT(rejects.size(), 800u);
  for (const json& r : rejects) {
    EXPECT_EQ(r.at("step"), "minhash_dedupe");
    EXPECT_EQ(r.at("reason"), "near_duplicate");
    const json& annotations = r.at("record").at("annotations");
    EXPECT_EQ(annotations.at("near_duplicate_of").get<std::string>().size(), 32u);
    EXPECT_GE(annotations.at("jaccard").get<double>(), 0.8);
    EXPECT_GE(annotations.at("cluster_size").get<double>(), 2.0);
  }
}

TEST_F(MinhashPipelineTest, ASecondRunIsDedupedAgainstTheFirst) {
  const auto first = distill::testing::planted_corpus({1500, 170, 0.2, 8, 22});
  const auto offsets = distill::testing::write_planted_jsonl(dir_ / "corpus.jsonl", first);
  const spec::PipelineSpec spec = pipeline("runs", 2);
  ASSERT_EQ(execute(spec), store::RunStatus::Completed);

  // Run 2's input: a one-word edit of each of 400 records kept by run 1, and 400 new records.
  std::map<std::int64_t, std::size_t> index_at;
  for (std::size_t i = 0; i < offsets.size(); ++i) index_at[offsets[i]] = i;
  std::vector<distill::testing::PlantedRecord> second;
  std::vector<std::string> originals;
  for (const json& kept : lines_of(dir_ / "runs" / "out", "part-r0001-")) {
    if (second.size() == 400) break;
    auto copy = first[index_at.at(kept.at("provenance").at("offset").get<std::int64_t>())];
    copy.response = "edited " + copy.response.substr(copy.response.find(' ') + 1);
    second.push_back(copy);
    originals.push_back(kept.at("id"));
  }
  ASSERT_EQ(second.size(), 400u);
  for (auto& fresh : distill::testing::planted_corpus({400, 170, 0.0, 0, 23})) second.push_back(fresh);
  const auto second_offsets = distill::testing::write_planted_jsonl(dir_ / "corpus.jsonl", second);
  ASSERT_EQ(execute(spec, {true}), store::RunStatus::Completed);

  const auto rejects = lines_of(dir_ / "runs" / "out", "rejects-r0002");
  ASSERT_EQ(rejects.size(), 400u);
  for (std::size_t i = 0; i < rejects.size(); ++i) {
    const json& record = rejects[i].at("record");
    EXPECT_EQ(record.at("provenance").at("offset").get<std::int64_t>(), second_offsets[i]);
    EXPECT_EQ(record.at("annotations").at("near_duplicate_of"), originals[i]);
  }
  EXPECT_EQ(lines_of(dir_ / "runs" / "out", "part-r0002-").size(), 400u);
}

int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(MinhashPipelineTest, SigkilledRunsEndWithTheOutputOfAnUninterruptedRun) {
  const auto corpus = distill::testing::planted_corpus({20000, 100, 0.4, 8, 24});
  distill::testing::write_planted_jsonl(dir_ / "corpus.jsonl", corpus);
  const std::string slow = "  - {plugin: test_stage, mode: slow, ms_per_batch: 5}\n";
  const std::string distilld = std::getenv("DISTILLD_BIN");
  const std::string log = (dir_ / "distilld.log").string();
  for (const std::string variant : {"reference", "killed"}) {
    std::filesystem::create_directories(dir_ / variant);
    distill::testing::write_file(dir_ / variant / "pipeline.yaml", pipeline_yaml(2, slow));
  }
  ASSERT_EQ(wait_for(distill::testing::spawn({distilld, "run", "-q", (dir_ / "reference" / "pipeline.yaml").string()}, log)), 0)
      << distill::testing::read_file(log);

  std::mt19937 rng(7);
  std::uniform_int_distribution<int> delay_ms(100, 700);
  int kills = 0;
  for (int attempt = 0; attempt < 20; ++attempt) {
    const pid_t pid = distill::testing::spawn({distilld, "run", "-q", (dir_ / "killed" / "pipeline.yaml").string()}, log);
    if (kills == 4) {
      ASSERT_EQ(wait_for(pid), 0) << distill::testing::read_file(log);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << distill::testing::read_file(log);
      break;
    }
    ::kill(pid, SIGKILL);
    wait_for(pid);
    ++kills;
  }
  EXPECT_GE(kills, 3) << "the run ended before it could be killed often enough";
  const auto expected = distill::testing::read_dir(dir_ / "reference" / "out");
  const auto actual = distill::testing::read_dir(dir_ / "killed" / "out");
  ASSERT_GT(expected.size(), 3u);
  EXPECT_EQ(expected.size(), actual.size());
  for (const auto& [name, content] : expected) {
    ASSERT_TRUE(actual.count(name)) << name << " is missing after kill/resume";
    EXPECT_TRUE(actual.at(name) == content) << name << " differs after kill/resume";
  }
  EXPECT_GT(lines_of(dir_ / "killed" / "out", "rejects-").size(), 2000u);
}

}  // namespace
