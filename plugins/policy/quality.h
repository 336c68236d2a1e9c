// Web-text quality presets with their published thresholds: Gopher
// quality and Gopher repetition (Rae et al. 2021, table A1), C4 (Raffel et
// al. 2020, as in TFDS c4_utils) and FineWeb (Penedo et al. 2024, as in
// datatrove). Each rule is a pure function of one text. They were tuned
// for web pages: short or code answers fail them, so the policy leaves
// them off unless a pipeline lists them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace distill::policy {

// Measurements of one text that several rules share.
class TextProfile {
 public:
  explicit TextProfile(std::string_view text);

  std::string_view text() const { return text_; }
  std::size_t chars() const { return chars_; }  // code points
  // White-space separated tokens with leading and trailing punctuation and
  // symbols removed; tokens with nothing left are not words.
  const std::vector<std::string_view>& words() const { return words_; }
  const std::vector<std::size_t>& word_chars() const { return word_chars_; }
  // Split on '\n' (a '\r' before it is dropped); blank lines included.
  const std::vector<std::string_view>& lines() const { return lines_; }

 private:
  std::string_view text_;
  std::size_t chars_ = 0;
  std::vector<std::string_view> words_;
  std::vector<std::size_t> word_chars_;
  std::vector<std::string_view> lines_;
};

struct QualityRule {
  std::string_view preset;  // the YAML key under quality:, e.g. "gopher_quality"
  std::string_view option;  // the item that switches it on, e.g. "word_count"
  std::string name;         // the rule name and drop reason, e.g. "gopher_word_count"
  bool (*fails)(const TextProfile&);
};

// Every rule, presets in the order above, rules in the papers' order.
const std::vector<QualityRule>& quality_rules();
const std::vector<std::string_view>& quality_presets();
// The items one preset accepts: "all", then each rule's option.
std::vector<std::string> quality_options(std::string_view preset);

}  // namespace distill::policy
