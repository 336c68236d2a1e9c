// I/O faults a tmpfs mount cannot show, injected under the store: a RocksDB
// FileSystem that fails the Nth append, sync, close or read of one kind of
// file (WAL, SST, MANIFEST) with an I/O error, a full disk, or a corrupted
// or short read, chosen by a seed. For each seed a forked child (16 side by
// side) commits through the Store API with the fault armed; it must not
// abort, its error must name the state folder and the cause, it must refuse
// writes after a failed one, and reopening the folder without faults must pass the
// integrity check and hold exactly what was committed (the failed commit
// whole or not at all: its WAL record may have reached the file).
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "store/runs.h"
#include "store/store.h"
#include "test_dir.h"

namespace distill::store {
namespace {

enum class Kind { Wal, Sst, Manifest, Other };
enum class Op { Write, Sync, Close, Read };
enum class Failure { IoError, NoSpace, Corrupt, Short };

Kind kind_of(const std::string& file) {
  const std::string name = std::filesystem::path(file).filename().string();
  if (name.ends_with(".log")) return Kind::Wal;
  if (name.ends_with(".sst")) return Kind::Sst;
  if (name.starts_with("MANIFEST-")) return Kind::Manifest;
  return Kind::Other;
}

struct Plan {
  Kind kind = Kind::Other;
  Op op = Op::Write;
  int nth = 0;          // the Nth matching operation fails
  bool sticky = false;  // and every later one too, as on a dying disk
  Failure failure = Failure::IoError;
};

// Counts operations by file kind and fails the planned one; RocksDB's
// background threads call it too.
class Faults {
 public:
  void arm(const Plan& plan) {
    std::lock_guard lock(mutex_);
    plan_ = plan;
    armed_ = true;
  }
  void disarm() {
    std::lock_guard lock(mutex_);
    armed_ = false;
  }
  bool fired() const {
    std::lock_guard lock(mutex_);
    return fired_;
  }
  // The failure to inject into this operation, if any.
  std::optional<Failure> hit(const std::string& file, Op op) {
    std::lock_guard lock(mutex_);
    if (!armed_ || kind_of(file) != plan_.kind || op != plan_.op) return std::nullopt;
    if (fired_ ? !plan_.sticky : --plan_.nth > 0) return std::nullopt;
    fired_ = true;
    return plan_.failure;
  }

 private:
  mutable std::mutex mutex_;
  Plan plan_;
  bool armed_ = false;
  bool fired_ = false;
};

rocksdb::IOStatus injected(const std::string& file, Failure failure) {
  if (failure == Failure::NoSpace) return rocksdb::IOStatus::NoSpace(file, "injected: no space left on device");
  return rocksdb::IOStatus::IOError(file, "injected: input/output error");
}

class FaultyWritableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultyWritableFile(std::unique_ptr<rocksdb::FSWritableFile> file, std::string name, Faults& faults)
      : FSWritableFileOwnerWrapper(std::move(file)), name_(std::move(name)), faults_(faults) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (auto failure = faults_.hit(name_, Op::Write)) return injected(name_, *failure);
    return target()->Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info, rocksdb::IODebugContext* dbg) override {
    if (auto failure = faults_.hit(name_, Op::Write)) return injected(name_, *failure);
    return target()->Append(data, options, info, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset, const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    if (auto failure = faults_.hit(name_, Op::Write)) return injected(name_, *failure);
    return target()->PositionedAppend(data, offset, options, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset, const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    if (auto failure = faults_.hit(name_, Op::Write)) return injected(name_, *failure);
    return target()->PositionedAppend(data, offset, options, info, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    if (auto failure = faults_.hit(name_, Op::Sync)) return injected(name_, *failure);
    return target()->Sync(options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    if (auto failure = faults_.hit(name_, Op::Sync)) return injected(name_, *failure);
    return target()->Fsync(options, dbg);
  }
  rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    if (auto failure = faults_.hit(name_, Op::Sync)) return injected(name_, *failure);
    return target()->RangeSync(offset, nbytes, options, dbg);
  }
  rocksdb::IOStatus Close(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus closed = target()->Close(options, dbg);  // the descriptor is released either way
    if (auto failure = faults_.hit(name_, Op::Close)) return injected(name_, *failure);
    return closed;
  }

 private:
  std::string name_;
  Faults& faults_;
};

class FaultyRandomAccessFile : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  FaultyRandomAccessFile(std::unique_ptr<rocksdb::FSRandomAccessFile> file, std::string name, Faults& faults)
      : FSRandomAccessFileOwnerWrapper(std::move(file)), name_(std::move(name)), faults_(faults) {}

  rocksdb::IOStatus Read(uint64_t offset, size_t n, const rocksdb::IOOptions& options, rocksdb::Slice* result,
                         char* scratch, rocksdb::IODebugContext* dbg) const override {
    rocksdb::IOStatus status = target()->Read(offset, n, options, result, scratch, dbg);
    if (auto failure = faults_.hit(name_, Op::Read)) return damage(*failure, status, result, scratch);
    return status;
  }
  rocksdb::IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    for (size_t i = 0; i < num_reqs; ++i)
      reqs[i].status = Read(reqs[i].offset, reqs[i].len, options, &reqs[i].result, reqs[i].scratch, dbg);
    return rocksdb::IOStatus::OK();
  }

 private:
  // A read that fails, or returns flipped or missing bytes as a bad disk or
  // a truncated file would.
  rocksdb::IOStatus damage(Failure failure, const rocksdb::IOStatus& status, rocksdb::Slice* result,
                           char* scratch) const {
    if (!status.ok() || result->empty()) return status;
    if (failure == Failure::Short) {
      *result = rocksdb::Slice(result->data(), result->size() / 2);
      return status;
    }
    if (failure == Failure::Corrupt && result->data() == scratch) {
      scratch[result->size() / 2] ^= 0x5a;
      return status;
    }
    return injected(name_, failure);
  }

  std::string name_;
  Faults& faults_;
};

class FaultyFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultyFileSystem(Faults& faults)
      : FileSystemWrapper(rocksdb::FileSystem::Default()), faults_(faults) {}
  const char* Name() const override { return "DistilldFaultyFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    return wrap(name, target()->NewWritableFile(name, options, result, dbg), result);
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override {
    return wrap(name, target()->ReopenWritableFile(name, options, result, dbg), result);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& name, const std::string& old_name,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override {
    return wrap(name, target()->ReuseWritableFile(name, old_name, options, result, dbg), result);
  }
  rocksdb::IOStatus NewRandomAccessFile(const std::string& name, const rocksdb::FileOptions& options,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
                                        rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus status = target()->NewRandomAccessFile(name, options, result, dbg);
    if (status.ok()) *result = std::make_unique<FaultyRandomAccessFile>(std::move(*result), name, faults_);
    return status;
  }

 private:
  rocksdb::IOStatus wrap(const std::string& name, rocksdb::IOStatus status,
                         std::unique_ptr<rocksdb::FSWritableFile>* result) {
    if (status.ok()) *result = std::make_unique<FaultyWritableFile>(std::move(*result), name, faults_);
    return status;
  }

  Faults& faults_;
};

// A check that failed in the child.
struct Violation {
  std::string what;
};

void require(bool condition, const std::string& what) {
  if (!condition) throw Violation{what};
}

using State = std::map<std::string, std::string>;  // plugin state, and "checkpoint" -> its position

const std::string kPipeline = "p";
const std::string kPrefix = std::string("p\0s\0", 4);

State read_state(Store& store) {
  State state;
  store.scan(Family::PluginState, kPrefix, [&state](std::string_view key, std::string_view value) {
    state.emplace(std::string(key.substr(kPrefix.size())), std::string(value));
    return true;
  });
  if (auto checkpoint = RunStore(store).checkpoint(kPipeline, 1)) state["checkpoint"] = checkpoint->position;
  return state;
}

// The fault points and how many of their operations a seed's plan may count.
struct Point {
  const char* name;
  Kind kind;
  Op op;
  int operations;
};
const std::vector<Point> kPoints = {
    {"WAL append", Kind::Wal, Op::Write, 40},       {"WAL sync", Kind::Wal, Op::Sync, 25},
    {"WAL close", Kind::Wal, Op::Close, 3},         {"SST write", Kind::Sst, Op::Write, 25},
    {"SST sync", Kind::Sst, Op::Sync, 8},           {"SST close", Kind::Sst, Op::Close, 8},
    {"MANIFEST write", Kind::Manifest, Op::Write, 12}, {"MANIFEST sync", Kind::Manifest, Op::Sync, 12},
    {"SST read", Kind::Sst, Op::Read, 60},
};

struct Outcome {
  bool fired = false;
  bool failed = false;  // a Store call reported the fault
};

// One seed's run; throws Violation.
Outcome run_seed(std::uint32_t seed, const std::filesystem::path& dir) {
  std::mt19937 rng(seed);
  const Point& point = kPoints[rng() % kPoints.size()];
  Plan plan{point.kind, point.op, 1 + static_cast<int>(rng() % point.operations), rng() % 2 == 0,
            Failure::IoError};
  if (point.op == Op::Read)
    plan.failure = static_cast<Failure>(rng() % 4);
  else if (rng() % 2 == 0)
    plan.failure = Failure::NoSpace;

  Faults faults;
  const std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(std::make_shared<FaultyFileSystem>(faults));
  State committed;
  State attempted;  // committed plus the commit that failed, if one did
  std::string error;
  bool write_failed = false;
  {
    std::unique_ptr<Store> store = Store::open(dir, Store::Mode::ReadWrite, Store::Layout::Pipeline, env.get());
    faults.arm(plan);
    const auto failed = [&](const std::string& what, bool by_write) {
      error = what;
      write_failed = by_write;
    };
    for (int commit = 1; commit <= 30 && error.empty(); ++commit) {
      try {
        // Reads: one key and, now and then, everything; both must match what was committed.
        const std::string key = "k" + std::to_string(rng() % 40);
        const std::optional<std::string> value = store->get(Family::PluginState, kPrefix + key);
        const auto expected = committed.find(key);
        require(value == (expected == committed.end() ? std::nullopt : std::optional(expected->second)),
                "key " + key + " reads back other than committed");
        if (commit % 5 == 0) require(read_state(*store) == committed, "a scan reads back other than committed");
      } catch (const StoreError& e) {
        failed(e.what(), false);
        break;
      }
      WriteSet writes(*store);
      attempted = committed;
      for (std::uint32_t n = 1 + rng() % 3; n > 0; --n) {
        const std::string key = "k" + std::to_string(rng() % 40);
        const std::string value(50 + rng() % 3000, static_cast<char>('a' + rng() % 26));
        writes.put(Family::PluginState, kPrefix, key, value);
        attempted[key] = value;
      }
      if (rng() % 4 == 0) {
        const std::string key = "k" + std::to_string(rng() % 40);
        writes.erase(Family::PluginState, kPrefix, key);
        attempted.erase(key);
      }
      RunStore(*store).put_checkpoint(writes, kPipeline, 1, Checkpoint{std::to_string(commit), commit, {}});
      attempted["checkpoint"] = std::to_string(commit);
      try {
        store->write(writes, rng() % 3 != 0);
        committed = attempted;
      } catch (const StoreError& e) {
        failed(e.what(), true);
        break;
      }
      // What the daemon's RocksDB does by itself as memtables fill: flushes and compactions.
      if (commit % 6 == 0) {
        std::vector<rocksdb::ColumnFamilyHandle*> families;
        for (Family family : {Family::Runs, Family::Checkpoints, Family::PluginState, Family::Drops, Family::Shared})
          families.push_back(store->family(family));
        rocksdb::Status flushed = store->db().Flush(rocksdb::FlushOptions(), families);
        if (flushed.ok() && commit % 12 == 0)
          flushed = store->db().CompactRange(rocksdb::CompactRangeOptions(), store->family(Family::PluginState),
                                             nullptr, nullptr);
        // A failed flush or compaction stops RocksDB's writes; the next commit must say so.
        if (!flushed.ok()) require(faults.fired(), "a flush failed without a fault: " + flushed.ToString());
      }
    }
    if (!error.empty()) {
      require(faults.fired(), "a store call failed without a fault: " + error);
      require(error.find("state database in " + dir.string()) != std::string::npos,
              "the error does not name the state folder: " + error);
      require(error.find("injected") != std::string::npos || error.find("Corruption") != std::string::npos,
              "the error does not give the cause: " + error);
    }
    faults.disarm();
    // After a failed write every write is refused; after a failed read one may succeed.
    WriteSet more(*store);
    more.put(Family::PluginState, kPrefix, "after", "x");
    try {
      store->write(more, true);
      require(!write_failed, "a write succeeded after a failed one");
      committed["after"] = "x";
      attempted = committed;
    } catch (const StoreError& e) {
      const std::string refused = e.what();
      require(faults.fired(), "a write failed without a fault: " + refused);
      require(refused.find("state database in " + dir.string()) != std::string::npos,
              "the refusal does not name the state folder: " + refused);
    }
  }
  // Reopened without faults: the integrity check passes and the state is the committed one.
  std::unique_ptr<Store> store = Store::open(dir);
  const State reopened = read_state(*store);
  require(reopened == committed || (write_failed && reopened == attempted),
          std::string("after reopening, the state is not that of the last commit (") + point.name + ")");
  return {faults.fired(), !error.empty()};
}

std::string point_of(std::uint32_t seed) {
  std::mt19937 rng(seed);
  return kPoints[rng() % kPoints.size()].name;
}

// Runs the seed in a child, so that an abort in RocksDB fails this seed, not
// the test binary; the parent opens no database (RocksDB's thread pools start
// in the child). Exits 10 when the fault fired, 11 when the run never met it.
pid_t start_seed(std::uint32_t seed, const std::filesystem::path& dir) {
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child != 0) return child;
  int code = 0;
  try {
    code = run_seed(seed, dir).fired ? 10 : 11;
  } catch (const Violation& v) {
    std::fprintf(stderr, "seed %u (%s): %s\n", seed, point_of(seed).c_str(), v.what.c_str());
    code = 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "seed %u (%s): unexpected error: %s\n", seed, point_of(seed).c_str(), e.what());
    code = 2;
  }
  std::fflush(nullptr);
  ::_exit(code);
}

TEST(StoreFaults, EveryFaultFailsCleanlyAndKeepsTheCommittedState) {
  // On tmpfs where there is one: the faults are injected, and syncs to a real disk would take most of the time.
  if (std::filesystem::is_directory("/dev/shm")) ::setenv("TMPDIR", "/dev/shm", 1);
  const distill::testing::TempDir root;
  // RocksDB waits a second after a failed flush before it tries again, so
  // most seeds sleep that long: they run side by side.
  constexpr std::uint32_t kSeeds = 120;
  constexpr std::size_t kSideBySide = 16;
  std::map<std::string, std::pair<int, int>> fired;  // by point: seeds whose fault fired, of all
  std::map<pid_t, std::uint32_t> running;
  const auto start = std::chrono::steady_clock::now();
  for (std::uint32_t next = 1; next <= kSeeds || !running.empty();) {
    if (next <= kSeeds && running.size() < kSideBySide) {
      const pid_t child = start_seed(next, root / ("seed-" + std::to_string(next)));
      ASSERT_GT(child, 0);
      running[child] = next++;
      continue;
    }
    int status = 0;
    const pid_t child = ::waitpid(-1, &status, 0);
    ASSERT_TRUE(running.contains(child));
    const std::uint32_t seed = running[child];
    running.erase(child);
    const std::string name = point_of(seed);
    EXPECT_TRUE(WIFEXITED(status)) << "seed " << seed << " (" << name << ") was killed by signal "
                                   << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    EXPECT_TRUE(WIFEXITED(status) && (WEXITSTATUS(status) == 10 || WEXITSTATUS(status) == 11))
        << "seed " << seed << " (" << name << ")";
    fired[name].second += 1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 10) fired[name].first += 1;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%u seeds in %.1f s\n", kSeeds, seconds);
  for (const auto& [name, counts] : fired) {
    std::printf("  %-15s fault fired in %d of %d seeds\n", name.c_str(), counts.first, counts.second);
    EXPECT_GT(counts.first, 0) << name << ": no seed reached the fault";
  }
}

}  // namespace
}  // namespace distill::store
