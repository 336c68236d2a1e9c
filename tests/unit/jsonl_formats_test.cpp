// Unit tests of the JSONL line parser (plugins/common/jsonl_formats.h):
// every format, auto-detection, every dead-letter reason, hostile input and
// the Batch API input index.
#include "jsonl_formats.h"

#include <distill/record_json.h>

#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace distill::jsonl {
namespace {

using Messages = std::vector<Message>;

constexpr const char* kChatCompletion = R"({"id":"chatcmpl-9xA1","object":"chat.completion","created":1718000000,"model":"gpt-4o-2024-08-06","request":{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Capital of France?"}],"temperature":0.7,"max_tokens":64,"logprobs":true,"top_logprobs":2},"choices":[{"index":0,"message":{"role":"assistant","content":"Paris.","reasoning_content":"The user asks for a capital."},"finish_reason":"stop","logprobs":{"content":[{"token":"Paris","logprob":-0.01,"bytes":[80,97,114,105,115],"top_logprobs":[{"token":"Paris","logprob":-0.01,"bytes":null},{"token":"The","logprob":-4.6,"bytes":null}]},{"token":".","logprob":0,"bytes":[46],"top_logprobs":[{"token":".","logprob":0},{"token":"!","logprob":-9}]}],"refusal":null}}],"usage":{"prompt_tokens":21,"completion_tokens":2,"total_tokens":23,"completion_tokens_details":{"reasoning_tokens":7}},"system_fingerprint":"fp_abc"})";

constexpr const char* kTwoChoices = R"({"id":"chatcmpl-2","object":"chat.completion","created":1718000001,"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}],"choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},"finish_reason":"stop","logprobs":{"content":[{"token":"Hi","logprob":-0.5,"top_logprobs":[{"token":"Hi","logprob":-0.5}]},{"token":"!","logprob":-0.25,"top_logprobs":[]}]}},{"index":1,"message":{"role":"assistant","content":"Hello."},"finish_reason":"length","logprobs":{"content":[{"token":"Hello","logprob":-1.5,"top_logprobs":[{"token":"Hello","logprob":-1.5},{"token":"Hi","logprob":-2}]}]}}],"usage":{"prompt_tokens":9,"completion_tokens":4,"completion_tokens_details":null}})";

std::string batch_output_line(const std::string& custom_id, const std::string& content) {
  return R"({"id":"batch_req_1","custom_id":")" + custom_id +
         R"(","response":{"status_code":200,"request_id":"req_77","body":{"id":"chatcmpl-B1","object":"chat.completion","created":1718000100,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":")" +
         content +
         R"("},"finish_reason":"stop","logprobs":null}],"usage":{"prompt_tokens":12,"completion_tokens":3}}},"error":null})";
}

LineResult parse_line(const std::string& line, Format format = Format::Auto) {
  LineParser parser(format);
  return parser.parse(line);
}

void expect_dead(const LineResult& result, const std::string& reason, const std::string& detail_part) {
  EXPECT_TRUE(result.records.empty());
  EXPECT_EQ(result.dead_reason, reason) << result.dead_detail;
  EXPECT_NE(result.dead_detail.find(detail_part), std::string::npos)
      << "detail: " << result.dead_detail << "\nexpected to contain: " << detail_part;
}

// A fresh directory under the test temp dir, removed with its files at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "jsonl_formats_XXXXXX";
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string file = path_ + "/" + name;
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }

 private:
  std::string path_;
};

constexpr const char* kBatchInput =
    R"({"custom_id":"req-1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Capital of France?"}],"temperature":0.2,"max_tokens":32}})"
    "\n"
    "\n"
    R"({"custom_id":"req-2","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"Name a colour."},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}],"n":2,"response_format":{"type":"text"}}})"
    "\r\n";

TEST(JsonlFormats, FormatNamesRoundTrip) {
  for (const Format format :
       {Format::Auto, Format::ChatCompletion, Format::BatchOutput, Format::Messages, Format::ShareGpt, Format::Alpaca})
    EXPECT_EQ(parse_format(format_name(format)), format);
  EXPECT_EQ(parse_format("sharegpt"), Format::ShareGpt);
  EXPECT_EQ(parse_format("ShareGPT"), std::nullopt);
  EXPECT_EQ(parse_format(""), std::nullopt);
}

TEST(JsonlFormats, ChatCompletionWithRequestAndLogprobs) {
  const LineResult result = parse_line(kChatCompletion, Format::ChatCompletion);
  ASSERT_TRUE(result.ok()) << result.dead_detail;
  EXPECT_EQ(result.format, Format::ChatCompletion);
  ASSERT_EQ(result.records.size(), 1u);
  const Record& r = result.records[0];
  EXPECT_EQ(r.prompt, (Messages{{"system", "Be brief."}, {"user", "Capital of France?"}}));
  EXPECT_EQ(r.response, "Paris.");
  EXPECT_EQ(r.reasoning, "The user asks for a capital.");
  EXPECT_EQ(r.teacher.model, "gpt-4o-2024-08-06");
  EXPECT_EQ(r.teacher.response_id, "chatcmpl-9xA1");
  EXPECT_EQ(r.teacher.finish_reason, "stop");
  EXPECT_EQ(r.teacher.params, (std::map<std::string, std::string>{
                                  {"logprobs", "true"}, {"max_tokens", "64"}, {"temperature", "0.7"}, {"top_logprobs", "2"}}));
  EXPECT_EQ(r.teacher.usage, (Usage{21, 2, 7}));
  EXPECT_EQ(r.provenance.collected_at_ms, 1718000000000);
  EXPECT_TRUE(r.provenance.request_id.empty());
  EXPECT_TRUE(r.id.empty());
  EXPECT_TRUE(r.annotations.empty());
  ASSERT_EQ(r.logprobs.size(), 2u);
  EXPECT_EQ(r.logprobs[0], (TokenLogprob{"Paris", -0.01, {{"Paris", -0.01}, {"The", -4.6}}}));
  EXPECT_EQ(r.logprobs[1], (TokenLogprob{".", 0, {{".", 0}, {"!", -9}}}));
}

TEST(JsonlFormats, ChatCompletionTwoChoicesGiveTwoRecords) {
  const LineResult result = parse_line(kTwoChoices);
  ASSERT_TRUE(result.ok()) << result.dead_detail;
  EXPECT_EQ(result.format, Format::ChatCompletion);
  ASSERT_EQ(result.records.size(), 2u);
  const Record& a = result.records[0];
  const Record& b = result.records[1];
  EXPECT_EQ(a.prompt, (Messages{{"user", "Say hi"}}));
  EXPECT_EQ(b.prompt, a.prompt);
  EXPECT_EQ(a.response, "Hi!");
  EXPECT_EQ(b.response, "Hello.");
  EXPECT_EQ(a.annotations.at("choice"), Annotation(0.0));
  EXPECT_EQ(b.annotations.at("choice"), Annotation(1.0));
  EXPECT_EQ(a.teacher.finish_reason, "stop");
  EXPECT_EQ(b.teacher.finish_reason, "length");
  EXPECT_EQ(a.teacher.response_id, "chatcmpl-2");
  EXPECT_EQ(b.teacher.usage, (Usage{9, 4, 0}));
  EXPECT_EQ(a.logprobs, (std::vector<TokenLogprob>{{"Hi", -0.5, {{"Hi", -0.5}}}, {"!", -0.25, {}}}));
  EXPECT_EQ(b.logprobs, (std::vector<TokenLogprob>{{"Hello", -1.5, {{"Hello", -1.5}, {"Hi", -2}}}}));
}

TEST(JsonlFormats, ChatCompletionIsDeterministicAndNeedsNoCreated) {
  LineParser parser(Format::Auto);
  EXPECT_EQ(parser.parse(kTwoChoices).records, parser.parse(kTwoChoices).records);
  const LineResult result =
      parser.parse(R"({"id":"x","choices":[{"message":{"role":"assistant","content":"ok"}}]})");
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.records[0].provenance.collected_at_ms, 0);
  EXPECT_TRUE(result.records[0].prompt.empty());
}

TEST(JsonlFormats, ChatCompletionContentParts) {
  const LineResult result = parse_line(
      R"({"choices":[{"message":{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"refusal","refusal":"no"},{"type":"text","text":"b"}],"reasoning":"think"}}]})");
  ASSERT_EQ(result.records.size(), 1u) << result.dead_detail;
  EXPECT_EQ(result.records[0].response, "a\nb");
  EXPECT_EQ(result.records[0].reasoning, "think");
}

TEST(JsonlFormats, NullContentIsNoContent) {
  expect_dead(
      parse_line(
          R"({"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]})"),
      "no_content", "choices[0].message.content");
  expect_dead(parse_line(R"({"choices":[{"message":{"role":"assistant","refusal":"I can't help with that."}}]})"),
              "no_content", "I can't help with that.");
}

TEST(JsonlFormats, NullContentChoiceIsSkippedWhenAnotherHasText) {
  const LineResult result = parse_line(
      R"({"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[]}},{"index":1,"message":{"role":"assistant","content":"text"}}]})");
  ASSERT_EQ(result.records.size(), 1u) << result.dead_detail;
  EXPECT_EQ(result.records[0].response, "text");
  EXPECT_EQ(result.records[0].annotations.at("choice"), Annotation(1.0));
}

TEST(JsonlFormats, NoChoices) {
  expect_dead(parse_line(R"({"id":"c","choices":[]})"), "no_choices", "choices");
  expect_dead(parse_line(R"({"id":"c","choices":null})"), "no_choices", "choices");
  expect_dead(parse_line(R"({"id":"c","object":"chat.completion"})", Format::ChatCompletion), "no_choices", "choices");
}

TEST(JsonlFormats, BatchOutputWithoutIndex) {
  const LineResult result = parse_line(batch_output_line("req-1", "Paris."));
  ASSERT_TRUE(result.ok()) << result.dead_detail;
  EXPECT_EQ(result.format, Format::BatchOutput);
  ASSERT_EQ(result.records.size(), 1u);
  const Record& r = result.records[0];
  EXPECT_TRUE(r.prompt.empty());
  EXPECT_EQ(r.response, "Paris.");
  EXPECT_EQ(r.provenance.request_id, "req-1");
  EXPECT_EQ(r.provenance.collected_at_ms, 1718000100000);
  EXPECT_EQ(r.teacher.response_id, "chatcmpl-B1");
  EXPECT_EQ(r.teacher.model, "gpt-4o-2024-08-06");
  EXPECT_EQ(r.teacher.usage, (Usage{12, 3, 0}));
  EXPECT_TRUE(r.teacher.params.empty());
  EXPECT_TRUE(r.logprobs.empty());
}

TEST(JsonlFormats, BatchOutputError) {
  expect_dead(
      parse_line(
          R"({"id":"batch_req_2","custom_id":"req-9","response":null,"error":{"code":"batch_expired","message":"This request could not be executed before the completion window expired."}})"),
      "batch_error", "req-9");
  const LineResult result = parse_line(
      R"({"id":"b","custom_id":"req-9","response":null,"error":{"code":"batch_expired","message":"window expired"}})",
      Format::BatchOutput);
  expect_dead(result, "batch_error", "batch_expired");
  EXPECT_NE(result.dead_detail.find("window expired"), std::string::npos);
}

TEST(JsonlFormats, BatchOutputHttpStatus) {
  const LineResult result = parse_line(
      R"({"id":"b","custom_id":"req-3","response":{"status_code":429,"request_id":"r","body":{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","code":"rate_limit_exceeded"}}},"error":null})");
  expect_dead(result, "http_429", "Rate limit reached for gpt-4o");
  EXPECT_NE(result.dead_detail.find("req-3"), std::string::npos);
  expect_dead(parse_line(R"({"custom_id":"req-4","response":{"status_code":500,"body":"oops"},"error":null})"),
              "http_500", "HTTP 500");
}

TEST(JsonlFormats, BatchOutputMissingAndWrongFields) {
  expect_dead(parse_line(R"({"custom_id":"a","error":null})"), "missing_field", "\"response\"");
  expect_dead(parse_line(R"({"custom_id":"a","response":{"body":{}},"error":null})"), "missing_field",
              "response.status_code");
  expect_dead(parse_line(R"({"custom_id":"a","response":{"status_code":"200","body":{}},"error":null})"), "wrong_type",
              "response.status_code");
  expect_dead(parse_line(R"({"custom_id":17,"response":{"status_code":200,"body":{}},"error":null})"), "wrong_type",
              "custom_id");
  expect_dead(parse_line(R"({"id":"x","response":{}})", Format::BatchOutput), "missing_field", "custom_id");
  expect_dead(parse_line(R"({"custom_id":"a","response":{"status_code":200,"body":{"choices":[]}},"error":null})"),
              "no_choices", "response.body.choices");
}

TEST(JsonlFormats, BatchInputIndexJoin) {
  TempDir dir;
  const std::string path = dir.write("input.jsonl", kBatchInput);
  const BatchInputIndex index(path);
  EXPECT_EQ(index.size(), 2u);
  EXPECT_EQ(index.find("nope"), std::nullopt);

  const std::optional<Request> second = index.find("req-2");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->model, "gpt-4o");
  EXPECT_EQ(second->messages, (Messages{{"user", "Name a colour."}}));
  EXPECT_EQ(second->params, (std::map<std::string, std::string>{{"n", "2"}, {"response_format", R"({"type":"text"})"}}));

  LineParser parser(Format::Auto, &index);
  // Output lines arrive in any order.
  const LineResult b = parser.parse(batch_output_line("req-2", "Blue."));
  const LineResult a = parser.parse(batch_output_line("req-1", "Paris."));
  ASSERT_EQ(a.records.size(), 1u) << a.dead_detail;
  ASSERT_EQ(b.records.size(), 1u) << b.dead_detail;
  EXPECT_EQ(a.records[0].prompt, (Messages{{"system", "Be brief."}, {"user", "Capital of France?"}}));
  EXPECT_EQ(a.records[0].teacher.params,
            (std::map<std::string, std::string>{{"max_tokens", "32"}, {"temperature", "0.2"}}));
  EXPECT_EQ(a.records[0].teacher.model, "gpt-4o-2024-08-06");
  EXPECT_EQ(a.records[0].provenance.request_id, "req-1");
  EXPECT_EQ(b.records[0].prompt, (Messages{{"user", "Name a colour."}}));
  EXPECT_EQ(b.records[0].response, "Blue.");

  expect_dead(parser.parse(batch_output_line("req-404", "?")), "unknown_custom_id", "req-404");
}

TEST(JsonlFormats, BatchInputIndexIsThreadSafe) {
  TempDir dir;
  const BatchInputIndex index(dir.write("input.jsonl", kBatchInput));
  std::vector<std::thread> threads;
  std::vector<int> found(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&index, &found, t] {
      for (int i = 0; i < 200; ++i)
        if (index.find(i % 2 ? "req-1" : "req-2")) ++found[t];
    });
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(found, (std::vector<int>{200, 200, 200, 200}));
}

TEST(JsonlFormats, BatchInputChangedAfterIndexingIsADeadLetter) {
  TempDir dir;
  const std::string path = dir.write("input.jsonl", kBatchInput);
  const BatchInputIndex index(path);
  dir.write("input.jsonl", "{}\n");
  LineParser parser(Format::BatchOutput, &index);
  expect_dead(parser.parse(batch_output_line("req-2", "Blue.")), "batch_input_error", path);
  EXPECT_THROW(index.find("req-1"), std::runtime_error);
}

std::string index_error(const std::string& path) {
  try {
    const BatchInputIndex index(path);
  } catch (const std::runtime_error& error) {
    return error.what();
  }
  return "no error";
}

TEST(JsonlFormats, MalformedBatchInputFileNamesFileAndLine) {
  TempDir dir;
  const std::string good =
      R"({"custom_id":"a","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}})";
  std::string path = dir.write("bad_json.jsonl", good + "\n{\"custom_id\":\"b\",\"body\":{\n");
  std::string message = index_error(path);
  EXPECT_NE(message.find(path + ":2: "), std::string::npos) << message;
  EXPECT_NE(message.find("malformed JSON"), std::string::npos) << message;

  path = dir.write("no_messages.jsonl", good + "\n\n" + R"({"custom_id":"b","body":{"model":"m"}})" + "\n");
  message = index_error(path);
  EXPECT_NE(message.find(path + ":3: "), std::string::npos) << message;
  EXPECT_NE(message.find("body.messages"), std::string::npos) << message;

  path = dir.write("wrong_type.jsonl", R"({"custom_id":"a","body":{"messages":[{"role":"user","content":5}]}})");
  message = index_error(path);
  EXPECT_NE(message.find(path + ":1: "), std::string::npos) << message;
  EXPECT_NE(message.find("body.messages[0].content"), std::string::npos) << message;

  path = dir.write("duplicate.jsonl", good + "\n" + good + "\n");
  message = index_error(path);
  EXPECT_NE(message.find(path + ":2: duplicate custom_id \"a\""), std::string::npos) << message;

  message = index_error(dir.write("empty.jsonl", "") + ".missing");
  EXPECT_NE(message.find("cannot open batch input file"), std::string::npos) << message;
}

TEST(JsonlFormats, Messages) {
  const LineResult result = parse_line(
      R"({"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":[{"type":"text","text":"Hi"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"there"}]},{"role":"assistant","content":"Hello.","reasoning_content":"greet"}]})");
  ASSERT_TRUE(result.ok()) << result.dead_detail;
  EXPECT_EQ(result.format, Format::Messages);
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.records[0].prompt, (Messages{{"system", "You are terse."}, {"user", "Hi\nthere"}}));
  EXPECT_EQ(result.records[0].response, "Hello.");
  EXPECT_EQ(result.records[0].reasoning, "greet");
}

TEST(JsonlFormats, MessagesNeedAnAssistantTurn) {
  expect_dead(parse_line(R"({"messages":[{"role":"user","content":"Hi"}]})"), "no_assistant_turn", "messages[0]");
  expect_dead(parse_line(R"({"messages":[]})"), "no_assistant_turn", "messages");
  expect_dead(parse_line(R"({"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":null}]})"),
              "no_content", "messages[1].content");
  expect_dead(parse_line(R"({"messages":[{"content":"Hi"},{"role":"assistant","content":"x"}]})"), "missing_field",
              "messages[0].role");
}

TEST(JsonlFormats, ShareGpt) {
  const LineResult result = parse_line(
      R"({"id":"sg1","conversations":[{"from":"system","value":"Be nice."},{"from":"human","value":"2+2?"},{"from":"gpt","value":"4"},{"from":"human","value":"times 3?"},{"from":"gpt","value":"12"}]})");
  ASSERT_TRUE(result.ok()) << result.dead_detail;
  EXPECT_EQ(result.format, Format::ShareGpt);
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.records[0].prompt,
            (Messages{{"system", "Be nice."}, {"user", "2+2?"}, {"assistant", "4"}, {"user", "times 3?"}}));
  EXPECT_EQ(result.records[0].response, "12");

  const LineResult with_system =
      parse_line(R"({"system":"S","conversations":[{"from":"human","value":"q"},{"from":"gpt","value":"a"}]})");
  ASSERT_EQ(with_system.records.size(), 1u) << with_system.dead_detail;
  EXPECT_EQ(with_system.records[0].prompt, (Messages{{"system", "S"}, {"user", "q"}}));

  expect_dead(parse_line(R"({"conversations":[{"from":"gpt","value":"a"},{"from":"human","value":"q"}]})"),
              "no_assistant_turn", "conversations[1]");
  expect_dead(parse_line(R"({"conversations":[{"from":"human"},{"from":"gpt","value":"a"}]})"), "missing_field",
              "conversations[0].value");
}

TEST(JsonlFormats, Alpaca) {
  const LineResult with_input = parse_line(
      R"({"instruction":"Translate to French.","input":"Good morning","output":"Bonjour"})");
  ASSERT_TRUE(with_input.ok()) << with_input.dead_detail;
  EXPECT_EQ(with_input.format, Format::Alpaca);
  ASSERT_EQ(with_input.records.size(), 1u);
  EXPECT_EQ(with_input.records[0].prompt, (Messages{{"user", "Translate to French.\n\nGood morning"}}));
  EXPECT_EQ(with_input.records[0].response, "Bonjour");

  const LineResult no_input = parse_line(R"({"instruction":"Name a prime.","input":"","output":"7"})", Format::Alpaca);
  ASSERT_EQ(no_input.records.size(), 1u) << no_input.dead_detail;
  EXPECT_EQ(no_input.records[0].prompt, (Messages{{"user", "Name a prime."}}));

  expect_dead(parse_line(R"({"instruction":"Name a prime."})"), "missing_field", "\"output\"");
  expect_dead(parse_line(R"({"instruction":"x","output":7})"), "wrong_type", "\"output\" is a number");
}

TEST(JsonlFormats, AutoDetectsEachFormat) {
  LineParser parser(Format::Auto);
  EXPECT_EQ(parser.parse(kChatCompletion).format, Format::ChatCompletion);
  EXPECT_EQ(parser.parse(batch_output_line("x", "y")).format, Format::BatchOutput);
  EXPECT_EQ(parser.parse(R"({"messages":[{"role":"assistant","content":"a"}]})").format, Format::Messages);
  EXPECT_EQ(parser.parse(R"({"conversations":[{"from":"gpt","value":"a"}]})").format, Format::ShareGpt);
  EXPECT_EQ(parser.parse(R"({"instruction":"i","output":"o"})").format, Format::Alpaca);
  for (const char* line : {R"({"messages":[{"role":"assistant","content":"a"}]})",
                           R"({"conversations":[{"from":"gpt","value":"a"}]})", R"({"instruction":"i","output":"o"})"})
    EXPECT_TRUE(parser.parse(line).ok()) << line;
}

TEST(JsonlFormats, UnrecognizedFormat) {
  expect_dead(parse_line(R"({"prompt":"p","completion":"c"})"), "unrecognized_format", "prompt, completion");
  expect_dead(parse_line(R"({"custom_id":"r","method":"POST","url":"/v1/chat/completions","body":{"messages":[]}})"),
              "unrecognized_format", "Batch API input line");
  expect_dead(parse_line("[1,2,3]"), "unrecognized_format", "an array");
  expect_dead(parse_line("42", Format::Messages), "unrecognized_format", "a number");
  expect_dead(parse_line("{}"), "unrecognized_format", "none");
}

TEST(JsonlFormats, DeclaredFormatMissingField) {
  expect_dead(parse_line(R"({"conversations":[]})", Format::Messages), "missing_field", "\"messages\"");
  expect_dead(parse_line(R"({"messages":[]})", Format::ShareGpt), "missing_field", "\"conversations\"");
  expect_dead(parse_line(R"({"output":"o"})", Format::Alpaca), "missing_field", "\"instruction\"");
  expect_dead(parse_line(R"({"choices":[{"index":0}]})"), "missing_field", "choices[0].message");
  expect_dead(parse_line(R"({"choices":[{"message":{"content":"x"},"logprobs":{"content":[{"token":"x"}]}}]})"),
              "missing_field", "choices[0].logprobs.content[0].logprob");
}

TEST(JsonlFormats, WrongTypesNameTheKey) {
  expect_dead(parse_line(R"({"messages":[{"role":"user","content":5},{"role":"assistant","content":"a"}]})"),
              "wrong_type", "\"messages[0].content\" is a number");
  expect_dead(parse_line(R"({"messages":{"role":"assistant"}})"), "wrong_type", "\"messages\" is an object");
  expect_dead(parse_line(R"({"choices":[{"message":{"content":42}}]})"), "wrong_type", "choices[0].message.content");
  expect_dead(parse_line(R"({"choices":"none"})"), "wrong_type", "\"choices\" is a string");
  expect_dead(parse_line(R"({"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":"12"}})"),
              "wrong_type", "usage.prompt_tokens");
  // A negative count would give money and token budget back (found by the teacher_response fuzzer).
  expect_dead(parse_line(R"({"choices":[{"message":{"content":"x"}}],"usage":{"completion_tokens":-3}})"),
              "wrong_type", "\"usage.completion_tokens\" is negative (-3)");
  expect_dead(parse_line(R"({"choices":[{"message":{"content":"x"}}],"created":"yesterday"})"), "wrong_type",
              "\"created\"");
  expect_dead(parse_line(R"({"choices":[{"message":{"content":"x"}}],"created":99999999999999999})"), "wrong_type",
              "\"created\" is out of range");
  expect_dead(parse_line(R"({"choices":[{"message":{"content":"x"},"logprobs":{"content":[{"token":"x","logprob":"-1"}]}}]})"),
              "wrong_type", "choices[0].logprobs.content[0].logprob");
  expect_dead(parse_line(R"({"choices":[{"message":{"content":"x"},"finish_reason":1}]})"), "wrong_type",
              "choices[0].finish_reason");
  expect_dead(parse_line(R"({"choices":[{"message":{"content":"x"}}],"request":[]})"), "wrong_type", "\"request\"");
  expect_dead(parse_line(R"({"instruction":["a"],"output":"o"})"), "wrong_type", "\"instruction\" is an array");
  expect_dead(parse_line(R"({"conversations":[{"from":true,"value":"v"}]})"), "wrong_type", "conversations[0].from");
}

TEST(JsonlFormats, MalformedJson) {
  expect_dead(parse_line(R"({"messages":[{"role":"user")"), "malformed_json", "invalid JSON");
  expect_dead(parse_line("not json"), "malformed_json", "invalid JSON");
  expect_dead(parse_line(R"({"a":1} {"b":2})"), "malformed_json", "invalid JSON");
}

TEST(JsonlFormats, InvalidUtf8IsMalformed) {
  const std::string line = "{\"instruction\":\"caf\xe9\",\"output\":\"\xff\xfe\"}";
  expect_dead(parse_line(line), "malformed_json", "UTF-8");
  expect_dead(parse_line("{\"instruction\":\"a\",\"output\":\"\xed\xa0\x80\"}"), "malformed_json", "UTF-8");
}

TEST(JsonlFormats, BlankLinesYieldNothing) {
  for (const char* line : {"", " ", "\t \r", "\r\n"}) {
    const LineResult result = parse_line(line);
    EXPECT_TRUE(result.records.empty());
    EXPECT_TRUE(result.dead_reason.empty());
  }
}

TEST(JsonlFormats, OneMegabyteResponse) {
  std::string escaped;
  std::string expected;
  for (int i = 0; expected.size() < (1u << 20); ++i) {
    escaped += "token " + std::to_string(i) + " \\n \\u00e9 ";
    expected += "token " + std::to_string(i) + " \n \u00e9 ";
  }
  const LineResult result = parse_line(batch_output_line("big", escaped));
  ASSERT_EQ(result.records.size(), 1u) << result.dead_detail;
  EXPECT_EQ(result.records[0].response, expected);
}

TEST(JsonlFormats, DeepNestingIsADeadLetter) {
  const std::string deep = "{\"messages\":" + std::string(200000, '[') + std::string(200000, ']') + "}";
  expect_dead(parse_line(deep), "malformed_json", "invalid JSON");
  // Nesting within the parser's limit is carried as a parameter's JSON text.
  const std::string nested = std::string(500, '[') + std::string(500, ']');
  const LineResult result = parse_line(R"({"request":{"extra":)" + nested +
                                       R"(},"choices":[{"message":{"content":"x"}}]})");
  ASSERT_EQ(result.records.size(), 1u) << result.dead_detail;
  EXPECT_EQ(result.records[0].teacher.params.at("extra"), nested);
}

TEST(JsonlFormats, MutatedLinesNeverThrow) {
  const std::vector<std::string> seeds = {kChatCompletion, kTwoChoices, batch_output_line("r", "t"),
                                          R"({"conversations":[{"from":"human","value":"q"},{"from":"gpt","value":"a"}]})",
                                          R"({"instruction":"i","input":"x","output":"o"})"};
  std::mt19937 rng(1234);
  LineParser parser(Format::Auto);
  const std::string alphabet = "{}[]\":,0-1.enulltrufas\\ \x80\xff";
  for (int round = 0; round < 3000; ++round) {
    std::string line = seeds[round % seeds.size()];
    for (int edit = 0; edit < 1 + round % 4; ++edit) {
      const std::size_t at = rng() % line.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0: line[at] = c; break;
        case 1: line.insert(at, 1, c); break;
        default: line.erase(at, 1); break;
      }
    }
    LineResult result;
    ASSERT_NO_THROW(result = parser.parse(line)) << line;
    EXPECT_NE(result.records.empty(), result.dead_reason.empty()) << line;
  }
}

}  // namespace
}  // namespace distill::jsonl

namespace distill::jsonl {
namespace {

// What the jsonl sink writes (the SDK's record JSON) reads back with its
// reasoning and logprobs, so a curated set can train a student with
// token-level KD. (The reasoning was lost until the record_json fuzzer
// found it: the writer puts it beside the messages, not in the last one.)
TEST(JsonlFormats, OwnOutputReadsBackWithReasoningAndLogprobs) {
  distill::Record written;
  written.prompt = {{"system", "Be brief."}, {"user", "Spell 42."}};
  written.response = "four two";
  written.reasoning = "one word per digit";
  written.logprobs = {{"four", -0.1, {{"four", -0.1}, {"five", -2.5}}}, {" two", -0.2, {}}};
  written.id = "abc";
  const LineResult result = parse_line(distill::to_json_text(written), Format::Auto);
  ASSERT_EQ(result.records.size(), 1u);
  const distill::Record& read = result.records[0];
  EXPECT_EQ(read.prompt, written.prompt);
  EXPECT_EQ(read.response, written.response);
  EXPECT_EQ(read.reasoning, written.reasoning);
  EXPECT_EQ(read.logprobs, written.logprobs);
  expect_dead(parse_line(R"({"messages":[{"role":"assistant","content":"x"}],"logprobs":[{"token":"x","logprob":0,"top":[["x"]]}]})"),
              "wrong_type", "logprobs[0].top");
}

}  // namespace
}  // namespace distill::jsonl
