// Fuzz target: the teacher stage's reading of an HTTP 200 response body
// (plugins/common/jsonl_formats.h, Format::ChatCompletion), with what the
// stage relies on: a body it accepts gives at least one answer, and usage
// counts that can be paid for (never negative: they feed the token
// buckets and the cost counters).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "jsonl_formats.h"

using distill::fuzz::require;
namespace jsonl = distill::jsonl;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static jsonl::LineParser parser(jsonl::Format::ChatCompletion);  // one per thread, reused, as in the stage
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const jsonl::LineResult result = parser.parse(body);
  if (!result.ok()) {
    require(result.records.empty() && !result.dead_detail.empty(), "a refused body says why and gives nothing");
    return 0;
  }
  for (const distill::Record& answer : result.records) {
    const distill::Usage& usage = answer.teacher.usage;
    require(usage.prompt_tokens >= 0 && usage.completion_tokens >= 0 && usage.reasoning_tokens >= 0,
            "an accepted answer's token counts are not negative");
  }
  return 0;
}
