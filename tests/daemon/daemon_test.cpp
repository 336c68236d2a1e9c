// The daemon as its users meet it: a real `distilld serve` in a temporary
// state folder, driven by the real distillctl over the real UNIX socket;
// SIGKILL and SIGTERM of the daemon, a plugin that segfaults, another user,
// hostile bytes on the socket, TCP with its token, and the metrics
// endpoint.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <thread>

#include "corpus.h"
#include "process.h"
#include "rpc/wire.h"
#include "teacher_server.h"
#include "test_dir.h"

namespace {

using namespace distill::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A pipeline over ../corpus.jsonl whose test_stage sleeps `ms_per_batch`.
std::string pipeline_yaml(const std::string& name, int ms_per_batch, const std::string& mode = "slow") {
  return "name: " + name +
         "\n"
         "engine: {threads: 2, batch_size: 128, max_inflight_batches: 8, checkpoint_every_records: 2000}\n"
         "source: {plugin: jsonl, path: ../corpus.jsonl, terms: test-terms}\n"
         "stages:\n"
         "  - {plugin: exact_dedupe}\n"
         "  - {plugin: test_stage, mode: " + mode + ", ms_per_batch: " + std::to_string(ms_per_batch) + "}\n"
         "sinks:\n"
         "  - {plugin: jsonl, dir: out, max_shard_bytes: 1000000, rejects: all}\n";
}

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::permissions(dir_.path(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    write_corpus(dir_ / "corpus.jsonl", {30000, 200, 0.05, 0.01, true, 21});
  }
  void TearDown() override {
    if (daemon_ > 0) {
      ::kill(daemon_, SIGKILL);
      ::waitpid(daemon_, nullptr, 0);
    }
  }

  fs::path state() const { return dir_ / "state"; }
  std::string log_file() const { return (dir_ / "serve.log").string(); }

  void start_daemon(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {env("DISTILLD_BIN"), "serve", "--state", state().string(), "--grace-s", "10"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    daemon_ = spawn(argv, log_file());
    for (int i = 0; i < 500; ++i) {
      if (ctl("health").exit_code == 0) return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "the daemon did not answer:\n" << read_file(log_file());
  }
  // Returns the daemon's exit code (-1 when a signal ended it).
  int wait_daemon() {
    int status = 0;
    ::waitpid(daemon_, &status, 0);
    daemon_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  void kill_daemon(int signal) { ::kill(daemon_, signal); }

  Finished ctl(const std::string& args) {
    return run_command(env("DISTILLCTL_BIN") + " --state " + state().string() + " " + args);
  }
  std::string write_pipeline(const std::string& folder, const std::string& yaml) {
    fs::create_directories(dir_ / folder);
    write_file(dir_ / folder / "pipeline.yaml", yaml);
    return (dir_ / folder / "pipeline.yaml").string();
  }
  // The pipeline's state as `distillctl list` shows it.
  std::string state_of(const std::string& name) {
    const Finished out = ctl("list");
    std::smatch match;
    if (std::regex_search(out.output, match, std::regex("(^|\\n)" + name + "\\t([a-z]+)"))) return match[2];
    return "(not listed: " + out.output + ")";
  }
  bool wait_for_state(const std::string& name, const std::string& wanted, std::chrono::seconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (state_of(name) == wanted) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  std::int64_t records_read(const std::string& name) {
    const Finished out = ctl("-o json status " + name);
    std::smatch match;
    if (std::regex_search(out.output, match, std::regex("\"records_read\": ([0-9]+)"))) return std::stoll(match[1]);
    return -1;
  }
  // The output of `distilld run` on the same pipeline in another folder.
  std::map<std::string, std::string> reference_output(const std::string& yaml) {
    const std::string file = write_pipeline("reference", yaml);
    const Finished run = run_command(env("DISTILLD_BIN") + " run -q " + file);
    EXPECT_EQ(run.exit_code, 0) << run.output;
    return read_dir(dir_ / "reference" / "out");
  }

  TempDir dir_;
  pid_t daemon_ = -1;
};

TEST_F(DaemonTest, FullLifecycle) {
  EXPECT_EQ(ctl("health").exit_code, 3);
  const Finished absent = ctl("list");
  EXPECT_EQ(absent.exit_code, 3);
  EXPECT_NE(absent.output.find("no daemon at " + (state() / "control.sock").string() +
                               ": start it with `distilld serve --state " + state().string() + "`"),
            std::string::npos)
      << absent.output;

  start_daemon();
  struct stat socket_stat {};
  ASSERT_EQ(::stat((state() / "control.sock").c_str(), &socket_stat), 0);
  EXPECT_EQ(socket_stat.st_mode & 0777, 0600u);

  const std::string file = write_pipeline("life", pipeline_yaml("life", 20));
  const std::string bad = write_pipeline("bad", "name: bad\nsource: {plugin: jsonl}\nsinks: [{plugin: nope}]\n");
  const Finished invalid = ctl("validate " + bad);
  EXPECT_EQ(invalid.exit_code, 5);
  EXPECT_NE(invalid.output.find(bad + ":2:9: source.path: missing required key 'path'"), std::string::npos)
      << invalid.output;
  EXPECT_NE(invalid.output.find("unknown plugin 'nope'"), std::string::npos) << invalid.output;
  EXPECT_EQ(ctl("validate " + file).exit_code, 0);

  Finished submitted = ctl("submit " + file);
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  EXPECT_NE(submitted.output.find("life: revision 1 stored"), std::string::npos) << submitted.output;
  EXPECT_NE(ctl("submit " + file).output.find("unchanged (revision 1)"), std::string::npos);
  EXPECT_EQ(state_of("life"), "submitted");

  ASSERT_EQ(ctl("start life").exit_code, 0);
  ASSERT_TRUE(wait_for_state("life", "running", 10s));
  while (records_read("life") < 2000) std::this_thread::sleep_for(20ms);

  const Finished refused_delete = ctl("delete life");
  EXPECT_EQ(refused_delete.exit_code, 1);
  EXPECT_NE(refused_delete.output.find("stop it first (distillctl stop life), then delete it"), std::string::npos)
      << refused_delete.output;
  const Finished changed = ctl("submit " + write_pipeline("life", pipeline_yaml("life", 21)));
  EXPECT_EQ(changed.exit_code, 1);
  EXPECT_NE(changed.output.find("submit with --force"), std::string::npos) << changed.output;
  write_pipeline("life", pipeline_yaml("life", 20));

  ASSERT_EQ(ctl("pause life").exit_code, 0);
  ASSERT_TRUE(wait_for_state("life", "paused", 20s)) << ctl("status life").output;
  const std::int64_t at_pause = records_read("life");
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(records_read("life"), at_pause) << "a paused pipeline must not read";
  EXPECT_EQ(ctl("pause life").exit_code, 1);

  ASSERT_EQ(ctl("resume life").exit_code, 0);
  const Finished watched = ctl("status life --watch --interval 0.2");
  EXPECT_EQ(watched.exit_code, 0) << watched.output;
  EXPECT_EQ(watched.output.find(" 0.0 MB/s"), std::string::npos) << "the source's bytes must reach the client";
  EXPECT_NE(watched.output.find(" ETA "), std::string::npos) << watched.output;
  EXPECT_EQ(state_of("life"), "completed");
  const Finished status = ctl("status life");
  EXPECT_NE(status.output.find("run 1 of pipeline 'life' completed (resumed from its checkpoint)"), std::string::npos)
      << status.output;
  EXPECT_NE(status.output.find("dropped duplicate"), std::string::npos) << status.output;

  const Finished samples = ctl("samples life --reason duplicate --limit 2");
  ASSERT_EQ(samples.exit_code, 0) << samples.output;
  EXPECT_EQ(std::count(samples.output.begin(), samples.output.end(), '\n'), 2) << samples.output;
  EXPECT_NE(samples.output.find(R"({"step":"exact_dedupe","reason":"duplicate","record":)"), std::string::npos)
      << samples.output;
  EXPECT_NE(samples.output.find(R"("terms":"test-terms")"), std::string::npos) << samples.output;

  const Finished log = ctl("log life");
  EXPECT_NE(log.output.find("pausing at the next checkpoint"), std::string::npos) << log.output;
  EXPECT_NE(log.output.find("[test_stage]: mode slow"), std::string::npos) << log.output;
  EXPECT_NE(log.output.find("run 1 completed"), std::string::npos) << log.output;

  EXPECT_EQ(read_dir(dir_ / "life" / "out"), reference_output(pipeline_yaml("life", 20)));

  const Finished again = ctl("start life");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.output.find("start the next run with `distillctl start life --new-run`"), std::string::npos)
      << again.output;

  const Finished plugins = ctl("plugins --describe exact_dedupe");
  EXPECT_NE(plugins.output.find("key (choice: prompt+response | response, default prompt+response)"), std::string::npos)
      << plugins.output;
  EXPECT_EQ(ctl("plugins --describe nope").exit_code, 4);
  const Finished health = ctl("-o json health");
  EXPECT_NE(health.output.find("\"api_version\": 3"), std::string::npos) << health.output;
  EXPECT_NE(health.output.find("\"completed\": 1"), std::string::npos) << health.output;

  ASSERT_EQ(ctl("delete life").exit_code, 0);
  EXPECT_EQ(ctl("status life").exit_code, 4);
  EXPECT_FALSE(fs::exists(state() / "pipelines" / "life"));
}

TEST_F(DaemonTest, AfterSigkillARestartedDaemonContinuesTheRunToTheSameOutput) {
  const std::string yaml = pipeline_yaml("crashy", 10);
  start_daemon();
  ASSERT_EQ(ctl("submit " + write_pipeline("crashy", yaml)).exit_code, 0);
  ASSERT_EQ(ctl("start crashy").exit_code, 0);
  while (records_read("crashy") < 6000) std::this_thread::sleep_for(20ms);
  kill_daemon(SIGKILL);
  EXPECT_EQ(wait_daemon(), -1);

  start_daemon();
  EXPECT_EQ(state_of("crashy"), "running") << "the restarted daemon must continue the run by itself";
  ASSERT_TRUE(wait_for_state("crashy", "completed", 120s)) << ctl("status crashy").output;
  const Finished status = ctl("status crashy");
  EXPECT_NE(status.output.find("(resumed from its checkpoint)"), std::string::npos) << status.output;
  const auto actual = read_dir(dir_ / "crashy" / "out");
  const auto expected = reference_output(yaml);
  ASSERT_GT(expected.size(), 3u);
  EXPECT_EQ(actual.size(), expected.size());
  for (const auto& [name, content] : expected) {
    ASSERT_TRUE(actual.count(name)) << name << " is missing";
    EXPECT_TRUE(actual.at(name) == content) << name << " differs from an uninterrupted run's";
  }
}

TEST_F(DaemonTest, ASegfaultingPluginFailsOnlyItsPipeline) {
  start_daemon({"--max-crashes", "2"});
  ASSERT_EQ(ctl("submit " + write_pipeline("crasher", pipeline_yaml("crasher", 0, "crash"))).exit_code, 0);
  ASSERT_EQ(ctl("submit " + write_pipeline("steady", pipeline_yaml("steady", 2))).exit_code, 0);
  ASSERT_EQ(ctl("start crasher").exit_code, 0);
  ASSERT_EQ(ctl("start steady").exit_code, 0);
  ASSERT_TRUE(wait_for_state("crasher", "failed", 60s)) << ctl("status crasher").output;
  const Finished status = ctl("status crasher");
  EXPECT_NE(status.output.find("the worker crashed: signal 11"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("crashed 2 times in a row, so it is not restarted"), std::string::npos)
      << status.output;
  EXPECT_EQ(ctl("health").exit_code, 0);
  ASSERT_TRUE(wait_for_state("steady", "completed", 120s)) << ctl("status steady").output;
  EXPECT_EQ(read_dir(dir_ / "steady" / "out"), reference_output(pipeline_yaml("steady", 2)));
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(state_of("crasher"), "failed") << "a pipeline that gave up must not be restarted";
}

TEST_F(DaemonTest, AnotherUserCannotConnect) {
  start_daemon();
  // Open the folders, so that only the socket's own mode keeps `nobody` out.
  fs::permissions(state(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  const Finished as_nobody = run_command("setpriv --reuid=nobody --regid=nogroup --clear-groups " +
                                         env("DISTILLCTL_BIN") + " --state " + state().string() + " health");
  EXPECT_EQ(as_nobody.exit_code, 3) << as_nobody.output;
  EXPECT_NE(as_nobody.output.find("Permission denied"), std::string::npos) << as_nobody.output;
  EXPECT_EQ(ctl("health").exit_code, 0);
}

int connect_raw(const fs::path& socket_path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof address.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::int64_t rss_kb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

TEST_F(DaemonTest, HostileBytesDoNotHarmTheDaemon) {
  start_daemon();
  const fs::path socket = state() / "control.sock";
  const std::int64_t rss_before = rss_kb(daemon_);

  // Half a frame, left open: it must block nobody else.
  const int half = connect_raw(socket);
  ASSERT_GE(half, 0);
  const unsigned char half_frame[] = {0, 0, 1, 0, 0x80, 0x01, 0x00};
  ASSERT_EQ(::send(half, half_frame, sizeof half_frame, MSG_NOSIGNAL), static_cast<ssize_t>(sizeof half_frame));
  EXPECT_EQ(ctl("health").exit_code, 0);

  // A frame that announces 2 GB, and one that announces 64 MB and sends it.
  for (const std::uint32_t size : {0x7fffffffu, 64u << 20}) {
    const int fd = connect_raw(socket);
    ASSERT_GE(fd, 0);
    const unsigned char header[] = {static_cast<unsigned char>(size >> 24), static_cast<unsigned char>(size >> 16),
                                    static_cast<unsigned char>(size >> 8), static_cast<unsigned char>(size)};
    ::send(fd, header, sizeof header, MSG_NOSIGNAL);
    const std::string body(1 << 20, 'x');
    for (int i = 0; i < 64 && ::send(fd, body.data(), body.size(), MSG_NOSIGNAL) > 0; ++i) {
    }
    ::close(fd);
  }
  // Random bytes, many times.
  std::mt19937 rng(7);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int fd = connect_raw(socket);
    ASSERT_GE(fd, 0);
    std::string bytes(1 + rng() % 4096, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    ::close(fd);
  }
  EXPECT_EQ(ctl("health").exit_code, 0) << read_file(log_file());
  EXPECT_EQ(::kill(daemon_, 0), 0) << "the daemon died";
  EXPECT_LT(rss_kb(daemon_) - rss_before, 64 * 1024) << "the daemon kept what hostile frames announced";
  ::close(half);
  EXPECT_EQ(ctl("health").exit_code, 0);
}

TEST_F(DaemonTest, SigtermStopsWithinTheGracePeriodAndTheRunResumesAtNextStart) {
  const std::string yaml = pipeline_yaml("graceful", 10);
  start_daemon();
  ASSERT_EQ(ctl("submit " + write_pipeline("graceful", yaml)).exit_code, 0);
  ASSERT_EQ(ctl("start graceful").exit_code, 0);
  while (records_read("graceful") < 4000) std::this_thread::sleep_for(20ms);
  const auto before = std::chrono::steady_clock::now();
  kill_daemon(SIGTERM);
  EXPECT_EQ(wait_daemon(), 0) << read_file(log_file());
  EXPECT_LT(std::chrono::steady_clock::now() - before, 10s + 2s) << "the grace period is 10 s";
  EXPECT_FALSE(fs::exists(state() / "control.sock"));

  start_daemon();
  ASSERT_TRUE(wait_for_state("graceful", "completed", 120s)) << ctl("status graceful").output;
  EXPECT_NE(ctl("status graceful").output.find("(resumed from its checkpoint)"), std::string::npos);
  EXPECT_EQ(read_dir(dir_ / "graceful" / "out"), reference_output(yaml));
}

TEST_F(DaemonTest, ThePythonClientExampleWorks) {
  start_daemon();
  const fs::path generated = dir_ / "gen-py";
  fs::create_directories(generated);
  const std::string thrift = env("DISTILL_THRIFT_BIN");
  const Finished gen = run_command(thrift + " --gen py -out " + generated.string() + " " + env("DISTILL_IDL"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  const std::string file = write_pipeline("py", pipeline_yaml("py", 0));
  const Finished client = run_command("PYTHONPATH=" + generated.string() + " /usr/bin/python3 " +
                                      env("DISTILL_PYTHON_CLIENT") + " --socket " + (state() / "control.sock").string() +
                                      " " + file);
  ASSERT_EQ(client.exit_code, 0) << client.output;
  EXPECT_NE(client.output.find("pipeline py: completed"), std::string::npos) << client.output;
  EXPECT_NE(client.output.find("exact_dedupe: dropped duplicate "), std::string::npos) << client.output;
  EXPECT_NE(client.output.find("no pipeline named 'nope'"), std::string::npos) << client.output;
  EXPECT_EQ(state_of("py"), "completed");
}

// Two pipelines of one daemon, each in its own worker process, share the
// teacher cache the daemon owns: the second pays for nothing.
TEST_F(DaemonTest, PipelinesShareTheTeacherCache) {
  TeacherServer teacher(dir_.path(), {"--threads", "16"});
  std::string prompts;
  for (int i = 0; i < 150; ++i) prompts += "{\"prompt\": \"Spell " + std::to_string(3000 + i * 11) + "\"}\n";
  write_file(dir_ / "prompts.jsonl", prompts);
  auto yaml = [&](const std::string& name) {
    return "name: " + name +
           "\nengine: {batch_size: 16, checkpoint_every_records: 32}\n"
           "source: {plugin: prompts, path: ../prompts.jsonl}\n"
           "stages:\n  - {plugin: teacher, base_url: \"" + teacher.base_url() +
           "\", model: teacher-small, concurrency: 8, retries: {base_ms: 20, max_ms: 200}}\n"
           "sinks: [{plugin: jsonl, dir: out}]\n";
  };
  start_daemon();
  ASSERT_EQ(ctl("submit " + write_pipeline("first", yaml("first"))).exit_code, 0);
  ASSERT_EQ(ctl("submit " + write_pipeline("second", yaml("second"))).exit_code, 0);
  ASSERT_EQ(ctl("start first").exit_code, 0);
  ASSERT_TRUE(wait_for_state("first", "completed", 120s)) << ctl("status first").output;
  EXPECT_EQ(teacher.paid_calls(), 150u);
  ASSERT_EQ(ctl("start second").exit_code, 0);
  ASSERT_TRUE(wait_for_state("second", "completed", 120s)) << ctl("status second").output;
  EXPECT_EQ(teacher.paid_calls(), 150u) << "the second pipeline paid again for answers the first had";
  EXPECT_NE(ctl("status second").output.find("cache_hits                                   150"), std::string::npos)
      << ctl("status second").output;
  EXPECT_EQ(read_dir(dir_ / "first" / "out").size(), read_dir(dir_ / "second" / "out").size());
}

// The teacher's table of Batch API batches in StepStats.tables (API 3):
// live from the worker while the batch runs, from the pipeline's store
// after a daemon restart, and as distillctl prints it.
TEST_F(DaemonTest, StatusCarriesTheTeachersTableOfBatches) {
  TeacherServer teacher(dir_.path(), {"--batch-delay-ms", "3000"});
  std::string prompts;
  for (int i = 0; i < 40; ++i) prompts += "{\"prompt\": \"Spell " + std::to_string(5000 + i * 13) + "\"}\n";
  write_file(dir_ / "prompts.jsonl", prompts);
  const std::string yaml = "name: batched\nengine: {batch_size: 16}\n"
                           "source: {plugin: prompts, path: ../prompts.jsonl}\n"
                           "stages:\n  - {plugin: teacher, base_url: \"" + teacher.base_url() +
                           "\", model: teacher-small, mode: batch, batch: {poll_s: 0.1}}\n"
                           "sinks: [{plugin: jsonl, dir: out}]\n";
  start_daemon();
  ASSERT_EQ(ctl("submit " + write_pipeline("batched", yaml)).exit_code, 0);
  ASSERT_EQ(ctl("start batched").exit_code, 0);

  // The teacher step's table "batches" in a status, or nullptr.
  auto batches = [](const distill::rpc::PipelineStatus& status) -> const distill::rpc::Table* {
    for (const distill::rpc::StepStats& step : status.steps)
      if (step.plugin == "teacher" && step.__isset.tables)
        for (const distill::rpc::Table& table : step.tables)
          if (table.name == "batches") return &table;
    return nullptr;
  };
  const std::vector<std::string> columns = {"batch", "state", "completed", "failed", "total", "created", "expected by"};
  distill::rpc::PipelineStatus live;
  {
    distill::rpc::Connection<distill::rpc::DistillClient> rpc((state() / "control.sock").string(), 5s);
    for (int i = 0; i < 1000 && !batches(live); ++i) {
      rpc.client().status(live, "batched");
      if (!batches(live)) std::this_thread::sleep_for(5ms);
    }
  }
  const distill::rpc::Table* table = batches(live);
  ASSERT_NE(table, nullptr) << ctl("status batched").output;
  EXPECT_TRUE(live.live);
  EXPECT_EQ(live.info.state, distill::rpc::PipelineState::RUNNING);
  EXPECT_EQ(table->columns, columns);
  ASSERT_EQ(table->rows.size(), 1u);
  const std::vector<std::string> row = table->rows[0];
  ASSERT_EQ(row.size(), columns.size());
  EXPECT_TRUE(row[0].starts_with("batch_")) << row[0];
  EXPECT_TRUE(row[1] == "validating" || row[1] == "in_progress") << row[1];
  EXPECT_EQ(row[2], "0");
  EXPECT_TRUE(row[5].ends_with(" UTC")) << row[5];

  ASSERT_TRUE(wait_for_state("batched", "completed", 60s)) << ctl("status batched").output;
  kill_daemon(SIGTERM);
  EXPECT_EQ(wait_daemon(), 0);
  start_daemon();
  distill::rpc::PipelineStatus stored;
  {
    distill::rpc::Connection<distill::rpc::DistillClient> rpc((state() / "control.sock").string(), 5s);
    rpc.client().status(stored, "batched");
  }
  EXPECT_FALSE(stored.live);
  table = batches(stored);
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->rows, (std::vector<std::vector<std::string>>{{row[0], "completed", "40", "0", "40", row[5], row[6]}}));

  const Finished text = ctl("status batched");
  EXPECT_NE(text.output.find("\n    batches (1):\n      batch    state      completed  failed  total  created"),
            std::string::npos)
      << text.output;
  EXPECT_NE(text.output.find("\n      " + row[0] + "  completed         40       0     40  " + row[5] + "  " + row[6] +
                             "\n"),
            std::string::npos)
      << text.output;
  const Finished json = ctl("-o json status batched");
  EXPECT_NE(json.output.find("\"tables\": [\n"), std::string::npos) << json.output;
  EXPECT_NE(json.output.find("\"" + row[0] + "\",\n"), std::string::npos) << json.output;
}

}  // namespace

// The opt-in Prometheus endpoint: on loopback, the text format, the
// pipeline's state and its steps' figures as `distillctl status` has them.
TEST_F(DaemonTest, MetricsEndpointServesThePipelinesFigures) {
  start_daemon({"--metrics-port", "0"});
  std::smatch port;
  const std::string log = read_file(log_file());
  ASSERT_TRUE(std::regex_search(log, port, std::regex("metrics on http://127\\.0\\.0\\.1:([0-9]+)/metrics"))) << log;
  ASSERT_EQ(ctl("submit " + write_pipeline("m", pipeline_yaml("m", 0))).exit_code, 0);
  ASSERT_EQ(ctl("start m").exit_code, 0);
  ASSERT_TRUE(wait_for_state("m", "completed", 120s)) << ctl("status m").output;

  httplib::Client client("127.0.0.1", std::stoi(port[1]));
  const httplib::Result scraped = client.Get("/metrics");
  ASSERT_TRUE(scraped) << "no answer from the metrics endpoint";
  EXPECT_EQ(scraped->status, 200);
  EXPECT_NE(scraped->get_header_value("Content-Type").find("text/plain; version=0.0.4"), std::string::npos);
  const std::string& text = scraped->body;
  EXPECT_NE(text.find("# TYPE distilld_step_kept_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("distilld_pipeline_state{pipeline=\"m\",state=\"completed\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("distilld_pipeline_state{pipeline=\"m\",state=\"running\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("distilld_pipeline_records_read_total{pipeline=\"m\"} 30000\n"), std::string::npos) << text;

  // The figures agree with the status the control plane reports.
  const Finished status = ctl("-o json status m");
  std::smatch dropped;
  ASSERT_TRUE(std::regex_search(status.output, dropped, std::regex("\"duplicate\": ([0-9]+)"))) << status.output;
  EXPECT_NE(text.find("distilld_step_dropped_by_reason_total{pipeline=\"m\",step=\"exact_dedupe\",plugin=\"exact_"
                      "dedupe\",reason=\"duplicate\"} " + std::string(dropped[1]) + "\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(client.Get("/nothing")->status, 404);
}

// A free TCP port on loopback (the kernel's choice, released at once).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), size), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size), 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

// TCP is opt-in, and a TCP connection gets nothing before it presents the
// daemon's token: not even health().
TEST_F(DaemonTest, TcpNeedsTheTokenBeforeAnyOtherCall) {
  const int port = free_port();
  start_daemon({"--tcp", "127.0.0.1:" + std::to_string(port)});
  const fs::path token = state() / "token";
  ASSERT_TRUE(fs::exists(token)) << read_file(log_file());
  EXPECT_EQ(fs::status(token).permissions() & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
  EXPECT_EQ(read_file(token).size(), 65u) << "64 hex digits and a newline";

  const std::string tcp = env("DISTILLCTL_BIN") + " --connect 127.0.0.1:" + std::to_string(port);
  const Finished with_token = run_command(tcp + " --token-file " + token.string() + " -o json health");
  EXPECT_EQ(with_token.exit_code, 0) << with_token.output;
  EXPECT_NE(with_token.output.find("\"api_version\": 3"), std::string::npos) << with_token.output;

  write_file(dir_ / "wrong-token", std::string(64, '0') + "\n");
  const Finished wrong = run_command(tcp + " --token-file " + (dir_ / "wrong-token").string() + " list");
  EXPECT_EQ(wrong.exit_code, 6) << wrong.output;
  EXPECT_NE(wrong.output.find("refused the token: wrong token"), std::string::npos) << wrong.output;
  const Finished without = run_command(tcp + " list");
  EXPECT_EQ(without.exit_code, 2) << without.output;
  EXPECT_NE(without.output.find("--connect needs the daemon's token"), std::string::npos) << without.output;

  distill::rpc::Connection<distill::rpc::DistillClient> raw(distill::rpc::open_tcp("127.0.0.1", port, 5s));
  std::vector<distill::rpc::PipelineInfo> pipelines;
  try {
    raw.client().list_pipelines(pipelines);
    ADD_FAILURE() << "list_pipelines answered before authenticate()";
  } catch (const distill::rpc::OperationError& e) {
    EXPECT_EQ(e.kind, distill::rpc::ErrorKind::UNAUTHENTICATED);
    EXPECT_NE(e.message.find("authenticate first"), std::string::npos) << e.message;
  }
  distill::rpc::Health health;
  EXPECT_THROW(raw.client().health(health), apache::thrift::TApplicationException);
  raw.client().authenticate(read_file(token).substr(0, 64));
  raw.client().list_pipelines(pipelines);
  EXPECT_TRUE(pipelines.empty());

  // Without --tcp there is no TCP listener at all.
  kill_daemon(SIGTERM);
  EXPECT_EQ(wait_daemon(), 0);
  start_daemon();
  EXPECT_EQ(run_command(tcp + " --token-file " + token.string() + " health").exit_code, 3);
}
