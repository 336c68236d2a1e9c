// The teacher stage against the real local teacher (examples/teacher) and a
// real distilld process: every prompt answered under injected faults,
// rate limits respected, zero repeated paid calls after SIGKILL and
// resume or in a second pipeline, and the API key absent from every
// output, log line and store file.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <thread>

#include "process.h"
#include "sink_output.h"
#include "store/store.h"
#include "teacher_server.h"
#include "test_dir.h"

namespace {

using namespace distill::testing;
using nlohmann::json;

const char* kWords[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};

std::string spelled(int number) {
  std::string out;
  for (char digit : std::to_string(number)) out += (out.empty() ? "" : " ") + std::string(kWords[digit - '0']);
  return out;
}

// The number a run summary prints after `label` (a counter or "dropped REASON"), or -1.
long summary_count(const std::string& summary, const std::string& label) {
  const auto at = summary.find(label + " ");
  if (at == std::string::npos) return -1;
  std::string digits;
  for (std::size_t i = at + label.size(); i < summary.size() && summary[i] != '\n'; ++i)
    if (std::isdigit(static_cast<unsigned char>(summary[i]))) digits += summary[i];
  return digits.empty() ? -1 : std::stol(digits);
}

// Responses in the shared teacher cache of the store in `state_dir`.
std::size_t cached_responses(const std::filesystem::path& state_dir) {
  auto store = distill::store::Store::open(state_dir, distill::store::Store::Mode::ReadOnly);
  std::size_t count = 0;
  store->scan(distill::store::Family::Shared, std::string("teacher_cache") + '\0',
              [&](std::string_view, std::string_view) { return ++count > 0; });
  return count;
}

class TeacherTest : public ::testing::Test {
 protected:
  void write_prompts(int count) {
    std::string lines;
    for (int i = 0; i < count; ++i)
      lines += json{{"prompt", "Spell " + std::to_string(1000 + i * 7) + " digit by digit."}, {"id", "p" + std::to_string(i)}}.dump() + "\n";
    write_file(dir_ / "prompts.jsonl", lines);
  }

  // A pipeline in <variant>/pipeline.yaml: prompts -> teacher -> jsonl sink.
  std::string pipeline(const std::string& variant, const TeacherServer& server, const std::string& teacher_extra,
                       const std::string& state_dir = "state") {
    std::filesystem::create_directories(dir_ / variant);
    const std::filesystem::path file = dir_ / variant / "pipeline.yaml";
    write_file(file, "name: teach\nstate_dir: " + state_dir +
                         "\nengine: {batch_size: 32, checkpoint_every_records: 64}\n"
                         "source: {plugin: prompts, path: ../prompts.jsonl}\n"
                         "stages:\n  - {plugin: teacher, base_url: \"" + server.base_url() +
                         "\", model: teacher-small, terms: test-terms, " +
                         (teacher_extra.find("retries:") == std::string::npos ? "retries: {base_ms: 20, max_ms: 200}, " : "") +
                         teacher_extra + "}\nsinks: [{plugin: jsonl, dir: out}]\n");
    return file.string();
  }

  Finished run(const std::string& file, const std::string& env = "") {
    return run_command(env + " " + std::getenv("DISTILLD_BIN") + " run -q " + file);
  }

  // The kept records of a variant, without what differs from call to call.
  std::vector<json> records(const std::string& variant) { return sink_records(dir_ / variant / "out"); }

  TempDir dir_;
};

TEST_F(TeacherTest, EveryPromptIsAnsweredUnderThirtyPercentFaults) {
  write_prompts(300);
  TeacherServer server(dir_.path(), {"--threads", "64", "--rate-429", "0.1", "--retry-after-ms", "20", "--rate-500",
                                     "0.1", "--rate-malformed", "0.05", "--rate-reset", "0.05", "--seed", "7"});
  const Finished out = run(pipeline("faults", server, "concurrency: 16"));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_EQ(summary_count(out.output, "teacher_answers"), 300) << out.output;
  const std::vector<json> kept = records("faults");
  ASSERT_EQ(kept.size(), 300u);
  for (std::size_t i = 0; i < kept.size(); ++i) {
    EXPECT_EQ(kept[i]["messages"].back()["content"], spelled(1000 + static_cast<int>(i) * 7));
    EXPECT_EQ(kept[i]["provenance"]["terms"], "test-terms");
    EXPECT_EQ(kept[i]["teacher"]["endpoint"], server.base_url());
  }
  EXPECT_EQ(server.paid_calls(), 300u);
  std::size_t faults = 0;
  for (const json& r : server.requests()) faults += r.value("fault", "none") != "none";
  EXPECT_GT(faults, 50u) << "the server injected too few faults for this test to mean anything";
}

// The fault storm: 30% of requests fail in every way the local teacher can
// fail them (429 with Retry-After, 500, connection resets, cut-off JSON,
// bodies cut off below their Content-Length, answers slower than the
// timeout, bodies trickled in short pauses past the timeout), under a rate
// limit and with only two retries, so some prompts become dead letters. Every prompt ends answered
// or counted as a dead letter, the limit holds throughout, and the next
// run asks again for the dead letters and nothing else.
TEST_F(TeacherTest, AFaultStormEndsWithEveryPromptAnsweredOrADeadLetterAskedAgainNextRun) {
  write_prompts(300);
  TeacherServer server(dir_.path(), {"--threads", "64", "--rate-429", "0.07", "--retry-after-ms", "30", "--rate-500",
                                     "0.07", "--rate-reset", "0.04", "--rate-malformed", "0.04", "--rate-slow", "0.03",
                                     "--slow-ms", "1500", "--rate-half-sent", "0.03", "--rate-trickle", "0.02",
                                     "--trickle-ms", "3000", "--seed", "11"});
  const std::string file =
      pipeline("storm", server,
               "concurrency: 32, timeout_s: 1, limits: {requests_per_minute: 6000}, retries: {max: 2, base_ms: 5, max_ms: 20}");
  const Finished first = run(file);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const long answered = summary_count(first.output, "teacher_answers");
  long dead_letters = 0;
  std::string dead_by_reason;
  for (const char* reason : {"teacher_http_429", "teacher_http_500", "teacher_connection", "teacher_bad_response",
                             "teacher_timeout"}) {
    const long count = summary_count(first.output, std::string("dropped ") + reason);
    if (count <= 0) continue;
    dead_letters += count;
    dead_by_reason += (dead_by_reason.empty() ? "" : ", ") + std::string(reason) + " " + std::to_string(count);
  }
  EXPECT_GT(dead_letters, 0) << "too few faults for the storm to mean anything\n" << first.output;
  EXPECT_EQ(answered + dead_letters, 300) << first.output;
  // Each kept answer is the right one: no cut-off or trickled body was taken for an answer.
  const std::vector<json> kept = records("storm");
  EXPECT_EQ(kept.size(), static_cast<std::size_t>(answered));
  for (const json& record : kept) {
    std::string prompt;
    for (const json& message : record["messages"])
      if (message["role"] == "user") prompt = message["content"];
    EXPECT_EQ(record["messages"].back()["content"], spelled(std::stoi(prompt.substr(prompt.find(' ') + 1))))
        << prompt;
  }

  // The server logs a slow answer when it sends it, after the client gave up.
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  const std::vector<json> storm = server.requests();
  std::size_t faults = 0;
  std::map<std::string, std::size_t> faults_by_kind;
  std::set<std::string> answered_prompts;
  std::size_t clean_answers = 0;
  for (const json& r : storm) {
    const std::string fault = r.value("fault", "none");
    if (fault != "none") {
      ++faults;
      ++faults_by_kind[fault];
    } else if (r.value("status", 0) == 200) {
      answered_prompts.insert(r.value("prompt_sha", ""));
      ++clean_answers;
    }
  }
  // One clean answer per answered prompt: none was asked again after it was answered.
  EXPECT_EQ(clean_answers, answered_prompts.size());
  EXPECT_EQ(clean_answers, static_cast<std::size_t>(answered));
  EXPECT_GT(static_cast<double>(faults) / static_cast<double>(storm.size()), 0.2);
  std::set<std::string> faults_seen;
  std::string by_kind;
  for (const auto& [kind, count] : faults_by_kind) {
    faults_seen.insert(kind);
    by_kind += (by_kind.empty() ? "" : ", ") + kind + " " + std::to_string(count);
  }
  EXPECT_EQ(faults_seen,
            (std::set<std::string>{"429", "500", "malformed", "reset", "slow", "half_sent", "trickle"}));
  // 100 requests/s with a one-second burst of 100: no second holds more than 200.
  for (std::size_t i = 0, j = 0; i < storm.size(); ++i) {
    while (storm[i]["t_ms"].get<double>() - storm[j]["t_ms"].get<double>() > 1000) ++j;
    ASSERT_LE(i - j + 1, 200u) << "the rate limit did not hold at request " << i;
  }

  const Finished second = run_command(std::string(std::getenv("DISTILLD_BIN")) + " run -q --new-run " + file);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  std::set<std::string> asked_again;
  const std::vector<json> all = server.requests();
  for (std::size_t i = storm.size(); i < all.size(); ++i) asked_again.insert(all[i].value("prompt_sha", ""));
  EXPECT_EQ(asked_again.size(), static_cast<std::size_t>(dead_letters)) << "the next run asks again for the dead letters";
  for (const std::string& prompt : asked_again)
    EXPECT_FALSE(answered_prompts.count(prompt)) << "a prompt answered in the storm was asked again";
  std::printf("fault storm: %zu requests, %zu faults (%.0f%%: %s), %ld answered, %ld dead letters (%s); the next "
              "run asked for %zu prompts\n",
              storm.size(), faults, 100.0 * static_cast<double>(faults) / static_cast<double>(storm.size()),
              by_kind.c_str(), answered, dead_letters, dead_by_reason.c_str(), asked_again.size());
}

TEST_F(TeacherTest, ARequestThatNeverSucceedsIsADeadLetterAskedAgainNextRun) {
  write_prompts(20);
  {
    TeacherServer server(dir_.path(), {"--rate-500", "1"});
    const Finished out = run(pipeline("failing", server, "concurrency: 4, retries: {max: 2, base_ms: 5, max_ms: 10}"));
    ASSERT_EQ(out.exit_code, 0) << out.output;
    EXPECT_EQ(summary_count(out.output, "dropped teacher_http_500"), 20) << out.output;
    EXPECT_EQ(server.requests().size(), 60u);  // 1 attempt + 2 retries each
  }
  TeacherServer healthy(dir_.path(), {"--threads", "8"});
  const Finished again =
      run_command(std::string(std::getenv("DISTILLD_BIN")) + " run -q --new-run " + pipeline("failing", healthy, "concurrency: 4"));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(healthy.paid_calls(), 20u);
}

// A stop does not wait out the teacher's retries (here a minute of
// backoff after every failure): the requests are abandoned and the run
// stops at once, resumable from its last checkpoint.
TEST_F(TeacherTest, AStopDoesNotWaitForRetries) {
  write_prompts(50);
  TeacherServer failing(dir_.path(), {"--rate-500", "1"});
  const std::string file = pipeline("stop", failing, "concurrency: 4, retries: {max: 8, base_ms: 60000, max_ms: 60000}");
  const pid_t pid = spawn({std::getenv("DISTILLD_BIN"), "run", file}, (dir_ / "stop.log").string());
  // Every prompt's first attempt fails, and each waits a minute to retry.
  while (failing.requests().size() < 50) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const auto stopped_at = std::chrono::steady_clock::now();
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, std::chrono::seconds(30))
      << "the stop waited for a minute of backoff";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130) << read_file(dir_ / "stop.log");
  EXPECT_NE(read_file(dir_ / "stop.log").find("abandoned"), std::string::npos) << read_file(dir_ / "stop.log");
  EXPECT_EQ(failing.requests().size(), 50u) << "no retry may be sent after the stop";
}

TEST_F(TeacherTest, RequestRateStaysUnderTheLimit) {
  write_prompts(80);
  TeacherServer server(dir_.path(), {"--threads", "64"});
  const Finished out = run(pipeline("limited", server, "concurrency: 32, limits: {requests_per_minute: 1200}"));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const std::vector<json> requests = server.requests();
  ASSERT_EQ(requests.size(), 80u);
  // 20 requests/s with a one-second burst of 20: the last 60 need at least 3 s.
  const double span_s = (requests.back()["t_ms"].get<double>() - requests.front()["t_ms"].get<double>()) / 1000.0;
  EXPECT_GE(span_s, 2.9);
  std::cout << "achieved " << (requests.size() - 20) / span_s << " requests/s under a 20/s limit\n";
}

TEST_F(TeacherTest, SigkillMidCollectionThenResumeRepeatsNoPaidCall) {
  write_prompts(400);
  TeacherServer server(dir_.path(), {"--threads", "16", "--latency-ms", "40"});
  const std::string reference = pipeline("reference", server, "concurrency: 8, cache: false");
  ASSERT_EQ(run(reference).exit_code, 0);
  const std::size_t reference_calls = server.paid_calls();
  ASSERT_EQ(reference_calls, 400u);

  const std::string killed = pipeline("killed", server, "concurrency: 8");
  int kills = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const pid_t pid = spawn({std::getenv("DISTILLD_BIN"), "run", "-q", killed}, (dir_ / "killed.log").string());
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) break;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ++kills;
  }
  EXPECT_GE(kills, 1);
  // Requests in flight at a kill were answered (and paid) but never
  // reached distilld; they are asked again. Every stored response is not.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let the server finish what was in flight
  const std::size_t paid_before_resume = server.paid_calls();
  const std::size_t stored = cached_responses(dir_ / "killed" / "state");
  EXPECT_GT(stored, 0u);
  const Finished finished = run(killed);
  ASSERT_EQ(finished.exit_code, 0) << finished.output;
  EXPECT_EQ(server.paid_calls() - paid_before_resume, 400u - stored) << "a stored response was paid for again";
  EXPECT_LE(server.paid_calls() - reference_calls, 400u + 8u * static_cast<unsigned>(kills));
  EXPECT_EQ(records("killed"), records("reference"));
  const std::size_t paid_for_killed_run = server.paid_calls();

  // Another pipeline over the same prompts and the same store pays nothing.
  const std::string second = pipeline("second", server, "concurrency: 8", "../killed/state");
  std::string yaml = read_file(second);
  yaml.replace(yaml.find("name: teach"), 11, "name: other");
  write_file(second, yaml);
  ASSERT_EQ(run(second).exit_code, 0);
  EXPECT_EQ(server.paid_calls(), paid_for_killed_run);
  EXPECT_EQ(records("second"), records("reference"));
}

TEST_F(TeacherTest, TheSamePromptManyTimesAtOnceIsPaidOnce) {
  std::string lines;
  for (int i = 0; i < 64; ++i) lines += R"({"prompt": "Spell 12345 digit by digit."})" "\n";
  write_file(dir_ / "prompts.jsonl", lines);
  TeacherServer server(dir_.path(), {"--threads", "64", "--latency-ms", "50"});
  const Finished out = run(pipeline("same", server, "concurrency: 32"));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_EQ(records("same").size(), 64u);
  EXPECT_EQ(server.paid_calls(), 1u);
  EXPECT_EQ(summary_count(out.output, "cache_hits") + summary_count(out.output, "joined_identical_request"), 63)
      << out.output;
}

TEST_F(TeacherTest, SeveralAnswersAndLogprobsPerPrompt) {
  write_prompts(10);
  TeacherServer server(dir_.path(), {"--threads", "96"});
  ASSERT_EQ(run(pipeline("n2", server, "n: 2, logprobs: {top_k: 3}")).exit_code, 0);
  const std::vector<json> kept = records("n2");
  ASSERT_EQ(kept.size(), 20u);
  EXPECT_EQ(kept[0]["annotations"]["choice"], 0);
  EXPECT_EQ(kept[1]["annotations"]["choice"], 1);
  EXPECT_EQ(kept[0]["messages"].back()["content"], spelled(1000));
  ASSERT_FALSE(kept[0]["logprobs"].empty());
  EXPECT_EQ(kept[0]["logprobs"][0]["top"].size(), 3u);
  EXPECT_EQ(server.paid_calls(), 10u);
}

TEST_F(TeacherTest, TheApiKeyAppearsNowhere) {
  const std::string key = "sk-distilld-test-SECRET-4242";
  write_prompts(30);
  TeacherServer server(dir_.path(), {"--threads", "96", "--api-key", key, "--rate-500", "0.2"});
  const std::string file = pipeline("keyed", server, "api_key_env: DISTILL_TEST_KEY");
  const Finished out = run(file, "DISTILL_TEST_KEY=" + key);
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_EQ(records("keyed").size(), 30u);
  EXPECT_EQ(out.output.find(key), std::string::npos);

  const Finished wrong = run_command("DISTILL_TEST_KEY=sk-wrong " + std::string(std::getenv("DISTILLD_BIN")) +
                                     " run -q " + pipeline("wrong-key", server, "api_key_env: DISTILL_TEST_KEY, cache: false"));
  EXPECT_NE(wrong.output.find("dropped teacher_http_401"), std::string::npos) << wrong.output;
  EXPECT_EQ(wrong.output.find("sk-wrong"), std::string::npos);
  const Finished samples = run_command(std::string(std::getenv("DISTILLD_BIN")) + " samples " + file);
  EXPECT_EQ(samples.output.find("sk-wrong"), std::string::npos);

  const Finished missing = run_command("env -u DISTILL_TEST_KEY " + std::string(std::getenv("DISTILLD_BIN")) + " validate " + file);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("environment variable DISTILL_TEST_KEY (the API key) is not set"), std::string::npos)
      << missing.output;

  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_ / "keyed")) {
    if (!entry.is_regular_file()) continue;
    EXPECT_EQ(read_file(entry.path()).find(key), std::string::npos) << entry.path() << " contains the API key";
  }
}

}  // namespace
