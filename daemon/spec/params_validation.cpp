// Validation of YAML blocks against declared ParamSpecs.
#include "spec/params_validation.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace distill::spec {
namespace {

struct Checker {
  const std::filesystem::path& base_dir;
  std::vector<Diagnostic>& out;

  void error(const Value& at, const std::string& key, std::string message) {
    out.push_back({"", at.mark(), key, std::move(message)});
  }

  std::optional<Value> scalar(const Value& v, const std::string& key, const ParamSpec& spec) {
    if (v.is_scalar()) return v;
    error(v, key, std::string("expected ") + to_string(spec.type) + ", got " + (v.is_list() ? "a list" : v.is_object() ? "a mapping" : "nothing"));
    return std::nullopt;
  }

  bool in_range(const Value& v, const std::string& key, const ParamSpec& spec, double number) {
    auto show = [](double d) {
      std::string s = std::to_string(d);
      s.erase(s.find_last_not_of('0') + 1);
      if (s.back() == '.') s.pop_back();
      return s;
    };
    if (spec.minimum && number < *spec.minimum) {
      error(v, key, "value " + v.scalar() + " is below the minimum " + show(*spec.minimum));
      return false;
    }
    if (spec.maximum && number > *spec.maximum) {
      error(v, key, "value " + v.scalar() + " is above the maximum " + show(*spec.maximum));
      return false;
    }
    return true;
  }

  bool allowed(const Value& v, const std::string& key, const ParamSpec& spec) {
    if (spec.choices.empty() ||
        std::find(spec.choices.begin(), spec.choices.end(), v.scalar()) != spec.choices.end())
      return true;
    std::string list;
    for (const std::string& c : spec.choices) list += (list.empty() ? "" : ", ") + c;
    error(v, key, "'" + v.scalar() + "' is not one of: " + list);
    return false;
  }

  std::optional<Value> check(const Value& v, const std::string& key, const ParamSpec& spec) {
    switch (spec.type) {
      case ParamType::String:
        return scalar(v, key, spec);
      case ParamType::Choice: {
        auto s = scalar(v, key, spec);
        if (!s || !allowed(*s, key, spec)) return std::nullopt;
        return s;
      }
      case ParamType::Int: {
        auto s = scalar(v, key, spec);
        if (!s) return std::nullopt;
        const std::string& text = s->scalar();
        std::int64_t number = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
        if (ec != std::errc() || end != text.data() + text.size()) {
          error(v, key, "expected an integer, got '" + text + "'");
          return std::nullopt;
        }
        if (!in_range(v, key, spec, static_cast<double>(number))) return std::nullopt;
        return Value(std::to_string(number), v.mark());
      }
      case ParamType::Double: {
        auto s = scalar(v, key, spec);
        if (!s) return std::nullopt;
        const std::string& text = s->scalar();
        double number = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
        if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(number)) {
          error(v, key, "expected a number, got '" + text + "'");
          return std::nullopt;
        }
        if (!in_range(v, key, spec, number)) return std::nullopt;
        return s;
      }
      case ParamType::Bool: {
        auto s = scalar(v, key, spec);
        if (!s) return std::nullopt;
        std::string text = s->scalar();
        std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
        if (text == "true" || text == "yes" || text == "on") return Value("true", v.mark());
        if (text == "false" || text == "no" || text == "off") return Value("false", v.mark());
        error(v, key, "expected true or false, got '" + s->scalar() + "'");
        return std::nullopt;
      }
      case ParamType::Path: {
        auto s = scalar(v, key, spec);
        if (!s) return std::nullopt;
        if (s->scalar().empty()) {
          error(v, key, "expected a path, got an empty string");
          return std::nullopt;
        }
        return Value((base_dir / s->scalar()).lexically_normal().string(), v.mark());
      }
      case ParamType::StringList: {
        if (v.is_scalar()) return allowed(v, key, spec) ? std::optional<Value>(Value(Value::List{v}, v.mark())) : std::nullopt;
        if (!v.is_list()) {
          error(v, key, "expected a list of strings");
          return std::nullopt;
        }
        bool ok = true;
        for (const Value& item : v.list()) {
          if (!item.is_scalar()) {
            error(item, key, "expected a list of strings; this item is not a string");
            ok = false;
          } else {
            ok = allowed(item, key, spec) && ok;
          }
        }
        return ok ? std::optional<Value>(v) : std::nullopt;
      }
      case ParamType::Object: {
        if (!v.is_object() && !v.is_null()) {
          error(v, key, "expected a mapping of " + key + "'s fields");
          return std::nullopt;
        }
        const std::size_t before = out.size();
        Value::Object fields = validate_params(v, spec.fields, key, {}, base_dir, out);
        if (out.size() != before) return std::nullopt;
        return Value(std::move(fields), v.mark());
      }
      case ParamType::Map: {
        if (!v.is_object()) {
          error(v, key, "expected a mapping");
          return std::nullopt;
        }
        bool ok = true;
        for (const auto& [name, item] : v.object())
          if (!item.is_scalar()) {
            error(item, key + "." + name, "expected a single value");
            ok = false;
          }
        return ok ? std::optional<Value>(v) : std::nullopt;
      }
      case ParamType::Any:
        return v;
    }
    return std::nullopt;
  }
};

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// expanded_size() of a node `depth` levels down, keys included (a key can
// be an alias too). Each level counts its own value, so a cycle runs out of
// `limit` too, but only after `limit` stack frames: kMaxNesting stops it
// first.
std::size_t expanded_size_at(const YAML::Node& node, std::size_t limit, int depth) {
  if (depth > kMaxNesting) return limit + 1;
  std::size_t count = 1;
  if (node.IsSequence()) {
    for (const YAML::Node& item : node) {
      if (count > limit) break;
      count += expanded_size_at(item, limit - count, depth + 1);
    }
  } else if (node.IsMap()) {
    for (const auto& pair : node) {
      if (count > limit) break;
      count += expanded_size_at(pair.first, limit - count, depth + 1);
      if (count <= limit) count += expanded_size_at(pair.second, limit - count, depth + 1);
    }
  }
  return count;
}

}  // namespace

std::size_t expanded_size(const YAML::Node& node, std::size_t limit) { return expanded_size_at(node, limit, 0); }

Value to_value(const YAML::Node& node, std::optional<Mark> fixed_mark) {
  auto place = [&fixed_mark](const YAML::Node& at) {
    return fixed_mark ? *fixed_mark : Mark{at.Mark().line + 1, at.Mark().column + 1};
  };
  const Mark mark = place(node);
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return Value(node.Scalar(), mark);
    case YAML::NodeType::Sequence: {
      Value::List list;
      for (const YAML::Node& item : node) list.push_back(to_value(item, fixed_mark));
      return Value(std::move(list), mark);
    }
    case YAML::NodeType::Map: {
      Value::Object object;
      for (const auto& pair : node) {
        // An empty value has no place of its own in the file: it stands where its key does.
        Value value = pair.second.IsNull() ? Value(place(pair.first)) : to_value(pair.second, fixed_mark);
        object.emplace_back(pair.first.Scalar(), std::move(value));
      }
      return Value(std::move(object), mark);
    }
    default:
      return Value(mark);
  }
}

std::string suggestion(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = 3;
  for (const std::string& candidate : candidates) {
    const std::size_t d = edit_distance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

Value::Object validate_params(const Value& block, const std::vector<ParamSpec>& specs, const std::string& key_path,
                              const std::set<std::string>& reserved, const std::filesystem::path& base_dir,
                              std::vector<Diagnostic>& out) {
  Checker checker{base_dir, out};
  auto key_of = [&](const std::string& name) { return key_path.empty() ? name : key_path + "." + name; };
  static const Value kEmpty(Value::Object{});
  const Value& given = block.is_object() ? block : kEmpty;

  std::vector<std::string> names;
  for (const ParamSpec& spec : specs) names.push_back(spec.name);
  std::set<std::string> seen;
  for (const auto& [name, value] : given.object()) {
    if (!seen.insert(name).second) {
      checker.error(value, key_of(name), "key '" + name + "' appears twice");
      continue;
    }
    if (reserved.count(name) || std::find(names.begin(), names.end(), name) != names.end()) continue;
    std::string valid;
    for (const std::string& n : names) valid += (valid.empty() ? "" : ", ") + n;
    checker.error(value, key_of(name),
                  "unknown key '" + name + "'" + suggestion(name, names) + "; valid keys: " + (valid.empty() ? "(none)" : valid));
  }

  Value::Object result;
  for (const ParamSpec& spec : specs) {
    const Value* value = given.find(spec.name);
    if (value && value->is_null() && spec.type != ParamType::Object) {
      checker.error(*value, key_of(spec.name), "key '" + spec.name + "' has no value");
      continue;
    }
    std::optional<Value> default_value;
    if (!value && spec.default_text) default_value = to_value(YAML::Load(*spec.default_text), block.mark());
    if (!value && !default_value && spec.type == ParamType::Object) default_value = Value(Value::Object{}, block.mark());
    if (!value && !default_value) {
      if (spec.required)
        checker.error(block, key_of(spec.name), "missing required key '" + spec.name + "' (" + spec.description + ")");
      continue;
    }
    const Value& input = value ? *value : *default_value;
    if (std::optional<Value> checked = checker.check(input, key_of(spec.name), spec))
      result.emplace_back(spec.name, std::move(*checked));
  }
  return result;
}

}  // namespace distill::spec
