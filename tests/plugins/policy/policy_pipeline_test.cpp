// The policy plugin in real pipelines run by the distilld binary:
// validation messages for a bad policy block, drops by rule with the
// counters in the summary, redaction in the written shards, drop samples,
// audit mode, and byte-identical output at 1 and 2 threads.
#include <gtest/gtest.h>

#include <sstream>

#include "process.h"
#include "test_dir.h"

namespace {

using namespace distill::testing;

constexpr int kLines = 4000;  // a tenth each: refusal, e-mail, truncated, phone, URL; half clean

// Line i of the generated input; see kLines.
std::string input_line(int i) {
  const std::string n = std::to_string(i);
  auto messages = [&](const std::string& answer) {
    return R"({"messages": [{"role": "user", "content": "question )" + n + R"("}, {"role": "assistant", "content": ")" +
           answer + "\"}]}";
  };
  switch (i % 10) {
    case 0: return messages("I'm sorry, but I can't help with item " + n + ".");
    case 1: return messages("Write to person" + n + "@corp.io about item " + n + ".");
    case 2:
      return R"({"id": "c)" + n +
             R"(", "object": "chat.completion", "model": "teacher-1", "messages": [{"role": "user", "content": "q)" +
             n + R"("}], "choices": [{"index": 0, "message": {"role": "assistant", "content": "A truncated answer )" +
             n + R"("}, "finish_reason": "length"}]})";
    case 3: return messages("Call +1 (555) 123-4567 about order " + n + ".");
    case 4: return messages("See https://docs.corp.io/page/" + n + " for more.");
    default: return messages("The answer to question " + n + " is a plain sentence with enough words in it.");
  }
}

// A counter or drop count from a run summary: the number ending the line
// that starts with four spaces and `label`.
long long summary_count(const std::string& summary, const std::string& label) {
  std::istringstream lines(summary);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("    " + label + " ")) continue;
    std::string digits;
    for (char c : line.substr(line.find_last_of(' ') + 1))
      if (c != ',') digits.push_back(c);
    return std::stoll(digits);
  }
  return -1;
}

std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++count;
  return count;
}

class PolicyPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string input;
    for (int i = 0; i < kLines; ++i) input += input_line(i) + "\n";
    write_file(dir_ / "in.jsonl", input);
  }

  Finished distilld(const std::string& args) {
    return run_command(std::string(std::getenv("DISTILLD_BIN")) + " " + args);
  }

  // Writes <folder>/p.yaml with the given policy block (indented under the stage).
  std::string pipeline(const std::string& folder, const std::string& policy, int threads = 2) {
    std::filesystem::create_directories(dir_ / folder);
    const std::filesystem::path file = dir_ / folder / "p.yaml";
    write_file(file,
               "name: policy-test\n"
               "engine: {threads: " +
                   std::to_string(threads) +
                   ", batch_size: 32}\n"
                   "source: {plugin: jsonl, path: ../in.jsonl}\n"
                   "stages:\n"
                   "  - plugin: policy\n" +
                   policy +
                   "sinks:\n"
                   "  - {plugin: jsonl, dir: out}\n");
    return file.string();
  }

  std::string shard(const std::string& folder) { return read_file(dir_ / folder / "out" / "part-r0001-00000.jsonl"); }

  TempDir dir_;
};

const std::string kUrlRule = "    patterns: [{name: no_urls, deny: 'https?://'}]\n";

TEST_F(PolicyPipelineTest, EnforceDropsByRuleRedactsAndCounts) {
  const std::string file = pipeline("enforce", kUrlRule);
  const Finished run = distilld("run " + file);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(summary_count(run.output, "dropped refusal"), kLines / 10) << run.output;
  EXPECT_EQ(summary_count(run.output, "dropped finish_reason"), kLines / 10) << run.output;
  EXPECT_EQ(summary_count(run.output, "dropped no_urls"), kLines / 10) << run.output;
  EXPECT_EQ(summary_count(run.output, "rule:refusal"), kLines / 10) << run.output;
  EXPECT_EQ(summary_count(run.output, "rule:finish_reason"), kLines / 10) << run.output;
  EXPECT_EQ(summary_count(run.output, "rule:no_urls"), kLines / 10) << run.output;
  EXPECT_EQ(summary_count(run.output, "redacted_email"), kLines / 10) << run.output;
  EXPECT_EQ(summary_count(run.output, "redacted_phone"), kLines / 10) << run.output;

  const std::string out = shard("enforce");
  EXPECT_EQ(occurrences(out, "\n"), static_cast<std::size_t>(kLines * 7 / 10));
  EXPECT_EQ(occurrences(out, "Write to [EMAIL] about item"), static_cast<std::size_t>(kLines / 10));
  EXPECT_EQ(occurrences(out, "Call [PHONE] about order"), static_cast<std::size_t>(kLines / 10));
  EXPECT_EQ(occurrences(out, "\"policy_redacted\":\"email:1\""), static_cast<std::size_t>(kLines / 10));
  EXPECT_EQ(out.find("@corp.io"), std::string::npos);
  EXPECT_EQ(out.find("I'm sorry"), std::string::npos);

  const Finished samples = distilld("samples " + file + " --reason refusal --limit 1");
  ASSERT_EQ(samples.exit_code, 0) << samples.output;
  EXPECT_NE(samples.output.find(R"({"step":"policy","reason":"refusal","record":)"), std::string::npos)
      << samples.output;
  EXPECT_NE(samples.output.find("I'm sorry, but I can't help with item 0."), std::string::npos) << samples.output;
}

TEST_F(PolicyPipelineTest, AuditDropsNothingAndAnnotatesWhatWouldBeDropped) {
  const std::string file = pipeline("audit", "    mode: audit\n" + kUrlRule);
  const Finished run = distilld("run " + file);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output.find("dropped refusal"), std::string::npos) << run.output;
  EXPECT_EQ(summary_count(run.output, "rule:refusal"), kLines / 10) << run.output;
  EXPECT_EQ(summary_count(run.output, "rule:finish_reason"), kLines / 10) << run.output;
  EXPECT_EQ(summary_count(run.output, "rule:no_urls"), kLines / 10) << run.output;
  EXPECT_EQ(summary_count(run.output, "would_redact_email"), kLines / 10) << run.output;
  EXPECT_EQ(summary_count(run.output, "redacted_email"), -1) << run.output;

  const std::string out = shard("audit");
  EXPECT_EQ(occurrences(out, "\n"), static_cast<std::size_t>(kLines));
  EXPECT_EQ(occurrences(out, "\"policy_would_drop\":\"refusal\""), static_cast<std::size_t>(kLines / 10));
  EXPECT_EQ(occurrences(out, "\"policy_would_drop\":\"no_urls\""), static_cast<std::size_t>(kLines / 10));
  EXPECT_EQ(occurrences(out, "\"policy_would_redact\":\"phone:1\""), static_cast<std::size_t>(kLines / 10));
  EXPECT_EQ(occurrences(out, "@corp.io about item"), static_cast<std::size_t>(kLines / 10));
  EXPECT_EQ(out.find("[EMAIL]"), std::string::npos);
}

TEST_F(PolicyPipelineTest, SameOutputAtOneAndTwoThreads) {
  const std::string policy = kUrlRule +
                             "    language: {allow: [en], unknown: drop}\n"
                             "    quality: {gopher_repetition: [all], fineweb: [dup_line_chars]}\n";
  const Finished one = distilld("run -q " + pipeline("one", policy, 1));
  const Finished two = distilld("run -q " + pipeline("two", policy, 2));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const auto out_one = read_dir(dir_ / "one" / "out");
  ASSERT_TRUE(out_one.count("part-r0001-00000.jsonl"));
  EXPECT_NE(out_one.at("part-r0001-00000.jsonl").find("[PHONE]"), std::string::npos);
  EXPECT_NE(out_one.at("part-r0001-00000.jsonl").find("\"language\":\"en\""), std::string::npos);
  EXPECT_TRUE(out_one == read_dir(dir_ / "two" / "out"));
}

// A pipeline whose second pattern, at line 10, column 15, does not compile.
std::string bad_pattern_policy() {
  return "    patterns:\n"
         "      - name: no_urls\n"
         "        deny: 'https?://'\n"
         "      - name: broken\n"
         "        deny: '(unclosed'\n";
}

TEST_F(PolicyPipelineTest, ValidateNamesTheKeyOfABadPattern) {
  const std::string file = pipeline("bad", bad_pattern_policy());
  const Finished out = distilld("validate " + file);
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_NE(out.output.find(file + ":"), std::string::npos) << out.output;
  EXPECT_NE(
      out.output.find(": stages[0].patterns[1].deny: invalid regular expression '(unclosed': missing ): (unclosed"),
      std::string::npos)
      << out.output;
}

TEST_F(PolicyPipelineTest, ValidatePointsAtTheBadPatternsLine) {
  const std::string file = pipeline("bad", bad_pattern_policy());
  const Finished out = distilld("validate " + file);
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_NE(out.output.find(file + ":10:15: stages[0].patterns[1].deny: invalid regular expression"), std::string::npos)
      << out.output;
}

TEST_F(PolicyPipelineTest, ValidateReportsTyposInNestedKeys) {
  const std::string file = pipeline("typo", "    pii: {emial: drop}\n    quality: {c4: [curly_brackets]}\n");
  const Finished out = distilld("validate " + file);
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_NE(out.output.find(file + ":6:18: stages[0].pii.emial: unknown key 'emial' (did you mean 'email'?)"),
            std::string::npos)
      << out.output;
  EXPECT_NE(out.output.find(file + ":7:20: stages[0].quality.c4: 'curly_brackets' is not one of: all, lorem_ipsum, "
                                   "curly_bracket, too_few_sentences"),
            std::string::npos)
      << out.output;
}

}  // namespace
