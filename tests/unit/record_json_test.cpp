// The record JSON writer: shape, escaping, invalid UTF-8, numbers; its
// output must parse as JSON and read back as what was written.
#include <distill/record_json.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

using nlohmann::json;

distill::Record sample() {
  distill::Record r;
  r.id = "abc";
  r.prompt = {{"system", "be brief"}, {"user", "say \"hi\"\n\tplease \\ now"}};
  r.response = "hi \x01 caf\xC3\xA9";
  r.teacher.model = "t-1";
  r.teacher.params = {{"temperature", "0.7"}, {"stop", "[\"\\n\"]"}};
  r.teacher.usage = {12, 3, 0};
  r.provenance = {"jsonl", "/data/in.jsonl", 42, 1767225600000, "req-1", "cc-by-4.0"};
  r.annotations = {{"score", 0.25}, {"lang", std::string("en")}};
  r.logprobs = {{"hi", -0.01, {{"hi", -0.01}, {"hello", -4.5}}}};
  return r;
}

TEST(RecordJson, WritesTheMessagesShapeThatParsesBack) {
  const json j = json::parse(distill::to_json_text(sample()));
  EXPECT_EQ(j["id"], "abc");
  ASSERT_EQ(j["messages"].size(), 3u);
  EXPECT_EQ(j["messages"][1]["content"], "say \"hi\"\n\tplease \\ now");
  EXPECT_EQ(j["messages"][2]["role"], "assistant");
  EXPECT_EQ(j["messages"][2]["content"], "hi \x01 caf\xC3\xA9");
  EXPECT_EQ(j["teacher"]["params"]["temperature"], 0.7);
  EXPECT_EQ(j["teacher"]["params"]["stop"][0], "\n");
  EXPECT_EQ(j["teacher"]["usage"]["prompt_tokens"], 12);
  EXPECT_EQ(j["provenance"]["terms"], "cc-by-4.0");
  EXPECT_EQ(j["provenance"]["offset"], 42);
  EXPECT_EQ(j["annotations"]["score"], 0.25);
  EXPECT_EQ(j["annotations"]["lang"], "en");
  EXPECT_EQ(j["logprobs"][0]["top"][1][0], "hello");
  EXPECT_EQ(j["logprobs"][0]["top"][1][1], -4.5);
}

TEST(RecordJson, LeavesOutEmptyOptionalFields) {
  distill::Record r;
  r.response = "x";
  const std::string text = distill::to_json_text(r);
  EXPECT_EQ(text,
            R"({"id":"","messages":[{"role":"assistant","content":"x"}],"teacher":{},)"
            R"("provenance":{"source":"","uri":"","offset":0,"collected_at_ms":0,"request_id":"","terms":""}})");
}

TEST(RecordJson, InvalidUtf8BecomesReplacementCharacters) {
  distill::Record r;
  r.response = std::string("a\xFF" "b\xC3" "c\xED\xA0\x80" "d", 9);  // stray byte, truncated sequence, surrogate
  const json j = json::parse(distill::to_json_text(r));
  EXPECT_EQ(j["messages"][0]["content"], "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "d");
}

TEST(RecordJson, LogprobsCanBeLeftOutAndNonFiniteNumbersAreNull) {
  distill::Record r = sample();
  r.annotations["bad"] = std::numeric_limits<double>::infinity();
  const json j = json::parse(distill::to_json_text(r, false));
  EXPECT_FALSE(j.contains("logprobs"));
  EXPECT_TRUE(j["annotations"]["bad"].is_null());
}

}  // namespace
