// Plugin parameters: a plugin declares each parameter once (name, type,
// default, description, bounds); that one declaration drives YAML
// validation, `distilld plugins` and the README's tables. The validated
// values reach the plugin as a Params object.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace distill {

// Where a value stood in the pipeline file (1-based; 0 = not from a file).
struct Mark {
  int line = 0;
  int column = 0;
};

// A YAML value as a small tree. Scalars keep their text; typed readers
// convert. Objects keep their key order.
class Value {
 public:
  using List = std::vector<Value>;
  using Object = std::vector<std::pair<std::string, Value>>;

  Value() = default;
  explicit Value(Mark mark) : mark_(mark) {}  // a null value that stands at `mark`
  explicit Value(std::string scalar, Mark mark = {}) : data_(std::move(scalar)), mark_(mark) {}
  explicit Value(List list, Mark mark = {}) : data_(std::move(list)), mark_(mark) {}
  explicit Value(Object object, Mark mark = {}) : data_(std::move(object)), mark_(mark) {}

  bool is_null() const { return std::holds_alternative<std::monostate>(data_); }
  bool is_scalar() const { return std::holds_alternative<std::string>(data_); }
  bool is_list() const { return std::holds_alternative<List>(data_); }
  bool is_object() const { return std::holds_alternative<Object>(data_); }

  const std::string& scalar() const { return std::get<std::string>(data_); }
  const List& list() const { return std::get<List>(data_); }
  const Object& object() const { return std::get<Object>(data_); }
  Mark mark() const { return mark_; }

  // The member named `key` of an object, or nullptr.
  const Value* find(std::string_view key) const {
    if (!is_object()) return nullptr;
    for (const auto& [name, value] : object())
      if (name == key) return &value;
    return nullptr;
  }

 private:
  std::variant<std::monostate, std::string, List, Object> data_;
  Mark mark_;
};

enum class ParamType {
  String,
  Int,
  Double,
  Bool,
  Path,        // resolved relative to the pipeline file's folder
  StringList,  // a YAML list of strings (a lone string is a list of one)
  Choice,      // one string out of `choices`
  Object,      // a mapping with declared `fields`
  Map,         // a mapping of free-form scalar values (e.g. sampling parameters)
  Any,         // any YAML; the plugin's validate() checks it
};

const char* to_string(ParamType type);

// One declared parameter. Build with the helpers below:
//   distill::param::Int("min_chars", "shortest response kept").default_value("10").min(0)
struct ParamSpec {
  std::string name;
  ParamType type = ParamType::String;
  std::string description;
  std::optional<std::string> default_text;  // YAML text of the default; none and !required = optional
  bool required = false;
  std::optional<double> minimum;
  std::optional<double> maximum;
  std::vector<std::string> choices;  // Choice, and allowed items of a StringList
  std::vector<ParamSpec> fields;     // Object

  ParamSpec& default_value(std::string yaml_text) { default_text = std::move(yaml_text); return *this; }
  ParamSpec& is_required() { required = true; return *this; }
  ParamSpec& min(double value) { minimum = value; return *this; }
  ParamSpec& max(double value) { maximum = value; return *this; }
  ParamSpec& one_of(std::vector<std::string> values) { choices = std::move(values); return *this; }
  ParamSpec& with_fields(std::vector<ParamSpec> nested) { fields = std::move(nested); return *this; }
};

namespace param {
inline ParamSpec make(std::string name, ParamType type, std::string description) {
  ParamSpec spec;
  spec.name = std::move(name);
  spec.type = type;
  spec.description = std::move(description);
  return spec;
}
inline ParamSpec String(std::string n, std::string d) { return make(std::move(n), ParamType::String, std::move(d)); }
inline ParamSpec Int(std::string n, std::string d) { return make(std::move(n), ParamType::Int, std::move(d)); }
inline ParamSpec Double(std::string n, std::string d) { return make(std::move(n), ParamType::Double, std::move(d)); }
inline ParamSpec Bool(std::string n, std::string d) { return make(std::move(n), ParamType::Bool, std::move(d)); }
inline ParamSpec Path(std::string n, std::string d) { return make(std::move(n), ParamType::Path, std::move(d)); }
inline ParamSpec StringList(std::string n, std::string d) { return make(std::move(n), ParamType::StringList, std::move(d)); }
inline ParamSpec Choice(std::string n, std::string d, std::vector<std::string> choices) {
  return make(std::move(n), ParamType::Choice, std::move(d)).one_of(std::move(choices));
}
inline ParamSpec Object(std::string n, std::string d, std::vector<ParamSpec> fields) {
  return make(std::move(n), ParamType::Object, std::move(d)).with_fields(std::move(fields));
}
inline ParamSpec Map(std::string n, std::string d) { return make(std::move(n), ParamType::Map, std::move(d)); }
inline ParamSpec Any(std::string n, std::string d) { return make(std::move(n), ParamType::Any, std::move(d)); }
}  // namespace param

// A problem found while validating a pipeline, with where it stands.
struct Diagnostic {
  std::string file;
  Mark mark;
  std::string key;  // dotted path, e.g. "stages[0].key"
  std::string message;
};

// Thrown by a plugin (from validate() or its constructor) to report a bad
// parameter value; the engine adds the file and the parameter's line.
class ParamError : public std::runtime_error {
 public:
  ParamError(std::string key, const std::string& message)
      : std::runtime_error(message), key_(std::move(key)) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

// Validated parameters of one plugin instance. Every declared parameter
// with a default is present; readers throw ParamError for an undeclared or
// absent one, which is a programming error in the plugin.
class Params {
 public:
  Params() = default;
  explicit Params(Value::Object values) : values_(std::move(values)) {}

  bool has(std::string_view name) const { return find(name) != nullptr; }
  const Value& value(std::string_view name) const { return need(name); }
  Mark mark(std::string_view name) const { return need(name).mark(); }
  const std::string& str(std::string_view name) const { return need(name).scalar(); }
  std::int64_t integer(std::string_view name) const { return std::stoll(str(name)); }
  double number(std::string_view name) const { return std::stod(str(name)); }
  // The validator writes booleans as "true" or "false".
  bool flag(std::string_view name) const { return str(name) == "true"; }
  std::filesystem::path path(std::string_view name) const { return str(name); }
  std::vector<std::string> strings(std::string_view name) const {
    const Value& v = need(name);
    if (v.is_scalar()) return {v.scalar()};
    std::vector<std::string> out;
    for (const Value& item : v.list()) out.push_back(item.scalar());
    return out;
  }
  // Nested Object parameters read as Params of their own.
  Params object(std::string_view name) const { return Params(need(name).object()); }
  const Value::Object& all() const { return values_; }

 private:
  const Value* find(std::string_view name) const {
    for (const auto& [key, value] : values_)
      if (key == name) return &value;
    return nullptr;
  }
  const Value& need(std::string_view name) const {
    if (const Value* v = find(name)) return *v;
    throw ParamError(std::string(name), "parameter '" + std::string(name) + "' has no value");
  }

  Value::Object values_;
};

inline const char* to_string(ParamType type) {
  switch (type) {
    case ParamType::String: return "string";
    case ParamType::Int: return "int";
    case ParamType::Double: return "number";
    case ParamType::Bool: return "bool";
    case ParamType::Path: return "path";
    case ParamType::StringList: return "list of strings";
    case ParamType::Choice: return "choice";
    case ParamType::Object: return "object";
    case ParamType::Map: return "map";
    case ParamType::Any: return "any";
  }
  return "?";
}

}  // namespace distill
