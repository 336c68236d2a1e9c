// Opens the RocksDB database with distilld's column families and wraps the
// few operations the rest of the daemon uses, turning RocksDB statuses into
// StoreError messages that say what failed.
#include "store/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <array>

namespace distill::store {
namespace {

// By Family.
constexpr std::array<const char*, 7> kFamilyNames = {"runs",   "checkpoints", "plugin_state", "drops",
                                                     "shared", "pipelines",   "revisions"};

std::vector<Family> families_of(Store::Layout layout) {
  if (layout == Store::Layout::Daemon) return {Family::Pipelines, Family::Revisions};
  if (layout == Store::Layout::Shared) return {Family::Shared};
  return {Family::Runs, Family::Checkpoints, Family::PluginState, Family::Drops, Family::Shared};
}

rocksdb::ColumnFamilyOptions family_options(std::string_view name) {
  // One block cache for data, index and filter blocks, so memory stays
  // bounded however large the plugin state grows.
  static const std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(256u << 20);
  rocksdb::ColumnFamilyOptions options;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // A Bloom filter on the memtable: looking up an absent key (most dedupe
  // and cache lookups) skips the skip-list search.
  options.memtable_whole_key_filtering = true;
  options.memtable_prefix_bloom_size_ratio = 0.02;
  options.compression = rocksdb::kLZ4Compression;
  if (name == "plugin_state") {
    // Mostly hashes, which LZ4 shrinks by ~10% for ~3% of a dedupe run's
    // CPU (the other families hold JSON and compress well).
    options.compression = rocksdb::kNoCompression;
    // Dedupe indexes are written at random keys, which leveled compaction
    // rewrites level after level: on 2.5M records of the full dedupe chain
    // universal compaction took 31% less CPU and 40% less time.
    options.compaction_style = rocksdb::kCompactionStyleUniversal;
  }
  return options;
}

}  // namespace

void check(const rocksdb::Status& status, std::string_view what) {
  if (!status.ok()) throw StoreError(std::string(what) + ": " + status.ToString());
}

std::unique_ptr<Store> Store::open(const std::filesystem::path& dir, Mode mode, Layout layout) {
  std::error_code ec;
  if (mode == Mode::ReadOnly && !std::filesystem::exists(dir / "CURRENT", ec))
    throw StoreError("there is no state database in " + dir.string() + " (the pipeline has not run yet)");
  if (mode == Mode::ReadWrite) std::filesystem::create_directories(dir, ec);
  if (ec) throw StoreError("cannot create state folder " + dir.string() + ": " + ec.message());

  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.max_background_jobs = 2;
  // Families written rarely (runs, checkpoints) would otherwise keep every
  // WAL file alive until the busy ones had written ~1.5 GB: a bound on the
  // WAL bounds the disk it takes and the replay after a crash.
  options.max_total_wal_size = 256u << 20;

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, family_options(rocksdb::kDefaultColumnFamilyName));
  const std::vector<Family> families = families_of(layout);
  for (Family family : families) {
    const char* name = kFamilyNames[static_cast<std::size_t>(family)];
    descriptors.emplace_back(name, family_options(name));
  }

  std::unique_ptr<Store> store(new Store());
  store->dir_ = dir;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status status =
      mode == Mode::ReadOnly ? rocksdb::DB::OpenForReadOnly(options, dir.string(), descriptors, &handles, &raw)
                             : rocksdb::DB::Open(options, dir.string(), descriptors, &handles, &raw);
  check(status, "cannot open the state database in " + dir.string());
  store->db_.reset(raw);
  store->handles_ = std::move(handles);
  store->families_.assign(kFamilyNames.size(), nullptr);
  for (std::size_t i = 0; i < families.size(); ++i)
    store->families_[static_cast<std::size_t>(families[i])] = store->handles_[i + 1];
  return store;
}

Store::~Store() {
  for (rocksdb::ColumnFamilyHandle* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
}

rocksdb::ColumnFamilyHandle* Store::family(Family family) const {
  rocksdb::ColumnFamilyHandle* handle = families_[static_cast<std::size_t>(family)];
  if (!handle)
    throw StoreError(std::string("the database in ") + dir_.string() + " has no column family " +
                     kFamilyNames[static_cast<std::size_t>(family)]);
  return handle;
}

std::optional<std::string> Store::get(Family family, std::string_view key) const {
  std::string value;
  rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), this->family(family), key, &value);
  if (status.IsNotFound()) return std::nullopt;
  check(status, "reading the state database");
  return value;
}

void Store::put(Family family, std::string_view key, std::string_view value) {
  check(db_->Put(rocksdb::WriteOptions(), this->family(family), key, value), "writing the state database");
}

void Store::write(WriteSet& writes, bool sync) {
  rocksdb::WriteOptions options;
  options.sync = sync;
  check(db_->Write(options, writes.batch_.get()), "committing to the state database");
}

WriteSet::WriteSet(Store& store) : store_(store), batch_(std::make_unique<rocksdb::WriteBatch>()) {}
WriteSet::~WriteSet() = default;

void WriteSet::put(Family family, std::string_view key, std::string_view value) {
  check(batch_->Put(store_.family(family), key, value), "collecting a write");
}

void WriteSet::put(Family family, std::string_view key_prefix, std::string_view key, std::string_view value) {
  const rocksdb::Slice key_parts[] = {key_prefix, key};
  const rocksdb::Slice value_slice(value);
  check(batch_->Put(store_.family(family), rocksdb::SliceParts(key_parts, 2), rocksdb::SliceParts(&value_slice, 1)),
        "collecting a write");
}

void WriteSet::erase(Family family, std::string_view key_prefix, std::string_view key) {
  const rocksdb::Slice key_parts[] = {key_prefix, key};
  check(batch_->Delete(store_.family(family), rocksdb::SliceParts(key_parts, 2)), "collecting a deletion");
}

void Store::scan(Family family, std::string_view prefix,
                 const std::function<bool(std::string_view, std::string_view)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), this->family(family)));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
    if (!visit(it->key().ToStringView(), it->value().ToStringView())) break;
  check(it->status(), "scanning the state database");
}

}  // namespace distill::store
