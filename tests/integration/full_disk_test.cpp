// Full disks under a real `distilld run` and a real daemon: the state
// folder, then the output folder, on a 1 MB tmpfs mounted by the test. The
// run must fail with a message naming the folder and the cause (exit 1,
// never an abort; the daemon's worker fails its pipeline), and once the
// filesystem is larger it must resume to output byte-identical to an
// uninterrupted run's.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <regex>
#include <thread>

#include "corpus.h"
#include "process.h"
#include "test_dir.h"
#include "tmpfs.h"

namespace {

using namespace distill::testing;

const std::string kPipeline = R"(name: disk
state_dir: state
engine: {checkpoint_every_records: 1000}
source: {plugin: jsonl, path: ../in.jsonl}
stages: [{plugin: minhash_dedupe}]
sinks: [{plugin: jsonl, dir: out, max_shard_bytes: 1000000}]
)";

class FullDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // ~6 MB in every import shape, OpenAI Batch output among them.
    write_corpus(dir_ / "in.jsonl", {12000, 300, 0.05, 0.01, true, 3});
    const Finished reference = distilld("run -q " + pipeline("reference"));
    ASSERT_EQ(reference.exit_code, 0) << reference.output;
  }

  std::string pipeline(const std::string& variant) {
    std::filesystem::create_directories(dir_ / variant);
    write_file(dir_ / variant / "p.yaml", kPipeline);
    return (dir_ / variant / "p.yaml").string();
  }
  Finished distilld(const std::string& args) { return run_command(std::string(std::getenv("DISTILLD_BIN")) + " " + args); }

  // Runs the pipeline with `folder` of it on a full 1 MB disk: it must fail
  // cleanly naming the folder and `cause`; then it resumes on a larger disk
  // and ends with the reference output.
  void fill_then_resume(const std::string& folder, const std::string& cause) {
    const std::string file = pipeline("full");
    std::string why;
    disk_ = Tmpfs::mount(dir_ / "full" / folder, "1m", why);
    if (!disk_) GTEST_SKIP() << why;

    const Finished failed = distilld("run -q " + file);
    EXPECT_EQ(failed.exit_code, 1) << failed.output;
    EXPECT_EQ(failed.output.find("Assertion"), std::string::npos) << failed.output;
    EXPECT_NE(failed.output.find((dir_ / "full" / folder).string()), std::string::npos) << failed.output;
    EXPECT_TRUE(std::regex_search(failed.output, std::regex(cause))) << failed.output;

    disk_->resize("64m");
    const Finished resumed = distilld("run -q " + file);
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    EXPECT_TRUE(read_dir(dir_ / "full" / "out") == read_dir(dir_ / "reference" / "out"));
  }

  TempDir dir_;
  std::unique_ptr<Tmpfs> disk_;  // after dir_: unmounted before the folder is removed
};

TEST_F(FullDiskTest, StateFolderFillsUp) {
  fill_then_resume("state", "is full: .* free, and distilld keeps .* free|No space left on device");
}

TEST_F(FullDiskTest, OutputFolderFillsUp) {
  fill_then_resume("out", "cannot (write|sync) output file .*: No space left on device");
}

TEST_F(FullDiskTest, ADaemonWorkerFailsItsPipelineAndTheDaemonCarriesOn) {
  const std::filesystem::path daemon_dir = dir_ / "daemon";
  struct Daemon {
    pid_t pid;
    ~Daemon() {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  } daemon{spawn({std::getenv("DISTILLD_BIN"), "serve", "--state", daemon_dir.string()}, (dir_ / "serve.log").string())};
  auto ctl = [&](const std::string& args) {
    return run_command(std::string(std::getenv("DISTILLCTL_BIN")) + " --state " + daemon_dir.string() + " " + args);
  };
  auto wait_for = [&](const std::string& state) {
    for (int i = 0; i < 1200; ++i) {
      if (ctl("list").output.find("disk\t" + state) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  for (int i = 0; i < 500 && ctl("health").exit_code != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(ctl("submit " + pipeline("full")).exit_code, 0);
  const std::filesystem::path state = daemon_dir / "pipelines" / "disk" / "state";
  std::string why;
  disk_ = Tmpfs::mount(state, "1m", why);
  if (!disk_) GTEST_SKIP() << why;

  ASSERT_EQ(ctl("start disk").exit_code, 0);
  EXPECT_TRUE(wait_for("failed")) << ctl("status disk").output;
  const Finished status = ctl("status disk");
  EXPECT_NE(status.output.find("the disk holding the state folder " + state.string() + " is full"), std::string::npos)
      << status.output;
  EXPECT_EQ(ctl("health").exit_code, 0);
  EXPECT_EQ(read_file(dir_ / "serve.log").find("Assertion"), std::string::npos) << read_file(dir_ / "serve.log");

  disk_->resize("64m");
  ASSERT_EQ(ctl("start disk").exit_code, 0);
  EXPECT_TRUE(wait_for("completed")) << ctl("status disk").output;
  EXPECT_TRUE(read_dir(dir_ / "full" / "out") == read_dir(dir_ / "reference" / "out"));
}

}  // namespace
