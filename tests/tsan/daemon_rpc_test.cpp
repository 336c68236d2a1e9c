// ThreadSanitizer target: a real `distilld serve` (built with TSan) under
// many clients at once: its Thrift threads on control.sock answering
// status, list, logs, plugins and validate while another client pauses,
// resumes, stops and restarts a running pipeline and submits others; its
// shared.sock threads serving puts, gets and scans from several threads
// of this process (through the worker's own SharedLink client); the
// metrics endpoint scraped meanwhile; SIGHUP plugin rescans in between;
// and a SIGTERM shutdown at the end, which must exit 0 (a TSan report
// makes the daemon exit 66).
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <regex>
#include <thread>

#include "corpus.h"
#include "process.h"
#include "rpc/wire.h"
#include "test_dir.h"
#include "worker/remote_shared.h"

namespace {

using namespace distill;
using namespace distill::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string pipeline_yaml(const std::string& name, int ms_per_batch) {
  return "name: " + name +
         "\n"
         "engine: {threads: 2, batch_size: 64, max_inflight_batches: 4, checkpoint_every_records: 1000}\n"
         "source: {plugin: jsonl, path: ../corpus.jsonl, terms: test-terms}\n"
         "stages:\n"
         "  - {plugin: exact_dedupe}\n"
         "  - {plugin: test_stage, mode: slow, ms_per_batch: " + std::to_string(ms_per_batch) + "}\n"
         "sinks:\n"
         "  - {plugin: jsonl, dir: out, max_shard_bytes: 1000000, rejects: all}\n";
}

using Control = rpc::Connection<rpc::DistillClient>;

class DaemonRpcTsan : public ::testing::Test {
 protected:
  void SetUp() override { write_corpus(dir_ / "corpus.jsonl", {10000, 200, 0.05, 0.01, true, 7}); }
  void TearDown() override {
    if (daemon_ > 0) {
      ::kill(daemon_, SIGKILL);
      ::waitpid(daemon_, nullptr, 0);
    }
  }

  std::string socket() const { return (dir_ / "state" / "control.sock").string(); }
  std::string log() const { return read_file(dir_ / "serve.log"); }

  // Starts the daemon with a metrics endpoint; returns its port.
  int start_daemon() {
    daemon_ = spawn({env("DISTILLD_BIN"), "serve", "--state", (dir_ / "state").string(), "--grace-s", "30",
                     "--metrics-port", "0"},
                    (dir_ / "serve.log").string());
    for (int i = 0; i < 1000; ++i) {
      try {
        rpc::Health health;
        Control(socket(), 2000ms).client().health(health);
        std::smatch port;
        const std::string text = log();
        if (std::regex_search(text, port, std::regex("metrics on http://127\\.0\\.0\\.1:([0-9]+)/metrics")))
          return std::stoi(port[1]);
      } catch (const apache::thrift::TException&) {
      }
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "the daemon did not answer:\n" << log();
    return -1;
  }

  std::string submit(Control& control, const std::string& name, int ms_per_batch) {
    fs::create_directories(dir_ / name);
    const fs::path file = dir_ / name / "pipeline.yaml";
    write_file(file, pipeline_yaml(name, ms_per_batch));
    rpc::SubmitRequest request;
    request.yaml = read_file(file);
    request.file = file.string();
    request.force = true;
    rpc::SubmitResult result;
    control.client().submit(result, request);
    return result.name;
  }

  rpc::PipelineState::type state_of(Control& control, const std::string& name) {
    rpc::PipelineStatus status;
    control.client().status(status, name);
    return status.info.state;
  }

  // The pipeline's state, error and log, for failure messages.
  std::string status_text(Control& control, const std::string& name) {
    rpc::PipelineStatus status;
    control.client().status(status, name);
    std::vector<rpc::LogLine> lines;
    control.client().run_log(lines, name, 0, 50);
    std::string text = name + ": " + rpc::to_string(status.info.state) + " " + status.info.error + "\n";
    for (const rpc::LogLine& line : lines) text += line.level + " " + line.step + ": " + line.message + "\n";
    return text + log();
  }

  bool wait_for(Control& control, const std::string& name, rpc::PipelineState::type wanted,
                std::chrono::seconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (state_of(control, name) == wanted) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  TempDir dir_;
  pid_t daemon_ = -1;
};

TEST_F(DaemonRpcTsan, ManyClientsAtOnceWhileAPipelineRunsThenACleanShutdown) {
  const int metrics_port = start_daemon();
  ASSERT_GT(metrics_port, 0);
  Control control(socket(), 60000ms);
  submit(control, "busy", 300);
  rpc::PipelineInfo info;
  control.client().start(info, "busy", rpc::StartOptions());

  std::atomic<bool> done{false};
  std::atomic<int> calls{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  // Stops and joins the clients however the test body ends (an ASSERT returns early).
  struct JoinAtEnd {
    std::atomic<bool>& done;
    std::vector<std::thread>& threads;
    ~JoinAtEnd() {
      done = true;
      for (std::thread& t : threads)
        if (t.joinable()) t.join();
    }
  } join_at_end{done, threads};
  // Readers: each its own connection, as each distillctl has; some
  // reconnect between calls.
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      std::unique_ptr<Control> reader;
      std::int64_t seen = 0;
      for (int i = 0; !done; ++i) {
        try {
          if (!reader || (t % 2 == 0 && i % 5 == 0)) reader = std::make_unique<Control>(socket(), 60000ms);
          rpc::DistillClient& client = reader->client();
          rpc::Health health;
          client.health(health);
          std::vector<rpc::PipelineInfo> pipelines;
          client.list_pipelines(pipelines);
          rpc::PipelineStatus status;
          client.status(status, "busy");
          std::vector<rpc::LogLine> lines;
          client.run_log(lines, "busy", seen, 100);
          if (!lines.empty()) seen = lines.back().seq;
          if (i % 4 == t % 4) {
            rpc::PluginList plugins;
            client.plugins(plugins);
            rpc::ValidateResult valid;
            client.validate(valid, pipeline_yaml("v" + std::to_string(t), 1), (dir_ / "busy" / "pipeline.yaml").string());
          }
          calls += 5;
        } catch (const std::exception& e) {
          ++failures;
          ADD_FAILURE() << "reader " << t << ": " << e.what();
          reader.reset();
        }
      }
    });
  // The metrics endpoint, scraped by two clients.
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&] {
      httplib::Client client("127.0.0.1", metrics_port);
      while (!done) {
        const httplib::Result scraped = client.Get("/metrics");
        if (!scraped || scraped->status != 200) {
          ++failures;
          ADD_FAILURE() << "a metrics scrape failed";
        }
        ++calls;
      }
    });
  // The shared store: one link used by three threads (as a worker's
  // engine threads share theirs), and a second link of its own.
  auto link = std::make_shared<worker::SharedLink>((dir_ / "state" / "shared.sock").string());
  auto other_link = std::make_shared<worker::SharedLink>((dir_ / "state" / "shared.sock").string());
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      worker::RemoteNamespace cache(t == 3 ? other_link : link, "tsan_cache");
      for (int i = 0; !done; ++i) {
        const std::string key = "k" + std::to_string(t) + "-" + std::to_string(i % 50);
        cache.put(key, "value " + std::to_string(i));
        const std::optional<std::string> value = cache.get(key);
        if (value != "value " + std::to_string(i)) {
          ++failures;
          ADD_FAILURE() << key << " read back as " << value.value_or("(nothing)");
        }
        if (i % 10 == 0) {
          int seen = 0;
          cache.scan("k" + std::to_string(t), [&](std::string_view, std::string_view) { return ++seen < 20; });
        }
        if (i % 7 == 0) cache.erase(key);
        calls += 3;
      }
    });

  // Meanwhile the pipeline is paused, resumed, stopped and started again,
  // another is submitted and started, and the plugin folders are rescanned.
  const std::vector<std::pair<std::string, rpc::PipelineState::type>> steps = {
      {"pause", rpc::PipelineState::PAUSED},   {"resume", rpc::PipelineState::RUNNING},
      {"stop", rpc::PipelineState::STOPPED},   {"start", rpc::PipelineState::RUNNING},
      {"pause", rpc::PipelineState::PAUSED},   {"resume", rpc::PipelineState::RUNNING}};
  for (const auto& [verb, wanted] : steps) {
    if (verb == "pause" || verb == "stop") {
      ASSERT_TRUE(wait_for(control, "busy", rpc::PipelineState::RUNNING, 60s)) << verb << "\n" << status_text(control, "busy");
    }
    if (verb == "pause") control.client().pause(info, "busy");
    if (verb == "resume") control.client().resume(info, "busy");
    if (verb == "stop") control.client().stop(info, "busy");
    if (verb == "start") control.client().start(info, "busy", rpc::StartOptions());
    ::kill(daemon_, SIGHUP);
    ASSERT_TRUE(wait_for(control, "busy", wanted, 60s)) << verb << "\n" << status_text(control, "busy");
  }
  submit(control, "second", 0);
  control.client().start(info, "second", rpc::StartOptions());
  EXPECT_TRUE(wait_for(control, "second", rpc::PipelineState::COMPLETED, 120s)) << status_text(control, "second");
  EXPECT_TRUE(wait_for(control, "busy", rpc::PipelineState::COMPLETED, 180s)) << status_text(control, "busy");

  done = true;
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(calls.load(), 100);

  ::kill(daemon_, SIGTERM);
  int status = 0;
  ::waitpid(daemon_, &status, 0);
  daemon_ = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the daemon ended with status " << status << "\n" << log();
}

}  // namespace
