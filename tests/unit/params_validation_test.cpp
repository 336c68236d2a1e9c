// Unit tests of parameter validation and pipeline loading (daemon/spec): every diagnostic, defaults, paths.
#include "spec/params_validation.h"
#include "spec/pipeline_spec.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace distill::spec {
namespace {

namespace fs = std::filesystem;

Value yaml(const std::string& text) { return to_value(YAML::Load(text)); }

std::vector<std::string> messages(const std::vector<Diagnostic>& diagnostics) {
  std::vector<std::string> out;
  for (const Diagnostic& d : diagnostics) out.push_back(format(d));
  return out;
}

std::string str(const Value::Object& object, const std::string& name) {
  for (const auto& [key, value] : object)
    if (key == name) return value.scalar();
  ADD_FAILURE() << "no value for " << name;
  return {};
}

// ---- validate_params on its own ------------------------------------------------

class ValidateParams : public ::testing::Test {
 protected:
  Value::Object validate(const std::string& text, const std::vector<ParamSpec>& specs,
                         const std::string& key_path = "", const std::set<std::string>& reserved = {}) {
    return validate_params(yaml(text), specs, key_path, reserved, "/base/dir", diagnostics_);
  }
  std::vector<std::string> errors() const { return messages(diagnostics_); }

  std::vector<Diagnostic> diagnostics_;
};

const std::vector<ParamSpec> kEngineLike = {
    param::Int("threads", "worker threads").default_value("2").min(1).max(256),
    param::Int("batch_size", "records per batch").default_value("256").min(1),
};

TEST_F(ValidateParams, UnknownKeySuggestsTheClosestName) {
  validate("threads: 4\nthraeds: 3\n", kEngineLike, "engine");
  ASSERT_EQ(diagnostics_.size(), 1u);
  EXPECT_EQ(diagnostics_[0].key, "engine.thraeds");
  EXPECT_EQ(diagnostics_[0].mark.line, 2);
  EXPECT_EQ(diagnostics_[0].mark.column, 10);
  EXPECT_EQ(diagnostics_[0].message, "unknown key 'thraeds' (did you mean 'threads'?); valid keys: threads, batch_size");
}

TEST_F(ValidateParams, UnknownKeyFarFromAnyNameHasNoSuggestion) {
  validate("colour: red\n", kEngineLike);
  EXPECT_EQ(errors(), std::vector<std::string>{":1:9: colour: unknown key 'colour'; valid keys: threads, batch_size"});
}

TEST_F(ValidateParams, UnknownKeyWhenNoneAreDeclared) {
  validate("x: 1\n", {});
  EXPECT_EQ(errors(), std::vector<std::string>{":1:4: x: unknown key 'x'; valid keys: (none)"});
}

TEST_F(ValidateParams, ReservedKeysAreSkipped) {
  const Value::Object out = validate("plugin: x\nid: y\nthreads: 3\n", kEngineLike, "", {"plugin", "id"});
  EXPECT_TRUE(diagnostics_.empty()) << errors().front();
  EXPECT_EQ(str(out, "threads"), "3");
  EXPECT_EQ(out.size(), 2u);
}

TEST_F(ValidateParams, MissingRequiredKeyPointsAtTheBlock) {
  validate("\n  other: 1\n  endpoint: x\n",
           {param::String("model", "teacher model name").is_required(), param::String("endpoint", "URL"),
            param::Int("other", "n")},
           "stages[2]");
  ASSERT_EQ(diagnostics_.size(), 1u);
  EXPECT_EQ(format(diagnostics_[0]), ":2:3: stages[2].model: missing required key 'model' (teacher model name)");
}

TEST_F(ValidateParams, WrongTypes) {
  validate("i: abc\nf: 1.5\nb: maybe\nd: fast\ns: [a, b]\nm: {a: 1}\n",
           {param::Int("i", ""), param::Int("f", ""), param::Bool("b", ""), param::Double("d", ""),
            param::String("s", ""), param::Int("m", "")});
  EXPECT_EQ(errors(), (std::vector<std::string>{
                          ":1:4: i: expected an integer, got 'abc'",
                          ":2:4: f: expected an integer, got '1.5'",
                          ":3:4: b: expected true or false, got 'maybe'",
                          ":4:4: d: expected a number, got 'fast'",
                          ":5:4: s: expected string, got a list",
                          ":6:4: m: expected int, got a mapping",
                      }));
}

TEST_F(ValidateParams, NumbersMustBeFiniteAndWhole) {
  validate("a: .inf\nb: nan\nc: 99999999999999999999\nd: 12abc\n",
           {param::Double("a", ""), param::Double("b", ""), param::Int("c", ""), param::Int("d", "")});
  EXPECT_EQ(errors(), (std::vector<std::string>{
                          ":1:4: a: expected a number, got '.inf'",
                          ":2:4: b: expected a number, got 'nan'",
                          ":3:4: c: expected an integer, got '99999999999999999999'",
                          ":4:4: d: expected an integer, got '12abc'",
                      }));
}

TEST_F(ValidateParams, TypedValuesAreNormalised) {
  const Value::Object out = validate("a: Yes\nb: off\nc: TRUE\nd: '0042'\ne: -7\nf: 2.5e-1\n",
                                     {param::Bool("a", ""), param::Bool("b", ""), param::Bool("c", ""),
                                      param::Int("d", ""), param::Int("e", ""), param::Double("f", "")});
  EXPECT_TRUE(diagnostics_.empty()) << errors().front();
  EXPECT_EQ(str(out, "a"), "true");
  EXPECT_EQ(str(out, "b"), "false");
  EXPECT_EQ(str(out, "c"), "true");
  EXPECT_EQ(str(out, "d"), "42");
  EXPECT_EQ(str(out, "e"), "-7");
  EXPECT_EQ(Params(out).number("f"), 0.25);
}

TEST_F(ValidateParams, OutOfRange) {
  validate("threads: 0\nbatch_size: 0\n", kEngineLike);
  validate("threads: 257\n", kEngineLike);
  validate("p: 0.25\nq: 1.5\nr: -3\n",
           {param::Double("p", "").min(0.5), param::Double("q", "").max(1.25), param::Int("r", "").min(-2)});
  EXPECT_EQ(errors(), (std::vector<std::string>{
                          ":1:10: threads: value 0 is below the minimum 1",
                          ":2:13: batch_size: value 0 is below the minimum 1",
                          ":1:10: threads: value 257 is above the maximum 256",
                          ":1:4: p: value 0.25 is below the minimum 0.5",
                          ":2:4: q: value 1.5 is above the maximum 1.25",
                          ":3:4: r: value -3 is below the minimum -2",
                      }));
}

TEST_F(ValidateParams, BoundsAreInclusive) {
  const Value::Object out = validate("threads: 256\nbatch_size: 1\n", kEngineLike);
  EXPECT_TRUE(diagnostics_.empty()) << errors().front();
  EXPECT_EQ(str(out, "threads"), "256");
}

TEST_F(ValidateParams, BadChoice) {
  validate("format: xml\n", {param::Choice("format", "line shape", {"auto", "messages", "alpaca"})}, "source");
  EXPECT_EQ(errors(), std::vector<std::string>{":1:9: source.format: 'xml' is not one of: auto, messages, alpaca"});
}

TEST_F(ValidateParams, StringListChecksEveryItemAndAcceptsALoneString) {
  const std::vector<ParamSpec> specs = {
      param::StringList("normalize", "").one_of({"nfkc", "casefold"}),
      param::StringList("tags", ""),
  };
  const Value::Object ok = validate("normalize: casefold\ntags: [a, b]\n", specs);
  EXPECT_TRUE(diagnostics_.empty()) << errors().front();
  EXPECT_EQ(Params(ok).strings("normalize"), std::vector<std::string>{"casefold"});
  EXPECT_EQ(Params(ok).strings("tags"), (std::vector<std::string>{"a", "b"}));

  validate("normalize: [nfkc, lower, casefold, upper]\ntags: {a: 1}\n", specs);
  EXPECT_EQ(errors(), (std::vector<std::string>{
                          ":1:19: normalize: 'lower' is not one of: nfkc, casefold",
                          ":1:36: normalize: 'upper' is not one of: nfkc, casefold",
                          ":2:7: tags: expected a list of strings",
                      }));
}

TEST_F(ValidateParams, MapValuesMustBeScalars) {
  const std::vector<ParamSpec> specs = {param::Map("sampling", "sampling parameters")};
  const Value::Object ok = validate("sampling: {temperature: 0.7, top_p: 1}\n", specs);
  EXPECT_TRUE(diagnostics_.empty()) << errors().front();
  EXPECT_EQ(Params(ok).value("sampling").object().size(), 2u);

  validate("sampling:\n  temperature: 0.7\n  stop: [a, b]\n", specs);
  EXPECT_EQ(errors(), std::vector<std::string>{":3:9: sampling.stop: expected a single value"});
}

TEST_F(ValidateParams, DuplicateKeyIsReportedAtItsSecondOccurrence) {
  const Value::Object out = validate("threads: 3\nbatch_size: 9\nthreads: 4\n", kEngineLike);
  EXPECT_EQ(errors(), std::vector<std::string>{":3:10: threads: key 'threads' appears twice"});
  EXPECT_EQ(str(out, "threads"), "3");
}

TEST_F(ValidateParams, DefaultsAreFilledAndMarkedAtTheBlock) {
  const Value::Object out = validate("\n\n  threads: 8\n", {
      param::Int("threads", "").default_value("2"),
      param::Int("batch_size", "").default_value("256"),
      param::Bool("verbose", "").default_value("no"),
      param::StringList("normalize", "").default_value("[nfkc, casefold]"),
      param::String("optional", ""),
  });
  EXPECT_TRUE(diagnostics_.empty()) << errors().front();
  const Params params(out);
  EXPECT_EQ(params.integer("threads"), 8);
  EXPECT_EQ(params.integer("batch_size"), 256);
  EXPECT_FALSE(params.flag("verbose"));
  EXPECT_EQ(params.str("verbose"), "false");
  EXPECT_EQ(params.strings("normalize"), (std::vector<std::string>{"nfkc", "casefold"}));
  EXPECT_FALSE(params.has("optional"));
  EXPECT_EQ(params.mark("threads").line, 3);
  EXPECT_EQ(params.mark("batch_size").line, 3);
  EXPECT_EQ(params.mark("batch_size").column, 3);
}

TEST_F(ValidateParams, BadDefaultIsReportedLikeAValue) {
  validate("{}", {param::Int("n", "").default_value("many")});
  EXPECT_EQ(errors(), std::vector<std::string>{":1:1: n: expected an integer, got 'many'"});
}

TEST_F(ValidateParams, PathsResolveAgainstTheBaseFolder) {
  const std::vector<ParamSpec> specs = {param::Path("a", ""), param::Path("b", ""), param::Path("c", ""),
                                        param::Path("d", "")};
  const Value::Object out = validate("a: data/in.jsonl\nb: ../x/./y.jsonl\nc: /abs/z.jsonl\nd: ''\n", specs);
  EXPECT_EQ(str(out, "a"), "/base/dir/data/in.jsonl");
  EXPECT_EQ(str(out, "b"), "/base/x/y.jsonl");
  EXPECT_EQ(str(out, "c"), "/abs/z.jsonl");
  EXPECT_EQ(errors(), std::vector<std::string>{":4:4: d: expected a path, got an empty string"});
}

TEST_F(ValidateParams, NestedObjectsReportDottedKeysAndFillDefaults) {
  const std::vector<ParamSpec> specs = {param::Object("engine", "", kEngineLike)};
  const Value::Object absent = validate("{}", specs);
  EXPECT_TRUE(diagnostics_.empty()) << errors().front();
  EXPECT_EQ(Params(absent).object("engine").integer("threads"), 2);

  validate("engine:\n  threads: many\n  batchsize: 4\n", specs);
  EXPECT_EQ(errors(), (std::vector<std::string>{
                          ":3:14: engine.batchsize: unknown key 'batchsize' (did you mean 'batch_size'?); valid keys: "
                          "threads, batch_size",
                          ":2:12: engine.threads: expected an integer, got 'many'",
                      }));
}

TEST_F(ValidateParams, NestedObjectMustBeAMapping) {
  validate("engine: fast\n", {param::Object("engine", "", kEngineLike)});
  EXPECT_EQ(errors(), std::vector<std::string>{":1:9: engine: expected a mapping of engine's fields"});
}

TEST_F(ValidateParams, KeyWithoutAValue) {
  validate("batch_size: 4\nthreads:\n", kEngineLike);
  ASSERT_EQ(diagnostics_.size(), 1u);
  EXPECT_EQ(diagnostics_[0].key, "threads");
  EXPECT_EQ(diagnostics_[0].message, "key 'threads' has no value");
  EXPECT_EQ(diagnostics_[0].mark.line, 2) << "the diagnostic must say where the empty key stands";
}

TEST_F(ValidateParams, AnyTakesAnything) {
  const Value::Object out = validate("x: {a: [1, {b: 2}]}\n", {param::Any("x", "")});
  EXPECT_TRUE(diagnostics_.empty());
  EXPECT_TRUE(Params(out).value("x").is_object());
}

TEST_F(ValidateParams, SeveralErrorsAtOnceInDocumentOrder) {
  validate("threds: 1\nthreads: x\nbatch_size: -1\nzzz: 0\n", kEngineLike, "engine");
  EXPECT_EQ(errors(), (std::vector<std::string>{
                          ":1:9: engine.threds: unknown key 'threds' (did you mean 'threads'?); valid keys: threads, "
                          "batch_size",
                          ":4:6: engine.zzz: unknown key 'zzz'; valid keys: threads, batch_size",
                          ":2:10: engine.threads: expected an integer, got 'x'",
                          ":3:13: engine.batch_size: value -1 is below the minimum 1",
                      }));
}

TEST(Suggestion, WithinTwoEdits) {
  const std::vector<std::string> names = {"format", "path", "terms"};
  EXPECT_EQ(suggestion("fromat", names), " (did you mean 'format'?)");
  EXPECT_EQ(suggestion("pth", names), " (did you mean 'path'?)");
  EXPECT_EQ(suggestion("term", names), " (did you mean 'terms'?)");
  EXPECT_EQ(suggestion("endpoint", names), "");
  EXPECT_EQ(suggestion("fmt", names), "");
  EXPECT_EQ(suggestion("x", {}), "");
}

TEST(ToValue, MarksAreOneBased) {
  const Value v = yaml("a:\n  - x\n  - {b: y}\n");
  EXPECT_EQ(v.mark().line, 1);
  EXPECT_EQ(v.mark().column, 1);
  const Value& list = *v.find("a");
  ASSERT_TRUE(list.is_list());
  EXPECT_EQ(list.list()[0].mark().line, 2);
  EXPECT_EQ(list.list()[0].mark().column, 5);
  EXPECT_EQ(list.list()[1].find("b")->mark().line, 3);
  EXPECT_EQ(list.list()[1].find("b")->mark().column, 9);
  const Value fixed = to_value(YAML::Load("[1, 2]"), Mark{7, 3});
  EXPECT_EQ(fixed.list()[1].mark().line, 7);
  EXPECT_EQ(fixed.list()[1].mark().column, 3);
}

// ---- load_pipeline with the real plugins -------------------------------------

class LoadPipeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* dir = std::getenv("DISTILL_BUILT_PLUGIN_DIR");
    ASSERT_NE(dir, nullptr) << "DISTILL_BUILT_PLUGIN_DIR is not set (run the test through meson)";
    plugin_dir_ = dir;
    registry_ = std::make_unique<plugins::Registry>();
    // Exactly these two, so that messages listing the available plugins do not change as plugins are added.
    for (const char* plugin : {"DISTILL_TEST_JSONL_PLUGIN", "DISTILL_TEST_EXACT_DEDUPE_PLUGIN"})
      ASSERT_TRUE(registry_->load_file(std::getenv(plugin))) << plugin;
    ASSERT_NE(registry_->find("jsonl"), nullptr);
    ASSERT_NE(registry_->find("exact_dedupe"), nullptr);
  }
  static void TearDownTestSuite() { registry_.reset(); }

  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "distill-spec-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    tmp_ = pattern;
    // The jsonl source refuses an input file that does not exist.
    write("pipelines/x", "");
    write("pipelines/data/teacher.jsonl", "");
  }
  void TearDown() override { fs::remove_all(tmp_); }

  fs::path write(const fs::path& name, const std::string& text) {
    const fs::path file = tmp_ / name;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
    return file;
  }
  LoadResult load(const std::string& text, plugins::Registry& registry = *registry_) {
    file_ = write("pipelines/p.yaml", text);
    return load_pipeline(file_, registry);
  }
  // "FILE:line:col: key: message" for the file load() wrote.
  std::string at(int line, int column, const std::string& rest) const {
    return file_.string() + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + rest;
  }

  static inline fs::path plugin_dir_;
  static inline std::unique_ptr<plugins::Registry> registry_;
  fs::path tmp_;
  fs::path file_;
};

constexpr const char* kValid = R"(name: demo
source:
  plugin: jsonl
  path: data/teacher.jsonl
  format: chat_completion
stages:
  - plugin: exact_dedupe
  - plugin: exact_dedupe
    id: by_response
    key: response
    normalize: [nfkc]
sinks:
  - plugin: jsonl
    dir: ../out
    include_logprobs: no
)";

TEST_F(LoadPipeline, ValidPipelineIsResolvedWithDefaults) {
  const LoadResult result = load(kValid);
  ASSERT_TRUE(result.diagnostics.empty()) << format(result.diagnostics.front());
  ASSERT_TRUE(result.spec);
  const PipelineSpec& spec = *result.spec;
  EXPECT_EQ(spec.name, "demo");
  EXPECT_EQ(spec.file, file_);
  EXPECT_EQ(spec.state_dir, tmp_ / "pipelines" / "runs" / "demo" / "state");
  EXPECT_EQ(spec.engine.threads, 2u);
  EXPECT_EQ(spec.engine.batch_size, 256u);
  EXPECT_EQ(spec.engine.max_inflight_batches, 16u);
  EXPECT_EQ(spec.engine.checkpoint_every_records, 10000);
  EXPECT_EQ(spec.engine.drop_samples, 100u);
  EXPECT_EQ(spec.fingerprint.size(), 16u);

  EXPECT_EQ(spec.source.name, "source");
  EXPECT_EQ(spec.source.kind, Kind::Source);
  EXPECT_EQ(spec.source.plugin, registry_->find("jsonl"));
  EXPECT_EQ(spec.source.component, registry_->find("jsonl")->component(Kind::Source));
  EXPECT_EQ(spec.source.mark.line, 3);
  EXPECT_EQ(spec.source.mark.column, 3);
  const Params& source = spec.source.params;
  EXPECT_EQ(source.path("path"), tmp_ / "pipelines" / "data" / "teacher.jsonl");
  EXPECT_EQ(source.str("format"), "chat_completion");
  EXPECT_EQ(source.str("terms"), "unspecified");
  EXPECT_EQ(source.str("endpoint"), "");
  EXPECT_EQ(source.integer("max_line_bytes"), 67108864);
  EXPECT_FALSE(source.has("batch_input"));
  EXPECT_EQ(source.all().size(), 5u);

  ASSERT_EQ(spec.stages.size(), 2u);
  EXPECT_EQ(spec.stages[0].name, "exact_dedupe");
  EXPECT_EQ(spec.stages[0].params.str("key"), "prompt+response");
  EXPECT_EQ(spec.stages[0].params.strings("normalize"), (std::vector<std::string>{"nfkc", "casefold", "whitespace"}));
  EXPECT_EQ(spec.stages[0].parallelism_cap, 0u);
  EXPECT_EQ(spec.stages[1].name, "by_response");
  EXPECT_EQ(spec.stages[1].params.str("key"), "response");
  EXPECT_EQ(spec.stages[1].params.strings("normalize"), std::vector<std::string>{"nfkc"});
  EXPECT_EQ(spec.stages[1].mark.line, 8);

  ASSERT_EQ(spec.sinks.size(), 1u);
  EXPECT_EQ(spec.sinks[0].name, "sink:jsonl");
  EXPECT_EQ(spec.sinks[0].params.path("dir"), tmp_ / "out");
  EXPECT_FALSE(spec.sinks[0].params.flag("include_logprobs"));
  EXPECT_EQ(spec.sinks[0].params.integer("max_shard_bytes"), 268435456);
  EXPECT_EQ(spec.sinks[0].params.str("rejects"), "source");
}

TEST_F(LoadPipeline, EngineSettingsStateDirAndParallelism) {
  const fs::path input = write("elsewhere/in.jsonl", "");
  const LoadResult result = load(R"(name: tuned
state_dir: ../state
engine:
  threads: 8
  batch_size: 64
  max_inflight_batches: 4
  checkpoint_every_records: 500
  drop_samples: 0
source: {plugin: jsonl, path: )" + input.string() + R"(}
stages:
  - {plugin: exact_dedupe, parallelism: 3}
sinks:
  - {plugin: jsonl, dir: out}
)");
  ASSERT_TRUE(result.diagnostics.empty()) << format(result.diagnostics.front());
  const PipelineSpec& spec = *result.spec;
  EXPECT_EQ(spec.state_dir, tmp_ / "state");
  EXPECT_EQ(spec.engine.threads, 8u);
  EXPECT_EQ(spec.engine.batch_size, 64u);
  EXPECT_EQ(spec.engine.max_inflight_batches, 4u);
  EXPECT_EQ(spec.engine.checkpoint_every_records, 500);
  EXPECT_EQ(spec.engine.drop_samples, 0u);
  EXPECT_EQ(spec.source.params.path("path"), input);
  EXPECT_EQ(spec.stages[0].parallelism_cap, 3u);
  EXPECT_EQ(spec.sinks[0].params.path("dir"), tmp_ / "pipelines" / "out");
}

TEST_F(LoadPipeline, FingerprintFollowsParametersNotEngineSettings) {
  const std::string base = load(kValid).spec->fingerprint;
  EXPECT_EQ(load(kValid).spec->fingerprint, base);
  EXPECT_EQ(load(std::string(kValid) + "engine: {threads: 7}\n").spec->fingerprint, base);
  std::string changed = kValid;
  changed.replace(changed.find("key: response"), 13, "key: prompt+response");
  const LoadResult other = load(changed);
  ASSERT_TRUE(other.spec);
  EXPECT_NE(other.spec->fingerprint, base);
}

TEST_F(LoadPipeline, MalformedYamlGivesLineAndColumn) {
  const LoadResult result = load("name: demo\nsource:\n  plugin: [jsonl\n  path: x\n");
  EXPECT_FALSE(result.spec);
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(result.diagnostics[0].file, file_.string());
  EXPECT_EQ(result.diagnostics[0].mark.line, 4);
  EXPECT_EQ(result.diagnostics[0].mark.column, 7);
  EXPECT_EQ(format(result.diagnostics[0]), at(4, 7, "malformed YAML: end of sequence flow not found"));
}

TEST_F(LoadPipeline, MalformedYamlBadIndentation) {
  const LoadResult result = load("name: demo\nsource:\n  plugin: jsonl\n path: x\n");
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(format(result.diagnostics[0]), at(4, 2, "malformed YAML: end of map not found"));
}

TEST_F(LoadPipeline, MissingFile) {
  plugins::Registry registry;
  const fs::path missing = tmp_ / "nope.yaml";
  const LoadResult result = load_pipeline(missing, registry);
  EXPECT_FALSE(result.spec);
  EXPECT_EQ(messages(result.diagnostics),
            std::vector<std::string>{missing.string() + ": cannot read the pipeline file: No such file or directory"});
}

TEST_F(LoadPipeline, TopLevelMustBeAMapping) {
  const LoadResult result = load("- name: demo\n");
  EXPECT_EQ(messages(result.diagnostics),
            std::vector<std::string>{at(1, 1, "a pipeline file must be a mapping with name, source, stages and sinks")});
}

// An anchor holding an alias of itself stands for infinitely many values;
// counting them overflowed the stack (found by the pipeline_yaml fuzzer).
TEST_F(LoadPipeline, AnAnchorHoldingItselfIsRefused) {
  const LoadResult result = load("name: a\nx: &b [1, *b]\nsource: {plugin: jsonl, path: x}\nsinks: []\n");
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_NE(result.diagnostics[0].message.find("expands to more than 100000 values or nests deeper than 256 levels"),
            std::string::npos)
      << result.diagnostics[0].message;
}

// The same cycle through a mapping's key (`? *b` in a sequence is a map
// whose key is the alias): keys were neither counted nor bounded, and
// reading the empty value's place from its key recursed forever (found by
// the pipeline_yaml fuzzer without ASan).
TEST_F(LoadPipeline, AnAnchorHoldingItselfAsAKeyIsRefused) {
  for (const char* cycle : {"x: &b [? *b]\n", "x: &b {? *b : 1}\n", "x: &b {*b : }\n"}) {
    const LoadResult result = load(std::string("name: a\n") + cycle + "source: {plugin: jsonl, path: x}\nsinks: []\n");
    ASSERT_EQ(result.diagnostics.size(), 1u) << cycle;
    EXPECT_NE(result.diagnostics[0].message.find("nests deeper than 256 levels"), std::string::npos)
        << cycle << result.diagnostics[0].message;
  }
}

TEST_F(LoadPipeline, MissingRequiredTopLevelKeys) {
  const LoadResult result = load("description: nothing else\n");
  EXPECT_EQ(messages(result.diagnostics),
            (std::vector<std::string>{
                at(1, 1, "name: missing required key 'name' (pipeline name: letters, digits, '.', '_' or '-')"),
                at(1, 1, "source: missing required key 'source' (the source block)"),
                at(1, 1, "sinks: missing required key 'sinks' (the list of sink blocks)"),
            }));
}

TEST_F(LoadPipeline, MissingRequiredPluginParameters) {
  const LoadResult result = load("name: demo\nsource:\n  plugin: jsonl\nsinks:\n  - plugin: jsonl\n");
  EXPECT_EQ(messages(result.diagnostics),
            (std::vector<std::string>{
                at(3, 3, "source.path: missing required key 'path' (input file, or a glob of files read in sorted order)"),
                at(5, 5, "sinks[0].dir: missing required key 'dir' (output folder for shards, rejects and manifest.json)"),
            }));
}

TEST_F(LoadPipeline, UnknownKeyInAPluginBlock) {
  const LoadResult result = load("name: demo\nsource:\n  plugin: jsonl\n  path: in.jsonl\n  fromat: auto\n"
                                 "sinks: [{plugin: jsonl, dir: out}]\n");
  EXPECT_EQ(messages(result.diagnostics),
            std::vector<std::string>{at(5, 11, "source.fromat: unknown key 'fromat' (did you mean 'format'?); valid keys: "
                                               "path, format, batch_input, terms, endpoint, max_line_bytes")});
}

TEST_F(LoadPipeline, WrongTypesAndRangesInPluginAndEngineBlocks) {
  const LoadResult result = load(R"(name: demo
engine:
  threads: 0
  batch_size: lots
source:
  plugin: jsonl
  path: in.jsonl
  format: xml
  max_line_bytes: 8
stages:
  - plugin: exact_dedupe
    normalize: [nfkc, stem]
sinks:
  - plugin: jsonl
    dir: out
    include_logprobs: perhaps
)");
  EXPECT_EQ(messages(result.diagnostics),
            (std::vector<std::string>{
                at(3, 12, "engine.threads: value 0 is below the minimum 1"),
                at(4, 15, "engine.batch_size: expected an integer, got 'lots'"),
                at(8, 11, "source.format: 'xml' is not one of: auto, chat_completion, batch_output, messages, sharegpt, "
                          "alpaca"),
                at(9, 19, "source.max_line_bytes: value 8 is below the minimum 16"),
                at(12, 23, "stages[0].normalize: 'stem' is not one of: nfkc, casefold, whitespace, punctuation, digits"),
                at(16, 23, "sinks[0].include_logprobs: expected true or false, got 'perhaps'"),
            }));
}

TEST_F(LoadPipeline, DuplicateKeyInAPluginBlock) {
  const LoadResult result = load("name: demo\nsource:\n  plugin: jsonl\n  path: a.jsonl\n  path: b.jsonl\n"
                                 "sinks: [{plugin: jsonl, dir: out}]\n");
  EXPECT_EQ(messages(result.diagnostics), std::vector<std::string>{at(5, 9, "source.path: key 'path' appears twice")});
}

TEST_F(LoadPipeline, UnknownPluginListsTheAvailableOnes) {
  const LoadResult result = load("name: demo\nsource: {plugin: jsnol, path: x}\nstages:\n  - plugin: minhash\n"
                                 "sinks: [{plugin: parquet, dir: out}]\n");
  EXPECT_EQ(messages(result.diagnostics),
            (std::vector<std::string>{
                at(2, 18, "source.plugin: unknown plugin 'jsnol'; available source plugins: jsonl"),
                at(4, 13, "stages[0].plugin: unknown plugin 'minhash'; available stage plugins: exact_dedupe"),
                at(5, 18, "sinks[0].plugin: unknown plugin 'parquet'; available sink plugins: jsonl"),
            }));
}

TEST_F(LoadPipeline, UnknownPluginMentionsFilesThatFailedToLoad) {
  plugins::Registry registry;
  for (const char* plugin : {"DISTILL_TEST_JSONL_PLUGIN", "DISTILL_TEST_EXACT_DEDUPE_PLUGIN"})
    ASSERT_TRUE(registry.load_file(std::getenv(plugin))) << plugin;
  const fs::path broken = write("broken.so", "not a shared object");
  ASSERT_FALSE(registry.load_file(broken));
  const LoadResult result = load("name: demo\nsource: {plugin: jsonl, path: x}\nstages: [{plugin: broken}]\n"
                                 "sinks: [{plugin: jsonl, dir: out}]\n",
                                 registry);
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(result.diagnostics[0].message.rfind("unknown plugin 'broken'; available stage plugins: exact_dedupe\n"
                                                "  not loaded: cannot load plugin " + broken.string() + ": ", 0),
            0u)
      << result.diagnostics[0].message;
}

TEST_F(LoadPipeline, PluginOfTheWrongKind) {
  const LoadResult result = load("name: demo\nsource: {plugin: exact_dedupe}\nstages: [{plugin: jsonl}]\n"
                                 "sinks: [{plugin: exact_dedupe}]\n");
  EXPECT_EQ(messages(result.diagnostics),
            (std::vector<std::string>{
                at(2, 18, "source.plugin: plugin 'exact_dedupe' is not a source; available source plugins: jsonl"),
                at(3, 19, "stages[0].plugin: plugin 'jsonl' is not a stage; available stage plugins: exact_dedupe"),
                at(4, 18, "sinks[0].plugin: plugin 'exact_dedupe' is not a sink; available sink plugins: jsonl"),
            }));
}

TEST_F(LoadPipeline, BlockWithoutAPluginKey) {
  const LoadResult result = load("name: demo\nsource: {path: x}\nstages: [dedupe]\nsinks: {plugin: jsonl}\n");
  EXPECT_EQ(messages(result.diagnostics),
            (std::vector<std::string>{
                at(2, 9, "source.plugin: missing required key 'plugin' (the source plugin to use)"),
                at(3, 10, "stages[0]: expected a stage block with a 'plugin:' key"),
                at(4, 8, "sinks: expected a list of blocks, each starting with '- plugin: NAME'"),
            }));
}

TEST_F(LoadPipeline, TwoStagesWithTheSameName) {
  const LoadResult result = load(R"(name: demo
source: {plugin: jsonl, path: x}
stages:
  - plugin: exact_dedupe
  - plugin: exact_dedupe
    key: response
sinks:
  - {plugin: jsonl, dir: a}
  - {plugin: jsonl, dir: b}
)");
  EXPECT_EQ(messages(result.diagnostics),
            (std::vector<std::string>{
                at(5, 5, "stages[1]: two stages are named 'exact_dedupe' (line 4 too); give one of them an 'id:'"),
                at(9, 5, "sinks[1]: two sinks are named 'jsonl' (line 8 too); give one of them an 'id:'"),
            }));
}

TEST_F(LoadPipeline, IdsMustBeSimpleAndParallelismInRange) {
  const LoadResult result = load(R"(name: my pipeline
source: {plugin: jsonl, path: x}
stages:
  - {plugin: exact_dedupe, id: "a/b", parallelism: 0}
sinks: [{plugin: jsonl, dir: out}]
)");
  EXPECT_EQ(messages(result.diagnostics),
            (std::vector<std::string>{
                at(1, 7, "name: name must be letters, digits, '.', '_' or '-'"),
                at(4, 32, "stages[0].id: id must be letters, digits, '.', '_' or '-'"),
                at(4, 52, "stages[0].parallelism: value 0 is below the minimum 1"),
            }));
}

TEST_F(LoadPipeline, PluginValidateErrorPointsAtTheParameter) {
  const LoadResult missing = load("name: demo\nsource:\n  plugin: jsonl\n  path: in/none.jsonl\n"
                                  "sinks: [{plugin: jsonl, dir: out}]\n");
  EXPECT_EQ(messages(missing.diagnostics),
            std::vector<std::string>{at(4, 9, "source.path: input file " +
                                                  (tmp_ / "pipelines" / "in" / "none.jsonl").string() + " does not exist")});
  const LoadResult result = load("name: demo\nsource:\n  plugin: jsonl\n  path: 'inputs/*.jsonl'\n"
                                 "sinks: [{plugin: jsonl, dir: out}]\n");
  EXPECT_EQ(messages(result.diagnostics),
            std::vector<std::string>{at(4, 9, "source.path: no input file matches '" +
                                                  (tmp_ / "pipelines" / "inputs" / "*.jsonl").string() + "'")});
}

TEST_F(LoadPipeline, GlobMatchingFilesIsAccepted) {
  write("pipelines/inputs/a.jsonl", "");
  const LoadResult result = load("name: demo\nsource:\n  plugin: jsonl\n  path: 'inputs/*.jsonl'\n"
                                 "sinks: [{plugin: jsonl, dir: out}]\n");
  EXPECT_TRUE(result.diagnostics.empty()) << format(result.diagnostics.front());
}

TEST_F(LoadPipeline, NeedsAtLeastOneSink) {
  const LoadResult result = load("name: demo\nsource: {plugin: jsonl, path: x}\nsinks: []\n");
  EXPECT_EQ(messages(result.diagnostics), std::vector<std::string>{at(3, 8, "sinks: a pipeline needs at least one sink")});
}

TEST_F(LoadPipeline, PluginPathIsRelativeToTheFile) {
  plugins::Registry empty;
  const fs::path relative = fs::relative(plugin_dir_, tmp_ / "pipelines");
  const LoadResult result = load("name: demo\nplugin_path: " + relative.string() +
                                     "\nsource: {plugin: jsonl, path: x}\nsinks: [{plugin: jsonl, dir: out}]\n",
                                 empty);
  EXPECT_TRUE(result.diagnostics.empty()) << format(result.diagnostics.front());
  EXPECT_NE(empty.find("jsonl"), nullptr);
  EXPECT_NE(empty.find("exact_dedupe"), nullptr);
}

TEST_F(LoadPipeline, SeveralErrorsReportedAtOnce) {
  const LoadResult result = load(R"(name: demo
colour: blue
engine: {threads: 1000}
source:
  plugin: jsonl
stages:
  - plugin: exact_dedupe
    key: prompt
  - plugin: nope
sinks:
  - plugin: jsonl
    dir: out
    rejects: some
)");
  EXPECT_FALSE(result.spec);
  EXPECT_EQ(messages(result.diagnostics),
            (std::vector<std::string>{
                at(2, 9, "colour: unknown key 'colour'; valid keys: name, description, state_dir, plugin_path, engine, "
                         "source, stages, sinks"),
                at(3, 19, "engine.threads: value 1000 is above the maximum 256"),
                at(5, 3, "source.path: missing required key 'path' (input file, or a glob of files read in sorted order)"),
                at(8, 10, "stages[0].key: 'prompt' is not one of: prompt+response, response"),
                at(9, 13, "stages[1].plugin: unknown plugin 'nope'; available stage plugins: exact_dedupe"),
                at(13, 14, "sinks[0].rejects: 'some' is not one of: none, source, all"),
            }));
  for (const Diagnostic& d : result.diagnostics) EXPECT_EQ(d.file, file_.string());
}

}  // namespace
}  // namespace distill::spec
