// JSON encodings and keys of run metadata, checkpoints and drop samples.
#include "store/runs.h"

#include <nlohmann/json.hpp>

#include "store/keys.h"

namespace distill::store {
namespace {

using nlohmann::json;

std::string run_key(const std::string& pipeline, std::uint64_t run) {
  std::string key;
  append_text(key, pipeline);
  append_u64(key, run);
  return key;
}

RunStatus parse_status(const std::string& text) {
  for (RunStatus s : {RunStatus::Running, RunStatus::Stopped, RunStatus::Failed, RunStatus::Completed})
    if (text == to_string(s)) return s;
  throw StoreError("unknown run status '" + text + "' in the state database");
}

json encode(const RunMeta& meta) {
  return {{"run", meta.run},       {"status", to_string(meta.status)}, {"fingerprint", meta.fingerprint},
          {"started_ms", meta.started_ms}, {"ended_ms", meta.ended_ms}, {"error", meta.error}};
}

RunMeta decode_meta(std::string_view text) {
  json j = json::parse(text);
  return {j.at("run").get<std::uint64_t>(), parse_status(j.at("status").get<std::string>()),
          j.at("fingerprint").get<std::string>(), j.at("started_ms").get<std::int64_t>(),
          j.at("ended_ms").get<std::int64_t>(), j.at("error").get<std::string>()};
}

template <class T>
json encode_pairs(const std::vector<std::pair<std::string, T>>& pairs) {
  json out = json::array();
  for (const auto& [name, value] : pairs) out.push_back(json::array({name, value}));
  return out;
}

template <class T>
std::vector<std::pair<std::string, T>> decode_pairs(const json& in) {
  std::vector<std::pair<std::string, T>> out;
  for (const json& pair : in) out.emplace_back(pair.at(0).get<std::string>(), pair.at(1).get<T>());
  return out;
}

json encode_tables(const std::vector<Table>& tables) {
  json out = json::array();
  for (const Table& t : tables) out.push_back({{"name", t.name}, {"columns", t.columns}, {"rows", t.rows}});
  return out;
}

std::vector<Table> decode_tables(const json& in) {
  std::vector<Table> out;
  for (const json& t : in)
    out.push_back({t.at("name").get<std::string>(), t.at("columns").get<std::vector<std::string>>(),
                   t.at("rows").get<std::vector<std::vector<std::string>>>()});
  return out;
}

json encode(const Checkpoint& checkpoint) {
  json steps = json::array();
  for (const StepStats& s : checkpoint.steps)
    steps.push_back({{"step", s.step},       {"plugin", s.plugin},   {"in", s.records_in},
                     {"kept", s.kept},       {"dropped", s.dropped}, {"errors", s.errors}, {"busy_ns", s.busy_ns},
                     {"drops", encode_pairs(s.drops_by_reason)}, {"counters", encode_pairs(s.counters)},
                     {"gauges", encode_pairs(s.gauges)}, {"tables", encode_tables(s.tables)}});
  return {{"position", checkpoint.position}, {"records_read", checkpoint.records_read}, {"steps", steps}};
}

Checkpoint decode_checkpoint(std::string_view text) {
  json j = json::parse(text);
  Checkpoint checkpoint{j.at("position").get<std::string>(), j.at("records_read").get<std::int64_t>(), {}};
  for (const json& s : j.at("steps"))
    checkpoint.steps.push_back({s.at("step").get<std::string>(), s.at("plugin").get<std::string>(),
                                s.at("in").get<std::int64_t>(), s.at("kept").get<std::int64_t>(),
                                s.at("dropped").get<std::int64_t>(), s.at("errors").get<std::int64_t>(),
                                s.at("busy_ns").get<std::int64_t>(), decode_pairs<std::int64_t>(s.at("drops")),
                                decode_pairs<std::int64_t>(s.at("counters")),
                                decode_pairs<double>(s.value("gauges", json::array())),
                                decode_tables(s.value("tables", json::array()))});
  return checkpoint;
}

}  // namespace

const char* to_string(RunStatus status) {
  switch (status) {
    case RunStatus::Running: return "running";
    case RunStatus::Stopped: return "stopped";
    case RunStatus::Failed: return "failed";
    case RunStatus::Completed: return "completed";
  }
  return "?";
}

std::vector<RunMeta> RunStore::runs(const std::string& pipeline) const {
  std::string prefix;
  append_text(prefix, pipeline);
  std::vector<RunMeta> out;
  store_.scan(Family::Runs, prefix, [&](std::string_view, std::string_view value) {
    out.push_back(decode_meta(value));
    return true;
  });
  return out;
}

std::optional<RunMeta> RunStore::latest_run(const std::string& pipeline) const {
  std::vector<RunMeta> all = runs(pipeline);
  if (all.empty()) return std::nullopt;
  return all.back();
}

std::optional<Checkpoint> RunStore::checkpoint(const std::string& pipeline, std::uint64_t run) const {
  std::optional<std::string> text = store_.get(Family::Checkpoints, run_key(pipeline, run));
  if (!text) return std::nullopt;
  return decode_checkpoint(*text);
}

void RunStore::put_meta(WriteSet& writes, const std::string& pipeline, const RunMeta& meta) const {
  writes.put(Family::Runs, run_key(pipeline, meta.run), encode(meta).dump());
}

void RunStore::put_checkpoint(WriteSet& writes, const std::string& pipeline, std::uint64_t run,
                              const Checkpoint& checkpoint) const {
  // A plugin's table cell may hold any bytes: invalid UTF-8 is replaced, not a failed checkpoint.
  writes.put(Family::Checkpoints, run_key(pipeline, run),
             encode(checkpoint).dump(-1, ' ', false, json::error_handler_t::replace));
}

void RunStore::put_drop(WriteSet& writes, const std::string& pipeline, std::uint64_t run,
                        std::uint32_t step_index, const DropSample& sample) const {
  std::string key = run_key(pipeline, run);
  append_u32(key, step_index);
  append_text(key, sample.reason);
  append_u64(key, sample.seq);
  json value = {{"step", sample.step}, {"reason", sample.reason}, {"seq", sample.seq}, {"record", sample.record_json}};
  writes.put(Family::Drops, key, value.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::vector<DropSample> RunStore::drops(const std::string& pipeline, std::uint64_t run, const std::string& step,
                                        const std::string& reason, std::size_t limit) const {
  std::vector<DropSample> out;
  if (limit == 0) return out;
  store_.scan(Family::Drops, run_key(pipeline, run), [&](std::string_view, std::string_view value) {
    json j = json::parse(value);
    DropSample sample{j.at("step").get<std::string>(), j.at("reason").get<std::string>(),
                      j.at("seq").get<std::uint64_t>(), j.at("record").get<std::string>()};
    if ((step.empty() || sample.step == step) && (reason.empty() || sample.reason == reason))
      out.push_back(std::move(sample));
    return out.size() < limit;
  });
  return out;
}

}  // namespace distill::store
