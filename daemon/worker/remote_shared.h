// A worker's Context::shared() namespaces, kept by its daemon: every call
// goes over the daemon's shared.sock (see server/shared_service.h). One
// connection per worker, used by one call at a time.
#pragma once

#include <distill/plugin.h>

#include <memory>
#include <mutex>
#include <string>

#include "rpc/wire.h"

namespace distill::worker {

class SharedLink {
 public:
  explicit SharedLink(std::string socket_path) : socket_path_(std::move(socket_path)) {}
  // Runs `call` on the connection (made at the first call); a failed call
  // drops the connection, so the next call connects again. Throws
  // std::runtime_error naming the socket when the daemon cannot be reached.
  template <class F>
  auto with_client(F&& call) {
    std::lock_guard lock(mutex_);
    try {
      if (!connection_) connection_ = std::make_unique<rpc::Connection<rpc::SharedStateClient>>(socket_path_, kTimeout);
      return call(connection_->client());
    } catch (const apache::thrift::TException& e) {
      connection_.reset();
      throw std::runtime_error("the daemon's shared store at " + socket_path_ + " did not answer: " + e.what());
    }
  }

 private:
  static constexpr std::chrono::milliseconds kTimeout{60000};
  const std::string socket_path_;
  std::mutex mutex_;
  std::unique_ptr<rpc::Connection<rpc::SharedStateClient>> connection_;
};

class RemoteNamespace : public KeyValue {
 public:
  RemoteNamespace(std::shared_ptr<SharedLink> link, std::string space)
      : link_(std::move(link)), space_(std::move(space)) {}

  std::optional<std::string> get(std::string_view key) override;
  void put(std::string_view key, std::string_view value) override;
  void erase(std::string_view key) override;
  void scan(std::string_view prefix,
            const std::function<bool(std::string_view, std::string_view)>& visit) override;

 private:
  std::shared_ptr<SharedLink> link_;
  std::string space_;
};

}  // namespace distill::worker
