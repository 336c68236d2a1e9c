// The RocksDB databases: opening one with its column families, and the
// small typed operations the engine and the daemon need. A pipeline's
// database (Layout::Pipeline) has the column families:
//   runs          pipeline \0 run(u64)            -> RunMeta JSON
//   checkpoints   pipeline \0 run(u64)            -> Checkpoint JSON
//   plugin_state  pipeline \0 step \0 user-key    -> plugin bytes
//   drops         pipeline \0 run step(u32) reason \0 seq(u64) -> sampled dropped record JSON
//   shared        namespace \0 user-key           -> bytes (caches shared by pipelines)
// The daemon's store of what pipelines share (Layout::Shared, see
// server/shared_service.h) has only the family `shared`. The daemon's own
// database (Layout::Daemon, see server/catalog.h):
//   pipelines     name                            -> the pipeline's record JSON
//   revisions     name \0 revision(u64)           -> a submitted pipeline file JSON
// Every family also holds the marker of the last commit (integrity.h).
//
// Reliability: opening for writes verifies the database before RocksDB may
// change a file (integrity.h); a write that would leave less than a reserve
// of free space on the state folder's disk is refused before RocksDB runs
// out of space mid-write; and after a failed write the store refuses every
// further write, because RocksDB's writers abort the process (an assertion
// left on in Debian's build) when used again after an error.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// RocksDB stays behind this header: code that includes it (the engine, the
// RPC layer) needs no RocksDB headers.
namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class Env;
class Status;
class WriteBatch;
}  // namespace rocksdb

namespace distill::store {

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The database is damaged; the message says how and what to do.
class StoreDamaged : public StoreError {
 public:
  using StoreError::StoreError;
};

// Throws StoreDamaged for the database in `dir`, with `reason`.
[[noreturn]] void throw_damaged(const std::filesystem::path& dir, const std::string& reason);

enum class Family { Runs, Checkpoints, PluginState, Drops, Shared, Pipelines, Revisions };

class Store;

// Writes collected for one atomic commit with Store::write().
class WriteSet {
 public:
  explicit WriteSet(Store& store);
  ~WriteSet();
  WriteSet(const WriteSet&) = delete;
  WriteSet& operator=(const WriteSet&) = delete;

  void put(Family family, std::string_view key, std::string_view value);
  // Writes the key `key_prefix + key` without building it first.
  void put(Family family, std::string_view key_prefix, std::string_view key, std::string_view value);
  void erase(Family family, std::string_view key_prefix, std::string_view key);

 private:
  friend class Store;
  Store& store_;
  std::unique_ptr<rocksdb::WriteBatch> batch_;
};

class Store {
 public:
  enum class Mode { ReadWrite, ReadOnly };
  enum class Layout { Pipeline, Daemon, Shared };
  // Opens the database in `dir`, creating it in ReadWrite mode. ReadOnly
  // works while another process has it open for writing (it sees the data
  // as of opening). Throws StoreError naming the folder and RocksDB's
  // reason (e.g. locked by another process). ReadWrite runs the integrity
  // check first (StoreDamaged) and needs the reserve free (StoreError).
  // `env` replaces RocksDB's default one for every file RocksDB touches,
  // integrity check included (tests inject I/O faults with it); it must
  // outlive the store.
  static std::unique_ptr<Store> open(const std::filesystem::path& dir, Mode mode = Mode::ReadWrite,
                                     Layout layout = Layout::Pipeline, rocksdb::Env* env = nullptr);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  rocksdb::DB& db() { return *db_; }
  rocksdb::ColumnFamilyHandle* family(Family family) const;
  const std::filesystem::path& dir() const { return dir_; }

  std::optional<std::string> get(Family family, std::string_view key) const;
  void put(Family family, std::string_view key, std::string_view value);
  // Applies the writes atomically, with the next commit marker in every
  // family; `sync` waits for the WAL to reach the disk.
  void write(WriteSet& writes, bool sync);
  // Visits keys with `prefix` in order until `visit` returns false.
  void scan(Family family, std::string_view prefix,
            const std::function<bool(std::string_view, std::string_view)>& visit) const;

 private:
  Store() = default;
  void open_database(Mode mode, Layout layout, rocksdb::Env* env);
  // Writes `batch` unless the store failed before or the disk is too full.
  void apply(rocksdb::WriteBatch& batch, bool sync);
  void check_free_space(std::uint64_t bytes) const;

  std::filesystem::path dir_;
  int lock_fd_ = -1;  // ReadWrite: held for the store's life, integrity check included
  std::uint64_t reserve_bytes_ = 0;
  std::atomic<std::uint64_t> commit_{0};  // the last commit's marker
  mutable std::mutex failure_mutex_;
  std::string failure_;  // the first failed write's error; no write after it
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;   // as opened, the default family first
  std::vector<rocksdb::ColumnFamilyHandle*> families_;  // by Family; nullptr when not in the layout
};

// Throws StoreError with `what` and the status text unless the status is ok.
void check(const rocksdb::Status& status, std::string_view what);

}  // namespace distill::store
