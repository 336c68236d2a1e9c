// CLD2 calls for the language rule (see language.h).
#include "language.h"

#include <cld2/public/compact_lang_det.h>

#include <cstdio>  // CLD2's header uses FILE without including it
#include <string>

#include "text_util.h"

namespace distill::policy {
namespace {

// CLD2 wants interchange-valid UTF-8: no invalid sequences, no control
// characters other than white space, no surrogates or noncharacters.
bool interchange_valid(char32_t c) {
  if (c < 0x20) return c == '\t' || c == '\n' || c == '\r';
  if (c >= 0x7F && c <= 0x9F) return false;
  if (c >= 0xFDD0 && c <= 0xFDEF) return false;
  return (c & 0xFFFE) != 0xFFFE;
}

bool acceptable(std::string_view text, std::size_t at, CodePoint c) {
  const bool invalid_utf8 = c.value == 0xFFFD && c.length == 1 && static_cast<unsigned char>(text[at]) >= 0x80;
  return !invalid_utf8 && interchange_valid(c.value);
}

// `text`, or a copy with every unacceptable character replaced by a space.
std::string_view clean_for_cld2(std::string_view text, std::string& copy) {
  std::size_t at = 0;
  while (at < text.size()) {
    const CodePoint c = decode(text, at);
    if (!acceptable(text, at, c)) break;
    at += c.length;
  }
  if (at == text.size()) return text;
  copy.assign(text.substr(0, at));
  while (at < text.size()) {
    const CodePoint c = decode(text, at);
    if (!acceptable(text, at, c))
      copy.push_back(' ');
    else
      copy.append(text.substr(at, c.length));
    at += c.length;
  }
  return copy;
}

}  // namespace

std::optional<int> language_from_code(std::string_view code) {
  const CLD2::Language language = CLD2::GetLanguageFromName(std::string(code).c_str());
  if (language == CLD2::UNKNOWN_LANGUAGE) return std::nullopt;
  return static_cast<int>(language);
}

LanguageGuess detect_language(std::string_view text) {
  std::string copy;
  const std::string_view clean = clean_for_cld2(text, copy);
  CLD2::Language top3[3];
  int percent3[3];
  double scores3[3];
  int text_bytes = 0;
  bool reliable = false;
  int valid_prefix = 0;
  const CLD2::Language language =
      CLD2::ExtDetectLanguageSummaryCheckUTF8(clean.data(), static_cast<int>(clean.size()), true, nullptr, 0, top3,
                                              percent3, scores3, nullptr, &text_bytes, &reliable, &valid_prefix);
  if (language == CLD2::UNKNOWN_LANGUAGE || text_bytes == 0) return {-1, "un", 0};
  // CLD2 may name a language other than its top scorer (it prefers a second
  // language over English in mixed text), so look the share up.
  double share = 0;
  for (int i = 0; i < 3; ++i)
    if (top3[i] == language) share = percent3[i] / 100.0;
  return {static_cast<int>(language), CLD2::LanguageCode(language), share};
}

}  // namespace distill::policy
