// Pipeline YAML -> PipelineSpec. The top level and the engine block are
// declared with the same ParamSpec tables plugins use, so one validator
// serves both.
#include "spec/pipeline_spec.h"

#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "spec/params_validation.h"

namespace distill::spec {
namespace {

const std::vector<ParamSpec>& top_level_params() {
  static const std::vector<ParamSpec> specs = {
      param::String("name", "pipeline name: letters, digits, '.', '_' or '-'").is_required(),
      param::String("description", "what the pipeline is for"),
      param::Path("state_dir", "folder of the RocksDB state (default: runs/<name>/state beside the file)"),
      param::StringList("plugin_path", "extra folders to load plugins from (relative to the file)"),
      param::Object("engine", "engine settings",
                    {param::Int("threads", "worker threads").default_value("2").min(1).max(256),
                     param::Int("batch_size", "records per batch").default_value("256").min(1).max(1000000),
                     param::Int("max_inflight_batches", "batches in the pipeline at once (back-pressure)")
                         .default_value("16").min(1).max(4096),
                     param::Int("checkpoint_every_records", "records between checkpoints")
                         .default_value("10000").min(1),
                     param::Int("drop_samples", "dropped records kept per stage and reason")
                         .default_value("100").min(0).max(1000000)}),
      param::Any("source", "the source block").is_required(),
      param::Any("stages", "the ordered list of stage blocks"),
      param::Any("sinks", "the list of sink blocks").is_required(),
  };
  return specs;
}

// Pipeline names and step ids: letters, digits, '.', '_' or '-'.
bool is_name(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-';
  });
}

// The value a ParamError key names ("pii.email", "patterns[1].deny"), or
// the deepest one of its path that exists; nullptr when none does.
const Value* find_key(const Value& block, const std::string& key) {
  const Value* at = &block;
  std::size_t i = 0;
  while (i < key.size()) {
    const Value* next = nullptr;
    if (key[i] == '[') {
      const std::size_t close = key.find(']', i);
      if (close == std::string::npos) break;
      const std::size_t index = std::strtoul(key.c_str() + i + 1, nullptr, 10);
      if (at->is_list() && index < at->list().size()) next = &at->list()[index];
      i = close + 1;
    } else {
      if (key[i] == '.') ++i;
      const std::size_t end = std::min(key.find_first_of(".[", i), key.size());
      next = at->find(key.substr(i, end - i));
      i = end;
    }
    if (!next) break;
    at = next;
  }
  return at == &block ? nullptr : at;
}

// Keys every plugin block may carry besides the plugin's own parameters.
const std::set<std::string> kReservedKeys = {"plugin", "id", "parallelism"};

struct Loader {
  plugins::Registry& registry;
  std::filesystem::path base_dir;
  std::vector<Diagnostic> diagnostics;

  void error(Mark mark, std::string key, std::string message) {
    diagnostics.push_back({"", mark, std::move(key), std::move(message)});
  }

  std::optional<StepSpec> step(const Value& block, Kind kind, const std::string& key) {
    if (!block.is_object()) {
      error(block.mark(), key, std::string("expected a ") + to_string(kind) + " block with a 'plugin:' key");
      return std::nullopt;
    }
    const Value* plugin_name = block.find("plugin");
    if (!plugin_name || !plugin_name->is_scalar()) {
      error(block.mark(), key + ".plugin", std::string("missing required key 'plugin' (the ") + to_string(kind) + " plugin to use)");
      return std::nullopt;
    }
    const plugins::LoadedPlugin* plugin = registry.find(plugin_name->scalar());
    const Component* component = plugin ? plugin->component(kind) : nullptr;
    if (!component) {
      std::string message = plugin ? "plugin '" + plugin_name->scalar() + "' is not a " + to_string(kind)
                                   : "unknown plugin '" + plugin_name->scalar() + "'";
      error(plugin_name->mark(), key + ".plugin",
            message + "; available " + to_string(kind) + " plugins: " + registry.names_with(kind) + not_loaded_note());
      return std::nullopt;
    }
    StepSpec result;
    result.kind = kind;
    result.plugin = plugin;
    result.component = component;
    result.mark = block.mark();
    result.name = plugin->name;
    if (const Value* id = block.find("id")) {
      if (!id->is_scalar() || !is_name(id->scalar()))
        error(id->mark(), key + ".id", "id must be letters, digits, '.', '_' or '-'");
      else
        result.name = id->scalar();
    }
    if (const Value* parallelism = block.find("parallelism")) {
      const std::size_t before = diagnostics.size();
      Value::Object checked = validate_params(
          Value(Value::Object{{"parallelism", *parallelism}}, block.mark()),
          {param::Int("parallelism", "cap on parallel calls").min(1).max(1024)}, key, {}, base_dir, diagnostics);
      if (diagnostics.size() == before) result.parallelism_cap = static_cast<unsigned>(std::stoul(checked[0].second.scalar()));
    }
    const std::size_t before = diagnostics.size();
    result.params = Params(validate_params(block, component->params, key, kReservedKeys, base_dir, diagnostics));
    if (diagnostics.size() == before && component->validate) {
      try {
        component->validate(result.params);
      } catch (const ParamError& e) {
        const Value* at = find_key(block, e.key());
        error(at ? at->mark() : block.mark(), key + "." + e.key(), e.what());
      }
    }
    result.id = result.name;
    if (kind == Kind::Source) result.name = "source";
    if (kind == Kind::Sink) result.name = "sink:" + result.name;
    return result;
  }

  std::string not_loaded_note() const {
    std::string note;
    for (const std::string& e : registry.errors()) note += "\n  not loaded: " + e;
    return note;
  }

  std::vector<StepSpec> steps(const Value* list, Kind kind, const std::string& key) {
    std::vector<StepSpec> result;
    if (!list || list->is_null()) return result;
    if (!list->is_list()) {
      error(list->mark(), key, "expected a list of blocks, each starting with '- plugin: NAME'");
      return result;
    }
    std::map<std::string, Mark> names;
    for (std::size_t i = 0; i < list->list().size(); ++i) {
      const std::string item_key = key + "[" + std::to_string(i) + "]";
      std::optional<StepSpec> s = step(list->list()[i], kind, item_key);
      if (!s) continue;
      if (auto [it, inserted] = names.emplace(s->id, s->mark); !inserted)
        error(s->mark, item_key, "two " + key + " are named '" + s->id + "' (line " + std::to_string(it->second.line) +
                                     " too); give one of them an 'id:'");
      result.push_back(std::move(*s));
    }
    return result;
  }
};

std::string canonical(const Value& value) {
  if (value.is_scalar()) return "s" + std::to_string(value.scalar().size()) + ":" + value.scalar();
  std::string out;
  if (value.is_list()) {
    out = "[";
    for (const Value& item : value.list()) out += canonical(item) + ",";
    return out + "]";
  }
  if (value.is_object()) {
    out = "{";
    for (const auto& [key, item] : value.object()) out += key + "=" + canonical(item) + ",";
    return out + "}";
  }
  return "~";
}

// A step's parameters with every Path made relative to the pipeline's
// folder again, so that a project folder that moves keeps its fingerprint.
Value::Object portable(const Value::Object& params, const std::vector<ParamSpec>& specs,
                       const std::filesystem::path& base_dir) {
  Value::Object out;
  for (const auto& [name, value] : params) {
    const auto spec = std::ranges::find(specs, name, &ParamSpec::name);
    if (spec == specs.end()) {
      out.emplace_back(name, value);
    } else if (spec->type == ParamType::Path && value.is_scalar()) {
      const std::filesystem::path relative = std::filesystem::path(value.scalar()).lexically_relative(base_dir);
      out.emplace_back(name, Value(relative.empty() ? value.scalar() : relative.string()));
    } else if (spec->type == ParamType::Object && value.is_object()) {
      out.emplace_back(name, Value(portable(value.object(), spec->fields, base_dir)));
    } else {
      out.emplace_back(name, value);
    }
  }
  return out;
}

std::string fingerprint(const PipelineSpec& spec) {
  const std::filesystem::path base_dir = spec.file.parent_path().lexically_normal();
  std::string text;
  auto add = [&](const StepSpec& step) {
    const Value params(portable(step.params.all(), step.component->params, base_dir));
    text += step.name + "|" + step.plugin->name + "|" + canonical(params) + "\n";
  };
  add(spec.source);
  for (const StepSpec& s : spec.stages) add(s);
  for (const StepSpec& s : spec.sinks) add(s);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(XXH3_64bits(text.data(), text.size())));
  return hex;
}

}  // namespace

std::string format(const Diagnostic& d) {
  std::ostringstream out;
  out << d.file;
  if (d.mark.line > 0) out << ":" << d.mark.line << ":" << d.mark.column;
  out << ": ";
  if (!d.key.empty()) out << d.key << ": ";
  out << d.message;
  return out.str();
}

LoadResult load_pipeline(const std::filesystem::path& file, plugins::Registry& registry) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.diagnostics.push_back(
        {file.string(), {}, "", std::string("cannot read the pipeline file: ") + std::strerror(errno)});
    return result;
  }
  std::string text(kMaxPipelineBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return load_pipeline_text(text, file, registry);
}

LoadResult load_pipeline_text(std::string_view text, const std::filesystem::path& file, plugins::Registry& registry) {
  LoadResult result;
  auto fail = [&](Mark mark, std::string message) {
    result.diagnostics.push_back({file.string(), mark, "", std::move(message)});
    return result;
  };
  if (text.size() > kMaxPipelineBytes)
    return fail({}, "the pipeline file is larger than " + std::to_string(kMaxPipelineBytes) +
                        " bytes, the most a pipeline file may hold; move large lists into files the plugins read");
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    return fail({e.mark.line + 1, e.mark.column + 1}, "malformed YAML: " + e.msg);
  }
  if (!root.IsMap()) return fail({1, 1}, "a pipeline file must be a mapping with name, source, stages and sinks");
  if (expanded_size(root, kMaxPipelineValues) > kMaxPipelineValues)
    return fail({}, "the pipeline expands to more than " + std::to_string(kMaxPipelineValues) +
                        " values or nests deeper than " + std::to_string(kMaxNesting) +
                        " levels: its YAML aliases (*name) repeat what their anchors hold, nested, or an anchor "
                        "holds an alias of itself; write the values out instead of nesting aliases");

  Loader loader{registry, std::filesystem::absolute(file).parent_path(), {}};
  const Value document = to_value(root);
  Params top(validate_params(document, top_level_params(), "", {}, loader.base_dir, loader.diagnostics));

  PipelineSpec spec;
  spec.file = std::filesystem::absolute(file).lexically_normal();
  if (top.has("description")) spec.description = top.str("description");
  if (top.has("name")) {
    spec.name = top.str("name");
    if (!is_name(spec.name))
      loader.error(top.mark("name"), "name", "name must be letters, digits, '.', '_' or '-'");
  }
  spec.state_dir = top.has("state_dir") ? top.path("state_dir") : loader.base_dir / "runs" / spec.name / "state";
  if (top.has("plugin_path"))
    for (const std::string& dir : top.strings("plugin_path")) registry.load_dir(loader.base_dir / dir);
  if (top.has("engine")) {
    Params engine = top.object("engine");
    spec.engine.threads = static_cast<unsigned>(engine.integer("threads"));
    spec.engine.batch_size = static_cast<std::size_t>(engine.integer("batch_size"));
    spec.engine.max_inflight_batches = static_cast<std::size_t>(engine.integer("max_inflight_batches"));
    spec.engine.checkpoint_every_records = engine.integer("checkpoint_every_records");
    spec.engine.drop_samples = static_cast<std::size_t>(engine.integer("drop_samples"));
  }
  if (const Value* source = document.find("source"); source && !source->is_null()) {
    if (std::optional<StepSpec> s = loader.step(*source, Kind::Source, "source")) spec.source = std::move(*s);
  }
  spec.stages = loader.steps(document.find("stages"), Kind::Stage, "stages");
  spec.sinks = loader.steps(document.find("sinks"), Kind::Sink, "sinks");
  if (document.find("sinks") && spec.sinks.empty() && loader.diagnostics.empty())
    loader.error(document.find("sinks")->mark(), "sinks", "a pipeline needs at least one sink");

  for (Diagnostic& d : loader.diagnostics) d.file = file.string();
  result.diagnostics = std::move(loader.diagnostics);
  if (result.diagnostics.empty()) {
    spec.fingerprint = fingerprint(spec);
    result.spec = std::move(spec);
  }
  return result;
}

std::string describe(const std::vector<ParamSpec>& params, const std::string& indent) {
  std::ostringstream out;
  for (const ParamSpec& p : params) {
    out << indent << p.name << " (" << to_string(p.type);
    if (!p.choices.empty()) {
      out << ": ";
      for (std::size_t i = 0; i < p.choices.size(); ++i) out << (i ? " | " : "") << p.choices[i];
    }
    out << (p.required ? ", required" : "");
    if (p.default_text) out << ", default " << *p.default_text;
    if (p.minimum) out << ", min " << *p.minimum;
    if (p.maximum) out << ", max " << *p.maximum;
    out << ")  " << p.description << "\n";
    if (!p.fields.empty()) out << describe(p.fields, indent + "    ");
  }
  return out.str();
}

}  // namespace distill::spec
