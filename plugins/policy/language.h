// Language identification of a response with CLD2 (Debian's libcld2),
// behind a small interface so the rest of the plugin does not see CLD2.
#pragma once

#include <optional>
#include <string_view>

namespace distill::policy {

struct LanguageGuess {
  int language = -1;      // CLD2's language number; -1 when unknown
  std::string_view code;  // "en", "fr", "zh-Hant", ...; "un" when unknown
  double share = 0;       // share of the text in that language, 0..1
  bool known() const { return language >= 0; }
};

// CLD2's number for a code or name such as "en", "he" or "ENGLISH".
std::optional<int> language_from_code(std::string_view code);

// The main language of `text`. Invalid UTF-8 and control characters are
// read as spaces; text with no letters (code, numbers) is unknown.
LanguageGuess detect_language(std::string_view text);

}  // namespace distill::policy
