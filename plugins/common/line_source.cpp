// Reading, position keeping and parallel decoding for line-oriented sources.
#include "line_source.h"

#include <glob.h>

#include <filesystem>
#include <nlohmann/json.hpp>

namespace distill::io {
namespace {

using nlohmann::json;

constexpr std::size_t kRawKeptInDeadLetter = 4096;

// Raw lines of a batch between next() and decode(); index i belongs to slot i.
struct RawLines {
  std::vector<std::string> text;
  std::vector<std::int64_t> line_number;
};

}  // namespace

std::vector<std::string> LineSource::expand(const std::string& pattern) {
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

std::vector<ParamSpec> line_source_params(const std::string& what) {
  return {
      param::Path("path", what + " file, or a glob of files read in sorted order").is_required(),
      param::String("terms", "terms/licence tag stamped into every record's provenance").default_value("unspecified"),
      param::Int("max_line_bytes", "longer lines become dead letters").default_value("67108864").min(16),
  };
}

LineSource::LineSource(Context& ctx, std::string source_name)
    : source_name_(std::move(source_name)),
      files_(expand(ctx.params().str("path"))),
      terms_(ctx.params().str("terms")),
      max_line_bytes_(static_cast<std::uint64_t>(ctx.params().integer("max_line_bytes"))) {
  for (const std::string& file : files_) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(file, ec);
    if (ec) throw std::runtime_error("cannot read input file " + file + ": " + ec.message());
    sizes_.push_back(size);
    total_bytes_ += size;
  }
}

bool LineSource::next(Batch& batch, std::size_t max) {
  RawLines raw;
  LineReader::Line line;
  while (batch.slots.size() < max && file_index_ < files_.size()) {
    if (!reader_) reader_ = std::make_unique<LineReader>(files_[file_index_], offset_, max_line_bytes_);
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
    slot.record.provenance = {source_name_, files_[file_index_], static_cast<std::int64_t>(line.offset), 0, "", terms_};
    if (line.too_long) {
      slot.drop_reason = "line_too_long";
      slot.record.annotations["line"] = static_cast<double>(line_number_);
      slot.record.annotations["error"] = "line of " + std::to_string(line.length) +
                                         " bytes exceeds max_line_bytes (" + std::to_string(max_line_bytes_) + ")";
    }
    raw.text.push_back(line.too_long ? std::string() : std::move(line.text));
    raw.line_number.push_back(line_number_);
  }
  const bool any = !batch.slots.empty();
  batch.scratch = std::move(raw);
  return any;
}

void LineSource::decode(Batch& batch) {
  auto& raw = std::any_cast<RawLines&>(batch.scratch);
  std::unique_ptr<LineDecoder> decoder = acquire_decoder();
  std::vector<Slot> decoded;
  decoded.reserve(batch.slots.size());
  for (std::size_t i = 0; i < batch.slots.size(); ++i) {
    Slot& slot = batch.slots[i];
    if (slot.live()) {
      decoder->decode(raw.text[i], slot, decoded);
      if (slot.live()) continue;
      slot.record.annotations["line"] = static_cast<double>(raw.line_number[i]);
      slot.record.annotations["raw"] = raw.text[i].substr(0, kRawKeptInDeadLetter);
    }
    decoded.push_back(std::move(slot));
  }
  batch.slots = std::move(decoded);
  release_decoder(std::move(decoder));
}

std::string LineSource::position() const {
  const bool past_end = file_index_ >= files_.size();
  return json{{"file", file_index_},
              {"path", past_end ? "" : files_[file_index_]},
              {"offset", past_end ? 0 : offset_},
              {"line", past_end ? 0 : line_number_}}
      .dump();
}

void LineSource::seek(std::string_view position) {
  const json p = json::parse(position);
  const std::size_t index = p.at("file").get<std::size_t>();
  const std::string path = p.at("path").get<std::string>();
  const std::uint64_t offset = p.at("offset").get<std::uint64_t>();
  reader_.reset();
  if (index >= files_.size()) {
    if (index != files_.size() || !path.empty())
      throw std::runtime_error("the input files changed since the checkpoint: it was past file #" +
                               std::to_string(index) + " but the path now matches " + std::to_string(files_.size()) +
                               " files");
  } else if (files_[index] != path) {
    throw std::runtime_error("the input files changed since the checkpoint: file #" + std::to_string(index) + " was " +
                             path + " and is now " + files_[index]);
  } else if (sizes_[index] < offset) {
    throw std::runtime_error("input file " + path + " is shorter than at the checkpoint (" +
                             std::to_string(sizes_[index]) + " < " + std::to_string(offset) + " bytes)");
  }
  file_index_ = index;
  offset_ = offset;
  line_number_ = p.at("line").get<std::int64_t>();
  done_bytes_ = 0;
  for (std::size_t i = 0; i < index && i < sizes_.size(); ++i) done_bytes_ += sizes_[i];
}

SourceProgress LineSource::progress() const {
  return {done_bytes_ + (file_index_ < files_.size() ? offset_ : 0), total_bytes_};
}

std::unique_ptr<LineDecoder> LineSource::acquire_decoder() {
  std::lock_guard lock(decoders_mutex_);
  if (decoders_.empty()) return make_decoder();
  std::unique_ptr<LineDecoder> decoder = std::move(decoders_.back());
  decoders_.pop_back();
  return decoder;
}

void LineSource::release_decoder(std::unique_ptr<LineDecoder> decoder) {
  std::lock_guard lock(decoders_mutex_);
  decoders_.push_back(std::move(decoder));
}

}  // namespace distill::io
