// Fuzz target: the record JSON writer (sdk record_json.h) and its readers.
// A Record built from the input is written; the text must be JSON that an
// independent parser (nlohmann) reads back field for field, and the jsonl
// source reading distilld's own output (the `messages` shape) must get back
// the prompt, response, reasoning and logprobs. Text that is not valid
// UTF-8 is written as U+FFFD, so it is compared only when valid; logprobs
// are finite (every reader refuses the null a non-finite one is written as).
#include <distill/record_json.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <simdjson.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "jsonl_formats.h"

namespace {

using namespace distill;
using distill::fuzz::require;
using nlohmann::json;

bool valid_utf8(const std::string& text) { return simdjson::validate_utf8(text.data(), text.size()); }

// `read` equals `written` where it can: always when valid UTF-8, and as
// valid (replaced) text otherwise.
bool same_text(const std::string& read, const std::string& written) {
  return valid_utf8(written) ? read == written : valid_utf8(read);
}

double finite(FuzzedDataProvider& input) { return input.ConsumeFloatingPoint<double>(); }

std::string text(FuzzedDataProvider& input) { return input.ConsumeRandomLengthString(64); }

Record record_of(FuzzedDataProvider& input) {
  Record record;
  record.id = text(input);
  for (int i = input.ConsumeIntegralInRange(0, 3); i > 0; --i) record.prompt.push_back({text(input), text(input)});
  record.response = text(input);
  record.reasoning = text(input);
  record.teacher.model = text(input);
  record.teacher.endpoint = text(input);
  record.teacher.response_id = text(input);
  record.teacher.finish_reason = text(input);
  for (int i = input.ConsumeIntegralInRange(0, 2); i > 0; --i)
    record.teacher.params[text(input)] = std::to_string(input.ConsumeIntegral<std::int64_t>());
  record.teacher.usage = {input.ConsumeIntegral<std::int64_t>(), input.ConsumeIntegral<std::int64_t>(),
                          input.ConsumeIntegral<std::int64_t>()};
  record.provenance = {text(input), text(input), input.ConsumeIntegral<std::int64_t>(),
                       input.ConsumeIntegral<std::int64_t>(), text(input), text(input)};
  for (int i = input.ConsumeIntegralInRange(0, 3); i > 0; --i) {
    if (input.ConsumeBool())
      record.annotations[text(input)] = input.ConsumeBool() ? finite(input) : std::nan("");
    else
      record.annotations[text(input)] = text(input);
  }
  for (int i = input.ConsumeIntegralInRange(0, 3); i > 0; --i) {
    TokenLogprob token{text(input), finite(input), {}};
    for (int j = input.ConsumeIntegralInRange(0, 2); j > 0; --j) token.top.push_back({text(input), finite(input)});
    record.logprobs.push_back(std::move(token));
  }
  return record;
}

void check_json(const json& j, const Record& r) {
  require(same_text(j.at("id").get<std::string>(), r.id), "id reads back");
  const json& messages = j.at("messages");
  require(messages.size() == r.prompt.size() + 1, "one message per prompt message, then the response");
  for (std::size_t i = 0; i < r.prompt.size(); ++i)
    require(same_text(messages[i].at("role").get<std::string>(), r.prompt[i].role) &&
                same_text(messages[i].at("content").get<std::string>(), r.prompt[i].content),
            "prompt messages read back");
  require(same_text(messages.back().at("content").get<std::string>(), r.response), "the response reads back");
  const json& teacher = j.at("teacher");
  require(teacher.value("model", "") == r.teacher.model || !valid_utf8(r.teacher.model), "teacher.model reads back");
  for (const auto& [name, value] : r.teacher.params)
    if (valid_utf8(name)) require(teacher.at("params").at(name).dump() == value, "teacher.params read back");
  if (r.teacher.usage != Usage{})
    require(teacher.at("usage").at("prompt_tokens").get<std::int64_t>() == r.teacher.usage.prompt_tokens &&
                teacher.at("usage").at("completion_tokens").get<std::int64_t>() == r.teacher.usage.completion_tokens &&
                teacher.at("usage").at("reasoning_tokens").get<std::int64_t>() == r.teacher.usage.reasoning_tokens,
            "teacher.usage reads back");
  const json& provenance = j.at("provenance");
  require(provenance.at("offset").get<std::int64_t>() == r.provenance.offset &&
              provenance.at("collected_at_ms").get<std::int64_t>() == r.provenance.collected_at_ms &&
              same_text(provenance.at("uri").get<std::string>(), r.provenance.uri) &&
              same_text(provenance.at("terms").get<std::string>(), r.provenance.terms),
          "provenance reads back");
  for (const auto& [name, value] : r.annotations) {
    if (!valid_utf8(name)) continue;
    const json& read = j.at("annotations").at(name);
    if (const double* number = std::get_if<double>(&value))
      require(std::isfinite(*number) ? read.get<double>() == *number : read.is_null(), "number annotations read back");
    else
      require(same_text(read.get<std::string>(), std::get<std::string>(value)), "text annotations read back");
  }
}

bool all_valid_utf8(const Record& r) {
  bool valid = valid_utf8(r.response) && valid_utf8(r.reasoning);
  for (const Message& m : r.prompt) valid = valid && valid_utf8(m.role) && valid_utf8(m.content);
  for (const TokenLogprob& t : r.logprobs) {
    valid = valid && valid_utf8(t.token);
    for (const TopLogprob& top : t.top) valid = valid && valid_utf8(top.token);
  }
  return valid;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  const Record record = record_of(input);
  const std::string text = to_json_text(record);

  const json parsed = json::parse(text, nullptr, false);
  require(!parsed.is_discarded(), "the writer writes valid JSON");
  check_json(parsed, record);

  static jsonl::LineParser own_output(jsonl::Format::Messages);
  const jsonl::LineResult read = own_output.parse(text);
  require(read.ok() && read.records.size() == 1, "the jsonl source reads distilld's output");
  if (!all_valid_utf8(record)) return 0;
  const Record& back = read.records.front();
  require(back.prompt == record.prompt, "the prompt reads back equal");
  require(back.response == record.response, "the response reads back equal");
  require(back.reasoning == record.reasoning, "the reasoning reads back equal");
  require(back.logprobs == record.logprobs, "the logprobs read back equal");
  return 0;
}
