// WriteBuffer: the writes a plugin instance made since its last checkpoint,
// held in memory so that it reads its own writes and the checkpoint commits
// them all at once. Keys and values are copied into 1 MB arena chunks and
// indexed by an open-addressing hash table, so a put costs one probe and a
// copy; key order is produced only when asked (at the checkpoint, or for a
// scan). An overwrite reuses the bytes of the key's largest value so far
// when the new value fits in them; otherwise the old bytes stay in the
// arena until clear(), so memory grows with what is written between
// checkpoints.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace distill::store {

class WriteBuffer {
 public:
  struct Write {
    std::string_view key;
    std::string_view value;
    bool erased = false;  // a deletion
  };

  // The buffered write of `key`, or nullptr; valid until the next put, erase or clear.
  const Write* find(std::string_view key) const;
  void put(std::string_view key, std::string_view value);
  void erase(std::string_view key);
  // The writes whose keys start with `prefix`, in key order; valid until
  // the next put, erase or clear.
  std::vector<Write> in_order(std::string_view prefix = {}) const;
  // Bytes of arena chunks allocated since the last clear().
  std::size_t arena_bytes() const { return arena_bytes_; }
  void clear();

 private:
  void store(std::string_view key, std::string_view value, bool erased);
  // The slot holding `key`, or the empty slot where it belongs.
  std::size_t probe(std::string_view key, std::uint64_t hash) const;
  static std::uint64_t hash_of(std::string_view key);
  void grow();
  std::string_view keep(std::string_view bytes);

  // The table: a power of two in size, at most half used. A slot's key
  // hash (never 0) is apart from its write so that probing reads 8 bytes a slot.
  std::vector<std::uint64_t> hashes_;  // 0: empty
  std::vector<Write> writes_;
  std::vector<std::size_t> capacities_;  // arena bytes a slot's value may use in place
  std::size_t used_ = 0;
  std::vector<std::unique_ptr<char[]>> chunks_;
  char* free_ = nullptr;  // the unused rest of the newest chunk
  std::size_t free_bytes_ = 0;
  std::size_t arena_bytes_ = 0;
};

}  // namespace distill::store
