// The store's own integrity check. Every commit (Store::write) writes the
// same marker, its commit number, into every column family of the layout,
// in the same atomic batch; so in a whole database every family holds the
// same number. Before a database is opened for writing, verify() reads it
// read-only (RocksDB's own open would already rewrite files and delete
// those its MANIFEST no longer names) and checks that its files are there,
// that every block of them passes its checksum, that every family exists,
// and that the families agree on the last commit. A file beside the
// database (kMarkedFile), written once when the first marker is, says that
// markers must be there: without it a database that lost all its data
// would pass for a new one. Read-only opens are not
// verified: they take no lock, and a writer that rotates its MANIFEST or
// drops a WAL file meanwhile would look like damage.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace rocksdb {
struct ColumnFamilyDescriptor;
struct DBOptions;
}  // namespace rocksdb

namespace distill::store {

// The marker's key: user keys start with a non-empty pipeline or namespace
// name, so no prefix scan but an empty one meets it.
inline constexpr std::string_view kCommitKey{"\0distilld.commit", 16};

// In the database's folder once its families hold markers.
inline constexpr std::string_view kMarkedFile = "DISTILLD-MARKERS";

std::string encode_commit(std::uint64_t commit);

// Writes kMarkedFile durably; the families hold markers already.
void write_marked_file(const std::filesystem::path& dir);

// Whether `dir` holds a database's data (table or WAL files, kMarkedFile)
// but no CURRENT file. RocksDB writes CURRENT last when it creates a
// database, so a creation cut short leaves at most IDENTITY, a MANIFEST
// and OPTIONS: that is a new database to create again, not damage.
bool lost_current(const std::filesystem::path& dir);

// Verifies the existing database in `dir`, whose families are `expected`
// (the default family first). Without kMarkedFile families may be missing
// (the first open was cut short while it created them): opening for
// writes creates them. Throws StoreDamaged saying what is wrong, or
// StoreError when it cannot be read for another reason (e.g. permissions).
// Returns the commit number the families agree on; 0 for a database
// without kMarkedFile whose families hold no marker (written before
// markers existed, or new and not yet marked). The caller holds
// the folder's lock: nothing writes the database meanwhile.
std::uint64_t verify(const std::filesystem::path& dir, const rocksdb::DBOptions& options,
                     const std::vector<rocksdb::ColumnFamilyDescriptor>& expected);

}  // namespace distill::store
