// Shared namespaces over the daemon's shared.sock.
#include "worker/remote_shared.h"

namespace distill::worker {
namespace {

constexpr std::int32_t kScanPage = 1000;

}  // namespace

std::optional<std::string> RemoteNamespace::get(std::string_view key) {
  rpc::Found found;
  link_->with_client([&](rpc::SharedStateClient& client) { client.get(found, space_, std::string(key)); });
  if (!found.found) return std::nullopt;
  return std::move(found.value);
}

void RemoteNamespace::put(std::string_view key, std::string_view value) {
  link_->with_client(
      [&](rpc::SharedStateClient& client) { client.put(space_, std::string(key), std::string(value)); });
}

void RemoteNamespace::erase(std::string_view key) {
  link_->with_client([&](rpc::SharedStateClient& client) { client.erase(space_, std::string(key)); });
}

// Page by page, so the visitor may call back into this namespace.
void RemoteNamespace::scan(std::string_view prefix,
                           const std::function<bool(std::string_view, std::string_view)>& visit) {
  std::string after;
  for (;;) {
    std::vector<rpc::Entry> page;
    link_->with_client([&](rpc::SharedStateClient& client) {
      client.scan(page, space_, std::string(prefix), after, kScanPage);
    });
    for (const rpc::Entry& entry : page)
      if (!visit(entry.key, entry.value)) return;
    if (static_cast<std::int32_t>(page.size()) < kScanPage) return;
    after = page.back().key;
  }
}

}  // namespace distill::worker
