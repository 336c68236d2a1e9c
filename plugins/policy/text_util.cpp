// UTF-8 decoding, white space and counts for the policy rules.
#include "text_util.h"

#include <utf8proc.h>

#include <optional>

namespace distill::policy {

CodePoint decode_multibyte(std::string_view text, std::size_t at) {
  utf8proc_int32_t value = 0;
  const utf8proc_ssize_t length = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + at),
                                                   static_cast<utf8proc_ssize_t>(text.size() - at), &value);
  if (length <= 0 || value < 0) return {0xFFFD, 1};
  return {static_cast<char32_t>(value), static_cast<std::size_t>(length)};
}

bool is_non_ascii_space(char32_t c) {
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

namespace {

// Words of a text if it is ASCII (counted without branches), or nullopt.
std::optional<std::size_t> count_ascii_words(std::string_view text) {
  std::size_t words = 0;
  bool after_space = true;
  unsigned char any = 0;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    any |= c;
    const bool space = is_ascii_space(c);
    words += after_space & !space;
    after_space = space;
  }
  if (any >= 0x80) return std::nullopt;
  return words;
}

}  // namespace

std::size_t count_chars(std::string_view text) {
  std::size_t chars = 0;
  for (std::size_t at = 0; at < text.size(); at += decode(text, at).length) ++chars;
  return chars;
}

std::size_t count_words(std::string_view text) {
  if (const std::optional<std::size_t> ascii = count_ascii_words(text)) return *ascii;
  std::size_t words = 0;
  for_each_word(text, [&words](std::string_view) { ++words; });
  return words;
}

}  // namespace distill::policy
