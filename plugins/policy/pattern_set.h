// Many RE2 patterns matched against one text in a single pass (an
// RE2::Set), so the policy reads each text once however many pattern,
// refusal and PII rules look at it. Each pattern is also kept compiled on
// its own, for when the set's DFA runs out of memory on a pathological text:
// compiled here, or one the caller already holds (the PII detectors').
#pragma once

#include <re2/re2.h>
#include <re2/set.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace distill::policy {

// The options of every regular expression in the plugin (UTF-8, case
// sensitive unless the pattern says (?i), errors returned, not logged).
RE2::Options regex_options();

class PatternSet {
 public:
  PatternSet();
  ~PatternSet();
  PatternSet(PatternSet&&) noexcept;
  PatternSet& operator=(PatternSet&&) noexcept;

  // Adds a pattern and returns its index; throws std::invalid_argument
  // with RE2's message when it does not compile.
  std::size_t add(const std::string& pattern);
  // Adds an already compiled pattern, which must outlive the set.
  std::size_t add(const RE2& compiled);
  // After the last add(); throws std::runtime_error if RE2 runs out of memory.
  void compile();

  std::size_t size() const { return alone_.size(); }
  // hits[i] is true when pattern i matches somewhere in `text`.
  std::vector<bool> match(std::string_view text) const;

 private:
  std::unique_ptr<RE2::Set> set_;
  std::vector<const RE2*> alone_;
  std::vector<std::unique_ptr<const RE2>> owned_;
};

}  // namespace distill::policy
