// The jsonl source: imports teacher outputs from JSONL files (a path or a
// glob) in the shapes formats.h reads. Lines are read serially (next) and
// parsed in parallel (decode). A line that cannot be used becomes a dead
// letter: dropped at the source with its reason, line number and text.
// Position: file number, file path and byte offset of the next line.
#include <distill/plugin.h>
#include <glob.h>

#include <mutex>
#include <nlohmann/json.hpp>

#include "formats.h"
#include "line_reader.h"

namespace {

using namespace distill;
using nlohmann::json;

constexpr std::size_t kRawKeptInDeadLetter = 4096;

std::vector<std::string> expand(const std::string& pattern) {
  if (pattern.find_first_of("*?[") == std::string::npos) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(pattern, ec)) throw ParamError("path", "input file " + pattern + " does not exist");
    return {pattern};
  }
  glob_t found{};
  const int result = ::glob(pattern.c_str(), 0, nullptr, &found);
  std::vector<std::string> files(found.gl_pathv, found.gl_pathv + found.gl_pathc);
  ::globfree(&found);
  if (result == GLOB_NOMATCH || files.empty()) throw ParamError("path", "no input file matches '" + pattern + "'");
  if (result != 0) throw ParamError("path", "cannot list the files matching '" + pattern + "'");
  return files;
}

// Raw lines of a batch, for decode(); index i belongs to slot i.
struct RawLines {
  std::vector<std::string> text;
  std::vector<std::int64_t> line_number;
};

class JsonlSource : public Source {
 public:
  explicit JsonlSource(Context& ctx)
      : files_(expand(ctx.params().str("path"))),
        format_(*jsonl::parse_format(ctx.params().str("format"))),
        terms_(ctx.params().str("terms")),
        endpoint_(ctx.params().str("endpoint")),
        max_line_bytes_(static_cast<std::uint64_t>(ctx.params().integer("max_line_bytes"))) {
    for (const std::string& file : files_) {
      std::error_code ec;
      const auto size = std::filesystem::file_size(file, ec);
      if (ec) throw std::runtime_error("cannot read input file " + file + ": " + ec.message());
      sizes_.push_back(size);
      total_bytes_ += size;
    }
    if (ctx.params().has("batch_input"))
      requests_ = std::make_unique<jsonl::BatchInputIndex>(ctx.params().str("batch_input"));
  }

  static void validate(const Params& params) { expand(params.str("path")); }

  bool next(Batch& batch, std::size_t max) override {
    RawLines raw;
    io::LineReader::Line line;
    while (batch.slots.size() < max && file_index_ < files_.size()) {
      if (!reader_) reader_ = std::make_unique<io::LineReader>(files_[file_index_], offset_, max_line_bytes_);
      if (!reader_->next(line)) {
        reader_.reset();
        done_bytes_ += sizes_[file_index_];
        ++file_index_;
        offset_ = 0;
        line_number_ = 0;
        continue;
      }
      offset_ = reader_->offset();
      ++line_number_;
      if (!line.too_long && line.text.find_first_not_of(" \t\r") == std::string::npos) continue;
      Slot& slot = batch.slots.emplace_back();
      slot.record.provenance = {"jsonl", files_[file_index_], static_cast<std::int64_t>(line.offset), 0, "", terms_};
      slot.record.teacher.endpoint = endpoint_;
      if (line.too_long) {
        slot.drop_reason = "line_too_long";
        slot.record.annotations["line"] = static_cast<double>(line_number_);
        slot.record.annotations["error"] = "line of " + std::to_string(line.length) + " bytes exceeds max_line_bytes (" +
                                           std::to_string(max_line_bytes_) + ")";
      }
      raw.text.push_back(line.too_long ? std::string() : std::move(line.text));
      raw.line_number.push_back(line_number_);
    }
    const bool any = !batch.slots.empty();
    batch.scratch = std::move(raw);
    return any;
  }

  unsigned decode_parallelism() const override { return 64; }

  void decode(Batch& batch) override {
    auto& raw = std::any_cast<RawLines&>(batch.scratch);
    std::unique_ptr<jsonl::LineParser> parser = acquire_parser();
    std::vector<Slot> decoded;
    decoded.reserve(batch.slots.size());
    for (std::size_t i = 0; i < batch.slots.size(); ++i) {
      Slot& slot = batch.slots[i];
      if (!slot.live()) {
        decoded.push_back(std::move(slot));
        continue;
      }
      jsonl::LineResult result = parser->parse(raw.text[i]);
      if (!result.ok()) {
        slot.drop_reason = result.dead_reason;
        slot.record.annotations["line"] = static_cast<double>(raw.line_number[i]);
        slot.record.annotations["error"] = result.dead_detail;
        slot.record.annotations["raw"] = raw.text[i].substr(0, kRawKeptInDeadLetter);
        decoded.push_back(std::move(slot));
        continue;
      }
      for (Record& record : result.records) {
        Slot& out = decoded.emplace_back();
        out.record = std::move(record);
        Provenance& provenance = out.record.provenance;  // the parser set request_id and collected_at_ms
        provenance.source = slot.record.provenance.source;
        provenance.uri = slot.record.provenance.uri;
        provenance.offset = slot.record.provenance.offset;
        provenance.terms = terms_;
        if (out.record.teacher.endpoint.empty()) out.record.teacher.endpoint = endpoint_;
      }
    }
    batch.slots = std::move(decoded);
    release_parser(std::move(parser));
  }

  std::string position() const override {
    if (file_index_ >= files_.size()) return json{{"file", file_index_}, {"path", ""}, {"offset", 0}, {"line", 0}}.dump();
    return json{{"file", file_index_}, {"path", files_[file_index_]}, {"offset", offset_}, {"line", line_number_}}.dump();
  }

  void seek(std::string_view position) override {
    const json p = json::parse(position);
    const std::size_t index = p.at("file").get<std::size_t>();
    const std::string path = p.at("path").get<std::string>();
    reader_.reset();
    if (index >= files_.size()) {
      if (index != files_.size() || !path.empty())
        throw std::runtime_error("the input files changed since the checkpoint: it was past file #" +
                                 std::to_string(index) + " but the path now matches " +
                                 std::to_string(files_.size()) + " files");
    } else if (files_[index] != path) {
      throw std::runtime_error("the input files changed since the checkpoint: file #" + std::to_string(index) +
                               " was " + path + " and is now " + files_[index]);
    } else if (sizes_[index] < p.at("offset").get<std::uint64_t>()) {
      throw std::runtime_error("input file " + path + " is shorter than at the checkpoint (" +
                               std::to_string(sizes_[index]) + " < " + p.at("offset").dump() + " bytes)");
    }
    file_index_ = index;
    offset_ = p.at("offset").get<std::uint64_t>();
    line_number_ = p.at("line").get<std::int64_t>();
    done_bytes_ = 0;
    for (std::size_t i = 0; i < index && i < sizes_.size(); ++i) done_bytes_ += sizes_[i];
  }

  SourceProgress progress() const override {
    return {done_bytes_ + (file_index_ < files_.size() ? offset_ : 0), total_bytes_};
  }

 private:
  std::unique_ptr<jsonl::LineParser> acquire_parser() {
    std::lock_guard lock(parsers_mutex_);
    if (parsers_.empty()) return std::make_unique<jsonl::LineParser>(format_, requests_.get());
    std::unique_ptr<jsonl::LineParser> parser = std::move(parsers_.back());
    parsers_.pop_back();
    return parser;
  }

  void release_parser(std::unique_ptr<jsonl::LineParser> parser) {
    std::lock_guard lock(parsers_mutex_);
    parsers_.push_back(std::move(parser));
  }

  std::vector<std::string> files_;
  std::vector<std::uint64_t> sizes_;
  std::uint64_t total_bytes_ = 0;
  std::uint64_t done_bytes_ = 0;
  jsonl::Format format_;
  std::string terms_;
  std::string endpoint_;
  std::uint64_t max_line_bytes_;
  std::unique_ptr<jsonl::BatchInputIndex> requests_;
  std::size_t file_index_ = 0;
  std::uint64_t offset_ = 0;
  std::int64_t line_number_ = 0;
  std::unique_ptr<io::LineReader> reader_;
  std::mutex parsers_mutex_;
  std::vector<std::unique_ptr<jsonl::LineParser>> parsers_;
};

}  // namespace

distill::Component jsonl_source_component() {
  return distill::source<JsonlSource>({
      distill::param::Path("path", "input file, or a glob of files read in sorted order").is_required(),
      distill::param::Choice("format", "line shape, or auto to detect it per line",
                             {"auto", "chat_completion", "batch_output", "messages", "sharegpt", "alpaca"})
          .default_value("auto"),
      distill::param::Path("batch_input", "Batch API input file: prompts for batch_output lines, by custom_id"),
      distill::param::String("terms", "terms/licence tag stamped into every record's provenance")
          .default_value("unspecified"),
      distill::param::String("endpoint", "teacher endpoint or provider name stamped into records").default_value("\"\""),
      distill::param::Int("max_line_bytes", "longer lines become dead letters").default_value("67108864").min(16),
  });
}
