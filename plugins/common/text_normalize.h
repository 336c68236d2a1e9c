// Text normalisation shared by the dedupe plugins: Unicode NFKC, case
// folding, whitespace collapsing, punctuation removal and digit folding,
// each switchable. A helper library of the built-in plugins (built on the
// SDK like any third-party code), not part of the SDK.
#pragma once

#include <distill/params.h>

#include <string>
#include <string_view>
#include <vector>

namespace distill::text {

struct NormalizeOptions {
  bool nfkc = true;
  bool casefold = true;
  bool whitespace = true;    // runs of white space become one space; ends trimmed
  bool punctuation = false;  // Unicode punctuation and symbols removed
  bool digits = false;       // every decimal digit becomes '0'
};

// The `normalize:` parameter every dedupe plugin declares.
ParamSpec normalize_param();
NormalizeOptions normalize_options(const std::vector<std::string>& names);

// The ASCII white space that `whitespace` collapses into one space (and
// that separates words): space, \t, \n, \v, \f, \r.
constexpr bool is_ascii_blank(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// Invalid UTF-8 is normalised byte-wise (ASCII rules only), never rejected.
std::string normalize(std::string_view text, const NormalizeOptions& options);

}  // namespace distill::text
