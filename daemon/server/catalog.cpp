// Pipeline records and revisions as JSON values under their names.
#include "server/catalog.h"

#include <nlohmann/json.hpp>

#include "store/keys.h"

namespace distill::server {
namespace {

using nlohmann::json;
using store::Family;

std::string revision_key(const std::string& name, std::int64_t revision) {
  std::string key;
  store::append_text(key, name);
  store::append_u64(key, static_cast<std::uint64_t>(revision));
  return key;
}

std::string encode(const PipelineRecord& r) {
  return json{{"name", r.name},
              {"revision", r.revision},
              {"state", static_cast<int>(r.state)},
              {"stop_target", static_cast<int>(r.stop_target)},
              {"error", r.error},
              {"consecutive_crashes", r.consecutive_crashes},
              {"run", r.run},
              {"description", r.description},
              {"file", r.file},
              {"submitted_ms", r.submitted_ms},
              {"updated_ms", r.updated_ms}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

PipelineRecord decode_record(std::string_view text) {
  const json j = json::parse(text);
  PipelineRecord r;
  r.name = j.at("name").get<std::string>();
  r.revision = j.at("revision").get<std::int64_t>();
  r.state = static_cast<rpc::PipelineState::type>(j.at("state").get<int>());
  r.stop_target = static_cast<rpc::PipelineState::type>(j.at("stop_target").get<int>());
  r.error = j.at("error").get<std::string>();
  r.consecutive_crashes = j.at("consecutive_crashes").get<int>();
  r.run = j.at("run").get<std::int64_t>();
  r.description = j.at("description").get<std::string>();
  r.file = j.at("file").get<std::string>();
  r.submitted_ms = j.at("submitted_ms").get<std::int64_t>();
  r.updated_ms = j.at("updated_ms").get<std::int64_t>();
  return r;
}

}  // namespace

Catalog::Catalog(const std::filesystem::path& dir)
    : store_(store::Store::open(dir, store::Store::Mode::ReadWrite, store::Store::Layout::Daemon)) {}

std::vector<PipelineRecord> Catalog::pipelines() const {
  std::vector<PipelineRecord> out;
  store_->scan(Family::Pipelines, "", [&](std::string_view, std::string_view value) {
    out.push_back(decode_record(value));
    return true;
  });
  return out;
}

void Catalog::put(const PipelineRecord& record) {
  store::WriteSet writes(*store_);
  writes.put(Family::Pipelines, record.name, encode(record));
  store_->write(writes, true);
}

void Catalog::put(const PipelineRecord& record, const Revision& revision) {
  store::WriteSet writes(*store_);
  writes.put(Family::Pipelines, record.name, encode(record));
  writes.put(Family::Revisions, revision_key(record.name, record.revision),
             json{{"yaml", revision.yaml}, {"file", revision.file}, {"submitted_ms", revision.submitted_ms}}.dump(
                 -1, ' ', false, json::error_handler_t::replace));
  store_->write(writes, true);
}

std::optional<Revision> Catalog::revision(const std::string& name, std::int64_t revision) const {
  const std::optional<std::string> text = store_->get(Family::Revisions, revision_key(name, revision));
  if (!text) return std::nullopt;
  const json j = json::parse(*text);
  return Revision{j.at("yaml").get<std::string>(), j.at("file").get<std::string>(),
                  j.at("submitted_ms").get<std::int64_t>()};
}

void Catalog::erase(const std::string& name) {
  store::WriteSet writes(*store_);
  writes.erase(Family::Pipelines, name, "");
  std::string prefix;
  store::append_text(prefix, name);
  store_->scan(Family::Revisions, prefix, [&](std::string_view key, std::string_view) {
    writes.erase(Family::Revisions, key, "");
    return true;
  });
  store_->write(writes, true);
}

}  // namespace distill::server
