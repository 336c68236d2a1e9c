// Compiling a policy block into rules, and applying them to a record (see
// policy.h). Regular expressions of all pattern, refusal and PII rules are
// grouped per text field into one PatternSet, so each text is read once.
#include "policy.h"

#include <distill/content_id.h>
#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <functional>
#include <optional>
#include <set>
#include <stdexcept>

#include "language.h"
#include "pattern_set.h"
#include "quality.h"
#include "text_util.h"

namespace distill::policy {
namespace {

enum class Field { prompt, response, reasoning };
constexpr std::array<Field, 3> kFields = {Field::prompt, Field::response, Field::reasoning};
constexpr std::array<std::string_view, 3> kFieldNames = {"prompt", "response", "reasoning"};
using FieldMask = std::array<bool, 3>;

std::size_t index_of(Field field) { return static_cast<std::size_t>(field); }
std::size_t index_of(PiiKind kind) { return static_cast<std::size_t>(kind); }

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

struct Bounds {
  std::int64_t min_chars = 0, max_chars = 0, min_words = 0, max_words = 0;
};

struct Counts {
  std::size_t chars = 0, words = 0;
};

// Shell-wildcard allow and deny lists (teacher, terms).
struct AllowDeny {
  std::vector<std::string> allow, deny;

  bool active() const { return !allow.empty() || !deny.empty(); }
  bool rejects(const std::string& value) const {
    auto matches = [&value](const std::string& pattern) { return fnmatch(pattern.c_str(), value.c_str(), 0) == 0; };
    if (!allow.empty() && std::none_of(allow.begin(), allow.end(), matches)) return true;
    return std::any_of(deny.begin(), deny.end(), matches);
  }
};

struct AnnotationRule {
  std::string annotation;
  std::optional<double> min, max;
  bool drop_missing = false;
};

struct PatternRule {
  bool deny = true;
  FieldMask fields{};
  std::array<std::size_t, 3> slot{};  // the pattern's index in each field's set
};

struct PiiSlot {
  std::size_t slot;
  const PiiDetector* detector;
};

// A regular expression matching any of the phrases, folding case, runs of
// white space, apostrophe style and optional commas.
std::string refusal_pattern(const std::vector<std::string>& phrases) {
  std::string pattern = "(?i)(?:";
  for (std::size_t i = 0; i < phrases.size(); ++i) {
    if (i) pattern += '|';
    const std::string_view phrase = phrases[i];
    bool space_pending = false;
    for (std::size_t at = 0; at < phrase.size();) {
      const CodePoint c = decode(phrase, at);
      const std::string_view bytes = phrase.substr(at, c.length);
      at += c.length;
      if (is_space(c.value)) {
        space_pending = true;
        continue;
      }
      if (space_pending) pattern += R"([\s\p{Z}]+)";
      space_pending = false;
      if (c.value == '\'' || c.value == 0x2018 || c.value == 0x2019 || c.value == 0x02BC)
        pattern += "['\u2018\u2019\u02BC]";
      else if (c.value == ',')
        pattern += ",?";
      else
        pattern += RE2::QuoteMeta(re2::StringPiece(bytes.data(), bytes.size()));
    }
  }
  return pattern + ")";
}

}  // namespace

struct Policy::Impl {
  class Evaluation;
  struct Rule {
    std::string name;
    std::function<bool(Evaluation&)> fails;
  };

  explicit Impl(const Params& params);

  Mode mode = Mode::enforce;
  std::vector<Rule> rules;
  std::vector<std::string> names;
  std::array<PatternSet, 3> sets;                 // per field
  std::array<std::vector<PiiSlot>, 3> pii_slots;  // per field
  std::array<bool, kPiiKinds.size()> redacts{};   // per kind

 private:
  void add_rule(std::string name, std::function<bool(Evaluation&)> fails) {
    names.push_back(name);
    rules.push_back({std::move(name), std::move(fails)});
  }
  std::string take_name(const Value& item, const std::string& key);
  void add_finish_reason(const Params& block);
  void add_allow_deny(const std::string& name, const Params& block,
                      std::function<const std::string&(const Record&)> field);
  void add_annotation_rules(const Value& list);
  void add_length_rules(const std::string& field, const Params& block);
  void add_refusal(const Params& block);
  void add_pattern_rules(const Value& list);
  void add_pii(const Params& block);
  void add_language(const Params& block);
  void add_quality(const Params& block);

  std::set<std::string> taken_names_;
};

// What one record looks like to the rules, computed once and only when a
// rule asks: pattern-set hits per text, PII spans, counts, language.
class Policy::Impl::Evaluation {
 public:
  struct Text {
    Field field;
    std::string_view text;
  };

  Evaluation(const Impl& policy, const Record& record) : policy_(policy), record_(record) {
    for (const Message& message : record.prompt) texts_.push_back({Field::prompt, message.content});
    texts_.push_back({Field::response, record.response});
    texts_.push_back({Field::reasoning, record.reasoning});
  }

  const Record& record() const { return record_; }

  // True when pattern `slot` of the field's set matches any of its texts.
  bool hit(Field field, std::size_t slot) {
    scan();
    for (std::size_t i = 0; i < texts_.size(); ++i)
      if (texts_[i].field == field && hits_[i][slot]) return true;
    return false;
  }

  // Accepted PII spans per text (texts in the order of the constructor).
  const std::vector<std::vector<PiiSpan>>& pii() {
    if (pii_) return *pii_;
    scan();
    pii_.emplace(texts_.size());
    for (std::size_t i = 0; i < texts_.size(); ++i)
      for (const PiiSlot& p : policy_.pii_slots[index_of(texts_[i].field)])
        if (hits_[i][p.slot]) p.detector->find(texts_[i].text, (*pii_)[i]);
    return *pii_;
  }

  bool pii_found(PiiKind kind) {
    for (const std::vector<PiiSpan>& spans : pii())
      for (const PiiSpan& span : spans)
        if (span.kind == kind) return true;
    return false;
  }

  Counts prompt_counts() {
    if (!prompt_counts_) {
      prompt_counts_.emplace();
      for (const Message& message : record_.prompt) {
        prompt_counts_->chars += count_chars(message.content);
        prompt_counts_->words += count_words(message.content);
      }
    }
    return *prompt_counts_;
  }

  Counts response_counts() {
    if (!response_counts_) response_counts_ = Counts{count_chars(record_.response), count_words(record_.response)};
    return *response_counts_;
  }

  const TextProfile& profile() {
    if (!profile_) profile_.emplace(record_.response);
    return *profile_;
  }

  const LanguageGuess& language() {
    if (!language_) language_ = detect_language(record_.response);
    return *language_;
  }
  const std::optional<LanguageGuess>& language_if_detected() const { return language_; }

  const std::vector<Text>& texts() const { return texts_; }

 private:
  void scan() {
    if (!hits_.empty()) return;
    hits_.reserve(texts_.size());
    for (const Text& t : texts_) hits_.push_back(policy_.sets[index_of(t.field)].match(t.text));
  }

  const Impl& policy_;
  const Record& record_;
  std::vector<Text> texts_;
  std::vector<std::vector<bool>> hits_;  // per text, per pattern of its field's set
  std::optional<std::vector<std::vector<PiiSpan>>> pii_;
  std::optional<Counts> prompt_counts_, response_counts_;
  std::optional<TextProfile> profile_;
  std::optional<LanguageGuess> language_;
};

namespace {

using Evaluation = Policy::Impl::Evaluation;

bool valid_rule_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.';
  });
}

// Calls add(item, "param[i]") for each item of a list of user-named
// rules, once the item is known to be a mapping with no unknown keys.
template <class Add>
void for_each_rule_item(const Value& list, const std::string& param, const std::vector<std::string>& keys, Add&& add) {
  const std::string shape = "{" + join(keys, ", ") + "}";
  if (!list.is_list()) throw ParamError(param, "expected a list of rules, each " + shape);
  for (std::size_t i = 0; i < list.list().size(); ++i) {
    const Value& item = list.list()[i];
    const std::string key = param + "[" + std::to_string(i) + "]";
    if (!item.is_object()) throw ParamError(key, "expected a mapping " + shape);
    for (const auto& [name, value] : item.object())
      if (std::find(keys.begin(), keys.end(), name) == keys.end())
        throw ParamError(key + "." + name, "unknown key '" + name + "'; valid keys: " + join(keys, ", "));
    add(item, key);
  }
}

const std::string& scalar_at(const Value& item, const std::string& key, const std::string& name,
                             const std::string& what) {
  const Value* value = item.find(name);
  if (!value || value->is_null()) throw ParamError(key + "." + name, "missing " + name + " (" + what + ")");
  if (!value->is_scalar()) throw ParamError(key + "." + name, "expected " + what);
  return value->scalar();
}

std::optional<double> number_at(const Value& item, const std::string& key, const std::string& name) {
  const Value* value = item.find(name);
  if (!value) return std::nullopt;
  const std::string& text = scalar_at(item, key, name, "a number");
  double number = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(number))
    throw ParamError(key + "." + name, "expected a number, got '" + text + "'");
  return number;
}

FieldMask fields_at(const Value& item, const std::string& key, FieldMask fallback) {
  const Value* value = item.find("fields");
  if (!value) return fallback;
  std::vector<const Value*> names;
  if (value->is_scalar()) names.push_back(value);
  if (value->is_list())
    for (const Value& name : value->list()) names.push_back(&name);
  if (names.empty()) throw ParamError(key + ".fields", "expected one or more of: prompt, response, reasoning");
  FieldMask mask{};
  for (const Value* name : names) {
    const auto found =
        name->is_scalar() ? std::find(kFieldNames.begin(), kFieldNames.end(), name->scalar()) : kFieldNames.end();
    if (found == kFieldNames.end())
      throw ParamError(key + ".fields", "expected one or more of: prompt, response, reasoning");
    mask[static_cast<std::size_t>(found - kFieldNames.begin())] = true;
  }
  return mask;
}

Bounds bounds_of(const Params& block) {
  return {block.integer("min_chars"), block.integer("max_chars"), block.integer("min_words"),
          block.integer("max_words")};
}

bool too_short(const Bounds& b, Counts c) {
  return static_cast<std::int64_t>(c.chars) < b.min_chars || static_cast<std::int64_t>(c.words) < b.min_words;
}

bool too_long(const Bounds& b, Counts c) {
  return (b.max_chars > 0 && static_cast<std::int64_t>(c.chars) > b.max_chars) ||
         (b.max_words > 0 && static_cast<std::int64_t>(c.words) > b.max_words);
}

}  // namespace

Policy::Impl::Impl(const Params& params) {
  const std::vector<std::string> builtin = builtin_rule_names();
  taken_names_.insert(builtin.begin(), builtin.end());
  mode = params.str("mode") == "audit" ? Mode::audit : Mode::enforce;
  add_finish_reason(params.object("finish_reason"));
  add_allow_deny("teacher", params.object("teacher"),
                 [](const Record& r) -> const std::string& { return r.teacher.model; });
  add_allow_deny("terms", params.object("terms"),
                 [](const Record& r) -> const std::string& { return r.provenance.terms; });
  add_annotation_rules(params.value("annotations"));
  add_length_rules("prompt", params.object("prompt_length"));
  add_length_rules("response", params.object("response_length"));
  add_refusal(params.object("refusal"));
  add_pattern_rules(params.value("patterns"));
  add_pii(params.object("pii"));
  add_language(params.object("language"));
  add_quality(params.object("quality"));
  for (PatternSet& set : sets) {
    try {
      set.compile();
    } catch (const std::runtime_error& e) {
      throw ParamError("patterns", e.what());
    }
  }
}

std::string Policy::Impl::take_name(const Value& item, const std::string& key) {
  const std::string& name = scalar_at(item, key, "name", "the rule's name, which becomes its drop reason");
  if (!valid_rule_name(name))
    throw ParamError(key + ".name", "rule name '" + name + "' must be letters, digits, '_', '-' or '.'");
  if (!taken_names_.insert(name).second)
    throw ParamError(key + ".name", "rule name '" + name + "' is already used by another rule");
  return name;
}

void Policy::Impl::add_finish_reason(const Params& block) {
  std::set<std::string> allow;
  for (const std::string& reason : block.strings("allow")) allow.insert(lower(reason));
  const bool drop_missing = block.str("missing") == "drop";
  if (allow.empty() && !drop_missing) return;
  add_rule("finish_reason", [allow, drop_missing](Evaluation& e) {
    const std::string& reason = e.record().teacher.finish_reason;
    if (reason.empty()) return drop_missing;
    return !allow.empty() && !allow.count(lower(reason));
  });
}

void Policy::Impl::add_allow_deny(const std::string& name, const Params& block,
                                  std::function<const std::string&(const Record&)> field) {
  AllowDeny lists{block.strings("allow"), block.strings("deny")};
  if (!lists.active()) return;
  add_rule(name, [lists, field](Evaluation& e) { return lists.rejects(field(e.record())); });
}

void Policy::Impl::add_annotation_rules(const Value& list) {
  for_each_rule_item(list, "annotations", {"name", "annotation", "min", "max", "missing"},
                     [&](const Value& item, const std::string& key) {
                       std::string name = take_name(item, key);
                       AnnotationRule rule;
                       rule.annotation = scalar_at(item, key, "annotation", "the annotation to read");
                       rule.min = number_at(item, key, "min");
                       rule.max = number_at(item, key, "max");
                       if (!rule.min && !rule.max) throw ParamError(key, "give min, max or both");
                       if (rule.min && rule.max && *rule.min > *rule.max)
                         throw ParamError(key + ".max", "max is below min");
                       if (item.find("missing")) {
                         const std::string& missing = scalar_at(item, key, "missing", "keep or drop");
                         if (missing != "keep" && missing != "drop")
                           throw ParamError(key + ".missing", "expected keep or drop");
                         rule.drop_missing = missing == "drop";
                       }
                       add_rule(std::move(name), [rule](Evaluation& e) {
                         const auto& annotations = e.record().annotations;
                         const auto found = annotations.find(rule.annotation);
                         const double* value =
                             found == annotations.end() ? nullptr : std::get_if<double>(&found->second);
                         if (!value) return rule.drop_missing;
                         return (rule.min && *value < *rule.min) || (rule.max && *value > *rule.max);
                       });
                     });
}

void Policy::Impl::add_length_rules(const std::string& field, const Params& block) {
  const Bounds bounds = bounds_of(block);
  const bool prompt = field == "prompt";
  auto counts = [prompt](Evaluation& e) { return prompt ? e.prompt_counts() : e.response_counts(); };
  if (bounds.min_chars > 0 || bounds.min_words > 0)
    add_rule(field + "_too_short", [bounds, counts](Evaluation& e) { return too_short(bounds, counts(e)); });
  if (bounds.max_chars > 0 || bounds.max_words > 0)
    add_rule(field + "_too_long", [bounds, counts](Evaluation& e) { return too_long(bounds, counts(e)); });
}

void Policy::Impl::add_refusal(const Params& block) {
  if (!block.flag("enabled")) return;
  std::vector<std::string> phrases = block.strings("phrases");
  for (const std::string& extra : block.strings("extra_phrases")) phrases.push_back(extra);
  for (const std::string& phrase : phrases)
    if (std::all_of(phrase.begin(), phrase.end(), [](unsigned char c) { return std::isspace(c); }))
      throw ParamError("refusal.phrases", "a refusal phrase is empty");
  if (phrases.empty()) return;
  std::size_t slot = 0;
  try {
    slot = sets[index_of(Field::response)].add(refusal_pattern(phrases));
  } catch (const std::invalid_argument& e) {
    throw ParamError("refusal.phrases", std::string("a phrase cannot be matched: ") + e.what());
  }
  add_rule("refusal", [slot](Evaluation& e) { return e.hit(Field::response, slot); });
}

void Policy::Impl::add_pattern_rules(const Value& list) {
  for_each_rule_item(
      list, "patterns", {"name", "deny", "require", "fields"}, [&](const Value& item, const std::string& key) {
        std::string name = take_name(item, key);
        const bool deny = item.find("deny") != nullptr;
        if (deny == (item.find("require") != nullptr))
          throw ParamError(key, "give exactly one of deny (drop when it matches) or require (drop unless it matches)");
        const std::string which = deny ? "deny" : "require";
        const std::string& pattern = scalar_at(item, key, which, "an RE2 regular expression");
        if (pattern.empty()) throw ParamError(key + "." + which, "the pattern is empty (it would match every text)");
        PatternRule rule;
        rule.deny = deny;
        rule.fields = fields_at(item, key, {false, true, false});
        for (Field field : kFields) {
          if (!rule.fields[index_of(field)]) continue;
          try {
            rule.slot[index_of(field)] = sets[index_of(field)].add(pattern);
          } catch (const std::invalid_argument& e) {
            throw ParamError(key + "." + which, "invalid regular expression '" + pattern + "': " + e.what());
          }
        }
        add_rule(std::move(name), [rule](Evaluation& e) {
          bool matched = false;
          for (Field field : kFields)
            matched = matched || (rule.fields[index_of(field)] && e.hit(field, rule.slot[index_of(field)]));
          return matched == rule.deny;
        });
      });
}

void Policy::Impl::add_pii(const Params& block) {
  FieldMask fields{};
  for (const std::string& name : block.strings("fields"))
    fields[static_cast<std::size_t>(std::find(kFieldNames.begin(), kFieldNames.end(), name) - kFieldNames.begin())] =
        true;
  for (PiiKind kind : kPiiKinds) {
    const std::string& action = block.str(std::string(pii_name(kind)));
    if (action == "off") continue;
    redacts[index_of(kind)] = action == "redact";
    for (const PiiDetector& detector : pii_detectors()) {
      if (detector.kind() != kind) continue;
      for (Field field : kFields)
        if (fields[index_of(field)])
          pii_slots[index_of(field)].push_back({sets[index_of(field)].add(detector.regex()), &detector});
    }
    if (action == "drop")
      add_rule("pii_" + std::string(pii_name(kind)), [kind](Evaluation& e) { return e.pii_found(kind); });
  }
}

void Policy::Impl::add_language(const Params& block) {
  std::set<int> allow;
  for (const std::string& code : block.strings("allow")) {
    const std::optional<int> language = language_from_code(code);
    if (!language)
      throw ParamError("language.allow",
                       "unknown language code '" + code + "' (CLD2 codes: en, fr, de, es, zh, ja, ...)");
    allow.insert(*language);
  }
  if (allow.empty()) return;
  const double min_share = block.number("min_confidence");
  const bool drop_unknown = block.str("unknown") == "drop";
  add_rule("language", [allow, min_share, drop_unknown](Evaluation& e) {
    const LanguageGuess& guess = e.language();
    if (!guess.known()) return drop_unknown;
    return !allow.count(guess.language) || guess.share < min_share;
  });
}

void Policy::Impl::add_quality(const Params& block) {
  for (std::string_view preset : quality_presets()) {
    const std::vector<std::string> chosen = block.strings(std::string(preset));
    const bool all = std::find(chosen.begin(), chosen.end(), "all") != chosen.end();
    for (const QualityRule& rule : quality_rules())
      if (rule.preset == preset && (all || std::find(chosen.begin(), chosen.end(), rule.option) != chosen.end()))
        add_rule(rule.name, [&rule](Evaluation& e) { return rule.fails(e.profile()); });
  }
}

namespace {

std::string pii_summary(const PiiCounts& counts) {
  std::string out;
  for (PiiKind kind : kPiiKinds)
    if (counts[index_of(kind)] > 0)
      out += (out.empty() ? "" : ",") + std::string(pii_name(kind)) + ":" + std::to_string(counts[index_of(kind)]);
  return out;
}

std::string& text_at(Record& record, std::size_t index) {
  if (index < record.prompt.size()) return record.prompt[index].content;
  return index == record.prompt.size() ? record.response : record.reasoning;
}

}  // namespace

Policy::Policy(const Params& params) : impl_(std::make_unique<const Impl>(params)) {}
Policy::~Policy() = default;

Mode Policy::mode() const { return impl_->mode; }
const std::vector<std::string>& Policy::rule_names() const { return impl_->names; }

Outcome Policy::apply(Record& record) const {
  const Impl& policy = *impl_;
  Outcome outcome;
  std::optional<LanguageGuess> language;
  std::vector<std::pair<std::size_t, std::string>> rewrites;  // text index -> redacted text
  {
    Impl::Evaluation evaluation(policy, record);
    for (std::size_t i = 0; i < policy.rules.size(); ++i) {
      if (!policy.rules[i].fails(evaluation)) continue;
      outcome.failed.push_back(i);
      if (policy.mode == Mode::enforce) break;
    }
    language = evaluation.language_if_detected();
    const bool dropped = policy.mode == Mode::enforce && !outcome.failed.empty();
    const bool redacts = std::find(policy.redacts.begin(), policy.redacts.end(), true) != policy.redacts.end();
    if (!dropped && redacts) {
      const std::vector<std::vector<PiiSpan>>& found = evaluation.pii();
      for (std::size_t i = 0; i < found.size(); ++i) {
        std::vector<PiiSpan> spans;
        for (const PiiSpan& span : found[i])
          if (policy.redacts[index_of(span.kind)]) spans.push_back(span);
        if (spans.empty()) continue;
        remove_overlaps(spans);
        for (const PiiSpan& span : spans) ++outcome.redacted[index_of(span.kind)];
        if (policy.mode == Mode::enforce) rewrites.emplace_back(i, redact(evaluation.texts()[i].text, spans));
      }
    }
  }
  if (language) {
    record.annotations["language"] = std::string(language->code);
    record.annotations["language_share"] = language->share;
  }
  const std::string redacted = pii_summary(outcome.redacted);
  if (policy.mode == Mode::audit) {
    std::vector<std::string> names;
    for (std::size_t i : outcome.failed) names.push_back(policy.names[i]);
    if (!names.empty()) record.annotations["policy_would_drop"] = join(names, ",");
    if (!redacted.empty()) record.annotations["policy_would_redact"] = redacted;
    return outcome;
  }
  if (!rewrites.empty()) {
    for (auto& [index, text] : rewrites) text_at(record, index) = std::move(text);
    record.annotations["policy_redacted"] = redacted;
    record.id = content_id(record);
  }
  return outcome;
}

std::vector<std::string> builtin_rule_names() {
  std::vector<std::string> names = {"finish_reason",     "teacher",         "terms",
                                    "prompt_too_short",  "prompt_too_long", "response_too_short",
                                    "response_too_long", "refusal",         "language"};
  for (PiiKind kind : kPiiKinds) names.push_back("pii_" + std::string(pii_name(kind)));
  for (const QualityRule& rule : quality_rules()) names.push_back(rule.name);
  return names;
}

}  // namespace distill::policy
