// Plugin key-value state on RocksDB: buffered until checkpoint, or shared
// and written through. Keys are the instance's prefix plus the plugin's key.
#include "store/plugin_state.h"


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
  const std::string full = full_key(key);
  if (auto it = pending_.find(full); it != pending_.end()) return it->second;
  return store_.get(Family::PluginState, full);
}

void CheckpointedState::put(std::string_view key, std::string_view value) {
  pending_.insert_or_assign(full_key(key), std::string(value));
}

void CheckpointedState::erase(std::string_view key) { pending_.insert_or_assign(full_key(key), std::nullopt); }

// Merges the committed keys with the pending writes, in key order.
void CheckpointedState::scan(std::string_view prefix,
                             const std::function<bool(std::string_view, std::string_view)>& visit) {
  const std::string start = full_key(prefix);
  std::unique_ptr<rocksdb::Iterator> it(
      store_.db().NewIterator(rocksdb::ReadOptions(), store_.family(Family::PluginState)));
  it->Seek(start);
  auto pending = pending_.lower_bound(start);
  auto pending_valid = [&] { return pending != pending_.end() && std::string_view(pending->first).starts_with(start); };
  auto stored_valid = [&] { return it->Valid() && it->key().starts_with(start); };
  const std::size_t strip = prefix_.size();
  while (pending_valid() || stored_valid()) {
    const bool take_pending =
        pending_valid() && (!stored_valid() || std::string_view(pending->first) <= it->key().ToStringView());
    if (take_pending) {
      if (stored_valid() && it->key().ToStringView() == pending->first) it->Next();  // overwritten
      if (pending->second && !visit(std::string_view(pending->first).substr(strip), *pending->second)) return;
      ++pending;
    } else {
      if (!visit(it->key().ToStringView().substr(strip), it->value().ToStringView())) return;
      it->Next();
    }
  }
  check(it->status(), "scanning plugin state");
}

void CheckpointedState::move_pending_to(rocksdb::WriteBatch& batch) {
  rocksdb::ColumnFamilyHandle* family = store_.family(Family::PluginState);
  for (const auto& [key, value] : pending_)
    check(value ? batch.Put(family, key, *value) : batch.Delete(family, key), "collecting plugin state for a checkpoint");
  pending_.clear();
}

void CheckpointedState::discard_pending() { pending_.clear(); }

std::optional<std::string> SharedNamespace::get(std::string_view key) {
  return store_.get(Family::Shared, prefix_ + std::string(key));
}

void SharedNamespace::put(std::string_view key, std::string_view value) {
  store_.put(Family::Shared, prefix_ + std::string(key), value);
}

void SharedNamespace::erase(std::string_view key) {
  rocksdb::WriteBatch batch;
  check(batch.Delete(store_.family(Family::Shared), prefix_ + std::string(key)), "deleting shared state");
  store_.write(batch, false);
}

void SharedNamespace::scan(std::string_view prefix,
                           const std::function<bool(std::string_view, std::string_view)>& visit) {
  std::unique_ptr<rocksdb::Iterator> it(
      store_.db().NewIterator(rocksdb::ReadOptions(), store_.family(Family::Shared)));
  scan_iterator(*it, prefix_ + std::string(prefix), prefix_.size(), visit);
}

}  // namespace distill::store
