// The prompts source: prompts to send to a teacher, one per JSONL line
// (the shapes prompt_decoder.h reads), on top of io::LineSource.
#include <distill/plugin.h>

#include "line_source.h"
#include "prompt_decoder.h"

namespace {

using namespace distill;

class PromptsSource : public io::LineSource {
 public:
  explicit PromptsSource(Context& ctx) : LineSource(ctx, "prompts"), system_(ctx.params().str("system")) {}

  static void validate(const Params& params) { expand(params.str("path")); }

 protected:
  std::unique_ptr<io::LineDecoder> make_decoder() override { return std::make_unique<prompts::PromptDecoder>(system_); }

 private:
  std::string system_;
};

std::vector<ParamSpec> prompts_params() {
  std::vector<ParamSpec> params = io::line_source_params("prompts");
  params.push_back(param::String("system", "system message put first in prompts that have none").default_value("\"\""));
  return params;
}

}  // namespace

DISTILL_PLUGIN("prompts", "reads prompts to send to a teacher from JSONL (prompt, messages or Batch API input lines)",
               distill::source<PromptsSource>(prompts_params()))
