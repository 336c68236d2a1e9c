// The store of what pipelines share (Context::shared(), e.g. the teacher's
// response cache), owned by the daemon in <state>/shared and served to its
// workers over <state>/shared.sock: two pipelines asking the same prompt
// pay once, although each runs in a process of its own.
#pragma once

#include <filesystem>
#include <memory>

#include "rpc/SharedState.h"
#include "store/store.h"

namespace distill::server {

class SharedService : public rpc::SharedStateIf {
 public:
  // Opens (or creates) the store in `dir`; throws store::StoreError.
  explicit SharedService(const std::filesystem::path& dir);

  void get(rpc::Found& out, const std::string& space, const std::string& key) override;
  void put(const std::string& space, const std::string& key, const std::string& value) override;
  void erase(const std::string& space, const std::string& key) override;
  void scan(std::vector<rpc::Entry>& out, const std::string& space, const std::string& prefix,
            const std::string& after, std::int32_t limit) override;

 private:
  std::unique_ptr<store::Store> store_;
};

}  // namespace distill::server
