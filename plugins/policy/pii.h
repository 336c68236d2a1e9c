// Personal data and secrets in text: the kinds the policy knows, the
// regular expression that finds candidates of each kind, the check a
// candidate must pass (boundaries, Luhn, address ranges), and redaction
// with typed placeholders.
#pragma once

#include <re2/re2.h>

#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace distill::policy {

// In the order the policy checks them.
enum class PiiKind { secret, credit_card, email, phone, ip };
inline constexpr std::array<PiiKind, 5> kPiiKinds = {PiiKind::secret, PiiKind::credit_card, PiiKind::email,
                                                     PiiKind::phone, PiiKind::ip};

std::string_view pii_name(PiiKind kind);         // "credit_card": the YAML key and counter suffix
std::string_view pii_placeholder(PiiKind kind);  // "[CREDIT_CARD]"

struct PiiSpan {
  std::size_t begin = 0;  // byte offsets in the scanned text
  std::size_t end = 0;
  PiiKind kind = PiiKind::email;
};

// Finds one shape of one kind: a regular expression for candidates and a
// check each candidate must pass.
class PiiDetector {
 public:
  using Check = bool (*)(std::string_view text, std::size_t begin, std::size_t end);
  PiiDetector(PiiKind kind, const std::string& pattern, Check check);

  PiiKind kind() const { return kind_; }
  const RE2& regex() const { return *regex_; }
  // Appends every accepted occurrence in `text`, left to right.
  void find(std::string_view text, std::vector<PiiSpan>& out) const;

 private:
  PiiKind kind_;
  std::unique_ptr<const RE2> regex_;
  Check check_;
};

// Every detector, compiled once.
const std::vector<PiiDetector>& pii_detectors();

// True when the digits (nothing else) pass the Luhn check.
bool luhn_valid(std::string_view digits);

// Sorts spans by position and removes any that overlap an earlier one.
void remove_overlaps(std::vector<PiiSpan>& spans);

// `text` with each span (sorted, not overlapping) replaced by its placeholder.
std::string redact(std::string_view text, const std::vector<PiiSpan>& spans);

}  // namespace distill::policy
