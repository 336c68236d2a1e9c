// The prompts source's line decoder: one JSONL line of prompts, as
//   {"prompt": "..."}                           a single user message
//   {"messages": [{"role", "content"}, ...]}    a chat (content may be text parts)
//   {"custom_id", "body": {"messages", ...}}    an OpenAI Batch API input line
// with an optional "id"/"custom_id" kept as the request id, into one
// record or a dead letter. A Batch API line's sampling parameters
// (everything in body but model and messages) travel with the record and
// override the teacher stage's own.
#pragma once

#include <string>
#include <vector>

#include "line_source.h"

namespace distill::prompts {

class PromptDecoder : public io::LineDecoder {
 public:
  // `system`: a system message put first in prompts that have none ("": none).
  explicit PromptDecoder(const std::string& system) : system_(system) {}

  void decode(const std::string& line, Slot& slot, std::vector<Slot>& out) override;

 private:
  const std::string& system_;
};

}  // namespace distill::prompts
