// Normalisation with utf8proc, with an ASCII fast path (NFKC and case
// folding of ASCII need no tables).
#include "text_normalize.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <memory>

namespace distill::text {
namespace {

bool is_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

constexpr bool is_ascii_punct(char c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~');
}

// Appends one character (already case-folded/NFKC'd) applying the
// whitespace, punctuation and digit rules.
class Builder {
 public:
  Builder(const NormalizeOptions& options, std::size_t reserve) : options_(options) { out_.reserve(reserve); }

  void add(std::int32_t cp, bool space, bool punct, bool digit) {
    if (options_.punctuation && punct) return;
    if (options_.whitespace && space) {
      pending_space_ = !out_.empty();
      return;
    }
    if (pending_space_) {
      out_.push_back(' ');
      pending_space_ = false;
    }
    if (options_.digits && digit) cp = '0';
    if (cp < 0x80) {
      out_.push_back(static_cast<char>(cp));
      return;
    }
    utf8proc_uint8_t bytes[4];
    const utf8proc_ssize_t n = utf8proc_encode_char(cp, bytes);
    out_.append(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(n));
  }
  std::string take() { return std::move(out_); }

 private:
  const NormalizeOptions& options_;
  std::string out_;
  bool pending_space_ = false;
};

// What the ASCII path does with each byte under one set of options: the
// byte it writes, whether it drops the byte, and whether the byte is white
// space to collapse. Bytes >= 0x80 (invalid UTF-8 that falls back here)
// are copied as they are.
struct AsciiMap {
  unsigned char out[256] = {};
  bool drop[256] = {};
  bool space[256] = {};
};

constexpr AsciiMap ascii_map(bool casefold, bool whitespace, bool punctuation, bool digits) {
  AsciiMap map;
  for (int c = 0; c < 256; ++c) {
    map.out[c] = static_cast<unsigned char>(c);
    if (casefold && c >= 'A' && c <= 'Z') map.out[c] = static_cast<unsigned char>(c + ('a' - 'A'));
    if (digits && c >= '0' && c <= '9') map.out[c] = '0';
    map.drop[c] = punctuation && c < 0x80 && is_ascii_punct(static_cast<char>(c));
  }
  if (whitespace)
    for (int c = 0; c < 0x80; ++c)
      if (is_ascii_blank(static_cast<char>(c))) {
        map.out[c] = ' ';
        map.space[c] = true;
      }
  return map;
}

// One map per combination of the four options that matter to ASCII, indexed by their bits.
constexpr std::array<AsciiMap, 16> kAsciiMaps = [] {
  std::array<AsciiMap, 16> maps;
  for (int bits = 0; bits < 16; ++bits) maps[bits] = ascii_map(bits & 1, bits & 2, bits & 4, bits & 8);
  return maps;
}();

// Branch-free over the bytes: every byte is written, and the write position
// advances only past the bytes kept (a space is kept only after a non-space).
std::string normalize_ascii(std::string_view text, const NormalizeOptions& options) {
  const AsciiMap& map = kAsciiMaps[(options.casefold ? 1 : 0) | (options.whitespace ? 2 : 0) |
                                   (options.punctuation ? 4 : 0) | (options.digits ? 8 : 0)];
  std::string out(text.size(), '\0');
  char* begin = out.data();
  char* w = begin;
  bool last_space = true;  // spaces at the start are dropped
  for (const char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    const bool space = map.space[c];
    const bool keep = !map.drop[c] & !(space & last_space);
    *w = static_cast<char>(map.out[c]);
    w += keep;
    last_space = keep ? space : last_space;
  }
  if (w != begin && last_space) --w;  // one space at the end
  out.resize(static_cast<std::size_t>(w - begin));
  return out;
}

bool is_punctuation(utf8proc_category_t category) {
  return category >= UTF8PROC_CATEGORY_PC && category <= UTF8PROC_CATEGORY_SO;
}

bool is_space(std::int32_t cp, utf8proc_category_t category) {
  return (cp < 0x80 && is_ascii_blank(static_cast<char>(cp))) || category == UTF8PROC_CATEGORY_ZS ||
         category == UTF8PROC_CATEGORY_ZL || category == UTF8PROC_CATEGORY_ZP;
}

}  // namespace

ParamSpec normalize_param() {
  return param::StringList("normalize", "text normalisation applied before hashing")
      .default_value("[nfkc, casefold, whitespace]")
      .one_of({"nfkc", "casefold", "whitespace", "punctuation", "digits"});
}

NormalizeOptions normalize_options(const std::vector<std::string>& names) {
  NormalizeOptions options{false, false, false, false, false};
  for (const std::string& name : names) {
    if (name == "nfkc") options.nfkc = true;
    if (name == "casefold") options.casefold = true;
    if (name == "whitespace") options.whitespace = true;
    if (name == "punctuation") options.punctuation = true;
    if (name == "digits") options.digits = true;
  }
  return options;
}

std::string normalize(std::string_view text, const NormalizeOptions& options) {
  if (is_ascii(text)) return normalize_ascii(text, options);
  int flags = UTF8PROC_STABLE;
  if (options.nfkc) flags |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
  if (options.casefold) flags |= UTF8PROC_CASEFOLD;
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t length = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                               static_cast<utf8proc_ssize_t>(text.size()), &mapped,
                                               static_cast<utf8proc_option_t>(flags));
  if (length < 0) return normalize_ascii(text, options);
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(mapped, &std::free);
  Builder builder(options, static_cast<std::size_t>(length));
  const utf8proc_uint8_t* at = mapped;
  const utf8proc_uint8_t* end = mapped + length;
  while (at < end) {
    std::int32_t cp = 0;
    const utf8proc_ssize_t n = utf8proc_iterate(at, end - at, &cp);
    at += n;
    const utf8proc_category_t category = utf8proc_category(cp);
    builder.add(cp, is_space(cp, category), is_punctuation(category), category == UTF8PROC_CATEGORY_ND);
  }
  return builder.take();
}

}  // namespace distill::text
