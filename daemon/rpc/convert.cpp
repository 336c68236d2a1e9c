// Building the IDL's structs from engine, store and plugin types.
#include "rpc/convert.h"

#include <nlohmann/json.hpp>

#include "spec/pipeline_spec.h"

namespace distill::rpc {
namespace {

using nlohmann::json;

ParamInfo param_info(const ParamSpec& spec) {
  ParamInfo info;
  info.name = spec.name;
  info.type = distill::to_string(spec.type);
  info.description = spec.description;
  info.is_required = spec.required;
  if (spec.default_text) info.__set_default_value(*spec.default_text);
  if (spec.minimum) info.__set_min_value(*spec.minimum);
  if (spec.maximum) info.__set_max_value(*spec.maximum);
  info.choices = spec.choices;
  for (const ParamSpec& field : spec.fields) info.fields.push_back(param_info(field));
  return info;
}

std::string text_of(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

std::int64_t number_of(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

// The record as the JSON writer (record_json.h) spells it.
Record record_from_json(const std::string& text) {
  Record record;
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return record;
  record.id = text_of(j, "id");
  if (const auto messages = j.find("messages"); messages != j.end() && messages->is_array())
    for (const json& m : *messages) {
      if (!m.is_object()) continue;
      Message message;
      message.role = text_of(m, "role");
      message.content = text_of(m, "content");
      record.messages.push_back(std::move(message));
    }
  if (const auto t = j.find("teacher"); t != j.end() && t->is_object()) {
    record.teacher.model = text_of(*t, "model");
    record.teacher.endpoint = text_of(*t, "endpoint");
    record.teacher.response_id = text_of(*t, "response_id");
    record.teacher.finish_reason = text_of(*t, "finish_reason");
  }
  if (const auto p = j.find("provenance"); p != j.end() && p->is_object()) {
    record.provenance.source = text_of(*p, "source");
    record.provenance.uri = text_of(*p, "uri");
    record.provenance.offset = number_of(*p, "offset");
    record.provenance.collected_at_ms = number_of(*p, "collected_at_ms");
    record.provenance.request_id = text_of(*p, "request_id");
    record.provenance.terms = text_of(*p, "terms");
  }
  if (const auto a = j.find("annotations"); a != j.end() && a->is_object())
    for (const auto& [name, value] : a->items())
      record.annotations[name] = value.is_string() ? value.get<std::string>() : value.dump();
  return record;
}

void fill_from_steps(PipelineStatus& status, const std::vector<distill::StepStats>& steps) {
  for (const distill::StepStats& step : steps) status.steps.push_back(to_rpc(step));
}

}  // namespace

std::string state_name(PipelineState::type state) {
  const auto it = _PipelineState_VALUES_TO_NAMES.find(state);
  std::string name = it == _PipelineState_VALUES_TO_NAMES.end() ? "unknown" : it->second;
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

StepStats to_rpc(const distill::StepStats& stats) {
  StepStats out;
  out.step = stats.step;
  out.plugin = stats.plugin;
  out.records_in = stats.records_in;
  out.kept = stats.kept;
  out.dropped = stats.dropped;
  out.errors = stats.errors;
  out.busy_ns = stats.busy_ns;
  out.drops_by_reason.insert(stats.drops_by_reason.begin(), stats.drops_by_reason.end());
  out.counters.insert(stats.counters.begin(), stats.counters.end());
  out.gauges.insert(stats.gauges.begin(), stats.gauges.end());
  if (!stats.tables.empty()) {
    std::vector<Table> tables;
    for (const distill::Table& t : stats.tables) {
      Table table;
      table.name = t.name;
      table.columns = t.columns;
      table.rows = t.rows;
      tables.push_back(std::move(table));
    }
    out.__set_tables(std::move(tables));
  }
  return out;
}

distill::StepStats from_rpc(const StepStats& stats) {
  distill::StepStats out;
  out.step = stats.step;
  out.plugin = stats.plugin;
  out.records_in = stats.records_in;
  out.kept = stats.kept;
  out.dropped = stats.dropped;
  out.errors = stats.errors;
  out.busy_ns = stats.busy_ns;
  out.drops_by_reason.assign(stats.drops_by_reason.begin(), stats.drops_by_reason.end());
  out.counters.assign(stats.counters.begin(), stats.counters.end());
  out.gauges.assign(stats.gauges.begin(), stats.gauges.end());
  for (const Table& t : stats.tables) out.tables.push_back({t.name, t.columns, t.rows});
  return out;
}

LogLine to_rpc(const engine::LogLine& line) {
  LogLine out;
  out.seq = static_cast<std::int64_t>(line.seq);
  out.time_ms = line.time_ms;
  out.level = line.level;
  out.step = line.step;
  out.message = line.message;
  return out;
}

PluginInfo to_rpc(const plugins::LoadedPlugin& plugin) {
  PluginInfo info;
  info.name = plugin.name;
  info.description = plugin.info->description;
  info.file = plugin.file.string();
  for (const Component& component : plugin.info->components) {
    ComponentInfo c;
    c.kind = distill::to_string(component.kind);
    for (const ParamSpec& spec : component.params) c.params.push_back(param_info(spec));
    c.command_name = component.command_name;
    c.command_usage = component.command_usage;
    info.components.push_back(std::move(c));
  }
  return info;
}

Sample to_rpc(const store::DropSample& sample) {
  Sample out;
  out.step = sample.step;
  out.reason = sample.reason;
  out.seq = static_cast<std::int64_t>(sample.seq);
  out.record = record_from_json(sample.record_json);
  out.record_json = sample.record_json;
  return out;
}

InvalidPipeline invalid_pipeline(const std::vector<distill::Diagnostic>& diagnostics) {
  InvalidPipeline invalid;
  for (const distill::Diagnostic& d : diagnostics) {
    Diagnostic out;
    out.file = d.file;
    out.line = d.mark.line;
    out.column = d.mark.column;
    out.key = d.key;
    out.message = d.message;
    out.text = spec::format(d);
    invalid.diagnostics.push_back(std::move(out));
  }
  const std::string file = diagnostics.empty() ? "" : diagnostics.front().file;
  invalid.message = std::to_string(diagnostics.size()) + (diagnostics.size() == 1 ? " error in " : " errors in ") +
                    file + (diagnostics.empty() ? "" : "; the first: " + invalid.diagnostics.front().text);
  return invalid;
}

PipelineStatus status_of(const engine::RunSnapshot& s) {
  PipelineStatus status;
  status.info.run = static_cast<std::int64_t>(s.run);
  status.info.records_read = s.records_read;
  status.info.error = s.error;
  status.info.progress = s.source_progress.total > 0 ? static_cast<double>(s.source_progress.done) /
                                                            static_cast<double>(s.source_progress.total)
                                                      : -1;
  fill_from_steps(status, s.steps);
  status.bytes_done = static_cast<std::int64_t>(s.source_progress.done);
  status.bytes_read_here = static_cast<std::int64_t>(s.bytes_read_here);
  status.bytes_total = static_cast<std::int64_t>(s.source_progress.total);
  status.elapsed_s = s.elapsed_s;
  status.records_per_s = s.elapsed_s > 0 ? static_cast<double>(s.records_read_here) / s.elapsed_s : 0;
  status.checkpoints = s.checkpoints;
  status.resumed = s.resumed;
  status.finishing_step = s.finishing_step;
  status.finish_done = s.finish_done;
  status.finish_total = s.finish_total;
  status.finish_unit = s.finish_unit;
  status.live = true;
  return status;
}

PipelineStatus status_of(const store::RunMeta& meta, const std::optional<store::Checkpoint>& checkpoint) {
  PipelineStatus status;
  status.info.run = static_cast<std::int64_t>(meta.run);
  status.info.error = meta.error;
  status.info.progress = meta.status == store::RunStatus::Completed ? 1 : -1;
  if (checkpoint) {
    status.info.records_read = checkpoint->records_read;
    fill_from_steps(status, checkpoint->steps);
  }
  const std::int64_t end_ms = meta.ended_ms ? meta.ended_ms : meta.started_ms;
  status.elapsed_s = static_cast<double>(end_ms - meta.started_ms) / 1000.0;
  status.live = false;
  return status;
}

}  // namespace distill::rpc
