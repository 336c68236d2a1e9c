// Opens the RocksDB database with distilld's column families and wraps the
// few operations the rest of the daemon uses, turning RocksDB statuses into
// StoreError messages that say what failed. Also owns what keeps a full
// disk from aborting the process: the free-space reserve, the refusal to
// write after a failed write, and RocksDB's LOG written without RocksDB's
// file writer.
#include "store/store.h"

#include <fcntl.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "store/integrity.h"

namespace distill::store {
namespace {

// ThreadSanitizer builds (tests/tsan) apply one batch at a time. RocksDB
// otherwise groups concurrent writes: one writer thread appends the others'
// batches to the log and memtables, handed over through atomics inside
// Debian's librocksdb.a, which is not instrumented, so TSan would report
// every concurrent write as a race. Other builds let RocksDB group them.
#if defined(__SANITIZE_THREAD__)
constexpr bool kOneWriteAtATime = true;
#else
constexpr bool kOneWriteAtATime = false;
#endif
std::mutex one_write_at_a_time;

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

// The free space a write must leave on the state folder's disk: RocksDB
// also needs room for flushes and compactions it starts by itself. On a
// small filesystem (a test's tmpfs) a sixteenth of it.
constexpr std::uint64_t kReserveBytes = 64u << 20;

std::string readable(std::uint64_t bytes) {
  char text[32];
  if (bytes < 1000000)
    std::snprintf(text, sizeof text, "%.0f kB", static_cast<double>(bytes) / 1e3);
  else
    std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

struct statvfs disk_of(const std::filesystem::path& dir) {
  struct statvfs disk {};
  if (::statvfs(dir.c_str(), &disk) != 0)
    throw StoreError("cannot read the free space of the disk holding " + dir.string() + ": " + std::strerror(errno));
  return disk;
}

// RocksDB's LOG in the state folder, written with plain write(2): RocksDB's
// own logger aborts the process (an assertion Debian's build leaves on) on
// the line after one it could not write, which a full disk brings about.
// A line that cannot be written is lost. Without a folder (the read-only
// opens) lines are dropped: the LOG stays that of the process that writes.
class InfoLog : public rocksdb::Logger {
 public:
  InfoLog() = default;
  explicit InfoLog(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::rename(dir / "LOG", dir / "LOG.old", ec);  // the previous open's, if any
    fd_ = ::open((dir / "LOG").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  }
  ~InfoLog() override {
    if (fd_ >= 0) ::close(fd_);
  }

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    if (fd_ < 0) return;
    const auto now = std::chrono::system_clock::now();
    const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    std::array<char, 4096> line;
    std::size_t size = std::strftime(line.data(), line.size(), "%Y/%m/%d-%H:%M:%S", &utc);
    size += static_cast<std::size_t>(std::snprintf(line.data() + size, line.size() - size, ".%06lld ",
                                                   static_cast<long long>(micros)));
    const int message = std::vsnprintf(line.data() + size, line.size() - size, format, ap);
    if (message < 0) return;
    size = std::min(size + static_cast<std::size_t>(message), line.size() - 1);
    if (line[size - 1] != '\n') line[size++] = '\n';
    if (::write(fd_, line.data(), size) < 0) return;
  }

 private:
  int fd_ = -1;
};

// An exclusive flock(2) on the folder's LOCK file, taken before the
// integrity check so that no other process writes the database while it is
// read; RocksDB's own lock (fcntl) on the same file is independent of it.
int lock_folder(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / "LOCK";
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    throw StoreError("cannot open the state database in " + dir.string() + ": cannot open " + file.string() + ": " +
                     std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(fd);
    throw StoreError("cannot open the state database in " + dir.string() + ": it is in use (the lock on " +
                     file.string() + " is held: " + std::strerror(error) + ")");
  }
  return fd;
}

rocksdb::DBOptions db_options() {
  rocksdb::DBOptions options;
  options.max_background_jobs = 2;
  // Families written rarely (runs, checkpoints) would otherwise keep every
  // WAL file alive until the busy ones had written ~1.5 GB: a bound on the
  // WAL bounds the disk it takes and the replay after a crash.
  options.max_total_wal_size = 256u << 20;
  // A WAL record that fails its checksum before the log's end is damage,
  // not the end of the log: the default (point-in-time recovery) would
  // silently drop every commit after it. A record cut short at the very
  // end is a write a crash interrupted, and is dropped.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  return options;
}

}  // namespace

void throw_damaged(const std::filesystem::path& dir, const std::string& reason) {
  throw StoreDamaged("the state database in " + dir.string() + " is damaged (" + reason +
                     "): restore the folder from a backup, or delete it to start the pipeline over; "
                     "nothing was changed");
}

void check(const rocksdb::Status& status, std::string_view what) {
  if (!status.ok()) throw StoreError(std::string(what) + ": " + status.ToString());
}

std::unique_ptr<Store> Store::open(const std::filesystem::path& dir, Mode mode, Layout layout, rocksdb::Env* env) {
  std::error_code ec;
  if (mode == Mode::ReadOnly && !std::filesystem::exists(dir / "CURRENT", ec) && !lost_current(dir))
    throw StoreError("there is no state database in " + dir.string() + " (the pipeline has not run yet)");
  if (mode == Mode::ReadWrite) std::filesystem::create_directories(dir, ec);
  if (ec) throw StoreError("cannot create state folder " + dir.string() + ": " + ec.message());

  std::unique_ptr<Store> store(new Store());
  store->dir_ = dir;
  if (mode == Mode::ReadWrite) {
    store->lock_fd_ = lock_folder(dir);
    const struct statvfs disk = disk_of(dir);
    store->reserve_bytes_ = std::min<std::uint64_t>(kReserveBytes, disk.f_blocks * disk.f_frsize / 16);
    store->check_free_space(0);
  }
  store->open_database(mode, layout, env);
  return store;
}

void Store::open_database(Mode mode, Layout layout, rocksdb::Env* env) {
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, family_options(rocksdb::kDefaultColumnFamilyName));
  const std::vector<Family> families = families_of(layout);
  for (Family family : families) {
    const char* name = kFamilyNames[static_cast<std::size_t>(family)];
    descriptors.emplace_back(name, family_options(name));
  }

  rocksdb::DBOptions options = db_options();
  options.info_log = std::make_shared<InfoLog>();
  if (env) options.env = env;
  if (!std::filesystem::exists(dir_ / "CURRENT")) {
    if (lost_current(dir_)) throw_damaged(dir_, "its CURRENT file is missing");
  } else if (mode == Mode::ReadWrite) {
    commit_ = verify(dir_, options, descriptors);
  }

  rocksdb::DB* raw = nullptr;
  rocksdb::Status status;
  if (mode == Mode::ReadOnly) {
    status = rocksdb::DB::OpenForReadOnly(options, dir_.string(), descriptors, &handles_, &raw);
  } else {
    options.create_if_missing = true;
    options.create_missing_column_families = true;  // a new database, or one whose first open was cut short
    options.info_log = std::make_shared<InfoLog>(dir_);
    status = rocksdb::DB::Open(options, dir_.string(), descriptors, &handles_, &raw);
  }
  if (status.IsCorruption()) throw_damaged(dir_, status.ToString());
  check(status, "cannot open the state database in " + dir_.string());
  db_.reset(raw);
  families_.assign(kFamilyNames.size(), nullptr);
  for (std::size_t i = 0; i < families.size(); ++i)
    families_[static_cast<std::size_t>(families[i])] = handles_[i + 1];
  // A new database, one from before markers, or one whose first open was
  // killed before kMarkedFile was written.
  if (mode == Mode::ReadWrite && !std::filesystem::exists(dir_ / kMarkedFile)) {
    if (commit_ == 0) {
      WriteSet marks(*this);
      write(marks, true);
    }
    write_marked_file(dir_);
  }
}

Store::~Store() {
  if (db_)
    for (rocksdb::ColumnFamilyHandle* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
  db_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
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
  check(status, "cannot read the state database in " + dir_.string());
  return value;
}

void Store::put(Family family, std::string_view key, std::string_view value) {
  rocksdb::WriteBatch batch;
  check(batch.Put(this->family(family), key, value), "collecting a write");
  apply(batch, false);
}

void Store::write(WriteSet& writes, bool sync) {
  const std::string marker = encode_commit(++commit_);
  for (rocksdb::ColumnFamilyHandle* family : families_)
    if (family) check(writes.batch_->Put(family, kCommitKey, marker), "collecting a write");
  apply(*writes.batch_, sync);
}

void Store::apply(rocksdb::WriteBatch& batch, bool sync) {
  {
    std::lock_guard lock(failure_mutex_);
    if (!failure_.empty())
      throw StoreError("the state database in " + dir_.string() + " takes no more writes after a failed one (" +
                       failure_ + "); run again once the cause is fixed");
  }
  check_free_space(batch.GetDataSize());
  rocksdb::WriteOptions options;
  options.sync = sync;
  std::unique_lock<std::mutex> serial(one_write_at_a_time, std::defer_lock);
  if (kOneWriteAtATime) serial.lock();
  const rocksdb::Status status = db_->Write(options, &batch);
  if (serial.owns_lock()) serial.unlock();
  if (status.ok()) return;
  {
    std::lock_guard lock(failure_mutex_);
    if (failure_.empty()) failure_ = status.ToString();
  }
  check(status, "cannot write the state database in " + dir_.string());
}

void Store::check_free_space(std::uint64_t bytes) const {
  const struct statvfs disk = disk_of(dir_);
  const std::uint64_t free = disk.f_bavail * disk.f_frsize;
  if (free >= reserve_bytes_ + bytes) return;
  throw StoreError("the disk holding the state folder " + dir_.string() + " is full: " + readable(free) +
                   " free, and distilld keeps " + readable(reserve_bytes_) +
                   " free so that the database is never cut off mid-write" +
                   (bytes ? " (this write needs " + readable(bytes) + " more)" : std::string()) +
                   "; free some space or move the state folder, then run again to resume");
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
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (it->key() == kCommitKey) continue;
    if (!visit(it->key().ToStringView(), it->value().ToStringView())) break;
  }
  check(it->status(), "cannot read the state database in " + dir_.string());
}

}  // namespace distill::store
