// WriteBuffer (see write_buffer.h): linear probing over a power-of-two
// table, grown at half full; the arena is a list of chunks.
#include "store/write_buffer.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

namespace distill::store {
namespace {

constexpr std::size_t kChunkBytes = 1 << 20;
constexpr std::size_t kInitialSlots = 1024;

// The first 8 bytes of a key as a big-endian number (zero-padded): sorting
// by it, then by the whole key, sorts in byte order with few memcmp calls.
std::uint64_t head(std::string_view key) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 8; ++i)
    value = (value << 8) | (i < key.size() ? static_cast<unsigned char>(key[i]) : 0u);
  return value;
}

}  // namespace

std::uint64_t WriteBuffer::hash_of(std::string_view key) { return XXH3_64bits(key.data(), key.size()) | 1; }

std::size_t WriteBuffer::probe(std::string_view key, std::uint64_t hash) const {
  const std::size_t mask = hashes_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask)
    if (hashes_[i] == 0 || (hashes_[i] == hash && writes_[i].key == key)) return i;
}

const WriteBuffer::Write* WriteBuffer::find(std::string_view key) const {
  if (used_ == 0) return nullptr;
  const std::size_t i = probe(key, hash_of(key));
  return hashes_[i] != 0 ? &writes_[i] : nullptr;
}

void WriteBuffer::put(std::string_view key, std::string_view value) { store(key, value, false); }

void WriteBuffer::erase(std::string_view key) { store(key, {}, true); }

void WriteBuffer::store(std::string_view key, std::string_view value, bool erased) {
  if (2 * (used_ + 1) > hashes_.size()) grow();
  const std::uint64_t hash = hash_of(key);
  const std::size_t i = probe(key, hash);
  Write& write = writes_[i];
  if (hashes_[i] == 0) {
    hashes_[i] = hash;
    write = {keep(key), {}, false};
    capacities_[i] = 0;
    ++used_;
  }
  if (!value.empty() && value.size() <= capacities_[i]) {  // fits in bytes kept for this key (ours to change)
    char* bytes = const_cast<char*>(write.value.data());
    std::memcpy(bytes, value.data(), value.size());
    write.value = {bytes, value.size()};
  } else {
    write.value = keep(value);
    capacities_[i] = value.size();
  }
  write.erased = erased;
}

void WriteBuffer::grow() {
  std::vector<std::uint64_t> old_hashes = std::move(hashes_);
  std::vector<Write> old_writes = std::move(writes_);
  std::vector<std::size_t> old_capacities = std::move(capacities_);
  const std::size_t size = std::max(kInitialSlots, 2 * old_hashes.size());
  hashes_.assign(size, 0);
  writes_.assign(size, Write{});
  capacities_.assign(size, 0);
  for (std::size_t i = 0; i < old_hashes.size(); ++i)
    if (old_hashes[i] != 0) {
      const std::size_t at = probe(old_writes[i].key, old_hashes[i]);
      hashes_[at] = old_hashes[i];
      writes_[at] = old_writes[i];
      capacities_[at] = old_capacities[i];
    }
}

std::string_view WriteBuffer::keep(std::string_view bytes) {
  if (bytes.empty()) return {};
  char* out;
  if (bytes.size() > kChunkBytes / 4) {  // a chunk of its own
    out = chunks_.emplace_back(std::make_unique_for_overwrite<char[]>(bytes.size())).get();
    arena_bytes_ += bytes.size();
  } else {
    if (free_bytes_ < bytes.size()) {
      free_ = chunks_.emplace_back(std::make_unique_for_overwrite<char[]>(kChunkBytes)).get();
      free_bytes_ = kChunkBytes;
      arena_bytes_ += kChunkBytes;
    }
    out = free_;
    free_ += bytes.size();
    free_bytes_ -= bytes.size();
  }
  std::memcpy(out, bytes.data(), bytes.size());
  return {out, bytes.size()};
}

std::vector<WriteBuffer::Write> WriteBuffer::in_order(std::string_view prefix) const {
  std::vector<std::pair<std::uint64_t, const Write*>> keyed;
  keyed.reserve(prefix.empty() ? used_ : 0);
  for (std::size_t i = 0; i < hashes_.size(); ++i)
    if (hashes_[i] != 0 && writes_[i].key.starts_with(prefix)) keyed.emplace_back(head(writes_[i].key), &writes_[i]);
  std::sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second->key < b.second->key;
  });
  std::vector<Write> writes;
  writes.reserve(keyed.size());
  for (const auto& [_, write] : keyed) writes.push_back(*write);
  return writes;
}

void WriteBuffer::clear() {
  if (used_ > 0) std::fill(hashes_.begin(), hashes_.end(), 0);
  used_ = 0;
  chunks_.clear();
  free_ = nullptr;
  free_bytes_ = 0;
  arena_bytes_ = 0;
}

}  // namespace distill::store
