// dlopen()s plugin files, checks their SDK ABI before reading anything
// else, and keeps them loaded for the life of the process.
#include "plugins/registry.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>

namespace distill::plugins {
namespace {

#define DISTILL_STRINGIFY2(x) #x
#define DISTILL_STRINGIFY(x) DISTILL_STRINGIFY2(x)
constexpr const char* kEntrySymbol = DISTILL_STRINGIFY(DISTILL_PLUGIN_ENTRY);

bool is_within(const std::filesystem::path& file, const std::filesystem::path& dir) {
  auto [dir_end, file_it] = std::mismatch(dir.begin(), dir.end(), file.begin(), file.end());
  return dir_end == dir.end();
}

}  // namespace

const Component* LoadedPlugin::component(Kind kind) const {
  for (const Component& c : info->components)
    if (c.kind == kind) return &c;
  return nullptr;
}

std::vector<std::filesystem::path> Registry::default_dirs() {
  std::vector<std::filesystem::path> dirs;
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec && is_within(self, DISTILL_BUILD_ROOT))
    dirs.emplace_back(DISTILL_BUILD_PLUGIN_DIR);
  else
    dirs.emplace_back(DISTILL_INSTALL_PLUGIN_DIR);
  if (const char* env = std::getenv("DISTILLD_PLUGIN_PATH")) {
    std::string_view rest = env;
    while (!rest.empty()) {
      const std::size_t colon = rest.find(':');
      if (colon != 0) dirs.emplace_back(std::string(rest.substr(0, colon)));
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  return dirs;
}

void Registry::load_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return;
  std::vector<std::filesystem::path> files;
  auto collect = [&files](const std::filesystem::path& folder) {
    std::error_code err;
    for (const auto& entry : std::filesystem::directory_iterator(folder, err))
      if (entry.is_regular_file() && entry.path().extension() == ".so" &&
          !entry.path().filename().string().starts_with("lib"))  // a plugin's own library, not a plugin
        files.push_back(entry.path());
  };
  collect(dir);
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.is_directory() && entry.path().filename().string().front() != '.') collect(entry.path());
  std::sort(files.begin(), files.end());
  for (const auto& file : files) load_file(file);
}

bool Registry::load_file(const std::filesystem::path& path) {
  std::error_code ec;
  const std::filesystem::path file = std::filesystem::weakly_canonical(path, ec);
  std::lock_guard lock(mutex_);
  if (std::find(loaded_files_.begin(), loaded_files_.end(), file) != loaded_files_.end()) return true;

  void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    refuse("cannot load plugin " + file.string() + ": " + dlerror());
    return false;
  }
  using Entry = const PluginDescriptor* (*)();
  auto entry = reinterpret_cast<Entry>(dlsym(handle, kEntrySymbol));
  if (!entry) {
    refuse(file.string() + " is not a distilld plugin (no " + kEntrySymbol + " symbol)");
    dlclose(handle);
    return false;
  }
  const PluginDescriptor* descriptor = entry();
  if (descriptor->abi != DISTILL_SDK_ABI) {
    refuse("plugin " + file.string() + " was built for distill SDK ABI " + std::to_string(descriptor->abi) +
           " (SDK " + descriptor->sdk_version + "), but this distilld uses ABI " + std::to_string(DISTILL_SDK_ABI) +
           " (SDK " + DISTILL_SDK_VERSION + "); rebuild the plugin against this SDK");
    dlclose(handle);
    return false;
  }
  const PluginInfo& info = *descriptor->info;
  if (const LoadedPlugin* existing = find_locked(info.name)) {
    refuse("plugin '" + info.name + "' in " + file.string() + " is refused: " + existing->file.string() +
           " already provides a plugin of that name");
    dlclose(handle);
    return false;
  }
  // The handle stays open for the life of the process: plugin objects and
  // their code must outlive every pipeline that uses them.
  plugins_.push_back(std::make_unique<const LoadedPlugin>(LoadedPlugin{info.name, file, &info}));
  loaded_files_.push_back(file);
  return true;
}

void Registry::refuse(std::string reason) {
  if (std::find(errors_.begin(), errors_.end(), reason) == errors_.end()) errors_.push_back(std::move(reason));
}

const LoadedPlugin* Registry::find(std::string_view name) const {
  std::lock_guard lock(mutex_);
  return find_locked(name);
}

const LoadedPlugin* Registry::find_locked(std::string_view name) const {
  for (const auto& plugin : plugins_)
    if (plugin->name == name) return plugin.get();
  return nullptr;
}

std::vector<const LoadedPlugin*> Registry::plugins() const {
  std::lock_guard lock(mutex_);
  std::vector<const LoadedPlugin*> out;
  for (const auto& plugin : plugins_) out.push_back(plugin.get());
  return out;
}

std::vector<std::string> Registry::errors() const {
  std::lock_guard lock(mutex_);
  return errors_;
}

std::string Registry::names_with(Kind kind) const {
  std::vector<std::string> names;
  for (const LoadedPlugin* plugin : plugins())
    if (plugin->component(kind)) names.push_back(plugin->name);
  std::sort(names.begin(), names.end());
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out.empty() ? "(none)" : out;
}

}  // namespace distill::plugins
