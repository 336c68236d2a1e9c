// Plugin key-value state on RocksDB: buffered until checkpoint, or shared
// and written through. Keys are the instance's prefix plus the plugin's key.
#include "store/plugin_state.h"

#include <rocksdb/comparator.h>

namespace distill::store {
namespace {

// Copies the buffered plugin_state writes into the checkpoint's batch.
class CopyToBatch : public rocksdb::WriteBatch::Handler {
 public:
  CopyToBatch(rocksdb::WriteBatch& target, rocksdb::ColumnFamilyHandle* family)
      : target_(target), family_(family) {}
  rocksdb::Status PutCF(uint32_t, const rocksdb::Slice& key, const rocksdb::Slice& value) override {
    return target_.Put(family_, key, value);
  }
  rocksdb::Status DeleteCF(uint32_t, const rocksdb::Slice& key) override {
    return target_.Delete(family_, key);
  }

 private:
  rocksdb::WriteBatch& target_;
  rocksdb::ColumnFamilyHandle* family_;
};

void scan_iterator(rocksdb::Iterator& it, std::string_view prefix, std::size_t strip,
                   const std::function<bool(std::string_view, std::string_view)>& visit) {
  for (it.Seek(prefix); it.Valid() && it.key().starts_with(prefix); it.Next())
    if (!visit(it.key().ToStringView().substr(strip), it.value().ToStringView())) break;
  check(it.status(), "scanning plugin state");
}

}  // namespace

CheckpointedState::CheckpointedState(Store& store, std::string prefix)
    : store_(store), prefix_(std::move(prefix)), pending_(rocksdb::BytewiseComparator(), 0, true) {}

std::string CheckpointedState::full_key(std::string_view key) const {
  std::string full = prefix_;
  full.append(key);
  return full;
}

std::optional<std::string> CheckpointedState::get(std::string_view key) {
  std::string value;
  rocksdb::Status status = pending_.GetFromBatchAndDB(&store_.db(), rocksdb::ReadOptions(),
                                                      store_.family(Family::PluginState), full_key(key), &value);
  if (status.IsNotFound()) return std::nullopt;
  check(status, "reading plugin state");
  return value;
}

void CheckpointedState::put(std::string_view key, std::string_view value) {
  check(pending_.Put(store_.family(Family::PluginState), full_key(key), value), "buffering plugin state");
}

void CheckpointedState::erase(std::string_view key) {
  check(pending_.Delete(store_.family(Family::PluginState), full_key(key)), "buffering plugin state");
}

void CheckpointedState::scan(std::string_view prefix,
                             const std::function<bool(std::string_view, std::string_view)>& visit) {
  rocksdb::ColumnFamilyHandle* family = store_.family(Family::PluginState);
  std::unique_ptr<rocksdb::Iterator> it(
      pending_.NewIteratorWithBase(family, store_.db().NewIterator(rocksdb::ReadOptions(), family)));
  scan_iterator(*it, full_key(prefix), prefix_.size(), visit);
}

void CheckpointedState::move_pending_to(rocksdb::WriteBatch& batch) {
  CopyToBatch copy(batch, store_.family(Family::PluginState));
  check(pending_.GetWriteBatch()->Iterate(&copy), "collecting plugin state for a checkpoint");
  pending_.Clear();
}

void CheckpointedState::discard_pending() { pending_.Clear(); }

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
