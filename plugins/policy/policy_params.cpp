// Declarations of the policy plugin's parameters (see policy_params.h).
#include "policy_params.h"

#include <string>

#include "quality.h"

namespace distill::policy {
namespace {

ParamSpec length_bounds(const std::string& field, const std::string& min_words) {
  return param::Object(
      field + "_length",
      "bounds on the " + field + " (rules " + field + "_too_short, " + field + "_too_long); 0: no bound",
      {param::Int("min_chars", "fewest characters (code points)").default_value("0").min(0),
       param::Int("max_chars", "most characters").default_value("0").min(0),
       param::Int("min_words", "fewest words (runs of non-space)").default_value(min_words).min(0),
       param::Int("max_words", "most words").default_value("0").min(0)});
}

ParamSpec allow_deny(const std::string& name, const std::string& what, const std::string& example) {
  return param::Object(name, what + " (rule " + name + "); shell wildcards such as " + example,
                       {param::StringList("allow", "kept; empty: any").default_value("[]"),
                        param::StringList("deny", "dropped, even when allowed").default_value("[]")});
}

ParamSpec pii_action(const std::string& kind, const std::string& what) {
  return param::Choice(kind, what, {"off", "redact", "drop"}).default_value("redact");
}

ParamSpec quality_preset(std::string_view preset, const std::string& what) {
  return param::StringList(std::string(preset), what).one_of(quality_options(preset)).default_value("[]");
}

}  // namespace

std::vector<ParamSpec> policy_params() {
  return {
      param::Choice("mode", "enforce: drop at the first failing rule; audit: drop nothing, annotate policy_would_drop",
                    {"enforce", "audit"})
          .default_value("enforce"),
      param::Object(
          "finish_reason", "why the teacher stopped (rule finish_reason)",
          {param::StringList("allow", "finish reasons kept, any case; empty: any")
               .default_value("[stop, end_turn, stop_sequence, tool_calls, tool_use, function_call]"),
           param::Choice("missing", "a record without a finish reason", {"keep", "drop"}).default_value("keep")}),
      allow_deny("teacher", "teacher models, by record.teacher.model", "gpt-4o*"),
      allow_deny("terms", "terms tags, by record.provenance.terms", "cc-by-*"),
      param::Any("annotations",
                 "thresholds on earlier stages' annotations: list of {name, annotation, min, max, missing: keep|drop}")
          .default_value("[]"),
      length_bounds("prompt", "0"),
      length_bounds("response", "1"),
      param::Object(
          "refusal",
          "refusal phrases anywhere in the response, ignoring case, spacing, quote style and commas (rule refusal)",
          {param::Bool("enabled", "check for refusals").default_value("true"),
           param::StringList("phrases", "phrases that mark a refusal")
               .default_value("[\"I'm sorry, but I can't\", \"I'm sorry, but I cannot\", \"I am sorry, but I cannot\", "
                              "\"I'm sorry, I can't\", \"I apologize, but I cannot\", \"I apologize, but I can't\", "
                              "\"As an AI language model\", \"As a language model\", \"I cannot help with\", "
                              "\"I can't help with\", \"I cannot assist with\", \"I can't assist with\", "
                              "\"I'm not able to help with\", \"I'm unable to help with\", \"I cannot fulfill\", "
                              "\"I can't fulfill\", \"I cannot comply\", \"I can't comply\"]"),
           param::StringList("extra_phrases", "phrases added to the list").default_value("[]")}),
      param::Any("patterns",
                 "RE2 rules: list of {name, deny: RE or require: RE, fields: [prompt, response, reasoning]}")
          .default_value("[]"),
      param::Object("pii", "personal data and secrets: off, redact (typed placeholder) or drop (rule pii_<kind>)",
                    {pii_action("email", "e-mail addresses, except example domains"),
                     pii_action("phone", "phone numbers: +international or (555) 123-4567 shapes"),
                     pii_action("ip", "public IPv4 and IPv6 addresses"),
                     pii_action("credit_card", "card numbers of 13-19 digits passing the Luhn check"),
                     pii_action("secret", "API keys and tokens (sk-, AKIA, ghp_, xoxb-, ...), private key blocks"),
                     param::StringList("fields", "texts scanned and redacted")
                         .one_of({"prompt", "response", "reasoning"})
                         .default_value("[prompt, response, reasoning]")}),
      param::Object(
          "language", "main language of the response, by CLD2 (rule language)",
          {param::StringList("allow", "language codes kept (en, fr, zh, ...); empty: rule off").default_value("[]"),
           param::Double("min_confidence", "least share of the response in that language")
               .default_value("0.5")
               .min(0)
               .max(1),
           param::Choice("unknown", "a response CLD2 cannot identify (code, numbers, very short)", {"keep", "drop"})
               .default_value("keep")}),
      param::Object(
          "quality",
          "web-text presets with published thresholds, each rule switchable; wrong for short or code answers",
          {quality_preset("gopher_quality", "Gopher quality rules (gopher_<rule>)"),
           quality_preset("gopher_repetition", "Gopher repetition rules (gopher_<rule>)"),
           quality_preset("c4", "C4 rules (c4_<rule>)"), quality_preset("fineweb", "FineWeb rules (fineweb_<rule>)")}),
  };
}

}  // namespace distill::policy
