// Unit tests of the plugin loader (daemon/plugins/registry): loading, ABI check, refusals, lookup and search path.
#include "plugins/registry.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace distill::plugins {
namespace {

namespace fs = std::filesystem;

fs::path env_path(const char* name) {
  const char* value = std::getenv(name);
  if (!value) ADD_FAILURE() << name << " is not set (run the test through meson)";
  return value ? fs::path(value) : fs::path();
}

fs::path resolved(const fs::path& path) { return fs::weakly_canonical(path); }

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "distill-registry-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    tmp_ = pattern;
  }
  void TearDown() override { fs::remove_all(tmp_); }

  // Copies `file` to `folder` (relative to the temp dir) and returns the copy.
  fs::path copy_into(const fs::path& file, const fs::path& folder) {
    fs::create_directories(tmp_ / folder);
    const fs::path target = tmp_ / folder / file.filename();
    fs::copy_file(file, target);
    return target;
  }

  const fs::path plugin_dir_ = env_path("DISTILL_BUILT_PLUGIN_DIR");
  const fs::path jsonl_ = env_path("DISTILL_TEST_JSONL_PLUGIN");
  const fs::path exact_dedupe_ = env_path("DISTILL_TEST_EXACT_DEDUPE_PLUGIN");
  const fs::path abi_mismatch_ = env_path("DISTILL_TEST_ABI_MISMATCH_PLUGIN");
  const fs::path dup_jsonl_ = env_path("DISTILL_TEST_DUP_JSONL_PLUGIN");
  const fs::path not_a_plugin_ = env_path("DISTILL_TEST_NOT_A_PLUGIN");
  fs::path tmp_;
};

std::vector<std::string> param_names(const Component& component) {
  std::vector<std::string> names;
  for (const ParamSpec& spec : component.params) names.push_back(spec.name);
  return names;
}

TEST_F(RegistryTest, LoadDirLoadsTheBuiltPlugins) {
  Registry registry;
  registry.load_dir(plugin_dir_);
  EXPECT_TRUE(registry.errors().empty()) << registry.errors().front();
  ASSERT_GE(registry.plugins().size(), 2u);

  const LoadedPlugin* jsonl = registry.find("jsonl");
  ASSERT_NE(jsonl, nullptr);
  EXPECT_EQ(jsonl->name, "jsonl");
  EXPECT_EQ(jsonl->file, resolved(jsonl_));
  EXPECT_EQ(jsonl->info->name, "jsonl");
  EXPECT_FALSE(jsonl->info->description.empty());

  const LoadedPlugin* dedupe = registry.find("exact_dedupe");
  ASSERT_NE(dedupe, nullptr);
  EXPECT_EQ(dedupe->file, resolved(exact_dedupe_));
  EXPECT_EQ(registry.find("no_such_plugin"), nullptr);
  EXPECT_EQ(registry.find(""), nullptr);
}

TEST_F(RegistryTest, ComponentByKind) {
  Registry registry;
  ASSERT_TRUE(registry.load_file(jsonl_));
  ASSERT_TRUE(registry.load_file(exact_dedupe_));

  const LoadedPlugin& jsonl = *registry.find("jsonl");
  const Component* source = jsonl.component(Kind::Source);
  const Component* sink = jsonl.component(Kind::Sink);
  ASSERT_NE(source, nullptr);
  ASSERT_NE(sink, nullptr);
  EXPECT_EQ(source->kind, Kind::Source);
  EXPECT_TRUE(source->make_source);
  EXPECT_TRUE(source->validate);
  EXPECT_EQ(param_names(*source),
            (std::vector<std::string>{"path", "format", "batch_input", "terms", "endpoint", "max_line_bytes"}));
  EXPECT_EQ(sink->kind, Kind::Sink);
  EXPECT_TRUE(sink->make_sink);
  EXPECT_EQ(jsonl.component(Kind::Stage), nullptr);

  const LoadedPlugin& dedupe = *registry.find("exact_dedupe");
  const Component* stage = dedupe.component(Kind::Stage);
  ASSERT_NE(stage, nullptr);
  EXPECT_TRUE(stage->make_stage);
  EXPECT_EQ(param_names(*stage), (std::vector<std::string>{"key", "normalize"}));
  EXPECT_EQ(dedupe.component(Kind::Source), nullptr);
  EXPECT_EQ(dedupe.component(Kind::Sink), nullptr);
}

TEST_F(RegistryTest, NamesWithKind) {
  Registry registry;
  EXPECT_EQ(registry.names_with(Kind::Stage), "(none)");
  ASSERT_TRUE(registry.load_file(jsonl_));
  ASSERT_TRUE(registry.load_file(exact_dedupe_));
  EXPECT_EQ(registry.names_with(Kind::Source), "jsonl");
  EXPECT_EQ(registry.names_with(Kind::Stage), "exact_dedupe");
  EXPECT_EQ(registry.names_with(Kind::Sink), "jsonl");
}

TEST_F(RegistryTest, LoadingTheSameFileTwiceIsANoOp) {
  Registry registry;
  ASSERT_TRUE(registry.load_file(jsonl_));
  EXPECT_TRUE(registry.load_file(jsonl_));
  EXPECT_TRUE(registry.load_file(jsonl_.parent_path() / ".." / jsonl_.parent_path().filename() / jsonl_.filename()));
  registry.load_dir(plugin_dir_);
  Registry fresh;
  fresh.load_dir(plugin_dir_);
  EXPECT_EQ(registry.plugins().size(), fresh.plugins().size());
  EXPECT_TRUE(registry.errors().empty());
}

TEST_F(RegistryTest, AbiMismatchIsRefusedWithBothVersions) {
  Registry registry;
  EXPECT_FALSE(registry.load_file(abi_mismatch_));
  ASSERT_EQ(registry.errors().size(), 1u);
  EXPECT_EQ(registry.errors()[0], "plugin " + resolved(abi_mismatch_).string() +
                                      " was built for distill SDK ABI 999 (SDK 9.9.9), but this distilld uses ABI " +
                                      std::to_string(DISTILL_SDK_ABI) + " (SDK " DISTILL_SDK_VERSION
                                      "); rebuild the plugin against this SDK");
  EXPECT_TRUE(registry.plugins().empty());
}

TEST_F(RegistryTest, DuplicateNameIsRefusedNamingBothFiles) {
  Registry registry;
  ASSERT_TRUE(registry.load_file(jsonl_));
  EXPECT_FALSE(registry.load_file(dup_jsonl_));
  ASSERT_EQ(registry.errors().size(), 1u);
  EXPECT_EQ(registry.errors()[0], "plugin 'jsonl' in " + resolved(dup_jsonl_).string() + " is refused: " +
                                      resolved(jsonl_).string() + " already provides a plugin of that name");
  ASSERT_EQ(registry.plugins().size(), 1u);
  EXPECT_EQ(registry.find("jsonl")->file, resolved(jsonl_));
  EXPECT_NE(registry.find("jsonl")->component(Kind::Source), nullptr);
}

TEST_F(RegistryTest, FirstLoadedOfTwoSameNamedPluginsWins) {
  Registry registry;
  ASSERT_TRUE(registry.load_file(dup_jsonl_));
  EXPECT_FALSE(registry.load_file(jsonl_));
  EXPECT_EQ(registry.find("jsonl")->file, resolved(dup_jsonl_));
  EXPECT_NE(registry.find("jsonl")->component(Kind::Stage), nullptr);
  EXPECT_EQ(registry.find("jsonl")->component(Kind::Source), nullptr);
}

TEST_F(RegistryTest, SharedObjectWithoutEntryPointIsRefused) {
  Registry registry;
  EXPECT_FALSE(registry.load_file(not_a_plugin_));
  ASSERT_EQ(registry.errors().size(), 1u);
  EXPECT_EQ(registry.errors()[0],
            resolved(not_a_plugin_).string() + " is not a distilld plugin (no distill_plugin_descriptor symbol)");
}

TEST_F(RegistryTest, UnloadableFileIsRefusedWithTheLoaderReason) {
  Registry registry;
  const fs::path missing = tmp_ / "missing.so";
  EXPECT_FALSE(registry.load_file(missing));
  const fs::path garbage = tmp_ / "garbage.so";
  { std::FILE* f = std::fopen(garbage.c_str(), "w"); ASSERT_NE(f, nullptr); std::fputs("not ELF", f); std::fclose(f); }
  EXPECT_FALSE(registry.load_file(garbage));
  ASSERT_EQ(registry.errors().size(), 2u);
  EXPECT_EQ(registry.errors()[0].rfind("cannot load plugin " + resolved(missing).string() + ": ", 0), 0u)
      << registry.errors()[0];
  EXPECT_EQ(registry.errors()[1].rfind("cannot load plugin " + resolved(garbage).string() + ": ", 0), 0u)
      << registry.errors()[1];
  EXPECT_TRUE(registry.plugins().empty());
}

TEST_F(RegistryTest, LoadDirReadsOneLevelOfVisibleSubfoldersOnly) {
  copy_into(dup_jsonl_, "sub");                     // loaded
  copy_into(abi_mismatch_, ".hidden");              // hidden folder: skipped
  copy_into(not_a_plugin_, "sub/deeper");           // two levels down: skipped
  copy_into(exact_dedupe_, ".");                    // top level: loaded
  fs::copy_file(not_a_plugin_, tmp_ / "notes.txt");  // not *.so: skipped

  Registry registry;
  registry.load_dir(tmp_);
  EXPECT_TRUE(registry.errors().empty()) << registry.errors().front();
  ASSERT_EQ(registry.plugins().size(), 2u);
  EXPECT_EQ(registry.find("jsonl")->file, resolved(tmp_ / "sub" / dup_jsonl_.filename()));
  EXPECT_EQ(registry.find("exact_dedupe")->file, resolved(tmp_ / exact_dedupe_.filename()));
}

TEST_F(RegistryTest, LoadDirKeepsGoingPastRefusedFiles) {
  copy_into(abi_mismatch_, "a");
  copy_into(not_a_plugin_, "b");
  copy_into(jsonl_, "c");
  Registry registry;
  registry.load_dir(tmp_);
  EXPECT_EQ(registry.errors().size(), 2u);
  ASSERT_EQ(registry.plugins().size(), 1u);
  EXPECT_EQ(registry.plugins()[0]->name, "jsonl");
}

// A daemon validates a second pipeline, whose plugin_path adds plugins,
// while the first pipeline's steps hold pointers into the registry.
TEST_F(RegistryTest, PluginsStayWhereTheyAreWhenMoreAreLoaded) {
  copy_into(jsonl_, "first");
  Registry registry;
  registry.load_dir(tmp_ / "first");
  const LoadedPlugin* jsonl = registry.find("jsonl");
  ASSERT_NE(jsonl, nullptr);
  const Component* source = jsonl->component(Kind::Source);
  std::thread finder([&] {
    for (int i = 0; i < 2000; ++i) EXPECT_EQ(registry.find("jsonl"), jsonl);
  });
  registry.load_dir(plugin_dir_);
  finder.join();
  ASSERT_GE(registry.plugins().size(), 4u);
  EXPECT_EQ(registry.find("jsonl"), jsonl);
  EXPECT_EQ(jsonl->name, "jsonl");
  EXPECT_EQ(jsonl->component(Kind::Source), source);
}

TEST_F(RegistryTest, ARefusedFileIsReportedOnceHoweverOftenItIsScanned) {
  copy_into(abi_mismatch_, "a");
  Registry registry;
  registry.load_dir(tmp_);
  registry.load_dir(tmp_);
  EXPECT_EQ(registry.errors().size(), 1u);
}

TEST_F(RegistryTest, MissingFolderIsSkippedSilently) {
  Registry registry;
  registry.load_dir(tmp_ / "does-not-exist");
  EXPECT_TRUE(registry.plugins().empty());
  EXPECT_TRUE(registry.errors().empty());
}

TEST_F(RegistryTest, DefaultDirsStartWithTheBuildTreeThenTheEnvironment) {
  ASSERT_EQ(setenv("DISTILLD_PLUGIN_PATH", "/opt/a::/opt/b:", 1), 0);
  const std::vector<fs::path> dirs = Registry::default_dirs();
  ASSERT_EQ(unsetenv("DISTILLD_PLUGIN_PATH"), 0);
  EXPECT_EQ(dirs, (std::vector<fs::path>{plugin_dir_, "/opt/a", "/opt/b"}));
  EXPECT_EQ(Registry::default_dirs(), std::vector<fs::path>{plugin_dir_});
}

}  // namespace
}  // namespace distill::plugins
