// The two KeyValue namespaces a plugin instance sees (distill::Context):
// CheckpointedState buffers writes (read-your-writes) until the engine
// commits them with a checkpoint; SharedNamespace writes through at once.
#pragma once

#include <distill/plugin.h>

#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "store/store.h"

namespace distill::store {

class CheckpointedState : public KeyValue {
 public:
  CheckpointedState(Store& store, std::string prefix);

  std::optional<std::string> get(std::string_view key) override;
  void put(std::string_view key, std::string_view value) override;
  void erase(std::string_view key) override;
  void scan(std::string_view prefix,
            const std::function<bool(std::string_view, std::string_view)>& visit) override;

  // Appends the buffered writes to `batch` in key order (for one atomic
  // commit) and forgets them.
  void move_pending_to(rocksdb::WriteBatch& batch);
  // Forgets the buffered writes (the run failed before its checkpoint).
  void discard_pending();

 private:
  // A buffered write: the value's bytes in the arena, or a deletion.
  struct Pending {
    std::string_view value;
    bool erased = false;
  };
  using PendingEntry = std::pair<const std::string_view, Pending>;

  std::string full_key(std::string_view key) const;
  // Copies `bytes` into the arena, where they stay until the buffer is cleared.
  std::string_view keep(std::string_view bytes);
  void write(std::string_view key, Pending pending);
  // The buffered writes whose keys start with `prefix`, in key order.
  std::vector<const PendingEntry*> pending_in_order(std::string_view prefix) const;
  void clear_pending();

  Store& store_;
  std::string prefix_;
  // Writes since the last checkpoint, by the plugin's key. Keys and values
  // live in arena chunks, so a put costs one hash insert and a copy; an
  // overwritten value's old bytes stay in the arena until the checkpoint.
  std::unordered_map<std::string_view, Pending> pending_;
  std::vector<std::unique_ptr<char[]>> chunks_;
  char* free_ = nullptr;  // the unused rest of the newest chunk
  std::size_t free_bytes_ = 0;
};

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
