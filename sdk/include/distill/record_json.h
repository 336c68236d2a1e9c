// Record <-> JSON in the chat `messages` shape that distilld writes and
// reads back: {"id", "messages": [... prompt ..., assistant response],
// "reasoning", "teacher", "provenance", "annotations", "logprobs"}.
// Empty optional fields are left out. Needs nlohmann-json (header-only).
#pragma once

#include <nlohmann/json.hpp>

#include <distill/record.h>

namespace distill {

inline nlohmann::ordered_json to_json(const Record& record) {
  using json = nlohmann::ordered_json;
  json out = json::object();
  out["id"] = record.id;
  json messages = json::array();
  for (const Message& m : record.prompt) messages.push_back({{"role", m.role}, {"content", m.content}});
  messages.push_back({{"role", "assistant"}, {"content", record.response}});
  out["messages"] = std::move(messages);
  if (!record.reasoning.empty()) out["reasoning"] = record.reasoning;

  const TeacherInfo& t = record.teacher;
  json teacher = json::object();
  if (!t.model.empty()) teacher["model"] = t.model;
  if (!t.endpoint.empty()) teacher["endpoint"] = t.endpoint;
  if (!t.response_id.empty()) teacher["response_id"] = t.response_id;
  if (!t.finish_reason.empty()) teacher["finish_reason"] = t.finish_reason;
  if (!t.params.empty()) {
    json params = json::object();
    for (const auto& [key, text] : t.params) params[key] = json::parse(text, nullptr, false);
    teacher["params"] = std::move(params);
  }
  if (t.usage != Usage{})
    teacher["usage"] = {{"prompt_tokens", t.usage.prompt_tokens},
                        {"completion_tokens", t.usage.completion_tokens},
                        {"reasoning_tokens", t.usage.reasoning_tokens}};
  out["teacher"] = std::move(teacher);

  const Provenance& p = record.provenance;
  out["provenance"] = {{"source", p.source},         {"uri", p.uri},
                       {"offset", p.offset},         {"collected_at_ms", p.collected_at_ms},
                       {"request_id", p.request_id}, {"terms", p.terms}};
  if (!record.annotations.empty()) {
    json annotations = json::object();
    for (const auto& [key, value] : record.annotations)
      std::visit([&](const auto& v) { annotations[key] = v; }, value);
    out["annotations"] = std::move(annotations);
  }
  if (!record.logprobs.empty()) {
    json tokens = json::array();
    for (const TokenLogprob& token : record.logprobs) {
      json top = json::array();
      for (const TopLogprob& alt : token.top) top.push_back(json::array({alt.token, alt.logprob}));
      tokens.push_back({{"token", token.token}, {"logprob", token.logprob}, {"top", std::move(top)}});
    }
    out["logprobs"] = std::move(tokens);
  }
  return out;
}

// Reads what to_json wrote. Throws nlohmann::json::exception on a wrong shape.
inline Record record_from_json(const nlohmann::json& in) {
  Record record;
  record.id = in.value("id", "");
  const auto& messages = in.at("messages");
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (i + 1 == messages.size() && m.value("role", "") == "assistant")
      record.response = m.value("content", "");
    else
      record.prompt.push_back({m.value("role", ""), m.value("content", "")});
  }
  record.reasoning = in.value("reasoning", "");
  if (auto it = in.find("teacher"); it != in.end()) {
    TeacherInfo& t = record.teacher;
    t.model = it->value("model", "");
    t.endpoint = it->value("endpoint", "");
    t.response_id = it->value("response_id", "");
    t.finish_reason = it->value("finish_reason", "");
    if (auto params = it->find("params"); params != it->end())
      for (const auto& [key, value] : params->items()) t.params[key] = value.dump();
    if (auto usage = it->find("usage"); usage != it->end()) {
      t.usage.prompt_tokens = usage->value("prompt_tokens", std::int64_t{0});
      t.usage.completion_tokens = usage->value("completion_tokens", std::int64_t{0});
      t.usage.reasoning_tokens = usage->value("reasoning_tokens", std::int64_t{0});
    }
  }
  if (auto it = in.find("provenance"); it != in.end()) {
    Provenance& p = record.provenance;
    p.source = it->value("source", "");
    p.uri = it->value("uri", "");
    p.offset = it->value("offset", std::int64_t{0});
    p.collected_at_ms = it->value("collected_at_ms", std::int64_t{0});
    p.request_id = it->value("request_id", "");
    p.terms = it->value("terms", "");
  }
  if (auto it = in.find("annotations"); it != in.end())
    for (const auto& [key, value] : it->items())
      record.annotations[key] = value.is_number() ? Annotation(value.get<double>())
                                                  : Annotation(value.is_string() ? value.get<std::string>() : value.dump());
  if (auto it = in.find("logprobs"); it != in.end())
    for (const auto& token : *it) {
      TokenLogprob out{token.value("token", ""), token.value("logprob", 0.0), {}};
      for (const auto& alt : token.value("top", nlohmann::json::array()))
        out.top.push_back({alt.at(0).get<std::string>(), alt.at(1).get<double>()});
      record.logprobs.push_back(std::move(out));
    }
  return record;
}

}  // namespace distill
