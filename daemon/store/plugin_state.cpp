// Plugin key-value state on RocksDB: buffered until checkpoint, or shared
// and written through. Keys are the instance's prefix plus the plugin's key.
#include "store/plugin_state.h"

#include <algorithm>
#include <cstring>

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

std::string_view CheckpointedState::keep(std::string_view bytes) {
  constexpr std::size_t kChunkBytes = 1 << 20;
  if (bytes.empty()) return {};
  char* out;
  if (bytes.size() > kChunkBytes / 4) {  // a chunk of its own
    out = chunks_.emplace_back(std::make_unique_for_overwrite<char[]>(bytes.size())).get();
  } else {
    if (free_bytes_ < bytes.size()) {
      free_ = chunks_.emplace_back(std::make_unique_for_overwrite<char[]>(kChunkBytes)).get();
      free_bytes_ = kChunkBytes;
    }
    out = free_;
    free_ += bytes.size();
    free_bytes_ -= bytes.size();
  }
  std::memcpy(out, bytes.data(), bytes.size());
  return {out, bytes.size()};
}

void CheckpointedState::write(std::string_view key, Pending pending) {
  if (auto it = pending_.find(key); it != pending_.end())
    it->second = pending;
  else
    pending_.emplace(keep(key), pending);
}

std::optional<std::string> CheckpointedState::get(std::string_view key) {
  if (auto it = pending_.find(key); it != pending_.end()) {
    if (it->second.erased) return std::nullopt;
    return std::string(it->second.value);
  }
  return store_.get(Family::PluginState, full_key(key));
}

void CheckpointedState::put(std::string_view key, std::string_view value) { write(key, {keep(value), false}); }

void CheckpointedState::erase(std::string_view key) { write(key, {{}, true}); }

std::vector<const CheckpointedState::PendingEntry*> CheckpointedState::pending_in_order(std::string_view prefix) const {
  std::vector<const PendingEntry*> entries;
  entries.reserve(prefix.empty() ? pending_.size() : 0);
  for (const PendingEntry& entry : pending_)
    if (entry.first.starts_with(prefix)) entries.push_back(&entry);
  std::sort(entries.begin(), entries.end(), [](const PendingEntry* a, const PendingEntry* b) { return a->first < b->first; });
  return entries;
}

// Merges the committed keys with the pending writes, in key order.
void CheckpointedState::scan(std::string_view prefix,
                             const std::function<bool(std::string_view, std::string_view)>& visit) {
  const std::vector<const PendingEntry*> pending = pending_in_order(prefix);
  auto next_pending = pending.begin();
  const std::string start = full_key(prefix);
  std::unique_ptr<rocksdb::Iterator> it(
      store_.db().NewIterator(rocksdb::ReadOptions(), store_.family(Family::PluginState)));
  it->Seek(start);
  const std::size_t strip = prefix_.size();
  auto stored_valid = [&] { return it->Valid() && it->key().starts_with(start); };
  auto stored_key = [&] { return it->key().ToStringView().substr(strip); };
  while (next_pending != pending.end() || stored_valid()) {
    const bool take_pending = next_pending != pending.end() && (!stored_valid() || (*next_pending)->first <= stored_key());
    if (take_pending) {
      const auto& [key, write] = **next_pending;
      if (stored_valid() && stored_key() == key) it->Next();  // overwritten
      if (!write.erased && !visit(key, write.value)) return;
      ++next_pending;
    } else {
      if (!visit(stored_key(), it->value().ToStringView())) return;
      it->Next();
    }
  }
  check(it->status(), "scanning plugin state");
}

// Key order makes RocksDB's memtable inserts sequential, which is cheaper.
void CheckpointedState::move_pending_to(rocksdb::WriteBatch& batch) {
  rocksdb::ColumnFamilyHandle* family = store_.family(Family::PluginState);
  for (const PendingEntry* entry : pending_in_order("")) {
    const rocksdb::Slice key_parts[] = {prefix_, entry->first};
    const rocksdb::SliceParts key(key_parts, 2);
    if (entry->second.erased) {
      check(batch.Delete(family, key), "collecting plugin state for a checkpoint");
    } else {
      const rocksdb::Slice value(entry->second.value);
      check(batch.Put(family, key, rocksdb::SliceParts(&value, 1)), "collecting plugin state for a checkpoint");
    }
  }
  clear_pending();
}

void CheckpointedState::discard_pending() { clear_pending(); }

void CheckpointedState::clear_pending() {
  pending_.clear();
  chunks_.clear();
  free_ = nullptr;
  free_bytes_ = 0;
}

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
