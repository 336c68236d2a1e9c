// The quality presets' rules (see quality.h; numbers in the README).
#include "quality.h"

#include <utf8proc.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cstdint>
#include <unordered_set>

#include "text_util.h"

namespace distill::policy {
namespace {

bool is_punctuation_or_symbol(char32_t c) {
  if (c < 0x80) return std::ispunct(static_cast<int>(c));  // in ASCII, exactly the P* and S* categories
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
    case UTF8PROC_CATEGORY_SM:
    case UTF8PROC_CATEGORY_SC:
    case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO: return true;
    default: return false;
  }
}

bool is_letter(char32_t c) {
  if (c < 0x80) return std::isalpha(static_cast<int>(c));
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return true;
    default: return false;
  }
}

// `text` without the leading and trailing code points that `drop` accepts.
template <class Predicate>
std::string_view trim_if(std::string_view text, Predicate&& drop) {
  std::size_t begin = 0;
  while (begin < text.size()) {
    const CodePoint c = decode(text, begin);
    if (!drop(c.value)) break;
    begin += c.length;
  }
  std::size_t end = begin;  // end of the last code point that is kept
  for (std::size_t at = begin; at < text.size();) {
    const CodePoint c = decode(text, at);
    at += c.length;
    if (!drop(c.value)) end = at;
  }
  return text.substr(begin, end - begin);
}

std::string_view trim(std::string_view text) { return trim_if(text, is_space); }

bool is_blank(std::string_view line) { return trim(line).empty(); }

std::string ascii_lower(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

std::size_t count_of(std::string_view text, std::string_view needle) {
  std::size_t count = 0;
  for (std::size_t at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + needle.size()))
    ++count;
  return count;
}

double ratio(std::size_t part, std::size_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

template <class Predicate>
std::size_t count_lines(const TextProfile& p, Predicate&& predicate) {
  return static_cast<std::size_t>(std::count_if(p.lines().begin(), p.lines().end(), predicate));
}

// Elements equal to an earlier one: how many, and their characters.
struct Duplicates {
  std::size_t elements = 0;
  std::size_t chars = 0;
};

Duplicates find_duplicates(const std::vector<std::string_view>& items) {
  Duplicates found;
  std::unordered_set<std::string_view> seen;
  for (std::string_view item : items)
    if (!seen.insert(item).second) {
      ++found.elements;
      found.chars += count_chars(item);
    }
  return found;
}

// Word n-grams as 64-bit hashes, each O(1) from prefix sums: the hash of
// words[at, at+n) is sum(word_hash[at+j] * P^j), mixed. Hashes of one n
// are compared with each other only. (A 64-bit collision in one text is
// negligible.)
class NGrams {
 public:
  explicit NGrams(const TextProfile& p) : word_chars_(p.word_chars()), chars_before_(1, 0), prefix_(1, 0) {
    static constexpr std::uint64_t kBase = 0x9E3779B97F4A7C15ull;  // odd, so invertible mod 2^64
    std::uint64_t inverse = kBase;                                 // Newton: 3 correct bits, doubled 5 times
    for (int i = 0; i < 5; ++i) inverse *= 2 - kBase * inverse;
    std::uint64_t power = 1, inverse_power = 1;
    for (std::size_t i = 0; i < p.words().size(); ++i) {
      const std::string_view word = p.words()[i];
      prefix_.push_back(prefix_.back() + XXH3_64bits(word.data(), word.size()) * power);
      inverse_powers_.push_back(inverse_power);
      chars_before_.push_back(chars_before_.back() + word_chars_[i]);
      power *= kBase;
      inverse_power *= inverse;
    }
  }
  std::size_t count(std::size_t n) const { return word_chars_.size() >= n ? word_chars_.size() - n + 1 : 0; }
  std::uint64_t hash(std::size_t at, std::size_t n) const {
    std::uint64_t h = (prefix_[at + n] - prefix_[at]) * inverse_powers_[at];
    h ^= h >> 33;  // MurmurHash3's finaliser spreads the bits
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
  }
  // Characters of the n-gram with one space between words.
  std::size_t chars(std::size_t at, std::size_t n) const { return chars_before_[at + n] - chars_before_[at] + n - 1; }

 private:
  const std::vector<std::size_t>& word_chars_;
  std::vector<std::size_t> chars_before_;
  std::vector<std::uint64_t> prefix_, inverse_powers_;
};

// Counts of hashes in one flat array (linear probing): far cheaper than a
// node-based map for the few hundred n-grams of one text.
class HashCounter {
 public:
  explicit HashCounter(std::size_t expected)
      : keys_(std::bit_ceil(std::max<std::size_t>(2 * expected, 16)), 0), counts_(keys_.size(), 0) {}
  // Adds one occurrence of `hash`; returns how many there are now.
  std::uint32_t add(std::uint64_t hash) {
    hash |= 1;  // 0 marks an empty slot
    const std::size_t mask = keys_.size() - 1;
    std::size_t i = hash & mask;
    while (keys_[i] != hash && keys_[i] != 0) i = (i + 1) & mask;
    keys_[i] = hash;
    return ++counts_[i];
  }

 private:
  std::vector<std::uint64_t> keys_;
  std::vector<std::uint32_t> counts_;
};

// ---- Gopher quality ---------------------------------------------------------

bool gopher_word_count(const TextProfile& p) { return p.words().size() < 50 || p.words().size() > 100000; }

bool gopher_mean_word_length(const TextProfile& p) {
  if (p.words().empty()) return true;
  std::size_t total = 0;
  for (std::size_t chars : p.word_chars()) total += chars;
  const double mean = ratio(total, p.words().size());
  return mean < 3 || mean > 10;
}

bool gopher_symbol_ratio(const TextProfile& p) {
  const std::size_t words = std::max<std::size_t>(p.words().size(), 1);
  const std::size_t hashes = count_of(p.text(), "#");
  const std::size_t ellipses = count_of(p.text(), "...") + count_of(p.text(), "\u2026");
  return ratio(hashes, words) > 0.1 || ratio(ellipses, words) > 0.1;
}

bool gopher_bullet_lines(const TextProfile& p) {
  const std::size_t bullets = count_lines(p, [](std::string_view line) {
    const std::string_view t = trim(line);
    for (std::string_view bullet : {"\u2022", "\u2023", "\u25E6", "\u25AA", "\u25CF", "- ", "* "})
      if (t.starts_with(bullet)) return true;
    return false;
  });
  return ratio(bullets, p.lines().size()) > 0.9;
}

bool gopher_ellipsis_lines(const TextProfile& p) {
  const std::size_t ending = count_lines(p, [](std::string_view line) {
    const std::string_view t = trim(line);
    return t.ends_with("...") || t.ends_with("\u2026");
  });
  return ratio(ending, p.lines().size()) > 0.3;
}

bool gopher_alpha_words(const TextProfile& p) {
  if (p.words().empty()) return true;
  const auto alphabetic = std::count_if(p.words().begin(), p.words().end(), [](std::string_view word) {
    for (std::size_t at = 0; at < word.size();) {
      const CodePoint c = decode(word, at);
      if (is_letter(c.value)) return true;
      at += c.length;
    }
    return false;
  });
  return ratio(static_cast<std::size_t>(alphabetic), p.words().size()) < 0.8;
}

bool gopher_stop_words(const TextProfile& p) {
  static const std::unordered_set<std::string> kStopWords = {"the", "be", "to", "of", "and", "that", "have", "with"};
  std::size_t found = 0;
  for (std::string_view word : p.words())
    if (word.size() <= 4 && kStopWords.count(ascii_lower(word)) && ++found >= 2) return false;
  return true;
}

// ---- Gopher repetition ------------------------------------------------------

std::vector<std::string_view> paragraphs(std::string_view text) {
  std::vector<std::string_view> out;
  text = trim(text);
  std::size_t start = 0;
  for (std::size_t at = text.find("\n\n"); at != std::string_view::npos; at = text.find("\n\n", start)) {
    out.push_back(text.substr(start, at - start));
    start = at;
    while (start < text.size() && text[start] == '\n') ++start;
  }
  out.push_back(text.substr(start));
  return out;
}

std::vector<std::string_view> non_blank_lines(const TextProfile& p) {
  std::vector<std::string_view> lines;
  for (std::string_view line : p.lines())
    if (!is_blank(line)) lines.push_back(line);
  return lines;
}

bool gopher_dup_paragraphs(const TextProfile& p) {
  const std::vector<std::string_view> found = paragraphs(p.text());
  return ratio(find_duplicates(found).elements, found.size()) > 0.3;
}

bool gopher_dup_paragraph_chars(const TextProfile& p) {
  return ratio(find_duplicates(paragraphs(p.text())).chars, p.chars()) > 0.2;
}

bool gopher_dup_lines(const TextProfile& p) {
  const std::vector<std::string_view> lines = non_blank_lines(p);
  return ratio(find_duplicates(lines).elements, lines.size()) > 0.3;
}

bool gopher_dup_line_chars(const TextProfile& p) {
  return ratio(find_duplicates(non_blank_lines(p)).chars, p.chars()) > 0.2;
}

// The most frequent n-gram (one seen at least twice), for n = 2, 3, 4.
bool gopher_top_ngrams(const TextProfile& p) {
  static constexpr std::array<std::pair<std::size_t, double>, 3> kLimits = {{{2, 0.20}, {3, 0.18}, {4, 0.16}}};
  const NGrams grams(p);
  for (const auto& [n, limit] : kLimits) {
    HashCounter counts(grams.count(n));
    std::size_t top_chars = 0;
    for (std::size_t i = 0; i < grams.count(n); ++i) {
      const std::uint32_t count = counts.add(grams.hash(i, n));
      if (count >= 2) top_chars = std::max(top_chars, grams.chars(i, n) * count);
    }
    if (ratio(top_chars, p.chars()) > limit) return true;
  }
  return false;
}

// Characters inside repeated n-grams (each repeat counted once, not
// overlapping), for n = 5 .. 10.
bool gopher_dup_ngrams(const TextProfile& p) {
  static constexpr std::array<std::pair<std::size_t, double>, 6> kLimits = {
      {{5, 0.15}, {6, 0.14}, {7, 0.13}, {8, 0.12}, {9, 0.11}, {10, 0.10}}};
  const NGrams grams(p);
  for (const auto& [n, limit] : kLimits) {
    HashCounter seen(grams.count(n));
    std::size_t repeated = 0;
    for (std::size_t i = 0; i < grams.count(n);) {
      if (seen.add(grams.hash(i, n)) == 1) {
        ++i;
      } else {
        repeated += grams.chars(i, n);
        i += n;
      }
    }
    if (ratio(repeated, p.chars()) > limit) return true;
  }
  return false;
}

// ---- C4 ---------------------------------------------------------------------

bool c4_lorem_ipsum(const TextProfile& p) { return ascii_lower(p.text()).find("lorem ipsum") != std::string::npos; }

bool c4_curly_bracket(const TextProfile& p) { return p.text().find('{') != std::string_view::npos; }

// Wikipedia-style markers at the end of a line: [1], [], [edit], [citation needed].
std::string_view strip_citations(std::string_view line) {
  while (line.ends_with(']')) {
    const std::size_t open = line.rfind('[');
    if (open == std::string_view::npos) break;
    const std::string_view inside = line.substr(open + 1, line.size() - open - 2);
    const bool number = std::all_of(inside.begin(), inside.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!number && inside != "edit" && inside != "citation needed") break;
    line = trim(line.substr(0, open));
  }
  return line;
}

std::size_t sentences_in(std::string_view line) {
  std::size_t sentences = 0;
  for (std::size_t at = 0; at < line.size();) {
    if (line[at] != '.' && line[at] != '!' && line[at] != '?') {
      ++at;
      continue;
    }
    while (at < line.size() && (line[at] == '.' || line[at] == '!' || line[at] == '?')) ++at;
    while (at < line.size() && (line[at] == '"' || line[at] == '\'' || line[at] == ')')) ++at;
    if (at == line.size() || is_space(decode(line, at).value)) ++sentences;
  }
  return std::max<std::size_t>(sentences, 1);
}

// The lines C4 keeps (terminal punctuation, at least 5 words, no word over
// 1000 characters, no "javascript", no cookie or terms-of-use notice)
// must hold at least 3 sentences.
bool c4_too_few_sentences(const TextProfile& p) {
  static constexpr std::array<std::string_view, 6> kPolicyPhrases = {"terms of use", "privacy policy", "cookie policy",
                                                                     "uses cookies", "use of cookies", "use cookies"};
  std::size_t sentences = 0;
  for (std::string_view raw : p.lines()) {
    const std::string_view line = trim(raw);
    std::size_t words = 0;
    bool long_word = false;
    for_each_word(line, [&](std::string_view word) {
      ++words;
      long_word = long_word || count_chars(word) > 1000;
    });
    if (long_word || words < 5) continue;
    const std::string_view kept = strip_citations(line);
    const bool terminal = kept.ends_with('.') || kept.ends_with('?') || kept.ends_with('!') || kept.ends_with('"');
    if (!terminal || kept.ends_with("...")) continue;
    const std::string lower = ascii_lower(kept);
    if (lower.find("javascript") != std::string::npos) continue;
    if (std::any_of(kPolicyPhrases.begin(), kPolicyPhrases.end(),
                    [&](std::string_view phrase) { return lower.find(phrase) != std::string::npos; }))
      continue;
    sentences += sentences_in(kept);
    if (sentences >= 3) return false;
  }
  return true;
}

// ---- FineWeb ----------------------------------------------------------------

bool fineweb_line_punct(const TextProfile& p) {
  const std::size_t ending = count_lines(p, [](std::string_view line) {
    return !line.empty() && std::string_view(".'\"!?").find(line.back()) != std::string_view::npos;
  });
  return ratio(ending, p.lines().size()) <= 0.12;
}

bool fineweb_short_lines(const TextProfile& p) {
  const std::size_t short_lines = count_lines(p, [](std::string_view line) { return count_chars(line) <= 30; });
  return ratio(short_lines, p.lines().size()) >= 0.67;
}

bool fineweb_dup_line_chars(const TextProfile& p) {
  const std::size_t newlines = p.lines().size() - 1;
  return ratio(find_duplicates(non_blank_lines(p)).chars, p.chars() - newlines) >= 0.01;
}

bool fineweb_list_ratio(const TextProfile& p) {
  const std::size_t newlines = p.lines().size() - 1;
  if (p.words().empty()) return newlines > 0;
  return ratio(newlines, p.words().size()) > 0.3;
}

}  // namespace

TextProfile::TextProfile(std::string_view text) : text_(text), chars_(count_chars(text)) {
  for_each_word(text, [this](std::string_view token) {
    const std::string_view word = trim_if(token, is_punctuation_or_symbol);
    if (word.empty()) return;
    words_.push_back(word);
    word_chars_.push_back(count_chars(word));
  });
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find('\n', start);
    std::string_view line = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (line.ends_with('\r')) line.remove_suffix(1);
    lines_.push_back(line);
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
}

const std::vector<QualityRule>& quality_rules() {
  static const std::vector<QualityRule> rules = {
      {"gopher_quality", "word_count", "gopher_word_count", gopher_word_count},
      {"gopher_quality", "mean_word_length", "gopher_mean_word_length", gopher_mean_word_length},
      {"gopher_quality", "symbol_ratio", "gopher_symbol_ratio", gopher_symbol_ratio},
      {"gopher_quality", "bullet_lines", "gopher_bullet_lines", gopher_bullet_lines},
      {"gopher_quality", "ellipsis_lines", "gopher_ellipsis_lines", gopher_ellipsis_lines},
      {"gopher_quality", "alpha_words", "gopher_alpha_words", gopher_alpha_words},
      {"gopher_quality", "stop_words", "gopher_stop_words", gopher_stop_words},
      {"gopher_repetition", "dup_paragraphs", "gopher_dup_paragraphs", gopher_dup_paragraphs},
      {"gopher_repetition", "dup_paragraph_chars", "gopher_dup_paragraph_chars", gopher_dup_paragraph_chars},
      {"gopher_repetition", "dup_lines", "gopher_dup_lines", gopher_dup_lines},
      {"gopher_repetition", "dup_line_chars", "gopher_dup_line_chars", gopher_dup_line_chars},
      {"gopher_repetition", "top_ngrams", "gopher_top_ngrams", gopher_top_ngrams},
      {"gopher_repetition", "dup_ngrams", "gopher_dup_ngrams", gopher_dup_ngrams},
      {"c4", "lorem_ipsum", "c4_lorem_ipsum", c4_lorem_ipsum},
      {"c4", "curly_bracket", "c4_curly_bracket", c4_curly_bracket},
      {"c4", "too_few_sentences", "c4_too_few_sentences", c4_too_few_sentences},
      {"fineweb", "line_punct", "fineweb_line_punct", fineweb_line_punct},
      {"fineweb", "short_lines", "fineweb_short_lines", fineweb_short_lines},
      {"fineweb", "dup_line_chars", "fineweb_dup_line_chars", fineweb_dup_line_chars},
      {"fineweb", "list_ratio", "fineweb_list_ratio", fineweb_list_ratio},
  };
  return rules;
}

const std::vector<std::string_view>& quality_presets() {
  static const std::vector<std::string_view> presets = {"gopher_quality", "gopher_repetition", "c4", "fineweb"};
  return presets;
}

std::vector<std::string> quality_options(std::string_view preset) {
  std::vector<std::string> options = {"all"};
  for (const QualityRule& rule : quality_rules())
    if (rule.preset == preset) options.emplace_back(rule.option);
  return options;
}

}  // namespace distill::policy
