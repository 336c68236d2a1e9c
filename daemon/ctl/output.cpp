// JSON and text renderings of the IDL's structs for distillctl.
#include "ctl/output.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "cli/report.h"
#include "rpc/convert.h"
#include "spec/pipeline_spec.h"

namespace distill::ctl {
namespace {

using nlohmann::json;

json tables_json(const std::vector<rpc::Table>& tables) {
  json out = json::array();
  for (const rpc::Table& t : tables) out.push_back({{"name", t.name}, {"columns", t.columns}, {"rows", t.rows}});
  return out;
}

json steps_json(const std::vector<rpc::StepStats>& steps) {
  json out = json::array();
  for (const rpc::StepStats& s : steps)
    out.push_back({{"step", s.step},
                   {"plugin", s.plugin},
                   {"in", s.records_in},
                   {"kept", s.kept},
                   {"dropped", s.dropped},
                   {"errors", s.errors},
                   {"busy_ns", s.busy_ns},
                   {"drops_by_reason", s.drops_by_reason},
                   {"counters", s.counters},
                   {"gauges", s.gauges},
                   {"tables", tables_json(s.tables)}});
  return out;
}

json params_json(const std::vector<rpc::ParamInfo>& params) {
  json out = json::array();
  for (const rpc::ParamInfo& p : params) {
    json param = {{"name", p.name}, {"type", p.type}, {"description", p.description}, {"required", p.is_required}};
    if (p.__isset.default_value) param["default"] = p.default_value;
    if (p.__isset.min_value) param["min"] = p.min_value;
    if (p.__isset.max_value) param["max"] = p.max_value;
    if (!p.choices.empty()) param["choices"] = p.choices;
    if (!p.fields.empty()) param["fields"] = params_json(p.fields);
    out.push_back(std::move(param));
  }
  return out;
}

// The declaration back from its description, for spec::describe (which
// prints it the way `distilld plugins` does).
ParamSpec declaration_of(const rpc::ParamInfo& info) {
  ParamSpec spec;
  spec.name = info.name;
  for (ParamType type : {ParamType::String, ParamType::Int, ParamType::Double, ParamType::Bool, ParamType::Path,
                         ParamType::StringList, ParamType::Choice, ParamType::Object, ParamType::Map, ParamType::Any})
    if (info.type == distill::to_string(type)) spec.type = type;
  spec.description = info.description;
  spec.required = info.is_required;
  if (info.__isset.default_value) spec.default_text = info.default_value;
  if (info.__isset.min_value) spec.minimum = info.min_value;
  if (info.__isset.max_value) spec.maximum = info.max_value;
  spec.choices = info.choices;
  for (const rpc::ParamInfo& field : info.fields) spec.fields.push_back(declaration_of(field));
  return spec;
}

store::RunStatus run_status_of(rpc::PipelineState::type state) {
  switch (state) {
    case rpc::PipelineState::COMPLETED: return store::RunStatus::Completed;
    case rpc::PipelineState::FAILED: return store::RunStatus::Failed;
    case rpc::PipelineState::PAUSED:
    case rpc::PipelineState::STOPPED: return store::RunStatus::Stopped;
    default: return store::RunStatus::Running;
  }
}

// The daemon's status as the engine's snapshot, for cli::summary and cli::progress_block.
engine::RunSnapshot snapshot_of(const rpc::PipelineStatus& status) {
  engine::RunSnapshot s;
  s.pipeline = status.info.name;
  s.run = static_cast<std::uint64_t>(status.info.run);
  s.status = run_status_of(status.info.state);
  s.resumed = status.resumed;
  s.error = status.info.error;
  s.records_read = status.info.records_read;
  s.records_read_here = static_cast<std::int64_t>(status.records_per_s * status.elapsed_s);
  s.bytes_read_here = static_cast<std::uint64_t>(status.bytes_read_here);
  s.source_progress = {static_cast<std::uint64_t>(status.bytes_done), static_cast<std::uint64_t>(status.bytes_total)};
  for (const rpc::StepStats& step : status.steps) s.steps.push_back(rpc::from_rpc(step));
  s.checkpoints = status.checkpoints;
  s.elapsed_s = status.elapsed_s;
  s.finishing_step = status.finishing_step;
  s.finish_done = status.finish_done;
  s.finish_total = status.finish_total;
  s.finish_unit = status.finish_unit;
  return s;
}

std::string progress_text(double progress) {
  if (progress < 0) return "-";
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%.1f%%", 100 * progress);
  return buffer;
}

}  // namespace

json to_json(const rpc::PipelineInfo& i) {
  return {{"name", i.name},
          {"revision", i.revision},
          {"state", rpc::state_name(i.state)},
          {"run", i.run},
          {"description", i.description},
          {"file", i.file},
          {"progress", i.progress},
          {"records_read", i.records_read},
          {"error", i.error},
          {"consecutive_crashes", i.consecutive_crashes},
          {"submitted_ms", i.submitted_ms},
          {"updated_ms", i.updated_ms},
          {"threads", i.threads}};
}

json to_json(const rpc::PipelineStatus& s) {
  return {{"pipeline", to_json(s.info)},
          {"steps", steps_json(s.steps)},
          {"bytes_done", s.bytes_done},
          {"bytes_total", s.bytes_total},
          {"elapsed_s", s.elapsed_s},
          {"records_per_s", s.records_per_s},
          {"checkpoints", s.checkpoints},
          {"resumed", s.resumed},
          {"finishing_step", s.finishing_step},
          {"finish_done", s.finish_done},
          {"finish_total", s.finish_total},
          {"finish_unit", s.finish_unit},
          {"live", s.live}};
}

std::string sample_line(const rpc::Sample& sample) {
  return R"({"step":)" + json(sample.step).dump() + R"(,"reason":)" + json(sample.reason).dump() + R"(,"record":)" +
         sample.record_json + "}";
}

json to_json(const rpc::PluginInfo& plugin) {
  json components = json::array();
  for (const rpc::ComponentInfo& c : plugin.components) {
    json component = {{"kind", c.kind}, {"params", params_json(c.params)}};
    if (!c.command_name.empty()) component["command"] = c.command_name + " " + c.command_usage;
    components.push_back(std::move(component));
  }
  return {{"name", plugin.name}, {"description", plugin.description}, {"file", plugin.file}, {"components", components}};
}

json to_json(const rpc::Health& h) {
  return {{"version", h.version},
          {"api_version", h.api_version},
          {"sdk_abi", h.sdk_abi},
          {"uptime_s", h.uptime_s},
          {"pipelines_by_state", h.pipelines_by_state},
          {"workers", h.workers},
          {"thread_budget", h.thread_budget},
          {"state_dir", h.state_dir}};
}

json to_json(const rpc::LogLine& l) {
  return {{"seq", l.seq}, {"time_ms", l.time_ms}, {"level", l.level}, {"step", l.step}, {"message", l.message}};
}

json to_json(const rpc::Diagnostic& d) {
  return {{"file", d.file}, {"line", d.line}, {"column", d.column}, {"key", d.key}, {"message", d.message}};
}

std::string pipeline_table(const std::vector<rpc::PipelineInfo>& pipelines, bool terminal) {
  std::vector<std::vector<std::string>> rows;
  if (terminal) rows.push_back({"NAME", "STATE", "RUN", "PROGRESS", "RECORDS", "REVISION", "ERROR"});
  for (const rpc::PipelineInfo& p : pipelines)
    rows.push_back({p.name, rpc::state_name(p.state), std::to_string(p.run), progress_text(p.progress),
                    cli::with_commas(p.records_read), std::to_string(p.revision),
                    p.error.substr(0, p.error.find('\n'))});
  std::vector<std::size_t> widths(7, 0);
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  std::ostringstream out;
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (!terminal) {
        out << (i ? "\t" : "") << row[i];
        continue;
      }
      out << row[i];
      if (i + 1 < row.size()) out << std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out << "\n";
  }
  return out.str();
}

std::string status_text(const rpc::PipelineStatus& status, bool live) {
  std::ostringstream out;
  const rpc::PipelineInfo& i = status.info;
  out << "pipeline " << i.name << ": " << rpc::state_name(i.state) << ", revision " << i.revision;
  if (i.threads > 0) out << ", " << i.threads << " threads";
  if (i.consecutive_crashes > 0) out << ", " << i.consecutive_crashes << " crashes in a row";
  out << "\n";
  if (i.run == 0) {
    if (!i.error.empty()) out << "error: " << i.error << "\n";
    return out.str() + "not run yet: distillctl start " + i.name + "\n";
  }
  const engine::RunSnapshot snapshot = snapshot_of(status);
  out << (live ? cli::progress_block(snapshot) : cli::summary(snapshot));
  return out.str();
}

std::string plugin_text(const rpc::PluginInfo& plugin) {
  std::ostringstream out;
  out << plugin.name << "  " << plugin.description << "\n  file: " << plugin.file << "\n";
  for (const rpc::ComponentInfo& c : plugin.components) {
    if (c.kind == "command") {
      out << "  adds the command: distilld " << c.command_name << " " << c.command_usage << "\n";
      continue;
    }
    std::vector<ParamSpec> params;
    for (const rpc::ParamInfo& param : c.params) params.push_back(declaration_of(param));
    out << "  as a " << c.kind << ":\n" << spec::describe(params, "    ");
  }
  return out.str();
}

std::string health_text(const rpc::Health& h) {
  std::ostringstream out;
  out << "distilld " << h.version << " (API " << h.api_version << ", plugin ABI " << h.sdk_abi << "), up "
      << static_cast<std::int64_t>(h.uptime_s) << " s, state " << h.state_dir << "\n";
  out << h.workers << " workers running, thread budget " << h.thread_budget << "\n";
  out << "pipelines:";
  if (h.pipelines_by_state.empty()) out << " none";
  for (const auto& [state, count] : h.pipelines_by_state) out << " " << state << " " << count;
  out << "\n";
  return out.str();
}

std::string log_text(const rpc::LogLine& line) {
  const std::time_t seconds = static_cast<std::time_t>(line.time_ms / 1000);
  std::tm tm{};
  ::localtime_r(&seconds, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  return std::string(when) + " " + line.level + (line.step.empty() ? "" : " [" + line.step + "]") + ": " +
         line.message + "\n";
}

}  // namespace distill::ctl
