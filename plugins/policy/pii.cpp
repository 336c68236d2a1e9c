// PII detectors: candidate patterns and the checks that keep false
// positives down (see pii.h and the README's `policy` section).
#include "pii.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <stdexcept>

#include "pattern_set.h"

namespace distill::policy {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word_byte(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// The byte before `begin` neither continues the token nor joins it to a
// number before it (e.g. "7." before "1.2.3.4").
bool clear_before(std::string_view text, std::size_t begin, std::string_view joiners) {
  if (begin == 0) return true;
  const char previous = text[begin - 1];
  if (is_word_byte(previous)) return false;
  return joiners.find(previous) == std::string_view::npos || begin < 2 || !is_digit(text[begin - 2]);
}

// The byte after `end` neither continues the token nor joins it to a
// number after it (e.g. ".5" after "1.2.3.4").
bool clear_after(std::string_view text, std::size_t end, std::string_view joiners) {
  if (end >= text.size()) return true;
  const char next = text[end];
  if (is_word_byte(next)) return false;
  return joiners.find(next) == std::string_view::npos || end + 1 >= text.size() || !is_digit(text[end + 1]);
}

std::string digits_of(std::string_view text) {
  std::string digits;
  for (char c : text)
    if (is_digit(c)) digits.push_back(c);
  return digits;
}

bool accept_secret(std::string_view text, std::size_t begin, std::size_t end) {
  const std::string_view token = text.substr(begin, end - begin);
  // Random keys contain digits; hyphenated prose after "sk-" does not.
  return token.starts_with("-----BEGIN") || std::any_of(token.begin(), token.end(), is_digit);
}

bool accept_credit_card(std::string_view text, std::size_t begin, std::size_t end) {
  if (!clear_before(text, begin, " -.") || !clear_after(text, end, " -.")) return false;
  const std::string digits = digits_of(text.substr(begin, end - begin));
  if (digits.size() < 13 || digits.size() > 19) return false;
  if (std::all_of(digits.begin(), digits.end(), [&](char c) { return c == digits[0]; })) return false;
  return luhn_valid(digits);
}

// Domains reserved for examples and tests (RFC 2606, RFC 6761) name no one.
bool accept_email(std::string_view text, std::size_t begin, std::size_t end) {
  const std::string_view address = text.substr(begin, end - begin);
  std::string domain(address.substr(address.find('@') + 1));
  std::transform(domain.begin(), domain.end(), domain.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const std::string top = domain.substr(domain.rfind('.') + 1);
  if (top == "example" || top == "test" || top == "invalid" || top == "localhost") return false;
  for (std::string_view reserved : {"example.com", "example.org", "example.net"})
    if (domain == reserved || (domain.size() > reserved.size() && domain.ends_with(reserved) &&
                               domain[domain.size() - reserved.size() - 1] == '.'))
      return false;
  return true;
}

bool accept_international_phone(std::string_view text, std::size_t begin, std::size_t end) {
  if (!clear_before(text, begin, "+") || !clear_after(text, end, "-./")) return false;
  const std::size_t digits = digits_of(text.substr(begin, end - begin)).size();
  return digits >= 8 && digits <= 15;  // E.164 allows at most 15
}

bool accept_national_phone(std::string_view text, std::size_t begin, std::size_t end) {
  return clear_before(text, begin, "+-./") && clear_after(text, end, "-./");
}

// Unspecified, loopback, private, shared (CGNAT), link-local,
// documentation, multicast and reserved addresses identify no one.
bool accept_ipv4(std::string_view text, std::size_t begin, std::size_t end) {
  if (!clear_before(text, begin, ".") || !clear_after(text, end, ".")) return false;
  const std::string address(text.substr(begin, end - begin));
  in_addr parsed{};
  if (inet_pton(AF_INET, address.c_str(), &parsed) != 1) return false;
  const auto* octet = reinterpret_cast<const std::uint8_t*>(&parsed.s_addr);
  const unsigned a = octet[0], b = octet[1], c = octet[2];
  const bool unassigned = a == 0 || a == 10 || a == 127 || a >= 224 || (a == 100 && b >= 64 && b <= 127) ||
                          (a == 169 && b == 254) || (a == 172 && b >= 16 && b <= 31) || (a == 192 && b == 168) ||
                          (a == 192 && b == 0 && c == 2) || (a == 198 && b == 51 && c == 100) ||
                          (a == 203 && b == 0 && c == 113);
  return !unassigned;
}

bool accept_ipv6(std::string_view text, std::size_t begin, std::size_t end) {
  if (begin > 0 && (is_word_byte(text[begin - 1]) || text[begin - 1] == ':' || text[begin - 1] == '.')) return false;
  if (!clear_after(text, end, ".") || (end < text.size() && text[end] == ':')) return false;
  const std::string address(text.substr(begin, end - begin));
  // At least three groups of digits: "a::b" is far more often code than an address.
  int groups = 0;
  for (std::size_t i = 0; i < address.size(); ++i)
    if (address[i] != ':' && (i == 0 || address[i - 1] == ':')) ++groups;
  if (groups < 3) return false;
  std::uint8_t bytes[16];
  if (inet_pton(AF_INET6, address.c_str(), bytes) != 1) return false;
  const bool link_local = bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80;
  const bool unique_local = (bytes[0] & 0xfe) == 0xfc;
  const bool multicast = bytes[0] == 0xff;
  const bool documentation = bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0d && bytes[3] == 0xb8;
  const bool leading_zeros =
      std::all_of(bytes, bytes + 10, [](std::uint8_t b) { return b == 0; });  // ::1, ::ffff:a.b.c.d
  return !(link_local || unique_local || multicast || documentation || leading_zeros);
}

}  // namespace

std::string_view pii_name(PiiKind kind) {
  switch (kind) {
    case PiiKind::secret: return "secret";
    case PiiKind::credit_card: return "credit_card";
    case PiiKind::email: return "email";
    case PiiKind::phone: return "phone";
    case PiiKind::ip: return "ip";
  }
  return "?";
}

std::string_view pii_placeholder(PiiKind kind) {
  switch (kind) {
    case PiiKind::secret: return "[SECRET]";
    case PiiKind::credit_card: return "[CREDIT_CARD]";
    case PiiKind::email: return "[EMAIL]";
    case PiiKind::phone: return "[PHONE]";
    case PiiKind::ip: return "[IP]";
  }
  return "[?]";
}

PiiDetector::PiiDetector(PiiKind kind, const std::string& pattern, Check check)
    : kind_(kind),
      regex_(std::make_unique<const RE2>(pattern, regex_options())),
      check_(check) {
  if (!regex_->ok()) throw std::logic_error("PII pattern does not compile: " + regex_->error());
}

void PiiDetector::find(std::string_view text, std::vector<PiiSpan>& out) const {
  const re2::StringPiece input(text.data(), text.size());
  std::size_t from = 0;
  re2::StringPiece match;
  while (from <= text.size() && regex_->Match(input, from, text.size(), RE2::UNANCHORED, &match, 1)) {
    const auto begin = static_cast<std::size_t>(match.data() - text.data());
    const std::size_t end = begin + match.size();
    if (end > begin && check_(text, begin, end)) out.push_back({begin, end, kind_});
    // A rejected candidate is skipped whole, so a scan stays linear.
    from = end > begin ? end : begin + 1;
  }
}

const std::vector<PiiDetector>& pii_detectors() {
  static const std::vector<PiiDetector> detectors = [] {
    std::vector<PiiDetector> list;
    list.emplace_back(PiiKind::secret,
                      R"(\bsk-[A-Za-z0-9_-]{20,}|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{36,})"
                      R"(|\bgithub_pat_[A-Za-z0-9_]{22,}|\bxox[abposr]-[A-Za-z0-9-]{10,}|\bAIza[0-9A-Za-z_-]{35})"
                      R"(|\b[rs]k_live_[0-9A-Za-z]{20,})"
                      R"(|\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})"
                      R"(|-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----)?)",
                      accept_secret);
    list.emplace_back(PiiKind::credit_card, R"(\d(?:[ -]?\d){12,18})", accept_credit_card);
    list.emplace_back(PiiKind::email, R"([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})",
                      accept_email);
    list.emplace_back(PiiKind::phone, R"(\+[1-9]\d{0,2}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,4})){2,6})",
                      accept_international_phone);
    list.emplace_back(PiiKind::phone, R"(\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\b\d{3}[.-]\d{3}[.-]\d{4}\b)",
                      accept_national_phone);
    list.emplace_back(PiiKind::ip,
                      R"(\b(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\b)",
                      accept_ipv4);
    list.emplace_back(PiiKind::ip, R"((?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})", accept_ipv6);
    return list;
  }();
  return detectors;
}

bool luhn_valid(std::string_view digits) {
  if (digits.empty()) return false;
  int sum = 0;
  bool twice = false;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (!is_digit(*it)) return false;
    int d = *it - '0';
    if (twice && (d *= 2) > 9) d -= 9;
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

void remove_overlaps(std::vector<PiiSpan>& spans) {
  std::sort(spans.begin(), spans.end(),
            [](const PiiSpan& a, const PiiSpan& b) { return a.begin != b.begin ? a.begin < b.begin : a.end > b.end; });
  std::vector<PiiSpan> kept;
  for (const PiiSpan& span : spans)
    if (kept.empty() || span.begin >= kept.back().end) kept.push_back(span);
  spans = std::move(kept);
}

std::string redact(std::string_view text, const std::vector<PiiSpan>& spans) {
  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;
  for (const PiiSpan& span : spans) {
    out.append(text.substr(copied, span.begin - copied));
    out.append(pii_placeholder(span.kind));
    copied = span.end;
  }
  out.append(text.substr(copied));
  return out;
}

}  // namespace distill::policy
