// RE2::Set with a per-pattern fallback (see pattern_set.h).
#include "pattern_set.h"

#include <stdexcept>

namespace distill::policy {

RE2::Options regex_options() {
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(64 << 20);
  return options;
}

PatternSet::PatternSet() : set_(std::make_unique<RE2::Set>(regex_options(), RE2::UNANCHORED)) {}
PatternSet::~PatternSet() = default;
PatternSet::PatternSet(PatternSet&&) noexcept = default;
PatternSet& PatternSet::operator=(PatternSet&&) noexcept = default;

std::size_t PatternSet::add(const std::string& pattern) {
  auto alone = std::make_unique<const RE2>(pattern, regex_options());
  if (!alone->ok()) throw std::invalid_argument(alone->error());
  const std::size_t index = add(*alone);
  owned_.push_back(std::move(alone));
  return index;
}

std::size_t PatternSet::add(const RE2& compiled) {
  std::string error;
  if (set_->Add(compiled.pattern(), &error) < 0) throw std::invalid_argument(error);
  alone_.push_back(&compiled);
  return alone_.size() - 1;
}

void PatternSet::compile() {
  if (!alone_.empty() && !set_->Compile())
    throw std::runtime_error("RE2 ran out of memory compiling the policy's patterns");
}

std::vector<bool> PatternSet::match(std::string_view text) const {
  std::vector<bool> hits(alone_.size(), false);
  if (alone_.empty()) return hits;
  std::vector<int> matched;
  RE2::Set::ErrorInfo error{RE2::Set::kNoError};
  const re2::StringPiece input(text.data(), text.size());
  if (set_->Match(input, &matched, &error)) {
    for (int index : matched) hits[static_cast<std::size_t>(index)] = true;
  } else if (error.kind != RE2::Set::kNoError) {
    for (std::size_t i = 0; i < alone_.size(); ++i) hits[i] = RE2::PartialMatch(input, *alone_[i]);
  }
  return hits;
}

}  // namespace distill::policy
