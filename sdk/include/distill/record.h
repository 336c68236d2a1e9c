// distill::Record: the unit that flows through a pipeline. Plain C++ types
// only, so a plugin needs nothing but this SDK to read or write one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace distill {

struct Message {
  std::string role;     // "system", "user", "assistant", "tool"
  std::string content;
  bool operator==(const Message&) const = default;
};

struct TopLogprob {
  std::string token;
  double logprob = 0;
  bool operator==(const TopLogprob&) const = default;
};

// One generated token with the teacher's top-k alternatives.
struct TokenLogprob {
  std::string token;
  double logprob = 0;
  std::vector<TopLogprob> top;
  bool operator==(const TokenLogprob&) const = default;
};

struct Usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t reasoning_tokens = 0;
  bool operator==(const Usage&) const = default;
};

struct TeacherInfo {
  std::string model;          // the model that answered (as the response names it)
  std::string endpoint;       // base URL or provider name
  std::string response_id;    // the response's own id ("chatcmpl-...")
  std::string finish_reason;  // "stop", "length", ...
  std::map<std::string, std::string> params;  // sampling parameters, values as JSON text
  Usage usage;
  bool operator==(const TeacherInfo&) const = default;
};

struct Provenance {
  std::string source;              // plugin that produced the record
  std::string uri;                 // file or URL it came from
  std::int64_t offset = 0;         // byte offset (or index) within uri
  std::int64_t collected_at_ms = 0;  // when the teacher output was obtained; 0 = unknown
  std::string request_id;          // provider request id or batch custom_id
  std::string terms;               // licence/terms tag the output was obtained under
  bool operator==(const Provenance&) const = default;
};

using Annotation = std::variant<double, std::string>;

struct Record {
  std::string id;  // stable content id: see content_id.h
  std::vector<Message> prompt;
  std::string response;
  std::string reasoning;
  std::vector<TokenLogprob> logprobs;
  TeacherInfo teacher;
  Provenance provenance;
  std::map<std::string, Annotation> annotations;
  bool operator==(const Record&) const = default;
};

}  // namespace distill
