// Crash safety of a real `distilld run` process: SIGKILL it at several
// random moments, restart it each time, and compare the final output with
// an uninterrupted run's, byte for byte (nothing lost, nothing twice).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>

#include <chrono>
#include <random>
#include <thread>

#include "corpus.h"
#include "process.h"
#include "test_dir.h"

namespace {

using namespace distill::testing;

const std::string kPipeline = R"(name: crash-test
state_dir: state
engine: {threads: 2, batch_size: 128, max_inflight_batches: 8, checkpoint_every_records: 2000}
source: {plugin: jsonl, path: ../corpus.jsonl, terms: test-terms}
stages:
  - {plugin: exact_dedupe}
  - {plugin: test_stage, mode: slow, ms_per_batch: 2}
sinks:
  - {plugin: jsonl, dir: out, max_shard_bytes: 1000000, rejects: all}
)";

std::string distilld() { return std::getenv("DISTILLD_BIN"); }

std::filesystem::path write_pipeline(const TempDir& dir, const std::string& variant) {
  std::filesystem::create_directories(dir / variant);
  write_file(dir / variant / "pipeline.yaml", kPipeline);
  return dir / variant / "pipeline.yaml";
}

int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// True when the process is still running after `delay`.
bool still_running_after(pid_t pid, std::chrono::milliseconds delay, int& exit_code) {
  const auto until = std::chrono::steady_clock::now() + delay;
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

TEST(KillResume, OutputAfterRepeatedSigkillMatchesAnUninterruptedRun) {
  TempDir dir;
  write_corpus(dir / "corpus.jsonl", {60000, 200, 0.05, 0.01, true, 11});
  const std::string log = (dir / "distilld.log").string();

  const auto reference = write_pipeline(dir, "reference");
  ASSERT_EQ(wait_for(spawn({distilld(), "run", "-q", reference.string()}, log)), 0) << read_file(log);

  const auto killed = write_pipeline(dir, "killed");
  std::mt19937 rng(2026);
  std::uniform_int_distribution<int> delay_ms(30, 600);
  int kills = 0;
  int exit_code = -1;
  bool completed = false;
  for (int attempt = 0; attempt < 40 && !completed; ++attempt) {
    const pid_t pid = spawn({distilld(), "run", "-q", killed.string()}, log);
    if (kills < 6 && still_running_after(pid, std::chrono::milliseconds(delay_ms(rng)), exit_code)) {
      ::kill(pid, SIGKILL);
      wait_for(pid);
      ++kills;
      continue;
    }
    if (kills >= 6) exit_code = wait_for(pid);
    ASSERT_EQ(exit_code, 0) << read_file(log);
    completed = true;
  }
  ASSERT_TRUE(completed);
  EXPECT_GE(kills, 3) << "the run ended before it could be killed often enough";

  const auto expected = read_dir(dir / "reference" / "out");
  const auto actual = read_dir(dir / "killed" / "out");
  ASSERT_GT(expected.size(), 5u);
  EXPECT_EQ(expected.size(), actual.size());
  for (const auto& [name, content] : expected) {
    ASSERT_TRUE(actual.count(name)) << name << " is missing after kill/resume";
    EXPECT_TRUE(actual.at(name) == content) << name << " differs after kill/resume";
  }

  const Finished status = run_command(distilld() + " status " + killed.string());
  EXPECT_EQ(status.exit_code, 0);
  EXPECT_NE(status.output.find("run 1: completed"), std::string::npos) << status.output;
}

}  // namespace
