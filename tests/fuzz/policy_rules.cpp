// Fuzz target: policy rule compilation and matching. The input is a policy
// block in YAML, then the record's texts, each after a line "%%":
//   POLICY YAML \n%%\n RESPONSE \n%%\n PROMPT \n%%\n REASONING \n%%\n
//   FINISH_REASON \n%%\n MODEL \n%%\n TERMS
// The block goes through the daemon's validator as a pipeline's would (with
// the same bound on YAML aliases), compiles or is refused with a
// ParamError, and a compiled policy is applied to the record: failed rules
// are valid indices, enforce mode stops at the first, audit mode never
// changes the text.
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "policy.h"
#include "policy_params.h"
#include "spec/params_validation.h"
#include "spec/pipeline_spec.h"

namespace {

using namespace distill;
using distill::fuzz::require;

std::vector<std::string> split(const std::string& text, const std::string& separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t at; (at = text.find(separator, start)) != std::string::npos; start = at + separator.size())
    parts.push_back(text.substr(start, at - start));
  parts.push_back(text.substr(start));
  return parts;
}

std::optional<Params> params_of(const std::string& yaml) {
  YAML::Node node;
  try {
    node = YAML::Load(yaml);
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
  if (spec::expanded_size(node, spec::kMaxPipelineValues) > spec::kMaxPipelineValues) return std::nullopt;
  std::vector<Diagnostic> diagnostics;
  Value::Object values = spec::validate_params(spec::to_value(node), policy::policy_params(), "policy", {}, "/", diagnostics);
  if (!diagnostics.empty()) return std::nullopt;
  return Params(std::move(values));
}

Record record_of(const std::vector<std::string>& parts) {
  auto part = [&parts](std::size_t i) { return i < parts.size() ? parts[i] : std::string(); };
  Record record;
  record.response = part(1);
  record.prompt = {{"system", "Be brief."}, {"user", part(2)}};
  record.reasoning = part(3);
  record.teacher.finish_reason = part(4);
  record.teacher.model = part(5);
  record.provenance.terms = part(6);
  record.annotations["score"] = static_cast<double>(record.response.size()) / 100;
  record.annotations["label"] = part(5);
  return record;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::string> parts = split(std::string(reinterpret_cast<const char*>(data), size), "\n%%\n");
  const std::optional<Params> params = params_of(parts[0]);
  if (!params) return 0;
  std::optional<policy::Policy> compiled;
  try {
    compiled.emplace(*params);
  } catch (const ParamError&) {
    return 0;
  }
  const Record original = record_of(parts);
  Record record = original;
  const policy::Outcome outcome = compiled->apply(record);
  for (const std::size_t rule : outcome.failed)
    require(rule < compiled->rule_names().size(), "a failed rule is one of the policy's rules");
  if (compiled->mode() == policy::Mode::enforce) {
    require(outcome.failed.size() <= 1, "enforce mode stops at the first failing rule");
  } else {
    require(record.response == original.response && record.prompt == original.prompt &&
                record.reasoning == original.reasoning,
            "audit mode never changes the text");
  }
  return 0;
}
