// The stable content id of a record: 128-bit XXH3 of its canonical
// prompt + response, as 32 lowercase hex digits. The engine assigns it to
// every record a source yields without one; a stage that writes a new
// response (a teacher call) assigns it again.
#pragma once

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <string>
#include <string_view>

#include <distill/record.h>

namespace distill {

inline std::string content_id(const Record& record) {
  XXH3_state_t state;
  XXH3_128bits_reset(&state);
  // Length-prefix every field so that ("ab","c") and ("a","bc") differ.
  auto feed = [&state](std::string_view text) {
    const std::uint64_t size = text.size();
    XXH3_128bits_update(&state, &size, sizeof size);
    XXH3_128bits_update(&state, text.data(), text.size());
  };
  for (const Message& message : record.prompt) {
    feed(message.role);
    feed(message.content);
  }
  feed("\x01response");
  feed(record.response);
  const XXH128_hash_t hash = XXH3_128bits_digest(&state);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(32, '0');
  for (int i = 0; i < 16; ++i) {
    const std::uint64_t word = i < 8 ? hash.high64 : hash.low64;
    const unsigned byte = (word >> (8 * (7 - i % 8))) & 0xffu;
    hex[2 * i] = kHex[byte >> 4];
    hex[2 * i + 1] = kHex[byte & 0xfu];
  }
  return hex;
}

}  // namespace distill
