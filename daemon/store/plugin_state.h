// The two KeyValue namespaces a plugin instance sees (distill::Context):
// CheckpointedState buffers writes (read-your-writes) until the engine
// commits them with a checkpoint; SharedNamespace writes through at once.
#pragma once

#include <distill/plugin.h>

#include <optional>

#include "store/store.h"
#include "store/write_buffer.h"

namespace distill::store {

class CheckpointedState : public KeyValue {
 public:
  CheckpointedState(Store& store, std::string prefix);

  std::optional<std::string> get(std::string_view key) override;
  void put(std::string_view key, std::string_view value) override;
  void erase(std::string_view key) override;
  void scan(std::string_view prefix,
            const std::function<bool(std::string_view, std::string_view)>& visit) override;

  // Appends the buffered writes to `writes` in key order (for one atomic
  // commit) and forgets them.
  void move_pending_to(WriteSet& writes);
  // Forgets the buffered writes (the run failed before its checkpoint).
  void discard_pending();

 private:
  std::string full_key(std::string_view key) const;

  Store& store_;
  std::string prefix_;
  WriteBuffer pending_;  // by the plugin's key (without prefix_)
};

// The key prefix of the shared namespace `name`.
std::string shared_prefix(std::string_view name);

class SharedNamespace : public KeyValue {
 public:
  SharedNamespace(Store& store, std::string prefix) : store_(store), prefix_(std::move(prefix)) {}

  std::optional<std::string> get(std::string_view key) override;
  void put(std::string_view key, std::string_view value) override;
  void erase(std::string_view key) override;
  void scan(std::string_view prefix,
            const std::function<bool(std::string_view, std::string_view)>& visit) override;

 private:
  Store& store_;
  std::string prefix_;
};

}  // namespace distill::store
