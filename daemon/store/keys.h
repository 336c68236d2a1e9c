// Key encoding for the store: big-endian integers and NUL-separated text
// parts, so that RocksDB's byte order is the logical order and a prefix
// scan finds exactly one pipeline's (or one run's) entries.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace distill::store {

inline void append_u64(std::string& key, std::uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<char>((value >> shift) & 0xff));
}

inline void append_u32(std::string& key, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) key.push_back(static_cast<char>((value >> shift) & 0xff));
}

inline std::uint64_t read_u64(std::string_view bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  return value;
}

// A text part followed by its NUL terminator (text parts never contain NUL).
inline void append_text(std::string& key, std::string_view text) {
  key.append(text);
  key.push_back('\0');
}

}  // namespace distill::store
