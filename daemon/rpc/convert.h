// Conversions from distilld's own types (engine snapshots, stored runs and
// checkpoints, plugin declarations, drop samples, diagnostics, log lines)
// to the IDL's structs, so that every front end describes them alike.
#pragma once

#include <distill/params.h>
#include <distill/plugin.h>

#include <optional>
#include <string>
#include <vector>

#include "engine/run.h"
#include "plugins/registry.h"
#include "rpc/distill_types.h"
#include "store/runs.h"

namespace distill::rpc {

// "running", "paused", ... (lower case: the names clients print and match).
std::string state_name(PipelineState::type state);

StepStats to_rpc(const distill::StepStats& stats);
distill::StepStats from_rpc(const StepStats& stats);
LogLine to_rpc(const engine::LogLine& line);
PluginInfo to_rpc(const plugins::LoadedPlugin& plugin);
Sample to_rpc(const store::DropSample& sample);
InvalidPipeline invalid_pipeline(const std::vector<distill::Diagnostic>& diagnostics);

// A live run's figures. `info` gets the run, its progress, records read and error.
PipelineStatus status_of(const engine::RunSnapshot& snapshot);
// A run as its pipeline's store last recorded it (no live figures).
PipelineStatus status_of(const store::RunMeta& meta, const std::optional<store::Checkpoint>& checkpoint);

}  // namespace distill::rpc
