// A pipeline file, validated: YAML -> PipelineSpec with every error found
// at once, each with file:line:column and the key it concerns.
#pragma once

#include <distill/plugin.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "plugins/registry.h"

namespace distill::spec {

struct EngineSettings {
  unsigned threads = 2;
  std::size_t batch_size = 256;
  std::size_t max_inflight_batches = 16;
  std::int64_t checkpoint_every_records = 10000;
  std::size_t drop_samples = 100;  // kept per (step, reason)
};

// One source, stage or sink block of the pipeline.
struct StepSpec {
  Kind kind = Kind::Stage;
  std::string id;    // as the user wrote it (`id:`), or the plugin name
  std::string name;  // the step's name in counters and state: "source", the stage's id, or "sink:" + id
  const plugins::LoadedPlugin* plugin = nullptr;
  const Component* component = nullptr;
  Params params;
  unsigned parallelism_cap = 0;  // 0: as the plugin declares
  Mark mark;
};

struct PipelineSpec {
  std::string name;
  std::string description;
  std::filesystem::path file;
  std::filesystem::path state_dir;
  EngineSettings engine;
  StepSpec source;
  std::vector<StepSpec> stages;
  std::vector<StepSpec> sinks;
  // Hash of the plugins and parameters (not engine settings): an
  // interrupted run resumes only under the same fingerprint.
  std::string fingerprint;
};

struct LoadResult {
  std::optional<PipelineSpec> spec;  // set only when there is no diagnostic
  std::vector<Diagnostic> diagnostics;
};

// Bounds on what a pipeline file may cost to read: its size, and the
// values it stands for once YAML aliases are expanded (a file of nested
// aliases can otherwise stand for billions).
constexpr std::size_t kMaxPipelineBytes = 1 << 20;
constexpr std::size_t kMaxPipelineValues = 100000;

// Reads and validates `file`, loading any plugin_path folders it names into
// `registry` first.
LoadResult load_pipeline(const std::filesystem::path& file, plugins::Registry& registry);
// The same for a pipeline's text: `file` names it in messages, and its
// folder is where relative paths start (the file need not exist there).
LoadResult load_pipeline_text(std::string_view text, const std::filesystem::path& file, plugins::Registry& registry);

// "file:line:column: key: message"
std::string format(const Diagnostic& diagnostic);

// The parameter table of one component, as `distilld plugins` prints it.
std::string describe(const std::vector<ParamSpec>& params, const std::string& indent);

}  // namespace distill::spec
