// How distillctl shows what the daemon answers: JSON for scripts (-o json),
// and for people tables and the same run reports `distilld run` prints.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "engine/run.h"
#include "rpc/distill_types.h"

namespace distill::ctl {

nlohmann::json to_json(const rpc::PipelineInfo& info);
nlohmann::json to_json(const rpc::PipelineStatus& status);
nlohmann::json to_json(const rpc::PluginInfo& plugin);
nlohmann::json to_json(const rpc::Health& health);
nlohmann::json to_json(const rpc::LogLine& line);
nlohmann::json to_json(const rpc::Diagnostic& diagnostic);

// The pipelines as a table (a header and aligned columns) for a terminal,
// or as tab-separated lines without a header otherwise.
std::string pipeline_table(const std::vector<rpc::PipelineInfo>& pipelines, bool terminal);
// The status as distilld run's reports show a run: the summary table, or
// with `live` the progress block that status --watch redraws.
std::string status_text(const rpc::PipelineStatus& status, bool live);
std::string plugin_text(const rpc::PluginInfo& plugin);
std::string health_text(const rpc::Health& health);
std::string log_text(const rpc::LogLine& line);
// {"step":..,"reason":..,"record":{...}} on one line, as `distilld samples` prints it.
std::string sample_line(const rpc::Sample& sample);

}  // namespace distill::ctl
