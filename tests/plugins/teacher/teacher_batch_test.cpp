// The teacher stage's batch mode (mode: batch) against the real local
// teacher's Files and Batch API and real distilld processes: the same
// records as an online run at the batch price, SIGKILL at each step of a
// submission and at random moments, then resume with no line submitted
// twice (counted from the server's log) and none lost, expired and partly failed batches
// resubmitted, cached prompts kept out of batches, a cut-off output file
// reported clearly and collected by the next run, a stop that leaves
// the batches to the next run, and the table of batches that the run
// summary and `distilld status` show.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <iostream>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "process.h"
#include "sink_output.h"
#include "teacher_server.h"
#include "test_dir.h"

namespace {

using namespace distill::testing;
using nlohmann::json;

constexpr int kPrompts = 120;

// The number a run summary prints after `label`, or -1.
long summary_count(const std::string& summary, const std::string& label) {
  const auto at = summary.find("    " + label + " ");
  if (at == std::string::npos) return -1;
  std::string digits;
  for (std::size_t i = at + label.size() + 4; i < summary.size() && summary[i] != '\n'; ++i)
    if (std::isdigit(static_cast<unsigned char>(summary[i]))) digits += summary[i];
  return digits.empty() ? -1 : std::stol(digits);
}

// The rows of the teacher's "batches" table in a report (distilld run's
// summary, distilld status), each as its cells.
std::vector<std::vector<std::string>> batch_rows(const std::string& report) {
  std::vector<std::vector<std::string>> rows;
  const auto at = report.find("\n    batches (");
  if (at == std::string::npos) return rows;
  std::istringstream in(report.substr(at + 1));
  std::string line;
  std::getline(in, line);  // "    batches (N):"
  const std::regex gap(" {2,}");
  auto cells = [&](const std::string& text) {
    const std::string rest = text.substr(std::min<std::size_t>(6, text.size()));
    return std::vector<std::string>(std::sregex_token_iterator(rest.begin(), rest.end(), gap, -1),
                                    std::sregex_token_iterator());
  };
  std::getline(in, line);
  EXPECT_EQ(cells(line), (std::vector<std::string>{"batch", "state", "completed", "failed", "total", "created",
                                                   "expected by"}));
  while (std::getline(in, line) && line.starts_with("      ")) rows.push_back(cells(line));
  return rows;
}

// "2026-12-07 14:02:11 UTC" as seconds since the epoch.
std::int64_t utc_seconds(const std::string& text) {
  std::tm tm{};
  EXPECT_NE(::strptime(text.c_str(), "%Y-%m-%d %H:%M:%S UTC", &tm), nullptr) << text;
  return ::timegm(&tm);
}

// Every row: a batch that ended with `state`, whose completed and failed
// requests are all its requests, expected 24 hours after its creation.
// Returns the sum of the `column` cells.
long check_ended_rows(const std::vector<std::vector<std::string>>& rows, const std::set<std::string>& states,
                      std::size_t column) {
  long sum = 0;
  std::set<std::string> ids;
  for (const auto& row : rows) {
    EXPECT_EQ(row.size(), 7u);
    if (row.size() != 7) continue;
    EXPECT_TRUE(row[0].starts_with("batch_")) << row[0];
    EXPECT_TRUE(ids.insert(row[0]).second) << row[0] << " listed twice";
    EXPECT_TRUE(states.count(row[1])) << row[0] << " " << row[1];
    EXPECT_EQ(std::stol(row[2]) + std::stol(row[3]), std::stol(row[4])) << row[0];
    EXPECT_EQ(utc_seconds(row[6]) - utc_seconds(row[5]), 24 * 3600) << row[5] << " / " << row[6];
    sum += std::stol(row[column]);
  }
  return sum;
}

class TeacherBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string lines;
    for (int i = 0; i < kPrompts; ++i)
      lines += json{{"prompt", "Spell " + std::to_string(1000 + i * 7) + " digit by digit."}, {"id", "p" + std::to_string(i)}}
                   .dump() +
               "\n";
    write_file(dir_ / "prompts.jsonl", lines);
  }

  std::filesystem::path folder(const std::string& name) {
    std::filesystem::create_directories(dir_ / name);
    return dir_ / name;
  }

  // <variant>/pipeline.yaml: prompts -> teacher -> jsonl sink.
  std::string pipeline(const std::string& variant, const TeacherServer& server, const std::string& teacher_extra,
                       const std::string& state_dir = "state") {
    const std::filesystem::path file = folder(variant) / "pipeline.yaml";
    write_file(file, "name: teach\nstate_dir: " + state_dir +
                         "\nengine: {batch_size: 32, checkpoint_every_records: 64}\n"
                         "source: {plugin: prompts, path: ../prompts.jsonl}\n"
                         "stages:\n  - {plugin: teacher, base_url: \"" + server.base_url() +
                         "\", model: teacher-small, terms: test-terms, price_per_mtok: {input: 1000, output: 2000}, " +
                         teacher_extra + "}\nsinks: [{plugin: jsonl, dir: out}]\n");
    return file.string();
  }

  std::string batch_pipeline(const std::string& variant, const TeacherServer& server,
                             const std::string& state_dir = "state", int retries = 2, int max_requests = 100) {
    return pipeline(variant, server,
                    "mode: batch, batch: {max_requests: " + std::to_string(max_requests) +
                        ", poll_s: 0.1}, retries: {max: " + std::to_string(retries) + ", base_ms: 20, max_ms: 200}",
                    state_dir);
  }

  static Finished run(const std::string& file) {
    return run_command(std::string(std::getenv("DISTILLD_BIN")) + " run -q " + file);
  }

  // The answers of the online reference run (its own server and state).
  std::vector<json> reference() {
    TeacherServer server(folder("reference-server"), {"--threads", "16"});
    const Finished out = run(pipeline("reference", server, "concurrency: 16"));
    EXPECT_EQ(out.exit_code, 0) << out.output;
    return records("reference");
  }

  // Kept records without what differs between runs and servers (arrival
  // time, request id, endpoint port, the batch that answered).
  std::vector<json> records(const std::string& variant) {
    std::vector<json> out = sink_records(dir_ / variant / "out");
    for (json& record : out) {
      record["teacher"].erase("endpoint");
      if (record.contains("annotations")) record["annotations"].erase("teacher_batch_id");
    }
    return out;
  }

  // Starts distilld on `file`, SIGKILLs it once the server has logged one
  // more `api` call than before (while the client still waits for its
  // answer: the server is started with --latency-ms); true when it did.
  bool kill_at(const std::string& file, const TeacherServer& server, const std::string& api, const std::string& log) {
    const std::size_t before = server.api_calls(api).size();
    const pid_t pid = spawn({std::getenv("DISTILLD_BIN"), "run", "-q", file}, log);
    for (int i = 0; i < 30000; ++i) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) return false;
      if (server.api_calls(api).size() > before) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return true;
  }

  TempDir dir_;
};

std::string custom_ids_submitted_more_than_once(const std::map<std::string, int>& submissions) {
  std::string twice;
  for (const auto& [id, count] : submissions)
    if (count > 1) twice += id + " x" + std::to_string(count) + " ";
  return twice;
}

TEST_F(TeacherBatchTest, BatchRunEndsWithTheSameRecordsAsAnOnlineRunAtHalfThePrice) {
  const std::vector<json> expected = reference();
  ASSERT_EQ(expected.size(), static_cast<std::size_t>(kPrompts));
  TeacherServer server(folder("server"), {"--batch-delay-ms", "300"});
  const std::string file = batch_pipeline("batch", server);
  const Finished out = run(file);
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_EQ(records("batch"), expected);

  // The summary and `distilld status` (from the store) list each batch the
  // run created: completed, all of its requests answered, 120 in all.
  const Finished status = run_command(std::string(std::getenv("DISTILLD_BIN")) + " status " + file);
  ASSERT_EQ(status.exit_code, 0) << status.output;
  for (const std::string& report : {out.output, status.output}) {
    const auto rows = batch_rows(report);
    EXPECT_EQ(rows.size(), server.api_calls("POST /v1/batches").size()) << report;
    EXPECT_EQ(check_ended_rows(rows, {"completed"}, 2), kPrompts) << report;
    EXPECT_EQ(check_ended_rows(rows, {"completed"}, 3), 0) << report;
  }

  const std::map<std::string, int> submitted = server.batch_submissions();
  EXPECT_EQ(submitted.size(), static_cast<std::size_t>(kPrompts));
  EXPECT_EQ(custom_ids_submitted_more_than_once(submitted), "");
  EXPECT_EQ(server.paid_calls(), static_cast<std::size_t>(kPrompts));
  for (const json& r : server.requests()) EXPECT_TRUE(r.contains("api") || r.contains("batch_id")) << r.dump();
  EXPECT_EQ(summary_count(out.output, "teacher_answers"), kPrompts) << out.output;
  EXPECT_EQ(summary_count(out.output, "requests_sent"), 0) << out.output;
  EXPECT_EQ(summary_count(out.output, "batch_lines_submitted"), kPrompts) << out.output;
  EXPECT_GE(summary_count(out.output, "batches_created"), 2) << out.output;  // 64 prompts per checkpoint segment
  const long paid = summary_count(out.output, "paid_cost_micro_usd");
  const long online = summary_count(out.output, "online_cost_micro_usd");
  EXPECT_GT(paid, 0) << out.output;
  EXPECT_NEAR(static_cast<double>(paid), online / 2.0, 2.0) << out.output;

  // Every record names the batch that answered it.
  for (const auto& [name, content] : read_dir(dir_ / "batch" / "out")) {
    if (!name.starts_with("part-")) continue;
    std::istringstream in(content);
    for (std::string line; std::getline(in, line);)
      EXPECT_TRUE(json::parse(line)["annotations"]["teacher_batch_id"].get<std::string>().starts_with("batch_"));
  }

  // The answers are in the shared cache: an online run over the same state pays nothing.
  std::string again = pipeline("online-after-batch", server, "concurrency: 16", "../batch/state");
  std::string yaml = read_file(again);
  yaml.replace(yaml.find("name: teach"), 11, "name: other");
  write_file(again, yaml);
  const Finished online_run = run(again);
  ASSERT_EQ(online_run.exit_code, 0) << online_run.output;
  EXPECT_EQ(summary_count(online_run.output, "cache_hits"), kPrompts) << online_run.output;
  EXPECT_EQ(server.paid_calls(), static_cast<std::size_t>(kPrompts));
}

TEST_F(TeacherBatchTest, SigkillAtEachStepThenResumeSubmitsNoLineTwiceAndLosesNone) {
  const std::vector<json> expected = reference();
  // Each step is a Files or Batch API call the server logs, then answers 300 ms later.
  const std::vector<std::pair<std::string, std::string>> steps = {
      {"uploading", "POST /v1/files"},
      {"creating", "POST /v1/batches"},
      {"polling", "GET /v1/batches/{id}"},
      {"downloading", "GET /v1/files/content"},
  };
  for (const auto& [step, api] : steps) {
    SCOPED_TRACE("SIGKILL while " + step);
    TeacherServer server(folder(step + "-server"), {"--latency-ms", "300", "--batch-delay-ms", "500"});
    const std::string file = batch_pipeline(step, server);
    ASSERT_TRUE(kill_at(file, server, api, (dir_ / (step + ".log")).string()));
    const Finished resumed = run(file);
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    EXPECT_EQ(records(step), expected);
    // The resumed run's table holds the batches of both processes, each once.
    EXPECT_EQ(check_ended_rows(batch_rows(resumed.output), {"completed"}, 4), kPrompts) << resumed.output;
    const std::map<std::string, int> submitted = server.batch_submissions();
    EXPECT_EQ(submitted.size(), static_cast<std::size_t>(kPrompts));
    EXPECT_EQ(custom_ids_submitted_more_than_once(submitted), "");
    EXPECT_EQ(server.paid_calls(), static_cast<std::size_t>(kPrompts));
    if (step == "creating") {
      // The batch was created but its id never reached the store: found by its metadata.
      EXPECT_GE(server.api_calls("GET /v1/batches").size(), 1u);
      EXPECT_NE(resumed.output.find("among the account's batches"), std::string::npos) << resumed.output;
    }
  }

  SCOPED_TRACE("SIGKILL before the first upload");
  TeacherServer server(folder("early-server"), {"--batch-delay-ms", "500"});
  const std::string file = batch_pipeline("early", server);
  const pid_t pid = spawn({std::getenv("DISTILLD_BIN"), "run", "-q", file}, (dir_ / "early.log").string());
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // lines gather for 1 s before a partial file goes
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  EXPECT_EQ(server.api_calls("POST /v1/files").size(), 0u);
  ASSERT_EQ(run(file).exit_code, 0);
  EXPECT_EQ(records("early"), expected);
  EXPECT_EQ(custom_ids_submitted_more_than_once(server.batch_submissions()), "");
}

TEST_F(TeacherBatchTest, SigkillAtRandomMomentsThenResumeSubmitsNoLineTwice) {
  const std::vector<json> expected = reference();
  TeacherServer server(folder("server"), {"--latency-ms", "100", "--batch-delay-ms", "800"});
  const std::string file = batch_pipeline("random", server);
  std::mt19937 rng(20261207);
  int kills = 0;
  for (int attempt = 0; attempt < 6; ++attempt) {
    const pid_t pid = spawn({std::getenv("DISTILLD_BIN"), "run", "-q", file}, (dir_ / "random.log").string());
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(300, 2000)(rng)));
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) break;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ++kills;
  }
  EXPECT_GE(kills, 2);
  std::cout << kills << " SIGKILLs at random moments\n";
  const Finished resumed = run(file);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(records("random"), expected);
  // Each batch once, ended. (A batch that ended in a process killed before
  // its checkpoint is not listed, as its counters are not counted.)
  const long listed = check_ended_rows(batch_rows(resumed.output), {"completed"}, 4);
  EXPECT_GT(listed, 0) << resumed.output;
  EXPECT_LE(listed, kPrompts) << resumed.output;
  EXPECT_EQ(server.batch_submissions().size(), static_cast<std::size_t>(kPrompts));
  EXPECT_EQ(custom_ids_submitted_more_than_once(server.batch_submissions()), "");
  EXPECT_EQ(server.paid_calls(), static_cast<std::size_t>(kPrompts));
}

TEST_F(TeacherBatchTest, ExpiredAndPartlyFailedBatchesAreResubmitted) {
  const std::vector<json> expected = reference();
  TeacherServer server(folder("server"),
                       {"--batch-delay-ms", "200", "--batch-expire-first", "1", "--batch-fail-rate", "0.2"});
  const Finished out = run(batch_pipeline("flaky", server, "state", 8));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_EQ(records("flaky"), expected);
  EXPECT_GT(summary_count(out.output, "batch_lines_resubmitted"), 0) << out.output;
  EXPECT_GT(summary_count(out.output, "batch_lines_retried"), 0) << out.output;
  // The table shows the expired batch (half of it unanswered) and the failed lines.
  const auto rows = batch_rows(out.output);
  EXPECT_EQ(check_ended_rows(rows, {"completed", "expired"}, 2), kPrompts) << out.output;
  EXPECT_GT(check_ended_rows(rows, {"completed", "expired"}, 3), 0) << out.output;
  ASSERT_FALSE(rows.empty()) << out.output;
  EXPECT_EQ(rows.front()[1], "expired") << out.output;
  EXPECT_GT(std::stol(rows.front()[3]), 0) << out.output;
  // Each prompt was answered (and paid) once, whatever its lines went through.
  EXPECT_EQ(server.paid_calls(), static_cast<std::size_t>(kPrompts));
  std::map<std::string, int> answered;
  for (const json& r : server.requests())
    if (r.contains("custom_id") && r.value("status", 0) == 200) ++answered[r["custom_id"].get<std::string>()];
  EXPECT_EQ(answered.size(), static_cast<std::size_t>(kPrompts));
  EXPECT_EQ(custom_ids_submitted_more_than_once(answered), "");
}

TEST_F(TeacherBatchTest, Http429And500FromTheFilesAndBatchApiAreRetriedWithoutCreatingABatchTwice) {
  const std::vector<json> expected = reference();
  TeacherServer server(folder("server"), {"--batch-delay-ms", "200", "--rate-429", "0.2", "--rate-500", "0.3"});
  const Finished out = run(batch_pipeline("api-faults", server, "state", 8, 8));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_EQ(records("api-faults"), expected);
  EXPECT_EQ(custom_ids_submitted_more_than_once(server.batch_submissions()), "");
  std::size_t refused = 0;
  for (const json& r : server.requests()) refused += r.contains("api") && r.value("status", 0) == 429;
  EXPECT_GT(refused, 0u);
  // A create answered 500 had created its batch: found by its metadata, not created again.
  std::size_t creates_lost = 0;
  for (const json& call : server.api_calls("POST /v1/batches")) creates_lost += call.value("status", 0) == 500;
  EXPECT_GT(creates_lost, 0u) << "no create was answered 500: the test proves less than it should";
  EXPECT_GE(server.api_calls("GET /v1/batches").size(), creates_lost) << out.output;

  // With no retries left, a refused call fails the run with a message naming it; the next run finishes.
  TeacherServer refusing(folder("refusing"), {"--rate-429", "1"});
  const std::string file = batch_pipeline("refused", refusing, "state", 0);
  const Finished failed = run(file);
  EXPECT_EQ(failed.exit_code, 1) << failed.output;
  EXPECT_NE(failed.output.find("POST " + refusing.base_url() + "/files failed after 1 attempts: HTTP 429: Rate limit"),
            std::string::npos)
      << failed.output;
}

TEST_F(TeacherBatchTest, ALineThatAlwaysFailsIsADeadLetterAfterItsRetries) {
  TeacherServer server(folder("server"), {"--batch-delay-ms", "100", "--batch-fail-rate", "1"});
  const Finished out = run(batch_pipeline("failing", server, "state", 1));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_EQ(summary_count(out.output, "dropped teacher_batch_http_500"), kPrompts) << out.output;
  const std::map<std::string, int> submitted = server.batch_submissions();
  EXPECT_EQ(submitted.size(), static_cast<std::size_t>(kPrompts));
  for (const auto& [id, count] : submitted) EXPECT_EQ(count, 2) << id;  // the first attempt and one retry
}

TEST_F(TeacherBatchTest, ACachedPromptNeverEntersABatch) {
  TeacherServer server(folder("server"), {"--threads", "16", "--batch-delay-ms", "200"});
  // Half of the prompts answered online first, into the same store.
  std::string all = read_file(dir_ / "prompts.jsonl");
  std::string half;
  std::istringstream in(all);
  int n = 0;
  for (std::string line; std::getline(in, line); ++n)
    if (n % 2 == 0) half += line + "\n";
  write_file(dir_ / "prompts.jsonl", half);
  ASSERT_EQ(run(pipeline("online", server, "concurrency: 16", "../shared-state")).exit_code, 0);
  ASSERT_EQ(server.paid_calls(), static_cast<std::size_t>(kPrompts / 2));
  write_file(dir_ / "prompts.jsonl", all);

  std::string file = batch_pipeline("batch", server, "../shared-state");
  std::string yaml = read_file(file);
  yaml.replace(yaml.find("name: teach"), 11, "name: other");
  write_file(file, yaml);
  const Finished out = run(file);
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_EQ(summary_count(out.output, "cache_hits"), kPrompts / 2) << out.output;
  const std::map<std::string, int> submitted = server.batch_submissions();
  EXPECT_EQ(submitted.size(), static_cast<std::size_t>(kPrompts / 2));
  // The online half's prompt hashes never appear among the batch lines.
  std::set<std::string> online_prompts;
  std::set<std::string> batch_prompts;
  for (const json& r : server.requests()) {
    if (r.contains("api")) continue;
    (r.contains("batch_id") ? batch_prompts : online_prompts).insert(r["prompt_sha"].get<std::string>());
  }
  EXPECT_EQ(online_prompts.size(), static_cast<std::size_t>(kPrompts / 2));
  for (const std::string& sha : batch_prompts) EXPECT_FALSE(online_prompts.count(sha)) << sha;
  EXPECT_EQ(records("batch").size(), static_cast<std::size_t>(kPrompts));
}

TEST_F(TeacherBatchTest, AMalformedOutputFileIsAClearErrorAndTheNextRunCollectsIt) {
  const std::vector<json> expected = reference();
  TeacherServer server(folder("server"), {"--batch-delay-ms", "200", "--batch-malformed-output", "1"});
  const std::string file = batch_pipeline("malformed", server);
  const Finished first = run(file);
  EXPECT_EQ(first.exit_code, 1) << first.output;
  EXPECT_NE(first.output.find("of its output file file-"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("is not a Batch API result line"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("run again to download the file again"), std::string::npos) << first.output;
  const Finished second = run(file);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(records("malformed"), expected);
  EXPECT_EQ(custom_ids_submitted_more_than_once(server.batch_submissions()), "");
}

TEST_F(TeacherBatchTest, ASigtermWhileBatchesRunStopsAtOnceAndTheNextRunCollectsThem) {
  TeacherServer server(folder("server"), {"--batch-delay-ms", "4000"});
  const std::string file = batch_pipeline("stopped", server);
  const pid_t pid = spawn({std::getenv("DISTILLD_BIN"), "run", "-q", file}, (dir_ / "stopped.log").string());
  for (int i = 0; i < 5000 && server.api_calls("POST /v1/batches").empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_FALSE(server.api_calls("POST /v1/batches").empty());
  const auto t0 = std::chrono::steady_clock::now();
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(seconds, 2.0) << "a stop waited for the batch";
  const std::string log = read_file(dir_ / "stopped.log");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 130) << log;
  EXPECT_NE(log.find("stopped while prompts wait for the Batch API (batches: batch_"), std::string::npos) << log;
  EXPECT_NE(log.find("' stopped"), std::string::npos) << log;
  const Finished resumed = run(file);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(records("stopped").size(), static_cast<std::size_t>(kPrompts));
  EXPECT_EQ(custom_ids_submitted_more_than_once(server.batch_submissions()), "");
}

}  // namespace
