// The crash loop: a pipeline prompts -> teacher (with injected faults) ->
// exact_dedupe -> minhash_dedupe -> policy -> jsonl and student sinks is
// SIGKILLed at seeded random moments (while it collects, and while the
// student trains) again and again and resumed each time; it must end as
// an uninterrupted run of the same pipeline does: the same kept records
// and rejects in the same order, the same counters at every step, the same
// student weights byte for byte, and no more paid teacher calls than the
// requests that were in flight at the kills.
// CRASH_LOOP_KILLS (default 5) and CRASH_LOOP_SEED (default 2026) set the
// campaign; tests/reliability/crash_loop.sh runs a long one.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "process.h"
#include "sink_output.h"
#include "store/runs.h"
#include "store/store.h"
#include "teacher_server.h"
#include "test_dir.h"

namespace {

using namespace distill::testing;
using nlohmann::json;
namespace fs = std::filesystem;

constexpr int kConcurrency = 16;

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::stoi(value) : fallback;
}

// 3,000 prompts: numbers to spell, a tenth of them asked twice, and a
// twentieth asked again in other words (near duplicates).
void write_prompts(const fs::path& file) {
  std::string lines;
  for (int i = 0; i < 3000; ++i) {
    const std::string number = std::to_string(100000 + i * 37);
    lines += json{{"prompt", "Spell " + number + " digit by digit."}}.dump() + "\n";
    if (i % 10 == 3) lines += json{{"prompt", "Spell " + number + " digit by digit."}}.dump() + "\n";
    if (i % 20 == 7) lines += json{{"prompt", "Please spell " + number + " digit by digit."}}.dump() + "\n";
  }
  write_file(file, lines);
}

std::string pipeline_yaml(const std::string& base_url) {
  return "name: crash-loop\nstate_dir: state\n"
         "engine: {threads: 2, batch_size: 64, max_inflight_batches: 8, checkpoint_every_records: 256}\n"
         "source: {plugin: prompts, path: ../prompts.jsonl, terms: test-terms}\n"
         "stages:\n"
         "  - {plugin: teacher, base_url: \"" + base_url + "\", model: teacher-small, concurrency: " +
         std::to_string(kConcurrency) + ", retries: {max: 40, base_ms: 2, max_ms: 20}}\n"
         "  - {plugin: exact_dedupe}\n"
         "  - {plugin: minhash_dedupe}\n"
         "  - {plugin: policy}\n"
         "sinks:\n"
         "  - {plugin: jsonl, dir: out, max_shard_bytes: 200000, rejects: all}\n"
         "  - plugin: student\n"
         "    dir: student\n"
         "    tokenizer: {train: {vocab_size: 400}}\n"
         "    model: {layers: 1, d_model: 32, heads: 2, kv_heads: 1, ffn: 64, max_seq: 96}\n"
         "    train: {epochs: 2, batch_size: 32, lr: 5e-3, warmup_steps: 5, threads: 2}\n"
         "    eval: {holdout_fraction: 0.02, every_steps: 0, max_prompts: 10, max_new_tokens: 8}\n"
         "    checkpoint_every_steps: 10\n";
}

// Every line the sink wrote (kept shards in order, then the rejects),
// without arrival times and request ids, nor where a shard ends (request
// ids grow longer as more are sent); each line says which kind of file it
// came from.
std::vector<json> written(const fs::path& out) {
  std::vector<json> lines = sink_records(out, true);
  for (json& line : lines) line["file"] = line.contains("record") ? "rejects" : "kept";
  return lines;
}

// Each step's counts as the last checkpoint recorded them; the teacher's
// own counters (requests, retries, cache hits) differ by nature and are left out.
std::map<std::string, std::string> step_counts(const fs::path& state_dir) {
  auto store = distill::store::Store::open(state_dir, distill::store::Store::Mode::ReadOnly);
  distill::store::RunStore runs(*store);
  const auto meta = runs.latest_run("crash-loop");
  std::map<std::string, std::string> counts;
  if (!meta) return counts;
  counts["status"] = distill::store::to_string(meta->status);
  const auto checkpoint = runs.checkpoint("crash-loop", meta->run);
  if (!checkpoint) return counts;
  counts["records_read"] = std::to_string(checkpoint->records_read);
  for (const auto& step : checkpoint->steps) {
    std::string line = "in " + std::to_string(step.records_in) + " kept " + std::to_string(step.kept) + " dropped " +
                       std::to_string(step.dropped) + " errors " + std::to_string(step.errors);
    for (const auto& [reason, count] : step.drops_by_reason) line += " " + reason + "=" + std::to_string(count);
    if (step.plugin != "teacher")
      for (const auto& [name, count] : step.counters) line += " " + name + "=" + std::to_string(count);
    counts[step.step] = line;
  }
  return counts;
}

int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(CrashLoop, SigkillAtRandomMomentsEndsAsAnUninterruptedRun) {
  const int wanted_kills = env_int("CRASH_LOOP_KILLS", 5);
  const int seed = env_int("CRASH_LOOP_SEED", 2026);
  TempDir dir;
  write_prompts(dir / "prompts.jsonl");
  TeacherServer server(dir.path(), {"--threads", "32", "--latency-ms", "3", "--noise", "0.2", "--rate-500", "0.05",
                                    "--rate-429", "0.05", "--retry-after-ms", "5", "--rate-reset", "0.02",
                                    "--rate-malformed", "0.02", "--seed", std::to_string(seed)});
  for (const char* variant : {"reference", "killed"}) {
    fs::create_directories(dir / variant);
    write_file(dir / variant / "pipeline.yaml", pipeline_yaml(server.base_url()));
  }
  const std::string distilld = std::getenv("DISTILLD_BIN");
  const std::string log = (dir / "distilld.log").string();

  const auto reference_start = std::chrono::steady_clock::now();
  ASSERT_EQ(wait_for(spawn({distilld, "run", "-q", (dir / "reference" / "pipeline.yaml").string()}, log)), 0)
      << read_file(log);
  const auto reference_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - reference_start)
                                .count();
  const std::size_t paid_by_reference = server.paid_calls();

  // A run that finishes between two kills is compared and started afresh,
  // so a long campaign checks every run it completes.
  const std::vector<json> expected = written(dir / "reference" / "out");
  const auto expected_counts = step_counts(dir / "reference" / "state");
  const std::string expected_weights = read_file(dir / "reference" / "student" / "hf" / "model.safetensors");
  ASSERT_GT(expected.size(), 3000u);
  ASSERT_FALSE(expected_weights.empty());
  int runs_compared = 0;
  auto compare = [&](int kills_so_far) {
    const std::vector<json> actual = written(dir / "killed" / "out");
    EXPECT_EQ(actual.size(), expected.size());
    std::size_t differences = 0;
    for (std::size_t i = 0; i < std::min(actual.size(), expected.size()); ++i)
      if (actual[i] != expected[i] && ++differences <= 3)
        ADD_FAILURE() << "line " << i << " differs:\n  " << actual[i].dump() << "\nexpected\n  " << expected[i].dump();
    EXPECT_EQ(differences, 0u) << "after " << kills_so_far << " kills";
    EXPECT_EQ(step_counts(dir / "killed" / "state"), expected_counts);
    EXPECT_TRUE(read_file(dir / "killed" / "student" / "hf" / "model.safetensors") == expected_weights)
        << "the student's weights differ after " << kills_so_far << " kills";
    ++runs_compared;
  };

  std::mt19937 rng(static_cast<std::uint32_t>(seed));
  // Kills land anywhere in a run, training included.
  std::uniform_int_distribution<int> delay_ms(20, static_cast<int>(std::max<long long>(500, reference_ms)));
  int kills = 0;
  std::size_t paid_at_cycle_start = paid_by_reference;
  std::size_t most_repeated = 0;
  int kills_in_cycle = 0;
  int kills_while_training = 0;  // after the student's first training checkpoint
  for (;;) {
    const pid_t pid = spawn({distilld, "run", "-q", (dir / "killed" / "pipeline.yaml").string()}, log);
    int status = 0;
    bool finished = false;
    if (kills == wanted_kills) {
      ::waitpid(pid, &status, 0);
      finished = true;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
      finished = ::waitpid(pid, &status, WNOHANG) == pid;
    }
    if (finished) {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(log);
      compare(kills);
      const std::size_t paid = server.paid_calls() - paid_at_cycle_start;
      EXPECT_LE(paid, paid_by_reference + static_cast<std::size_t>(kConcurrency * kills_in_cycle))
          << "answers stored before a kill were paid for again";
      most_repeated = std::max(most_repeated, paid - std::min(paid, paid_by_reference));
      if (kills == wanted_kills || ::testing::Test::HasFailure()) break;
      fs::remove_all(dir / "killed" / "state");
      fs::remove_all(dir / "killed" / "out");
      fs::remove_all(dir / "killed" / "student");
      paid_at_cycle_start = server.paid_calls();
      kills_in_cycle = 0;
      continue;
    }
    ::kill(pid, SIGKILL);
    wait_for(pid);
    std::error_code ec;
    if (!fs::is_empty(dir / "killed" / "student" / "checkpoints", ec) && !ec) ++kills_while_training;
    ++kills;
    ++kills_in_cycle;
  }
  EXPECT_EQ(kills, wanted_kills);
  std::printf("crash loop: %d kills (seed %d), %d of them while the student trained; %d runs compared (%zu lines "
              "and a student each; an uninterrupted run takes %lld ms), 0 differences allowed; at most %zu paid "
              "calls repeated in a run\n",
              kills, seed, kills_while_training, runs_compared, expected.size(), static_cast<long long>(reference_ms),
              most_repeated);
}

}  // namespace
