// Checks a YAML block against a plugin's declared parameters and produces
// the normalised values the plugin reads: defaults filled in, booleans as
// "true"/"false", paths resolved against the pipeline file's folder.
#pragma once

#include <distill/params.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace distill::spec {

// Converts a yaml-cpp node into a Value with 1-based line/column marks, or
// with `fixed_mark` on every node (for defaults, which stand in no file).
Value to_value(const YAML::Node& node, std::optional<Mark> fixed_mark = std::nullopt);

// The deepest nesting of values expanded_size() accepts.
constexpr int kMaxNesting = 256;

// How many values `node` stands for once its aliases are expanded, counted
// up to `limit` + 1 (so a "billion laughs" file costs no more than that).
// Values nested deeper than kMaxNesting, as in an anchor that holds an
// alias of itself (`&a [*a]`, which stands for infinitely many), count as
// more than `limit`. to_value() expands aliases: bound this first on text
// nobody checked.
std::size_t expanded_size(const YAML::Node& node, std::size_t limit);

// Appends to `out` one Diagnostic per problem (unknown, missing, wrong
// type, out of range) and returns the normalised object. `key_path` is the
// dotted prefix used in messages; keys in `reserved` are skipped silently.
Value::Object validate_params(const Value& block, const std::vector<ParamSpec>& specs, const std::string& key_path,
                              const std::set<std::string>& reserved, const std::filesystem::path& base_dir,
                              std::vector<Diagnostic>& out);

// "did you mean 'format'?" when `word` is within two edits of a candidate, else "".
std::string suggestion(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace distill::spec
