// Plugin key-value state on RocksDB: buffered until checkpoint, or shared
// and written through. Keys are the instance's prefix plus the plugin's key.
#include "store/plugin_state.h"

#include <rocksdb/db.h>

#include "store/keys.h"

namespace distill::store {
namespace {

void scan_iterator(rocksdb::Iterator& it, std::string_view prefix, std::size_t strip,
                   const std::function<bool(std::string_view, std::string_view)>& visit) {
  for (it.Seek(prefix); it.Valid() && it.key().starts_with(prefix); it.Next())
    if (!visit(it.key().ToStringView().substr(strip), it.value().ToStringView())) break;
  check(it.status(), "scanning plugin state");
}

}  // namespace

CheckpointedState::CheckpointedState(Store& store, std::string prefix) : store_(store), prefix_(std::move(prefix)) {}

std::string CheckpointedState::full_key(std::string_view key) const {
  std::string full = prefix_;
  full.append(key);
  return full;
}

std::optional<std::string> CheckpointedState::get(std::string_view key) {
  if (const WriteBuffer::Write* write = pending_.find(key)) {
    if (write->erased) return std::nullopt;
    return std::string(write->value);
  }
  return store_.get(Family::PluginState, full_key(key));
}

void CheckpointedState::put(std::string_view key, std::string_view value) { pending_.put(key, value); }

void CheckpointedState::erase(std::string_view key) { pending_.erase(key); }

// Merges the committed keys with the pending writes, in key order.
void CheckpointedState::scan(std::string_view prefix,
                             const std::function<bool(std::string_view, std::string_view)>& visit) {
  // Copied: the visitor may write to the state while the scan goes on.
  struct Pending {
    std::string key;
    std::optional<std::string> value;  // nullopt: erased
  };
  std::vector<Pending> pending;
  for (const WriteBuffer::Write& write : pending_.in_order(prefix))
    pending.push_back({std::string(write.key), write.erased ? std::nullopt : std::optional<std::string>(write.value)});
  auto next_pending = pending.begin();
  const std::string start = full_key(prefix);
  std::unique_ptr<rocksdb::Iterator> it(
      store_.db().NewIterator(rocksdb::ReadOptions(), store_.family(Family::PluginState)));
  it->Seek(start);
  const std::size_t strip = prefix_.size();
  auto stored_valid = [&] { return it->Valid() && it->key().starts_with(start); };
  auto stored_key = [&] { return it->key().ToStringView().substr(strip); };
  while (next_pending != pending.end() || stored_valid()) {
    if (next_pending != pending.end() && (!stored_valid() || next_pending->key <= stored_key())) {
      if (stored_valid() && stored_key() == next_pending->key) it->Next();  // overwritten
      if (next_pending->value && !visit(next_pending->key, *next_pending->value)) return;
      ++next_pending;
    } else {
      if (!visit(stored_key(), it->value().ToStringView())) return;
      it->Next();
    }
  }
  check(it->status(), "scanning plugin state");
}

// Key order makes RocksDB's memtable inserts sequential, which is cheaper.
void CheckpointedState::move_pending_to(WriteSet& writes) {
  for (const WriteBuffer::Write& write : pending_.in_order()) {
    if (write.erased)
      writes.erase(Family::PluginState, prefix_, write.key);
    else
      writes.put(Family::PluginState, prefix_, write.key, write.value);
  }
  pending_.clear();
}

void CheckpointedState::discard_pending() { pending_.clear(); }

std::string shared_prefix(std::string_view name) {
  std::string prefix;
  append_text(prefix, name);
  return prefix;
}

std::optional<std::string> SharedNamespace::get(std::string_view key) {
  return store_.get(Family::Shared, prefix_ + std::string(key));
}

void SharedNamespace::put(std::string_view key, std::string_view value) {
  store_.put(Family::Shared, prefix_ + std::string(key), value);
}

void SharedNamespace::erase(std::string_view key) {
  WriteSet writes(store_);
  writes.erase(Family::Shared, prefix_, key);
  store_.write(writes, false);
}

void SharedNamespace::scan(std::string_view prefix,
                           const std::function<bool(std::string_view, std::string_view)>& visit) {
  std::unique_ptr<rocksdb::Iterator> it(
      store_.db().NewIterator(rocksdb::ReadOptions(), store_.family(Family::Shared)));
  scan_iterator(*it, prefix_ + std::string(prefix), prefix_.size(), visit);
}

}  // namespace distill::store
