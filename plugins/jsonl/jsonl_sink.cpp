// The jsonl sink: kept records as chat `messages` JSONL with teacher,
// provenance and annotations, in size-bounded shards
// (part-r<run>-<shard>.jsonl); rejected records with their step and reason
// (rejects-r<run>.jsonl); and manifest.json describing every run. Files are
// committed at checkpoints: the committed lengths live in the instance's
// state, and a resumed run cuts every file back to them, after checking
// that none is shorter than committed (damaged output is reported, not
// written over).
#include <distill/plugin.h>
#include <distill/record_json.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <map>

#include "output_file.h"

namespace {

using namespace distill;
using distill::io::OutputFile;
using distill::io::sync_dir;
using nlohmann::json;
namespace fs = std::filesystem;

std::string padded(std::uint64_t value, int width) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%0*llu", width, static_cast<unsigned long long>(value));
  return buffer;
}

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

class JsonlSink : public Sink {
 public:
  explicit JsonlSink(Context& ctx)
      : ctx_(ctx),
        dir_(ctx.params().path("dir")),
        max_shard_bytes_(static_cast<std::uint64_t>(ctx.params().integer("max_shard_bytes"))),
        include_logprobs_(ctx.params().flag("include_logprobs")),
        rejects_(ctx.params().str("rejects")),
        run_tag_("r" + padded(ctx.run().run, 4)) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw std::runtime_error("cannot create output folder " + dir_.string() + ": " + ec.message());
    restore();
  }

  unsigned encode_parallelism() const override { return 64; }

  void encode(Batch& batch) override {
    std::vector<std::string> lines(batch.slots.size());
    for (std::size_t i = 0; i < batch.slots.size(); ++i) {
      const Slot& slot = batch.slots[i];
      if (slot.live()) {
        append_json(lines[i], slot.record, include_logprobs_);
        lines[i].push_back('\n');
      }
    }
    batch.scratch = std::move(lines);
  }

  void write(Batch& batch) override {
    auto& lines = std::any_cast<std::vector<std::string>&>(batch.scratch);
    for (std::size_t i = 0; i < batch.slots.size(); ++i) {
      const Slot& slot = batch.slots[i];
      if (slot.live())
        write_kept(slot.record, lines[i]);
      else if (rejects_ == "all" || (rejects_ == "source" && slot.dropped_by == "source"))
        write_reject(slot);
    }
  }

  void flush() override {
    if (current_) current_->sync();
    if (rejects_file_) rejects_file_->sync();
    if (created_files_) {
      sync_dir(dir_);
      created_files_ = false;
    }
    ctx_.state().put(state_key(), dump(committed()));
  }

  void finish() override {
    json entry = committed();
    entry["run"] = ctx_.run().run;
    json steps = json::array();
    for (const StepStats& s : ctx_.stats()) {
      json drops = json::object();
      for (const auto& [reason, count] : s.drops_by_reason) drops[reason] = count;
      steps.push_back({{"step", s.step}, {"plugin", s.plugin}, {"in", s.records_in}, {"kept", s.kept},
                       {"dropped", s.dropped}, {"drops", drops}});
    }
    entry["steps"] = std::move(steps);
    ctx_.state().put("manifest/" + padded(ctx_.run().run, 20), dump(entry));

    json manifest = {{"pipeline", ctx_.run().pipeline}, {"runs", json::array()}};
    ctx_.state().scan("manifest/", [&](std::string_view, std::string_view value) {
      manifest["runs"].push_back(json::parse(value));
      return true;
    });
    const fs::path temp = dir_ / "manifest.json.tmp";
    {
      OutputFile out(temp, 0);
      out.append(manifest.dump(2) + "\n");
      out.sync();
    }
    fs::rename(temp, dir_ / "manifest.json");
    sync_dir(dir_);
  }

 private:
  struct Shard {
    std::string file;
    std::uint64_t bytes = 0;
    std::int64_t records = 0;
  };

  std::string state_key() const { return "run/" + padded(ctx_.run().run, 20); }
  std::string shard_name(std::size_t index) const { return "part-" + run_tag_ + "-" + padded(index, 5) + ".jsonl"; }
  std::string rejects_name() const { return "rejects-" + run_tag_ + ".jsonl"; }

  json committed() const {
    json shards = json::array();
    for (const Shard& s : shards_) shards.push_back({{"file", s.file}, {"bytes", s.bytes}, {"records", s.records}});
    return {{"shards", shards},
            {"records", records_},
            {"rejects", {{"file", rejects_name()}, {"bytes", rejects_bytes()}, {"records", rejected_}}},
            {"teachers", teachers_},
            {"terms", terms_}};
  }

  std::uint64_t rejects_bytes() const { return rejects_file_ ? rejects_file_->size() : rejects_committed_; }

  // Brings the folder back to this run's last commit: committed files are
  // cut to their committed length, files written after it are removed.
  void restore() {
    std::optional<std::string> saved = ctx_.state().get(state_key());
    std::vector<std::string> keep;
    if (saved) {
      json state = json::parse(*saved);
      for (const json& s : state.at("shards"))
        shards_.push_back({s.at("file").get<std::string>(), s.at("bytes").get<std::uint64_t>(),
                           s.at("records").get<std::int64_t>()});
      records_ = state.at("records").get<std::int64_t>();
      rejected_ = state.at("rejects").at("records").get<std::int64_t>();
      rejects_committed_ = state.at("rejects").at("bytes").get<std::uint64_t>();
      teachers_ = state.at("teachers").get<std::map<std::string, std::int64_t>>();
      terms_ = state.at("terms").get<std::map<std::string, std::int64_t>>();
      for (const Shard& s : shards_) keep.push_back(s.file);
    }
    check_committed();
    const std::string prefix = "part-" + run_tag_ + "-";
    for (const auto& entry : fs::directory_iterator(dir_)) {
      const std::string name = entry.path().filename().string();
      const bool ours = name.starts_with(prefix) || name == rejects_name();
      if (ours && std::find(keep.begin(), keep.end(), name) == keep.end() && name != rejects_name())
        fs::remove(entry.path());
    }
    for (std::size_t i = 0; i + 1 < shards_.size(); ++i) OutputFile(dir_ / shards_[i].file, shards_[i].bytes);
    if (!shards_.empty()) current_ = std::make_unique<OutputFile>(dir_ / shards_.back().file, shards_.back().bytes);
    if (rejects_committed_ > 0 || fs::exists(dir_ / rejects_name()))
      rejects_file_ = std::make_unique<OutputFile>(dir_ / rejects_name(), rejects_committed_);
  }

  // A file shorter than its committed length lost records outside
  // distilld; resuming would write after the hole. Checked before restore()
  // changes any file.
  void check_committed() const {
    std::vector<std::pair<std::string, std::uint64_t>> committed_files;
    for (const Shard& s : shards_) committed_files.emplace_back(s.file, s.bytes);
    committed_files.emplace_back(rejects_name(), rejects_committed_);
    for (const auto& [name, bytes] : committed_files) {
      std::error_code ec;
      const std::uintmax_t size = fs::file_size(dir_ / name, ec);
      if (bytes == 0 || (!ec && size >= bytes)) continue;
      const std::string found = ec ? " is missing" : " is " + std::to_string(size) + " bytes, shorter than";
      throw std::runtime_error("the output in " + dir_.string() + " is damaged (" + name + found + " the " +
                               std::to_string(bytes) +
                               " bytes committed at the last checkpoint): restore the folder from a backup, or "
                               "delete it and the state folder to start the pipeline over; no file was changed");
    }
  }

  void write_kept(const Record& record, const std::string& line) {
    if (!current_ || (current_->size() > 0 && current_->size() + line.size() > max_shard_bytes_)) next_shard();
    current_->append(line);
    Shard& shard = shards_.back();
    shard.bytes = current_->size();
    ++shard.records;
    ++records_;
    ++teachers_[record.teacher.model.empty() ? "(unknown)" : record.teacher.model];
    ++terms_[record.provenance.terms.empty() ? "(unspecified)" : record.provenance.terms];
  }

  void write_reject(const Slot& slot) {
    if (!rejects_file_) {
      rejects_file_ = std::make_unique<OutputFile>(dir_ / rejects_name(), 0);
      created_files_ = true;
    }
    std::string line = "{\"step\":";
    append_json_string(line, slot.dropped_by);
    line += ",\"reason\":";
    append_json_string(line, slot.drop_reason);
    line += ",\"record\":";
    append_json(line, slot.record);
    line += "}\n";
    rejects_file_->append(line);
    ++rejected_;
  }

  void next_shard() {
    if (current_) current_->sync();
    shards_.push_back({shard_name(shards_.size()), 0, 0});
    current_ = std::make_unique<OutputFile>(dir_ / shards_.back().file, 0);
    created_files_ = true;
  }

  Context& ctx_;
  fs::path dir_;
  std::uint64_t max_shard_bytes_;
  bool include_logprobs_;
  std::string rejects_;
  std::string run_tag_;
  std::vector<Shard> shards_;
  std::unique_ptr<OutputFile> current_;
  std::unique_ptr<OutputFile> rejects_file_;
  std::uint64_t rejects_committed_ = 0;
  std::int64_t records_ = 0;
  std::int64_t rejected_ = 0;
  std::map<std::string, std::int64_t> teachers_;
  std::map<std::string, std::int64_t> terms_;
  bool created_files_ = false;
};

}  // namespace

distill::Component jsonl_sink_component() {
  return distill::sink<JsonlSink>({
      distill::param::Path("dir", "output folder for shards, rejects and manifest.json").is_required(),
      distill::param::Int("max_shard_bytes", "start a new shard past this size")
          .default_value("268435456").min(1024),
      distill::param::Bool("include_logprobs", "write teacher top-k logprobs").default_value("true"),
      distill::param::Choice("rejects", "which dropped records to write to rejects-r<run>.jsonl",
                             {"none", "source", "all"})
          .default_value("source"),
  });
}
