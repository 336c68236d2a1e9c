// The compiled policy of one `policy` block: every rule it declares, in
// the fixed evaluation order, and what the policy does to one record
// (which rules fail, PII redaction, annotations). Compiling checks the
// whole block and throws ParamError naming the key, so the plugin's
// validate() is "compile and discard". apply() is const and thread-safe:
// the stage runs it in its parallel part.
#pragma once

#include <distill/params.h>
#include <distill/record.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pii.h"

namespace distill::policy {

enum class Mode { enforce, audit };

using PiiCounts = std::array<std::int64_t, kPiiKinds.size()>;  // indexed like kPiiKinds

struct Outcome {
  // Indices into rule_names() of the rules the record fails, in evaluation
  // order. In enforce mode evaluation stops at the first, which is the
  // drop reason.
  std::vector<std::size_t> failed;
  // Placeholders written (enforce) or that would be written (audit), per kind.
  PiiCounts redacted{};
};

class Policy {
 public:
  explicit Policy(const Params& params);
  ~Policy();
  Policy(const Policy&) = delete;
  Policy& operator=(const Policy&) = delete;

  Mode mode() const;
  // The active rules in evaluation order; a rule's name is its drop reason.
  const std::vector<std::string>& rule_names() const;
  // Evaluates the record. Enforce mode: a record that passes has its PII
  // redacted (and a new id); one that fails is left as it is. Audit mode:
  // the record's text is never changed; annotations say what would happen.
  Outcome apply(Record& record) const;

  struct Impl;

 private:
  std::unique_ptr<const Impl> impl_;
};

// Names of the built-in rules, which user-named rules may not take.
std::vector<std::string> builtin_rule_names();

}  // namespace distill::policy
