// The prompts source's line decoder (see prompt_decoder.h).
#include "prompt_decoder.h"

#include <nlohmann/json.hpp>

#include <optional>

namespace distill::prompts {
namespace {

using nlohmann::json;

// Text of a message's content: a string, or the text parts of an array.
std::optional<std::string> content_text(const json& content) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) return std::nullopt;
  std::string text;
  for (const json& part : content)
    if (part.is_object() && part.value("type", "") == "text" && part.contains("text") && part["text"].is_string())
      text += (text.empty() ? "" : "\n") + part["text"].get<std::string>();
  return text;
}

void dead(Slot& slot, const char* reason, const std::string& detail) {
  slot.drop_reason = reason;
  slot.record.annotations["error"] = detail;
}

}  // namespace

void PromptDecoder::decode(const std::string& line, Slot& slot, std::vector<Slot>& out) {
  const json doc = json::parse(line, nullptr, false);
  if (doc.is_discarded()) return dead(slot, "malformed_json", "the line is not valid JSON");
  if (!doc.is_object()) return dead(slot, "unrecognized_format", "a prompt line must be a JSON object");
  Record record;
  record.provenance = slot.record.provenance;
  const json* messages = nullptr;
  if (auto body = doc.find("body"); body != doc.end() && body->is_object()) {
    if (!body->contains("messages")) return dead(slot, "missing_field", "a Batch API line needs \"body.messages\"");
    messages = &(*body)["messages"];
    for (const auto& [key, value] : body->items())
      if (key != "model" && key != "messages") record.teacher.params[key] = value.dump();
  } else if (doc.contains("messages")) {
    messages = &doc["messages"];
  } else if (auto prompt = doc.find("prompt"); prompt != doc.end()) {
    if (!prompt->is_string()) return dead(slot, "wrong_type", "\"prompt\" must be a string");
    record.prompt.push_back({"user", prompt->get<std::string>()});
  } else {
    return dead(slot, "unrecognized_format",
                "a prompt line needs \"prompt\", \"messages\" or a Batch API \"body\" with messages");
  }
  if (messages) {
    if (!messages->is_array() || messages->empty())
      return dead(slot, "missing_field", "\"messages\" must be a non-empty array");
    for (const json& m : *messages) {
      std::optional<std::string> text = m.is_object() ? content_text(m.value("content", json())) : std::nullopt;
      if (!text || !m.contains("role") || !m["role"].is_string())
        return dead(slot, "wrong_type", "every message needs a string \"role\" and text \"content\"");
      record.prompt.push_back({m["role"].get<std::string>(), std::move(*text)});
    }
  }
  for (const char* key : {"custom_id", "id"})
    if (auto id = doc.find(key); id != doc.end() && id->is_string() && record.provenance.request_id.empty())
      record.provenance.request_id = id->get<std::string>();
  if (!system_.empty() && record.prompt.front().role != "system") record.prompt.insert(record.prompt.begin(), {"system", system_});
  out.push_back({std::move(record), "", ""});
}

}  // namespace distill::prompts
