// Shared namespaces served from the daemon's store.
#include "server/shared_service.h"

#include "store/plugin_state.h"

namespace distill::server {

SharedService::SharedService(const std::filesystem::path& dir)
    : store_(store::Store::open(dir, store::Store::Mode::ReadWrite, store::Store::Layout::Shared)) {}

void SharedService::get(rpc::Found& out, const std::string& space, const std::string& key) {
  std::optional<std::string> value = store::SharedNamespace(*store_, store::shared_prefix(space)).get(key);
  out.found = value.has_value();
  out.value = value ? std::move(*value) : "";
}

void SharedService::put(const std::string& space, const std::string& key, const std::string& value) {
  store::SharedNamespace(*store_, store::shared_prefix(space)).put(key, value);
}

void SharedService::erase(const std::string& space, const std::string& key) {
  store::SharedNamespace(*store_, store::shared_prefix(space)).erase(key);
}

void SharedService::scan(std::vector<rpc::Entry>& out, const std::string& space, const std::string& prefix,
                         const std::string& after, std::int32_t limit) {
  store::SharedNamespace(*store_, store::shared_prefix(space)).scan(prefix, [&](std::string_view key, std::string_view value) {
    if (!after.empty() && key <= after) return true;
    rpc::Entry entry;
    entry.key = key;
    entry.value = value;
    out.push_back(std::move(entry));
    return static_cast<std::int32_t>(out.size()) < limit;
  });
}

}  // namespace distill::server
