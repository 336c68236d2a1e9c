// The integrity check at open (see integrity.h): a read-only open of the
// database, its families, their commit markers, and every block.
#include "store/integrity.h"

#include <fcntl.h>
#include <rocksdb/db.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "store/keys.h"
#include "store/store.h"

namespace distill::store {
namespace {

// A damaged database and a database that cannot be read (permissions, an
// I/O error of the disk) call for different actions.
[[noreturn]] void throw_open_error(const std::filesystem::path& dir, const rocksdb::Status& status) {
  if (status.IsCorruption() || status.IsPathNotFound() || status.IsNotFound())
    throw_damaged(dir, status.ToString());
  throw StoreError("cannot open the state database in " + dir.string() + ": " + status.ToString());
}

// A read-only database with its family handles, released in the order RocksDB needs.
struct ReadOnlyDb {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  ~ReadOnlyDb() {
    for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
  }
};

std::optional<std::uint64_t> read_marker(const std::filesystem::path& dir, ReadOnlyDb& opened,
                                         rocksdb::ColumnFamilyHandle* family) {
  std::string value;
  const rocksdb::Status status = opened.db->Get(rocksdb::ReadOptions(), family, kCommitKey, &value);
  if (status.IsNotFound()) return std::nullopt;
  if (!status.ok()) throw_open_error(dir, status);
  if (value.size() != 8) throw_damaged(dir, "column family " + family->GetName() + " has an unreadable commit marker");
  return read_u64(value);
}

}  // namespace

std::string encode_commit(std::uint64_t commit) {
  std::string value;
  append_u64(value, commit);
  return value;
}

void write_marked_file(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / kMarkedFile;
  const std::string_view text = "every column family of this database holds the marker of its last commit\n";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int folder = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool durable = fd >= 0 && folder >= 0 && ::write(fd, text.data(), text.size()) == std::ssize(text) &&
                       ::fsync(fd) == 0 && ::fsync(folder) == 0;
  const int error = errno;
  if (fd >= 0) ::close(fd);
  if (folder >= 0) ::close(folder);
  if (!durable) throw StoreError("cannot write " + file.string() + ": " + std::strerror(error));
}

bool lost_current(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir / "CURRENT", ec)) return false;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == kMarkedFile || name.ends_with(".sst") || name.ends_with(".log")) return true;
  }
  return false;
}

std::uint64_t verify(const std::filesystem::path& dir, const rocksdb::DBOptions& options,
                     const std::vector<rocksdb::ColumnFamilyDescriptor>& expected) {
  std::vector<std::string> present;
  const rocksdb::Status listed = rocksdb::DB::ListColumnFamilies(options, dir.string(), &present);
  if (!listed.ok()) throw_open_error(dir, listed);
  const bool marked = std::filesystem::exists(dir / kMarkedFile);
  std::vector<rocksdb::ColumnFamilyDescriptor> found;
  for (const rocksdb::ColumnFamilyDescriptor& d : expected) {
    if (std::find(present.begin(), present.end(), d.name) != present.end())
      found.push_back(d);
    else if (marked)
      throw_damaged(dir, "column family " + d.name + " is missing");
  }

  ReadOnlyDb opened;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status status = rocksdb::DB::OpenForReadOnly(options, dir.string(), found, &opened.handles, &raw);
  if (!status.ok()) throw_open_error(dir, status);
  opened.db.reset(raw);

  // The families' markers: all absent (a database from before markers) or all equal.
  std::optional<std::uint64_t> agreed;
  std::string agreed_by;
  std::vector<std::string> unmarked;
  for (rocksdb::ColumnFamilyHandle* family : opened.handles) {
    if (family->GetName() == rocksdb::kDefaultColumnFamilyName) continue;
    const std::optional<std::uint64_t> marker = read_marker(dir, opened, family);
    if (!marker) {
      unmarked.push_back(family->GetName());
    } else if (!agreed) {
      agreed = marker;
      agreed_by = family->GetName();
    } else if (*marker != *agreed) {
      throw_damaged(dir, "column family " + agreed_by + " was last written by commit " + std::to_string(*agreed) +
                             ", column family " + family->GetName() + " by commit " + std::to_string(*marker));
    }
  }
  if (!agreed && marked)
    throw_damaged(dir, "no column family holds a commit marker, though " + std::string(kMarkedFile) +
                           " says they were written: the database lost its data");
  if (agreed && !unmarked.empty())
    throw_damaged(dir, "column family " + unmarked.front() + " lacks the marker of commit " + std::to_string(*agreed) +
                           " that the others hold");
  const rocksdb::Status checked = opened.db->VerifyChecksum();
  if (!checked.ok()) throw_open_error(dir, checked);
  return agreed.value_or(0);
}

}  // namespace distill::store
