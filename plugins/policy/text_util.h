// UTF-8 helpers of the policy plugin: decoding code points (invalid bytes
// read as U+FFFD, one byte each, never rejected), white space, character
// and word counts. "Characters" are code points; "words" are runs of
// non-space characters.
#pragma once

#include <cstddef>
#include <string_view>

namespace distill::policy {

struct CodePoint {
  char32_t value;
  std::size_t length;  // bytes, at least 1
};

// The code point starting at byte `at` of a non-ASCII byte.
CodePoint decode_multibyte(std::string_view text, std::size_t at);
bool is_non_ascii_space(char32_t c);

// The code point starting at byte `at` of `text` (at < text.size()).
inline CodePoint decode(std::string_view text, std::size_t at) {
  const auto byte = static_cast<unsigned char>(text[at]);
  return byte < 0x80 ? CodePoint{byte, 1} : decode_multibyte(text, at);
}

// The ASCII blanks: space, tab, line feed, vertical tab, form feed, carriage return.
inline bool is_ascii_space(char32_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// Unicode white space (ASCII blanks, NBSP, U+2000..U+200A, U+3000, ...).
inline bool is_space(char32_t c) { return c < 0x80 ? is_ascii_space(c) : is_non_ascii_space(c); }

std::size_t count_chars(std::string_view text);
std::size_t count_words(std::string_view text);

// Visits each word (a maximal run of non-space characters) in order.
template <class Visit>
void for_each_word(std::string_view text, Visit&& visit) {
  std::size_t start = text.size();  // start of the current word; size() = none
  std::size_t at = 0;
  while (at < text.size()) {
    const CodePoint c = decode(text, at);
    if (is_space(c.value)) {
      if (start < at) visit(text.substr(start, at - start));
      start = text.size();
    } else if (start == text.size()) {
      start = at;
    }
    at += c.length;
  }
  if (start < text.size()) visit(text.substr(start));
}

}  // namespace distill::policy
