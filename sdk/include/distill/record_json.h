// Writes a Record as one JSON object in the chat `messages` shape that
// distilld outputs: {"id", "messages": [... prompt ..., assistant
// response], "reasoning", "teacher", "provenance", "annotations",
// "logprobs"}; empty optional fields are left out. A direct writer (no
// JSON DOM): it is on the hot path of every sink. Invalid UTF-8 in any
// text becomes U+FFFD, so the output is always valid JSON.
#pragma once

#include <charconv>
#include <cmath>
#include <string>
#include <string_view>

#include <distill/record.h>

namespace distill {
namespace json_detail {

// Length of the valid UTF-8 sequence at p (1-4), or 0 when it is invalid.
inline std::size_t utf8_length(const unsigned char* p, std::size_t left) {
  const unsigned char c = p[0];
  auto cont = [&](std::size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < left && p[i] >= lo && p[i] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

}  // namespace json_detail

// Appends `text` as a JSON string literal.
inline void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  out.push_back('"');
  std::size_t run = 0;  // start of the pending run of bytes copied as they are
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 1;
    if (c >= 0x80) {
      length = json_detail::utf8_length(p + i, n - i);
      if (length > 0) {
        i += length;
        continue;
      }
      length = 1;
    }
    out.append(text.data() + run, i - run);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out += "\xEF\xBF\xBD";  // U+FFFD for a byte that is not valid UTF-8
        }
    }
    i += length;
    run = i;
  }
  out.append(text.data() + run, n - run);
  out.push_back('"');
}

// Shortest text that reads back as the same double; null when not finite.
inline void append_json_number(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, result.ptr);
}

inline void append_json_int(std::string& out, std::int64_t value) { out += std::to_string(value); }

// Appends the record as one JSON object (no trailing newline).
inline void append_json(std::string& out, const Record& record, bool include_logprobs = true) {
  auto key = [&out](std::string_view name, bool first = false) {
    if (!first) out.push_back(',');
    out.push_back('"');
    out.append(name);
    out += "\":";
  };
  auto text_field = [&](std::string_view name, const std::string& value) {
    key(name);
    append_json_string(out, value);
  };
  auto message = [&](std::string_view role, const std::string& content) {
    out += "{\"role\":";
    append_json_string(out, role);
    out += ",\"content\":";
    append_json_string(out, content);
    out.push_back('}');
  };

  out.push_back('{');
  key("id", true);
  append_json_string(out, record.id);
  key("messages");
  out.push_back('[');
  for (const Message& m : record.prompt) {
    message(m.role, m.content);
    out.push_back(',');
  }
  message("assistant", record.response);
  out.push_back(']');
  if (!record.reasoning.empty()) text_field("reasoning", record.reasoning);

  const TeacherInfo& t = record.teacher;
  key("teacher");
  out.push_back('{');
  std::size_t mark = out.size();
  auto optional_text = [&](std::string_view name, const std::string& value) {
    if (value.empty()) return;
    key(name, out.size() == mark);
    append_json_string(out, value);
  };
  optional_text("model", t.model);
  optional_text("endpoint", t.endpoint);
  optional_text("response_id", t.response_id);
  optional_text("finish_reason", t.finish_reason);
  if (!t.params.empty()) {
    key("params", out.size() == mark);
    out.push_back('{');
    bool first = true;
    for (const auto& [name, json_text] : t.params) {
      if (!first) out.push_back(',');
      first = false;
      append_json_string(out, name);
      out.push_back(':');
      out += json_text.empty() ? "null" : json_text;  // already JSON text
    }
    out.push_back('}');
  }
  if (t.usage != Usage{}) {
    key("usage", out.size() == mark);
    out += "{\"prompt_tokens\":";
    append_json_int(out, t.usage.prompt_tokens);
    out += ",\"completion_tokens\":";
    append_json_int(out, t.usage.completion_tokens);
    out += ",\"reasoning_tokens\":";
    append_json_int(out, t.usage.reasoning_tokens);
    out.push_back('}');
  }
  out.push_back('}');

  const Provenance& p = record.provenance;
  key("provenance");
  out += "{\"source\":";
  append_json_string(out, p.source);
  text_field("uri", p.uri);
  key("offset");
  append_json_int(out, p.offset);
  key("collected_at_ms");
  append_json_int(out, p.collected_at_ms);
  text_field("request_id", p.request_id);
  text_field("terms", p.terms);
  out.push_back('}');

  if (!record.annotations.empty()) {
    key("annotations");
    out.push_back('{');
    bool first = true;
    for (const auto& [name, value] : record.annotations) {
      if (!first) out.push_back(',');
      first = false;
      append_json_string(out, name);
      out.push_back(':');
      if (const double* number = std::get_if<double>(&value))
        append_json_number(out, *number);
      else
        append_json_string(out, std::get<std::string>(value));
    }
    out.push_back('}');
  }
  if (include_logprobs && !record.logprobs.empty()) {
    key("logprobs");
    out.push_back('[');
    for (std::size_t i = 0; i < record.logprobs.size(); ++i) {
      const TokenLogprob& token = record.logprobs[i];
      if (i) out.push_back(',');
      out += "{\"token\":";
      append_json_string(out, token.token);
      out += ",\"logprob\":";
      append_json_number(out, token.logprob);
      out += ",\"top\":[";
      for (std::size_t j = 0; j < token.top.size(); ++j) {
        if (j) out.push_back(',');
        out.push_back('[');
        append_json_string(out, token.top[j].token);
        out.push_back(',');
        append_json_number(out, token.top[j].logprob);
        out.push_back(']');
      }
      out += "]}";
    }
    out.push_back(']');
  }
  out.push_back('}');
}

inline std::string to_json_text(const Record& record, bool include_logprobs = true) {
  std::string out;
  out.reserve(256 + record.response.size() * 11 / 10);
  append_json(out, record, include_logprobs);
  return out;
}

}  // namespace distill
