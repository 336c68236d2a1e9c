// Finding and loading plugin shared objects: the search path, the ABI
// check, duplicate names, and lookup by name and kind. Thread-safe: a
// daemon loads a new pipeline's plugin_path (or rescans its folders) while
// running pipelines hold LoadedPlugin pointers, which stay valid for the
// registry's life (plugins are only ever added).
#pragma once

#include <distill/plugin.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace distill::plugins {

struct LoadedPlugin {
  std::string name;
  std::filesystem::path file;
  const PluginInfo* info = nullptr;

  const Component* component(Kind kind) const;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The default search path: the build tree's plugin folder when this
  // binary runs from the build tree, else the install folder; then every
  // folder in $DISTILLD_PLUGIN_PATH (colon-separated).
  static std::vector<std::filesystem::path> default_dirs();

  // Loads every *.so in `dir` (not recursive into hidden folders; one level
  // of sub-folders, as the build tree has). A folder that does not exist is
  // skipped. Problems with single files are kept in errors().
  void load_dir(const std::filesystem::path& dir);
  // Loads one file; returns false and records the reason in errors() when refused.
  bool load_file(const std::filesystem::path& file);

  const LoadedPlugin* find(std::string_view name) const;
  // The loaded plugins in load order.
  std::vector<const LoadedPlugin*> plugins() const;
  // Files that were found but refused, each with the reason (once).
  std::vector<std::string> errors() const;
  // "a, b, c": names of the loaded plugins that provide `kind`.
  std::string names_with(Kind kind) const;

 private:
  const LoadedPlugin* find_locked(std::string_view name) const;
  void refuse(std::string reason);

  mutable std::mutex mutex_;  // guards the fields below
  std::vector<std::unique_ptr<const LoadedPlugin>> plugins_;  // never moved nor removed
  std::vector<std::string> errors_;
  std::vector<std::filesystem::path> loaded_files_;
};

}  // namespace distill::plugins
