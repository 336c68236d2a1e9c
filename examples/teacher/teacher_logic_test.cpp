// Unit tests of the local teacher's logic: answers, noise, fault draws,
// request validation, the OpenAI-shaped bodies, and the Files and Batch API.
#include "teacher_logic.h"

#include "batch_store.h"

#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <xxhash.h>

namespace {

using namespace distill::teacher;
using nlohmann::json;

std::vector<Message> user(const std::string& content) { return {{"user", content}}; }

Answer answer_for(const std::vector<Message>& messages, double noise) {
  return answer(messages, prompt_hash(messages), noise);
}

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> result;
  for (const std::string& token : tokens(text)) result.push_back(token[0] == ' ' ? token.substr(1) : token);
  return result;
}

ChatRequest parsed(const std::string& body) {
  auto result = parse_chat_request(body);
  if (auto* error = std::get_if<RequestError>(&result)) {
    ADD_FAILURE() << error->message;
  }
  return std::get<ChatRequest>(result);
}

RequestError rejected(const std::string& body) {
  auto result = parse_chat_request(body);
  EXPECT_TRUE(std::holds_alternative<RequestError>(result)) << body;
  return std::holds_alternative<RequestError>(result) ? std::get<RequestError>(result) : RequestError{};
}

TEST(Spelling, SpellsDigitsAsWords) {
  EXPECT_EQ(spell_digits("4721"), "four seven two one");
  EXPECT_EQ(spell_digits("0"), "zero");
  EXPECT_EQ(spell_digits("9081726354"), "nine zero eight one seven two six three five four");
}

TEST(Spelling, FindsTheLastRunOfDigits) {
  EXPECT_EQ(last_digit_run("Spell 4721 digit by digit."), "4721");
  EXPECT_EQ(last_digit_run("4721"), "4721");
  EXPECT_EQ(last_digit_run("first 12, then 345."), "345");
  EXPECT_EQ(last_digit_run("a1b22"), "22");
  EXPECT_FALSE(last_digit_run("no number here").has_value());
  EXPECT_FALSE(last_digit_run("").has_value());
}

TEST(Answer, SpellsTheLastUserMessage) {
  const std::vector<Message> messages = {{"system", "You spell 999."},
                                         {"user", "Spell 12."},
                                         {"assistant", "one two"},
                                         {"user", "Now spell 4721 digit by digit."}};
  const Answer a = answer_for(messages, 0);
  EXPECT_EQ(a.content, "four seven two one");
  EXPECT_FALSE(a.truncated);
  EXPECT_EQ(a.noise, Noise::none);
}

TEST(Answer, WithoutANumberSaysSoAndIsNeverNoisy) {
  for (const auto& messages : {user("Hello there"), std::vector<Message>{{"system", "Spell 12."}}}) {
    const Answer a = answer_for(messages, 1.0);
    EXPECT_EQ(a.content, "I can only spell numbers.");
    EXPECT_EQ(a.noise, Noise::none);
    EXPECT_FALSE(a.truncated);
  }
}

TEST(Answer, IsAFunctionOfThePrompt) {
  for (int i = 0; i < 200; ++i) {
    const auto messages = user("Spell " + std::to_string(1000 + i * 37) + " digit by digit.");
    const Answer a = answer_for(messages, 0.5);
    const Answer b = answer_for(messages, 0.5);
    EXPECT_EQ(a.content, b.content);
    EXPECT_EQ(a.noise, b.noise);
  }
}

TEST(Noise, ShareFollowsTheRateAndCoversEveryKind) {
  std::map<Noise, int> kinds;
  const int prompts = 20000;
  for (int i = 0; i < prompts; ++i) {
    ++kinds[answer_for(user("Spell " + std::to_string(100000 + i) + " digit by digit."), 0.3).noise];
  }
  EXPECT_NEAR(1.0 - static_cast<double>(kinds[Noise::none]) / prompts, 0.3, 0.02);
  for (Noise kind : {Noise::duplicate, Noise::near_duplicate, Noise::refusal, Noise::pii, Noise::truncated,
                     Noise::wrong}) {
    EXPECT_NEAR(static_cast<double>(kinds[kind]) / prompts, 0.05, 0.01) << noise_name(kind);
  }
}

TEST(Noise, ZeroAndOneAreExact) {
  for (int i = 0; i < 1000; ++i) {
    const auto messages = user(std::to_string(i * 7919));
    EXPECT_EQ(answer_for(messages, 0).noise, Noise::none);
    EXPECT_NE(answer_for(messages, 1).noise, Noise::none);
  }
}

TEST(Noise, EachKindHasItsShape) {
  std::set<Noise> seen;
  for (int i = 0; seen.size() < 6 && i < 10000; ++i) {
    const std::string digits = std::to_string(10000000 + i * 7);
    const auto messages = user("Spell " + digits + " digit by digit.");
    const std::string right = spell_digits(digits);
    const Answer a = answer_for(messages, 1.0);
    seen.insert(a.noise);
    const std::vector<std::string> got = words(a.content);
    const std::vector<std::string> want = words(right);
    switch (a.noise) {
      case Noise::duplicate: EXPECT_EQ(a.content, "one two three four"); break;
      case Noise::near_duplicate: {
        ASSERT_EQ(got.size(), want.size());
        int changed = 0;
        for (std::size_t w = 0; w < got.size(); ++w) changed += got[w] != want[w];
        EXPECT_EQ(changed, 1) << a.content;
        break;
      }
      case Noise::refusal: EXPECT_EQ(a.content, "I'm sorry, but I can't help with that."); break;
      case Noise::pii:
        EXPECT_EQ(a.content.rfind(right, 0), 0u) << a.content;
        EXPECT_NE(a.content.find("@example.com"), std::string::npos) << a.content;
        EXPECT_NE(a.content.find("+1 202-555-01"), std::string::npos) << a.content;
        break;
      case Noise::truncated:
        EXPECT_TRUE(a.truncated);
        EXPECT_FALSE(a.content.empty());
        EXPECT_LE(a.content.size(), right.size() / 2);
        EXPECT_EQ(right.rfind(a.content, 0), 0u) << a.content;
        break;
      case Noise::wrong: {
        ASSERT_EQ(got.size(), want.size());
        for (std::size_t w = 0; w < got.size(); ++w) EXPECT_NE(got[w], want[w]) << a.content;
        break;
      }
      case Noise::none: ADD_FAILURE() << "noise 1.0 gave a clean answer"; break;
    }
    EXPECT_EQ(a.truncated, a.noise == Noise::truncated);
  }
  EXPECT_EQ(seen.size(), 6u);
}

TEST(Tokens, KeepOneLeadingSpace) {
  EXPECT_EQ(tokens("four seven two one"), (std::vector<std::string>{"four", " seven", " two", " one"}));
  EXPECT_EQ(tokens("  a\tb\n c  "), (std::vector<std::string>{"a", " b", " c"}));
  EXPECT_TRUE(tokens("").empty());
}

TEST(Faults, RatesAreChecked) {
  EXPECT_EQ(check_fault_rates({}), "");
  EXPECT_EQ(check_fault_rates({0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1}), "");
  EXPECT_NE(check_fault_rates({0.5, 0.6, 0, 0, 0, 0, 0}), "");
  EXPECT_NE(check_fault_rates({-0.1, 0, 0, 0, 0, 0, 0}), "");
  EXPECT_NE(check_fault_rates({0, 0, 0, 0, 1.5, 0, 0}), "");
  EXPECT_EQ(check_fault_rates({0, 0, 0, 0, 0, 2, 0}), "--rate-half-sent must be in [0, 1]");
  EXPECT_EQ(check_fault_rates({0, 0, 0, 0, 0, 0, -1}), "--rate-trickle must be in [0, 1]");
  EXPECT_NE(check_fault_rates({0.5, 0, 0, 0, 0, 0.3, 0.3}), "");
}

TEST(Faults, DrawsFollowTheRatesAndTheSeed) {
  const FaultRates rates{0.1, 0.05, 0.05, 0.02, 0.03, 0.04, 0.01};
  std::map<Fault, int> count;
  const int draws = 100000;
  for (int i = 1; i <= draws; ++i) ++count[draw_fault(rates, 1, i)];
  EXPECT_NEAR(count[Fault::rate_limit] / double(draws), 0.10, 0.005);
  EXPECT_NEAR(count[Fault::server_error] / double(draws), 0.05, 0.005);
  EXPECT_NEAR(count[Fault::slow] / double(draws), 0.05, 0.005);
  EXPECT_NEAR(count[Fault::malformed] / double(draws), 0.02, 0.005);
  EXPECT_NEAR(count[Fault::reset] / double(draws), 0.03, 0.005);
  EXPECT_NEAR(count[Fault::half_sent] / double(draws), 0.04, 0.005);
  EXPECT_NEAR(count[Fault::trickle] / double(draws), 0.01, 0.003);
  EXPECT_NEAR(count[Fault::none] / double(draws), 0.70, 0.01);

  int differ = 0;
  for (int i = 1; i <= 1000; ++i) {
    EXPECT_EQ(draw_fault(rates, 7, i), draw_fault(rates, 7, i));
    differ += draw_fault(rates, 7, i) != draw_fault(rates, 8, i);
  }
  EXPECT_GT(differ, 100);
  for (int i = 1; i <= 1000; ++i) {
    EXPECT_EQ(draw_fault({}, 1, i), Fault::none);
    EXPECT_EQ(draw_fault({0, 0, 0, 0, 1, 0, 0}, 1, i), Fault::reset);
    EXPECT_EQ(draw_fault({0, 0, 0, 0, 0, 1, 0}, 1, i), Fault::half_sent);
    EXPECT_EQ(draw_fault({0, 0, 0, 0, 0, 0, 1}, 1, i), Fault::trickle);
  }
}

// Adding the half-sent and trickle bands after the others leaves every
// earlier kind's draws where they were: a seed replays the same storm.
TEST(Faults, NewKindsTakeOnlyTheRateLeftOver) {
  const FaultRates before{0.1, 0.05, 0.05, 0.02, 0.03, 0, 0};
  const FaultRates after{0.1, 0.05, 0.05, 0.02, 0.03, 0.05, 0.05};
  for (int i = 1; i <= 10000; ++i) {
    const Fault old_kind = draw_fault(before, 3, i);
    const Fault new_kind = draw_fault(after, 3, i);
    if (old_kind != Fault::none) {
      EXPECT_EQ(new_kind, old_kind) << i;
    } else {
      EXPECT_TRUE(new_kind == Fault::none || new_kind == Fault::half_sent || new_kind == Fault::trickle) << i;
    }
  }
}

TEST(Faults, TrickleIsManyShortPausesThatAddUpToTheTotal) {
  const Trickle plan = trickle(400, 3000);  // 50 pieces of 8 bytes
  EXPECT_EQ(plan.piece_bytes, 8u);
  EXPECT_EQ(plan.pause_ms, 60);
  EXPECT_EQ(trickle(401, 3000).pause_ms, 59);  // 51 pieces: ceil(3000 / 51)
  EXPECT_GE(51 * 59, 3000);
  EXPECT_EQ(trickle(8, 500).pause_ms, 500);  // one piece: the whole wait before it
  EXPECT_EQ(trickle(0, 500).pause_ms, 500);
  EXPECT_EQ(trickle(400, 0).pause_ms, 0);
}

TEST(Hash, CanonicalFormIsSortedCompactJson) {
  const std::vector<Message> messages = {{"system", "Be brief."}, {"user", "Spell \"42\" — ok?"}};
  const std::string canonical = canonical_messages(messages);
  EXPECT_EQ(canonical,
            "[{\"content\":\"Be brief.\",\"role\":\"system\"},"
            "{\"content\":\"Spell \\\"42\\\" — ok?\",\"role\":\"user\"}]");
  EXPECT_EQ(prompt_hash(messages), XXH3_64bits(canonical.data(), canonical.size()));
  EXPECT_NE(prompt_hash(user("1")), prompt_hash(user("2")));
  EXPECT_EQ(hex64(0xabcULL), "0000000000000abc");
}

TEST(Parse, AcceptsAFullRequest) {
  const ChatRequest r = parsed(R"({"model":"m","messages":[{"role":"system","content":"s"},
      {"role":"user","content":[{"type":"text","text":"Spell "},{"type":"text","text":"42"}]},
      {"role":"assistant","content":null}],
      "n":3,"max_tokens":5,"logprobs":true,"top_logprobs":4,"temperature":0.7,"stream":false})");
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[1].content, "Spell 42");
  EXPECT_EQ(r.messages[2].content, "");
  EXPECT_EQ(r.n, 3);
  EXPECT_EQ(r.max_tokens, 5);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 4);

  const ChatRequest plain = parsed(R"({"model":"m","messages":[{"role":"user","content":"1"}],"n":null})");
  EXPECT_EQ(plain.n, 1);
  EXPECT_FALSE(plain.max_tokens.has_value());
  EXPECT_FALSE(plain.logprobs);
  EXPECT_EQ(parsed(R"({"model":"m","messages":[{"role":"user","content":"1"}],"max_completion_tokens":2})")
                .max_tokens,
            2);
}

TEST(Parse, RejectsBadRequestsNamingTheParameter) {
  EXPECT_FALSE(rejected("{not json").param.has_value());
  EXPECT_FALSE(rejected("[1,2]").param.has_value());
  EXPECT_EQ(rejected(R"({"messages":[{"role":"user","content":"1"}]})").param, "model");
  EXPECT_EQ(rejected(R"({"model":"m"})").param, "messages");
  EXPECT_EQ(rejected(R"({"model":"m","messages":{}})").param, "messages");
  EXPECT_EQ(rejected(R"({"model":"m","messages":[]})").param, "messages");
  EXPECT_EQ(rejected(R"({"model":"m","messages":["hi"]})").param, "messages[0]");
  EXPECT_EQ(rejected(R"({"model":"m","messages":[{"content":"1"}]})").param, "messages[0].role");
  EXPECT_EQ(rejected(R"({"model":"m","messages":[{"role":"robot","content":"1"}]})").param, "messages[0].role");
  EXPECT_EQ(rejected(R"({"model":"m","messages":[{"role":"user"}]})").param, "messages[0].content");
  EXPECT_EQ(rejected(R"({"model":"m","messages":[{"role":"user","content":5}]})").param, "messages[0].content");
  EXPECT_EQ(rejected(R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]})").param,
            "messages[0].content[0]");
  const std::string ok = R"({"model":"m","messages":[{"role":"user","content":"1"}],)";
  EXPECT_EQ(rejected(ok + R"("n":0})").param, "n");
  EXPECT_EQ(rejected(ok + R"("n":9})").param, "n");
  EXPECT_EQ(rejected(ok + R"("n":1.5})").param, "n");
  EXPECT_EQ(rejected(ok + R"("max_tokens":0})").param, "max_tokens");
  EXPECT_EQ(rejected(ok + R"("logprobs":"yes"})").param, "logprobs");
  EXPECT_EQ(rejected(ok + R"("top_logprobs":3})").param, "top_logprobs");
  EXPECT_EQ(rejected(ok + R"("logprobs":true,"top_logprobs":21})").param, "top_logprobs");
  EXPECT_EQ(rejected(ok + R"("stream":true})").param, "stream");
}

ChatRequest request(int n = 1, std::optional<long long> max_tokens = std::nullopt, bool logprobs = false,
                    int top = 0) {
  ChatRequest r;
  r.model = "teacher-small";
  r.messages = user("Spell 4721 digit by digit.");
  r.n = n;
  r.max_tokens = max_tokens;
  r.logprobs = logprobs;
  r.top_logprobs = top;
  return r;
}

json complete(const ChatRequest& r) {
  const std::uint64_t hash = prompt_hash(r.messages);
  return json::parse(completion_body(r, answer(r.messages, hash, 0), hash, 1700000000));
}

TEST(Completion, HasTheOpenAIShape) {
  const json body = complete(request(3));
  EXPECT_EQ(body["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["created"], 1700000000);
  EXPECT_EQ(body["model"], "teacher-small");
  EXPECT_EQ(body["system_fingerprint"], "fp_distill");
  ASSERT_EQ(body["choices"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const json& choice = body["choices"][i];
    EXPECT_EQ(choice["index"], i);
    EXPECT_EQ(choice["message"]["role"], "assistant");
    EXPECT_EQ(choice["message"]["content"], "four seven two one");
    EXPECT_TRUE(choice["logprobs"].is_null());
    EXPECT_EQ(choice["finish_reason"], "stop");
  }
  EXPECT_EQ(body["usage"]["prompt_tokens"], 7);  // 26 characters
  EXPECT_EQ(body["usage"]["completion_tokens"], 12);
  EXPECT_EQ(body["usage"]["total_tokens"], 19);
}

TEST(Completion, IsDeterministicButForCreated) {
  const ChatRequest r = request(2, 3, true, 5);
  const std::uint64_t hash = prompt_hash(r.messages);
  const Answer a = answer(r.messages, hash, 0);
  EXPECT_EQ(completion_body(r, a, hash, 1), completion_body(r, a, hash, 1));
  EXPECT_NE(complete(request(1))["id"], complete(request(2))["id"]);
}

TEST(Completion, MaxTokensCutsTheAnswer) {
  const json body = complete(request(1, 2));
  EXPECT_EQ(body["choices"][0]["message"]["content"], "four seven");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["usage"]["completion_tokens"], 2);
  EXPECT_EQ(complete(request(1, 4))["choices"][0]["finish_reason"], "stop");
}

TEST(Completion, TruncatedNoiseEndsWithLength) {
  ChatRequest r = request();
  for (int i = 0; i < 1000; ++i) {
    r.messages = user(std::to_string(123456 + i));
    const std::uint64_t hash = prompt_hash(r.messages);
    const Answer a = answer(r.messages, hash, 1.0);
    if (a.noise != Noise::truncated) continue;
    const json body = json::parse(completion_body(r, a, hash, 0));
    EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
    return;
  }
  ADD_FAILURE() << "no truncated answer in 1000 prompts";
}

TEST(Completion, LogprobsFollowTheTokens) {
  const json body = complete(request(2, std::nullopt, true, 5));
  for (const json& choice : body["choices"]) {
    const json& content = choice["logprobs"]["content"];
    ASSERT_EQ(content.size(), 4u);
    std::string joined;
    for (const json& entry : content) {
      const std::string token = entry["token"];
      joined += token;
      const double logprob = entry["logprob"];
      EXPECT_GE(logprob, -0.2);
      EXPECT_LE(logprob, -0.01);
      std::string from_bytes;
      for (int byte : entry["bytes"]) from_bytes += static_cast<char>(byte);
      EXPECT_EQ(from_bytes, token);
      const json& top = entry["top_logprobs"];
      ASSERT_EQ(top.size(), 5u);
      EXPECT_EQ(top[0]["token"], token);
      EXPECT_EQ(top[0]["logprob"], logprob);
      double mass = 0;
      std::set<std::string> distinct;
      for (std::size_t k = 0; k < top.size(); ++k) {
        mass += std::exp(top[k]["logprob"].get<double>());
        distinct.insert(top[k]["token"]);
        if (k > 0) {
          EXPECT_LT(top[k]["logprob"].get<double>(), top[k - 1]["logprob"].get<double>());
          EXPECT_EQ(top[k]["token"].get<std::string>()[0] == ' ', token[0] == ' ');
        }
      }
      EXPECT_LE(mass, 1.0);
      EXPECT_EQ(distinct.size(), top.size());
    }
    EXPECT_EQ(joined, choice["message"]["content"]);
  }
  EXPECT_NE(body["choices"][0]["logprobs"], body["choices"][1]["logprobs"]);

  const json twenty = complete(request(1, std::nullopt, true, 20));
  EXPECT_EQ(twenty["choices"][0]["logprobs"]["content"][0]["top_logprobs"].size(), 20u);
  const json none = complete(request(1, 1, true, 0));
  ASSERT_EQ(none["choices"][0]["logprobs"]["content"].size(), 1u);
  EXPECT_TRUE(none["choices"][0]["logprobs"]["content"][0]["top_logprobs"].empty());
}

TEST(Bodies, MalformedDoesNotParse) {
  const std::string body = completion_body(request(), answer_for(request().messages, 0), 1, 0);
  const std::string cut = malformed_body(body);
  EXPECT_EQ(cut, body.substr(0, body.size() / 2));
  EXPECT_TRUE(json::parse(cut, nullptr, false).is_discarded());
}

TEST(Bodies, HalfSentSendsPartOfTheBody) {
  EXPECT_EQ(half_sent_bytes(2), 1u);
  EXPECT_EQ(half_sent_bytes(3), 1u);
  EXPECT_EQ(half_sent_bytes(400), 200u);
  const std::string body = completion_body(request(), answer_for(request().messages, 0), 1, 0);
  const std::size_t sent = half_sent_bytes(body.size());
  EXPECT_GT(sent, 0u);
  EXPECT_LT(sent, body.size());
  EXPECT_TRUE(json::parse(body.substr(0, sent), nullptr, false).is_discarded());
}

TEST(Bodies, ErrorModelsAndLogLine) {
  const json error = json::parse(error_body("bad", "invalid_request_error", std::nullopt, std::nullopt));
  EXPECT_EQ(error, json::parse(R"({"error":{"message":"bad","type":"invalid_request_error","param":null,
                                   "code":null}})"));
  const json error2 = json::parse(error_body("slow down", "requests", "x", "rate_limit_exceeded"));
  EXPECT_EQ(error2["error"]["param"], "x");
  EXPECT_EQ(error2["error"]["code"], "rate_limit_exceeded");

  EXPECT_EQ(json::parse(models_body("teacher-small", 5)),
            json::parse(R"({"object":"list","data":[{"id":"teacher-small","object":"model","created":5,
                            "owned_by":"distill-teacher"}]})"));

  LogEntry entry{123, 200, "m", "00000000000000ff", 2, Fault::slow, Noise::pii, "req_9", "", "", "", {}};
  const std::string line = log_line(entry);
  EXPECT_EQ(line,
            "{\"t_ms\":123,\"status\":200,\"model\":\"m\",\"prompt_sha\":\"00000000000000ff\",\"n\":2,"
            "\"fault\":\"slow\",\"noise\":\"pii\",\"request_id\":\"req_9\"}\n");
  entry.batch_id = "batch_3";
  entry.custom_id = "dl-1";
  EXPECT_TRUE(log_line(entry).ends_with(",\"request_id\":\"req_9\",\"batch_id\":\"batch_3\",\"custom_id\":\"dl-1\"}\n"));
  LogEntry api{5, 200, "", "", 0, Fault::none, Noise::none, "", "batch_4", "", "POST /v1/batches", {"a", "b"}};
  EXPECT_EQ(log_line(api),
            "{\"t_ms\":5,\"status\":200,\"api\":\"POST /v1/batches\",\"batch_id\":\"batch_4\",\"lines\":[\"a\",\"b\"]}\n");
  EXPECT_EQ(fault_name(Fault::rate_limit), "429");
  EXPECT_EQ(fault_name(Fault::server_error), "500");
  EXPECT_EQ(fault_name(Fault::reset), "reset");
  EXPECT_EQ(fault_name(Fault::half_sent), "half_sent");
  EXPECT_EQ(fault_name(Fault::trickle), "trickle");
}

std::string batch_input(int lines) {
  std::string text;
  for (int i = 0; i < lines; ++i) {
    json line = {{"custom_id", "c" + std::to_string(i)}, {"method", "POST"}, {"url", "/v1/chat/completions"}};
    line["body"]["model"] = "m";
    line["body"]["messages"] = json::array({{{"role", "user"}, {"content", "Spell " + std::to_string(10 + i)}}});
    text += line.dump() + "\n";
  }
  return text;
}

json created_batch(BatchStore& store, const std::string& input) {
  const json file = json::parse(store.upload("batch", "in.jsonl", input).body);
  const Reply reply = store.create(json{{"input_file_id", file["id"]},
                                        {"endpoint", "/v1/chat/completions"},
                                        {"completion_window", "24h"},
                                        {"metadata", {{"k", "v"}}}}
                                       .dump());
  EXPECT_EQ(reply.status, 200) << reply.body;
  return json::parse(reply.body);
}

std::vector<json> jsonl_lines(const std::string& text) {
  std::vector<json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  return lines;
}

TEST(BatchStore, ABatchAnswersItsLinesWithTheChatLogicAndLogsThem) {
  std::vector<LogEntry> log;
  BatchStore store({0, 0, 0, 0, 1, 0}, [&log](const LogEntry& entry) { log.push_back(entry); });
  const json batch = created_batch(store, batch_input(3));
  EXPECT_EQ(batch["status"], "validating");
  EXPECT_EQ(batch["metadata"]["k"], "v");
  const json done = json::parse(store.retrieve(batch["id"]).body);
  EXPECT_EQ(done["status"], "completed");
  EXPECT_EQ(done["request_counts"], json::parse(R"({"total":3,"completed":3,"failed":0})"));
  EXPECT_TRUE(done["error_file_id"].is_null());
  const std::vector<json> output = jsonl_lines(store.file_content(done["output_file_id"]).body);
  ASSERT_EQ(output.size(), 3u);
  EXPECT_EQ(output[1]["custom_id"], "c1");
  EXPECT_EQ(output[1]["response"]["status_code"], 200);
  EXPECT_EQ(output[1]["response"]["body"]["choices"][0]["message"]["content"], "one one");
  EXPECT_TRUE(output[1]["error"].is_null());
  // The upload, the create (with its lines), three answered lines, the retrieve and the download.
  ASSERT_EQ(log.size(), 7u);
  EXPECT_EQ(log[1].api, "POST /v1/batches");
  EXPECT_EQ(log[1].lines, (std::vector<std::string>{"c0", "c1", "c2"}));
  EXPECT_EQ(log[2].custom_id, "c0");
  EXPECT_EQ(log[2].batch_id, batch["id"]);
  EXPECT_EQ(store.retrieve("batch_404").status, 404);
}

TEST(BatchStore, FailedLinesExpiryCutOutputListAndCancel) {
  BatchStore store({0, 1, 1, 1, 1, 0}, [](const LogEntry&) {});
  const json expired = json::parse(store.retrieve(created_batch(store, batch_input(4))["id"]).body);
  EXPECT_EQ(expired["status"], "expired");
  const std::vector<json> errors = jsonl_lines(store.file_content(expired["error_file_id"]).body);
  ASSERT_EQ(errors.size(), 4u);  // two lines failed with HTTP 500, two never ran
  EXPECT_EQ(errors[0]["response"]["status_code"], 500);
  EXPECT_EQ(errors[3]["error"]["code"], "batch_expired");

  const json second = json::parse(store.retrieve(created_batch(store, "{\"custom_id\":\"x\"}\n")["id"]).body);
  EXPECT_EQ(second["status"], "failed");
  EXPECT_EQ(second["errors"]["data"][0]["line"], 1);

  BatchStore slow({60000, 0, 0, 1, 1, 0}, [](const LogEntry&) {});
  const json pending = created_batch(slow, batch_input(1));
  const json listed = json::parse(slow.list(std::nullopt, 10).body);
  EXPECT_EQ(listed["data"][0]["id"], pending["id"]);
  EXPECT_FALSE(listed["has_more"]);
  EXPECT_EQ(json::parse(slow.cancel(pending["id"]).body)["status"], "cancelled");
  EXPECT_EQ(json::parse(slow.list(pending["id"].get<std::string>(), 10).body)["data"].size(), 0u);

  BatchStore cut({0, 0, 0, 1, 1, 0}, [](const LogEntry&) {});
  const json done = json::parse(cut.retrieve(created_batch(cut, batch_input(2))["id"]).body);
  const std::string first = cut.file_content(done["output_file_id"]).body;
  const std::string whole = cut.file_content(done["output_file_id"]).body;
  EXPECT_EQ(first, whole.substr(0, whole.size() / 2));
  EXPECT_EQ(jsonl_lines(whole).size(), 2u);
}

}  // namespace
