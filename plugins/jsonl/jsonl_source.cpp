// The jsonl source: imports teacher outputs from JSONL files (a path or a
// glob) in the shapes plugins/common/jsonl_formats.h reads, on top of
// io::LineSource (reading, position, parallel decoding). A line that cannot
// be used becomes a dead letter: dropped at the source with its reason,
// line number and text.
#include <distill/plugin.h>

#include "jsonl_formats.h"
#include "line_source.h"

namespace {

using namespace distill;

class JsonlDecoder : public io::LineDecoder {
 public:
  JsonlDecoder(jsonl::Format format, const jsonl::BatchInputIndex* requests, const std::string& endpoint)
      : parser_(format, requests), endpoint_(endpoint) {}

  void decode(const std::string& line, Slot& slot, std::vector<Slot>& out) override {
    jsonl::LineResult result = parser_.parse(line);
    if (!result.ok()) {
      slot.drop_reason = result.dead_reason;
      slot.record.annotations["error"] = result.dead_detail;
      return;
    }
    for (Record& record : result.records) {
      Slot& decoded = out.emplace_back();
      decoded.record = std::move(record);
      Provenance& provenance = decoded.record.provenance;  // the parser set request_id and collected_at_ms
      provenance.source = slot.record.provenance.source;
      provenance.uri = slot.record.provenance.uri;
      provenance.offset = slot.record.provenance.offset;
      provenance.terms = slot.record.provenance.terms;
      if (decoded.record.teacher.endpoint.empty()) decoded.record.teacher.endpoint = endpoint_;
    }
  }

 private:
  jsonl::LineParser parser_;
  const std::string& endpoint_;
};

class JsonlSource : public io::LineSource {
 public:
  explicit JsonlSource(Context& ctx)
      : LineSource(ctx, "jsonl"),
        format_(*jsonl::parse_format(ctx.params().str("format"))),
        endpoint_(ctx.params().str("endpoint")) {
    if (ctx.params().has("batch_input"))
      requests_ = std::make_unique<jsonl::BatchInputIndex>(ctx.params().str("batch_input"));
  }

  static void validate(const Params& params) { expand(params.str("path")); }

 protected:
  std::unique_ptr<io::LineDecoder> make_decoder() override {
    return std::make_unique<JsonlDecoder>(format_, requests_.get(), endpoint_);
  }

 private:
  jsonl::Format format_;
  std::string endpoint_;
  std::unique_ptr<jsonl::BatchInputIndex> requests_;
};

std::vector<ParamSpec> source_params() {
  std::vector<ParamSpec> params = io::line_source_params("input");
  params.insert(params.begin() + 1,
                {param::Choice("format", "line shape, or auto to detect it per line",
                               {"auto", "chat_completion", "batch_output", "messages", "sharegpt", "alpaca"})
                     .default_value("auto"),
                 param::Path("batch_input", "Batch API input file: prompts for batch_output lines, by custom_id")});
  params.insert(params.end() - 1,
                param::String("endpoint", "teacher endpoint or provider name stamped into records").default_value("\"\""));
  return params;
}

}  // namespace

distill::Component jsonl_source_component() { return distill::source<JsonlSource>(source_params()); }
