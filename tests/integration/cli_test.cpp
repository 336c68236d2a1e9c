// The distilld command line as a user meets it: validation messages with
// file:line:column, exit codes, run summaries, samples and plugin listings.
#include <gtest/gtest.h>

#include <signal.h>

#include <sstream>
#include <thread>

#include "corpus.h"
#include "process.h"
#include "test_dir.h"

namespace {

using namespace distill::testing;

class CliTest : public ::testing::Test {
 protected:
  Finished distilld(const std::string& args) { return run_command(std::string(std::getenv("DISTILLD_BIN")) + " " + args); }
  std::string write(const std::string& name, const std::string& content) {
    write_file(dir_ / name, content);
    return (dir_ / name).string();
  }
  // Starts `distilld run FILE`, SIGKILLs it once `distilld status` says it
  // runs, and returns that status.
  Finished kill_once_running(const std::string& file) {
    const pid_t pid = spawn({std::getenv("DISTILLD_BIN"), "run", "-q", file}, (dir_ / "log").string());
    Finished status;
    for (int i = 0; i < 200 && status.output.find("run 1: running") == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      status = distilld("status " + file);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return status;
  }
  TempDir dir_;
};

TEST_F(CliTest, ValidateReportsEveryErrorWithItsPosition) {
  write("in.jsonl", "{}\n");
  const std::string file = write("bad.yaml", R"(name: bad
engine: {threads: 0, batch_size: lots}
source:
  plugin: jsonl
  path: in.jsonl
  formt: auto
stages:
  - plugin: exact_dedup
sinks:
  - plugin: jsonl
)");
  const Finished out = distilld("validate " + file);
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_NE(out.output.find(file + ":2:19: engine.threads: value 0 is below the minimum 1"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find(file + ":2:34: engine.batch_size: expected an integer, got 'lots'"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find(file + ":6:10: source.formt: unknown key 'formt' (did you mean 'format'?)"), std::string::npos)
      << out.output;
  EXPECT_NE(out.output.find(file + ":8:13: stages[0].plugin: unknown plugin 'exact_dedup'; available stage plugins: exact_dedupe"),
            std::string::npos)
      << out.output;
  EXPECT_NE(out.output.find(file + ":10:5: sinks[0].dir: missing required key 'dir'"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("5 errors in " + file), std::string::npos) << out.output;
}

TEST_F(CliTest, MalformedYamlIsReportedAndNothingRuns) {
  const std::string file = write("broken.yaml", "name: x\nsource: {plugin: jsonl\nsinks: []\n");
  const Finished out = distilld("run " + file);
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_NE(out.output.find(file + ":3:"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("malformed YAML"), std::string::npos) << out.output;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "runs"));
}

TEST_F(CliTest, MissingInputFileIsAValidationError) {
  const std::string file = write("p.yaml", "name: p\nsource: {plugin: jsonl, path: nowhere.jsonl}\nsinks: [{plugin: jsonl, dir: out}]\n");
  const Finished out = distilld("validate " + file);
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_NE(out.output.find("source.path: input file " + (dir_ / "nowhere.jsonl").string() + " does not exist"),
            std::string::npos)
      << out.output;
}

TEST_F(CliTest, RunSummarySamplesAndStatus) {
  write("in.jsonl",
        R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "A"}]}
{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "a "}]}
not json at all
{"instruction": "b", "output": "B"}
)");
  const std::string file = write("p.yaml", R"(name: small
source: {plugin: jsonl, path: in.jsonl, terms: cc-by-4.0}
stages: [{plugin: exact_dedupe}]
sinks: [{plugin: jsonl, dir: out}]
)");
  const Finished run = distilld("run " + file);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("run 1 of pipeline 'small' completed"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("dropped malformed_json"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("dropped duplicate"), std::string::npos) << run.output;

  const Finished samples = distilld("samples " + file + " --reason duplicate");
  ASSERT_EQ(samples.exit_code, 0) << samples.output;
  EXPECT_NE(samples.output.find(R"({"step":"exact_dedupe","reason":"duplicate","record":)"), std::string::npos)
      << samples.output;
  EXPECT_NE(samples.output.find("duplicate_of"), std::string::npos) << samples.output;

  const std::string manifest = read_file(dir_ / "out" / "manifest.json");
  EXPECT_NE(manifest.find("\"cc-by-4.0\": 2"), std::string::npos) << manifest;

  const Finished status = distilld("status " + file);
  EXPECT_NE(status.output.find("run 1: completed"), std::string::npos) << status.output;
}

TEST_F(CliTest, AFullDiskFailsTheRunAndTheNextRunResumesToTheSameOutput) {
  write_corpus(dir_ / "in.jsonl", {8000, 400, 0.05, 0.01, true, 3});
  const std::string pipeline = "name: disk\nsource: {plugin: jsonl, path: ../in.jsonl}\n"
                               "engine: {checkpoint_every_records: 500}\n"
                               "stages: [{plugin: exact_dedupe}]\nsinks: [{plugin: jsonl, dir: out}]\n";
  std::filesystem::create_directories(dir_ / "full");
  std::filesystem::create_directories(dir_ / "reference");
  const std::string full = write("full/p.yaml", pipeline);
  const std::string reference = write("reference/p.yaml", pipeline);
  ASSERT_EQ(distilld("run -q " + reference).exit_code, 0);

  // A 1 MiB limit on file size stands in for a disk that fills up mid-run.
  const Finished failed =
      run_command("bash -c 'ulimit -f 1024; exec " + std::string(std::getenv("DISTILLD_BIN")) + " run -q " + full + "'");
  EXPECT_EQ(failed.exit_code, 1) << failed.output;
  EXPECT_NE(failed.output.find("run 1 of pipeline 'disk' failed"), std::string::npos) << failed.output;
  EXPECT_NE(failed.output.find("File too large"), std::string::npos) << failed.output;

  const Finished resumed = distilld("run -q " + full);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("(resumed from its checkpoint)"), std::string::npos) << resumed.output;
  EXPECT_TRUE(read_dir(dir_ / "full" / "out") == read_dir(dir_ / "reference" / "out"));
}

TEST_F(CliTest, StatusWorksWhileARunHoldsTheDatabase) {
  write_corpus(dir_ / "in.jsonl", {20000, 200, 0.0, 0.0, false, 5});
  const std::string file = write("p.yaml",
                                 "name: busy\nsource: {plugin: jsonl, path: in.jsonl}\n"
                                 "stages: [{plugin: test_stage, mode: slow, ms_per_batch: 20}]\n"
                                 "sinks: [{plugin: jsonl, dir: out}]\n");
  const Finished status = kill_once_running(file);
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_NE(status.output.find("run 1: running"), std::string::npos) << status.output;
}

TEST_F(CliTest, AChangedPipelineAfterKillIsRefusedWithTheDocumentedMessage) {
  write_corpus(dir_ / "in.jsonl", {20000, 200, 0.0, 0.0, false, 5});
  const std::string pipeline = "name: changed\nsource: {plugin: jsonl, path: in.jsonl}\n"
                               "engine: {checkpoint_every_records: 500}\n"
                               "stages: [{plugin: test_stage, mode: slow, ms_per_batch: 20}]\n"
                               "sinks: [{plugin: jsonl, dir: out}]\n";
  const std::string file = write("p.yaml", pipeline);
  const Finished status = kill_once_running(file);
  ASSERT_NE(status.output.find("run 1: running"), std::string::npos) << status.output;

  std::string changed = pipeline;
  changed.replace(changed.find("ms_per_batch: 20"), 16, "ms_per_batch: 1");
  write("p.yaml", changed);
  const Finished refused = distilld("run -q " + file);
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("error: pipeline 'changed' changed since its run 1 was interrupted"), std::string::npos)
      << refused.output;
  EXPECT_NE(refused.output.find("start run 2 with --new-run"), std::string::npos) << refused.output;
  EXPECT_EQ(refused.output.find("terminate called"), std::string::npos) << refused.output;
}

// The "billion laughs" shape: 9 strings, then 8 levels each listing the
// previous level 9 times (9^9 strings once expanded, in under 500 bytes).
TEST_F(CliTest, NestedAliasesAreRefusedWithoutExpandingThem) {
  std::string yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n";
  for (int level = 1; level <= 8; ++level) {
    const std::string previous = "*a" + std::to_string(level - 1);
    yaml += "a" + std::to_string(level) + ": &a" + std::to_string(level) + " [";
    for (int i = 0; i < 9; ++i) yaml += (i ? ", " : "") + previous;
    yaml += "]\n";
  }
  yaml += "name: bomb\nsource: {plugin: jsonl, path: *a8}\nsinks: [{plugin: jsonl, dir: out}]\n";
  const std::string file = write("bomb.yaml", yaml);
  // 1 GB of address space is far more than validation needs, and far less
  // than expanding takes. (AddressSanitizer reserves terabytes of address
  // space for its shadow memory, so its builds go without the limit.)
#if defined(__SANITIZE_ADDRESS__)
  const std::string limit;
#else
  const std::string limit = "ulimit -v 1000000; ";
#endif
  const Finished out =
      run_command("bash -c '" + limit + "exec " + std::string(std::getenv("DISTILLD_BIN")) + " validate " + file + "'");
  EXPECT_EQ(out.exit_code, 1) << out.output;
  EXPECT_NE(out.output.find(file + ": the pipeline expands to more than 100000 values"), std::string::npos)
      << out.output;
}

TEST_F(CliTest, AnOversizedPipelineFileIsRefused) {
  std::string yaml = "name: big\ndescription: \"" + std::string(1100000, 'x') + "\"\n";
  const std::string file = write("big.yaml", yaml);
  const Finished out = distilld("validate " + file);
  EXPECT_EQ(out.exit_code, 1) << out.output.substr(0, 500);
  EXPECT_NE(out.output.find(file + ": the pipeline file is larger than 1048576 bytes"), std::string::npos)
      << out.output.substr(0, 500);
}

TEST_F(CliTest, ReadmeShowsEveryBuiltInParameterAsDeclared) {
  const Finished out = run_command("env -u DISTILLD_PLUGIN_PATH " + std::string(std::getenv("DISTILLD_BIN")) + " plugins");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const std::string readme = read_file(std::filesystem::path(std::getenv("DISTILL_SOURCE_ROOT")) / "README.md");
  std::istringstream lines(out.output);
  int checked = 0;
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("    ")) continue;
    EXPECT_NE(readme.find(line), std::string::npos) << "README.md lacks the parameter line:\n" << line;
    ++checked;
  }
  EXPECT_GE(checked, 12);
}

TEST_F(CliTest, PluginsListsParameters) {
  const Finished out = distilld("plugins");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("exact_dedupe"), std::string::npos);
  EXPECT_NE(out.output.find("key (choice: prompt+response | response, default prompt+response)"), std::string::npos)
      << out.output;
  EXPECT_EQ(distilld("plugins --describe nope").exit_code, 1);
}

}  // namespace
