// Damaged stores and outputs under a real `distilld run`: a truncated or
// bit-flipped RocksDB file (MANIFEST, table file, WAL), a missing MANIFEST
// or CURRENT, a truncated output shard. Each is found at start and reported with what to do, the
// run exits 1, and no file of the damaged folder changes.
#include <gtest/gtest.h>

#include <signal.h>

#include <fstream>
#include <thread>

#include "corpus.h"
#include "process.h"
#include "test_dir.h"

namespace {

using namespace distill::testing;
namespace fs = std::filesystem;

Finished distilld(const std::string& args) { return run_command(std::string(std::getenv("DISTILLD_BIN")) + " " + args); }

// The largest file of `dir` whose name starts with `prefix` and ends with `suffix`.
fs::path largest(const fs::path& dir, const std::string& prefix, const std::string& suffix) {
  fs::path found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(prefix) && name.ends_with(suffix) &&
        (found.empty() || entry.file_size() > fs::file_size(found)))
      found = entry.path();
  }
  return found;
}

void flip_byte(const fs::path& file, std::uintmax_t offset) {
  std::fstream out(file, std::ios::in | std::ios::out | std::ios::binary);
  out.seekg(static_cast<std::streamoff>(offset));
  const char byte = static_cast<char>(out.peek() ^ 0x20);
  out.seekp(static_cast<std::streamoff>(offset));
  out.put(byte);
}

class StoreDamageTest : public ::testing::Test {
 protected:
  // A completed minhash run, then a second `distilld run`, which finds the
  // run completed; its opening moves RocksDB's log into table files.
  void SetUp() override {
    write_corpus(dir_ / "in.jsonl", {6000, 300, 0.05, 0.01, true, 5});
    write_file(dir_ / "p.yaml", "name: damage\nstate_dir: state\nengine: {checkpoint_every_records: 1000}\n"
                                "source: {plugin: jsonl, path: in.jsonl}\nstages: [{plugin: minhash_dedupe}]\n"
                                "sinks: [{plugin: jsonl, dir: out}]\n");
    ASSERT_EQ(distilld("run -q " + pipeline()).exit_code, 0);
    ASSERT_EQ(distilld("run -q " + pipeline()).exit_code, 0);
  }

  std::string pipeline() const { return (dir_ / "p.yaml").string(); }
  fs::path state() const { return dir_ / "state"; }

  // `distilld run --new-run` must refuse with `reason`, changing nothing.
  void expect_refused(const std::string& reason) {
    const auto state_before = read_dir(state());
    const auto out_before = read_dir(dir_ / "out");
    const Finished run = distilld("run -q --new-run " + pipeline());
    EXPECT_EQ(run.exit_code, 1) << run.output;
    EXPECT_NE(run.output.find("error: the state database in " + state().string() + " is damaged ("), std::string::npos)
        << run.output;
    EXPECT_NE(run.output.find(reason), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("): restore the folder from a backup, or delete it to start the pipeline over; "
                              "nothing was changed"),
              std::string::npos)
        << run.output;
    EXPECT_TRUE(read_dir(state()) == state_before) << "the damaged store changed";
    EXPECT_TRUE(read_dir(dir_ / "out") == out_before) << "the output changed";
  }

  TempDir dir_;
};

// The case: RocksDB opened it, and run 2 kept every record again.
TEST_F(StoreDamageTest, ATruncatedManifest) {
  const fs::path manifest = largest(state(), "MANIFEST-", "");
  fs::resize_file(manifest, fs::file_size(manifest) / 2);
  expect_refused("column family");
}

TEST_F(StoreDamageTest, ABitFlipInAManifest) {
  const fs::path manifest = largest(state(), "MANIFEST-", "");
  flip_byte(manifest, fs::file_size(manifest) / 2);
  expect_refused("Corruption");
}

TEST_F(StoreDamageTest, AMissingManifest) {
  fs::remove(largest(state(), "MANIFEST-", ""));
  expect_refused("MANIFEST-");
}

TEST_F(StoreDamageTest, AMissingCurrentFile) {
  fs::remove(state() / "CURRENT");
  expect_refused("its CURRENT file is missing");
}

TEST_F(StoreDamageTest, ABitFlipInATableFile) {
  const fs::path table = largest(state(), "", ".sst");
  ASSERT_FALSE(table.empty());
  flip_byte(table, fs::file_size(table) / 3);
  expect_refused("Corruption");
}

TEST_F(StoreDamageTest, ATruncatedTableFile) {
  const fs::path table = largest(state(), "", ".sst");
  ASSERT_FALSE(table.empty());
  fs::resize_file(table, fs::file_size(table) / 2);
  expect_refused("Corruption");
}

// The reproduction as it was: one completed run, its MANIFEST cut
// in half, then --new-run (which kept again every record run 1 kept).
TEST(ManifestDamage, ATruncatedManifestAfterOneRun) {
  TempDir dir;
  write_corpus(dir / "in.jsonl", {6000, 300, 0.05, 0.01, true, 5});
  write_file(dir / "p.yaml", "name: one\nengine: {checkpoint_every_records: 1000}\n"
                             "source: {plugin: jsonl, path: in.jsonl}\nstages: [{plugin: minhash_dedupe}]\n"
                             "sinks: [{plugin: jsonl, dir: out}]\n");
  ASSERT_EQ(distilld("run -q " + (dir / "p.yaml").string()).exit_code, 0);
  const fs::path state = dir / "runs" / "one" / "state";
  const fs::path manifest = largest(state, "MANIFEST-", "");
  fs::resize_file(manifest, fs::file_size(manifest) / 2);
  const auto before = read_dir(state);
  const Finished run = distilld("run -q --new-run " + (dir / "p.yaml").string());
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("error: the state database in " + state.string() + " is damaged (column family "),
            std::string::npos)
      << run.output;
  EXPECT_TRUE(read_dir(state) == before) << "the damaged store changed";
  EXPECT_FALSE(fs::exists(dir / "out" / "part-r0002-00000.jsonl")) << "run 2 ran on the damaged store";
}

// After a single run the checkpoints are still in the WAL.
TEST(WalDamage, ABitFlipInTheMiddleOfTheWal) {
  TempDir dir;
  write_corpus(dir / "in.jsonl", {6000, 300, 0.05, 0.01, true, 5});
  write_file(dir / "p.yaml", "name: wal\nengine: {checkpoint_every_records: 1000}\n"
                             "source: {plugin: jsonl, path: in.jsonl}\nstages: [{plugin: minhash_dedupe}]\n"
                             "sinks: [{plugin: jsonl, dir: out}]\n");
  ASSERT_EQ(distilld("run -q " + (dir / "p.yaml").string()).exit_code, 0);
  const fs::path state = dir / "runs" / "wal" / "state";
  const fs::path wal = largest(state, "", ".log");
  ASSERT_FALSE(wal.empty());
  flip_byte(wal, fs::file_size(wal) / 2);
  const auto before = read_dir(state);
  const Finished run = distilld("run -q --new-run " + (dir / "p.yaml").string());
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("error: the state database in " + state.string() + " is damaged (Corruption: checksum mismatch)"),
            std::string::npos)
      << run.output;
  EXPECT_TRUE(read_dir(state) == before) << "the damaged store changed";
}

// A run stopped (SIGTERM) after some checkpoints, whose committed shard is
// then cut short: resuming would write after the hole.
TEST(OutputDamage, ATruncatedOutputShardIsFoundWhenTheRunResumes) {
  TempDir dir;
  write_corpus(dir / "in.jsonl", {20000, 200, 0.0, 0.0, false, 5});
  write_file(dir / "p.yaml", "name: shard\nsource: {plugin: jsonl, path: in.jsonl}\n"
                             "engine: {checkpoint_every_records: 500}\n"
                             "stages: [{plugin: test_stage, mode: slow, ms_per_batch: 20}]\n"
                             "sinks: [{plugin: jsonl, dir: out}]\n");
  const fs::path shard = dir / "out" / "part-r0001-00000.jsonl";
  const pid_t pid = spawn({std::getenv("DISTILLD_BIN"), "run", "-q", (dir / "p.yaml").string()}, (dir / "log").string());
  for (int i = 0; i < 500; ++i) {
    std::error_code ec;
    if (fs::file_size(shard, ec) > 0 && !ec) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 130) << read_file(dir / "log");
  const std::uintmax_t committed = fs::file_size(shard);
  ASSERT_GT(committed, 0u);

  fs::resize_file(shard, committed / 2);
  const auto before = read_dir(dir / "out");
  const Finished run = distilld("run -q " + (dir / "p.yaml").string());
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("the output in " + (dir / "out").string() + " is damaged (part-r0001-00000.jsonl is " +
                            std::to_string(committed / 2) + " bytes, shorter than the " + std::to_string(committed) +
                            " bytes committed at the last checkpoint): restore the folder from a backup, or delete "
                            "it and the state folder to start the pipeline over; no file was changed"),
            std::string::npos)
      << run.output;
  EXPECT_TRUE(read_dir(dir / "out") == before) << "the damaged output changed";
}

}  // namespace
