// Fuzz target: pipeline YAML text -> spec::load_pipeline_text, the loader
// `distilld validate` and the daemon's submit use, with the jsonl, prompts,
// exact_dedupe, minhash_dedupe and policy plugins loaded so their
// parameter tables and validate() run too. Every input ends in a spec or in
// diagnostics, never both, each diagnostic naming the file. Inputs naming
// `plugin_path` are skipped: they would make the fuzzer dlopen whatever
// folder it spells.
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "spec/pipeline_spec.h"

namespace {

using distill::fuzz::require;

distill::plugins::Registry& registry() {
  static distill::plugins::Registry loaded;
  return loaded;
}

bool names_plugin_path(const std::string& text) {
  try {
    const YAML::Node root = YAML::Load(text);
    return root.IsMap() && root["plugin_path"];
  } catch (const YAML::Exception&) {
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string_view files = FUZZ_PLUGIN_FILES;  // colon-separated, from tests/fuzz/meson.build
  while (!files.empty()) {
    const std::size_t colon = files.find(':');
    require(registry().load_file(std::string(files.substr(0, colon))), "a built-in plugin loads");
    files.remove_prefix(colon == std::string_view::npos ? files.size() : colon + 1);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (names_plugin_path(text)) return -1;
  const std::string file = "/nonexistent/fuzz/pipeline.yaml";
  const distill::spec::LoadResult result = distill::spec::load_pipeline_text(text, file, registry());
  require(result.spec.has_value() == result.diagnostics.empty(), "a spec exactly when there is no diagnostic");
  for (const distill::Diagnostic& diagnostic : result.diagnostics)
    require(distill::spec::format(diagnostic).starts_with(file + ":"), "every diagnostic names the file");
  return 0;
}
