// Unit tests of the policy plugin's rules: each rule kind on its own,
// Unicode and adversarial inputs (invalid UTF-8, 1 MB single-line texts),
// Luhn, exact redaction output, audit vs enforce, the evaluation order and
// the errors a bad policy block gets. Policies are built from YAML text
// through the daemon's validator, exactly as a pipeline file would be.
#include <distill/content_id.h>
#include <gtest/gtest.h>

#include "language.h"
#include "pii.h"
#include "policy.h"
#include "policy_params.h"
#include "spec/params_validation.h"

namespace {

using namespace distill;
using namespace distill::policy;

Params params_of(const std::string& yaml) {
  std::vector<Diagnostic> diagnostics;
  Value::Object values =
      spec::validate_params(spec::to_value(YAML::Load(yaml)), policy_params(), "", {}, ".", diagnostics);
  for (const Diagnostic& d : diagnostics) ADD_FAILURE() << d.key << ": " << d.message;
  return Params(std::move(values));
}

// "key: message" of the ParamError the block raises, or "" when it compiles.
std::string error_of(const std::string& yaml) {
  try {
    Policy policy(params_of(yaml));
  } catch (const ParamError& e) {
    return e.key() + ": " + e.what();
  }
  return "";
}

Record make_record(std::string response, std::string finish_reason = "stop") {
  Record record;
  record.prompt = {{"system", "Be helpful."}, {"user", "Tell me something."}};
  record.response = std::move(response);
  record.teacher.model = "teacher-large-1";
  record.teacher.finish_reason = std::move(finish_reason);
  record.provenance.terms = "unspecified";
  record.id = content_id(record);
  return record;
}

struct Applied {
  std::vector<std::string> failed;
  Outcome outcome;
  Record record;
};

Applied apply(const Policy& policy, Record record) {
  Applied applied{{}, policy.apply(record), record};
  for (std::size_t i : applied.outcome.failed) applied.failed.push_back(policy.rule_names()[i]);
  applied.record = std::move(record);
  return applied;
}

// The rules a response fails under a policy (enforce mode: at most one).
std::vector<std::string> failed(const std::string& yaml, Record record) {
  Policy policy(params_of(yaml));
  return apply(policy, std::move(record)).failed;
}
std::vector<std::string> failed(const std::string& yaml, const std::string& response) {
  return failed(yaml, make_record(response));
}

using Names = std::vector<std::string>;

std::string annotation(const Record& record, const std::string& name) {
  const auto found = record.annotations.find(name);
  if (found == record.annotations.end()) return "(none)";
  if (const auto* text = std::get_if<std::string>(&found->second)) return *text;
  return std::to_string(std::get<double>(found->second));
}

const std::string kGoodText =
    "The teacher model answers each question with care, and the student learns from those answers over many "
    "rounds of training.\n"
    "Distillation keeps what matters most while dropping noise that would waste compute and confuse the smaller "
    "model.\n"
    "A good policy removes refusals, personal data and truncated answers before they reach the training set.\n"
    "Every rule has a name, so that a person can ask why a record was dropped and get a clear answer back.\n"
    "This paragraph is long enough to pass the web-text rules that were designed for pages rather than short "
    "replies.";

const std::string kFrenchText =
    "Le modèle enseignant répond à chaque question avec soin, et l'élève apprend de ces réponses au fil de "
    "nombreuses séances d'entraînement. La distillation garde l'essentiel et laisse de côté le bruit qui "
    "gaspillerait du calcul et embrouillerait le petit modèle.";

// ---- defaults, length, finish reason -----------------------------------------

TEST(PolicyDefaults, KeepAnOrdinaryAnswerUnchanged) {
  Policy policy(params_of("{}"));
  EXPECT_EQ(policy.mode(), Mode::enforce);
  const Record before = make_record(kGoodText);
  const Applied applied = apply(policy, before);
  EXPECT_TRUE(applied.failed.empty());
  EXPECT_EQ(applied.record, before);
}

TEST(PolicyDefaults, TheActiveRulesAreFinishReasonLengthAndRefusal) {
  Policy policy(params_of("{}"));
  EXPECT_EQ(policy.rule_names(), (Names{"finish_reason", "response_too_short", "refusal"}));
}

TEST(PolicyLength, BlankResponsesAreTooShortByDefault) {
  EXPECT_EQ(failed("{}", ""), Names{"response_too_short"});
  EXPECT_EQ(failed("{}", " \n\t\u00a0\u3000"), Names{"response_too_short"});
  EXPECT_TRUE(failed("{}", "42").empty());
}

TEST(PolicyLength, CharactersAreCodePointsNotBytes) {
  const std::string yaml = "response_length: {max_chars: 11}";
  EXPECT_TRUE(failed(yaml, "héllo wörld").empty());  // 11 code points, 13 bytes
  EXPECT_EQ(failed("response_length: {max_chars: 10}", "héllo wörld"), Names{"response_too_long"});
  EXPECT_EQ(failed("response_length: {min_chars: 4}", "日本語"), Names{"response_too_short"});
  EXPECT_TRUE(failed("response_length: {min_chars: 3, max_chars: 3}", "日本語").empty());
}

TEST(PolicyLength, WordsAreSplitOnUnicodeWhiteSpace) {
  const std::string text = "one\u00a0two\u3000three\u2003four five";
  EXPECT_TRUE(failed("response_length: {min_words: 5, max_words: 5}", text).empty());
  EXPECT_EQ(failed("response_length: {max_words: 4}", text), Names{"response_too_long"});
  EXPECT_EQ(failed("response_length: {min_words: 6}", text), Names{"response_too_short"});
}

TEST(PolicyLength, PromptCountsEveryMessage) {
  // "Be helpful." (11) + "Tell me something." (18) = 29 characters, 5 words.
  EXPECT_TRUE(failed("prompt_length: {min_chars: 29, max_chars: 29, min_words: 5, max_words: 5}", "ok").empty());
  EXPECT_EQ(failed("prompt_length: {max_chars: 28}", "ok"), Names{"prompt_too_long"});
  EXPECT_EQ(failed("prompt_length: {min_words: 6}", "ok"), Names{"prompt_too_short"});
}

TEST(PolicyLength, EachInvalidByteCountsAsOneCharacter) {
  EXPECT_TRUE(failed("response_length: {min_chars: 4, max_chars: 4}",
                     "a\xff\xfe"
                     "b")
                  .empty());
  EXPECT_TRUE(failed("response_length: {min_chars: 3, max_chars: 3}",
                     "\xe6\x97"
                     "a")
                  .empty());  // truncated 3-byte sequence
}

TEST(PolicyFinishReason, TruncatedAnswersAreDroppedByDefault) {
  EXPECT_EQ(failed("{}", make_record("fine", "length")), Names{"finish_reason"});
  EXPECT_EQ(failed("{}", make_record("fine", "max_tokens")), Names{"finish_reason"});
  EXPECT_TRUE(failed("{}", make_record("fine", "STOP")).empty());
  EXPECT_TRUE(failed("{}", make_record("fine", "end_turn")).empty());
}

TEST(PolicyFinishReason, MissingIsKeptUnlessConfigured) {
  EXPECT_TRUE(failed("{}", make_record("fine", "")).empty());
  EXPECT_EQ(failed("finish_reason: {missing: drop}", make_record("fine", "")), Names{"finish_reason"});
  EXPECT_TRUE(failed("finish_reason: {allow: []}", make_record("fine", "length")).empty());
  EXPECT_EQ(failed("finish_reason: {allow: [length]}", make_record("fine", "stop")), Names{"finish_reason"});
}

// ---- teacher, terms, annotations ------------------------------------------------

TEST(PolicyTeacher, AllowAndDenyTakeShellWildcards) {
  Record record = make_record("fine");
  EXPECT_TRUE(failed("teacher: {allow: ['teacher-*']}", record).empty());
  EXPECT_EQ(failed("teacher: {allow: ['gpt-4o*', claude-3]}", record), Names{"teacher"});
  EXPECT_EQ(failed("teacher: {allow: ['teacher-*'], deny: ['*-large-*']}", record), Names{"teacher"});
  EXPECT_EQ(failed("teacher: {deny: ['teacher-large-?']}", record), Names{"teacher"});
  record.teacher.model = "";
  EXPECT_EQ(failed("teacher: {allow: ['*-large-*']}", record), Names{"teacher"});
}

TEST(PolicyTerms, TermsOutsideTheAllowListAreDropped) {
  Record record = make_record("fine");
  EXPECT_EQ(failed("terms: {allow: [cc-by-4.0, 'mit*']}", record), Names{"terms"});  // "unspecified"
  record.provenance.terms = "cc-by-4.0";
  EXPECT_TRUE(failed("terms: {allow: [cc-by-4.0, 'mit*']}", record).empty());
  record.provenance.terms = "vendor-no-competing-models";
  EXPECT_EQ(failed("terms: {deny: ['*no-competing*']}", record), Names{"terms"});
}

TEST(PolicyAnnotations, NumericThresholdsAndMissingValues) {
  const std::string yaml = R"(annotations:
  - {name: low_logprob, annotation: mean_logprob, min: -1.5}
  - {name: big_cluster, annotation: cluster_size, max: 10, missing: drop}
)";
  Record record = make_record("fine");
  record.annotations = {{"mean_logprob", -0.5}, {"cluster_size", 3.0}};
  EXPECT_TRUE(failed(yaml, record).empty());
  record.annotations["mean_logprob"] = -2.0;
  EXPECT_EQ(failed(yaml, record), Names{"low_logprob"});
  record.annotations["mean_logprob"] = -1.5;  // the bound itself passes
  record.annotations["cluster_size"] = 11.0;
  EXPECT_EQ(failed(yaml, record), Names{"big_cluster"});
  record.annotations.erase("mean_logprob");  // missing: keep (the default)
  record.annotations.erase("cluster_size");  // missing: drop
  EXPECT_EQ(failed(yaml, record), Names{"big_cluster"});
  record.annotations["cluster_size"] = std::string("3");  // not a number: as missing
  EXPECT_EQ(failed(yaml, record), Names{"big_cluster"});
}

// ---- refusal ---------------------------------------------------------------------

TEST(PolicyRefusal, DefaultPhrasesFoldCaseSpacingApostrophesAndCommas) {
  EXPECT_EQ(failed("{}", "I'm sorry, but I can't help you."), Names{"refusal"});
  EXPECT_EQ(failed("{}", "i\u2019M   SORRY\n but i CAN\u2019T do that"), Names{"refusal"});
  EXPECT_EQ(failed("{}", "Well. As an AI\u00a0language model, I have no opinions."), Names{"refusal"});
  EXPECT_EQ(failed("{}", "Sure! Actually, I cannot help with that request."), Names{"refusal"});
  EXPECT_TRUE(failed("{}", "I'm sorry to hear that; here is how to fix it.").empty());
  EXPECT_TRUE(failed("{}", "A language model predicts the next token.").empty());
}

TEST(PolicyRefusal, ExtraPhrasesPhraseListsAndSwitchingOff) {
  EXPECT_EQ(failed("refusal: {extra_phrases: ['JE NE PEUX PAS']}", "Désolé, je ne peux pas."), Names{"refusal"});
  EXPECT_EQ(failed("refusal: {extra_phrases: ['ÉCOLE interdite']}", "une école   INTERDITE"), Names{"refusal"});
  EXPECT_TRUE(failed("refusal: {phrases: [nope]}", "I'm sorry, but I can't.").empty());
  EXPECT_TRUE(failed("refusal: {enabled: false}", "As an AI language model, no.").empty());
  EXPECT_EQ(failed("refusal: {phrases: ['a.b (c)']}", "x A.B  (C) y"), Names{"refusal"});  // metacharacters are literal
  EXPECT_TRUE(failed("refusal: {phrases: ['a.b (c)']}", "axb (c)").empty());
}

// ---- patterns ----------------------------------------------------------------------

TEST(PolicyPatterns, DenyAndRequireOnTheirFields) {
  const std::string yaml = R"(patterns:
  - {name: no_urls, deny: 'https?://'}
  - {name: has_answer, require: '(?m)^Answer: '}
  - {name: no_secret_prompt, deny: '(?i)password', fields: prompt}
  - {name: no_think_leak, deny: '<think>', fields: [response, reasoning]}
)";
  EXPECT_TRUE(failed(yaml, "Work.\nAnswer: 4").empty());
  EXPECT_EQ(failed(yaml, "See http://x.io\nAnswer: 4"), Names{"no_urls"});
  EXPECT_EQ(failed(yaml, "The answer is 4"), Names{"has_answer"});
  Record record = make_record("Answer: 4");
  record.prompt[1].content = "my PassWord is hunter2";
  EXPECT_EQ(failed(yaml, record), Names{"no_secret_prompt"});
  record = make_record("Answer: 4");
  record.reasoning = "<think>hidden</think>";
  EXPECT_EQ(failed(yaml, record), Names{"no_think_leak"});
  record = make_record("Answer: 4 http://x.io");
  EXPECT_TRUE(failed("patterns: [{name: p, deny: 'http', fields: [prompt]}]", record).empty());
}

TEST(PolicyPatterns, UnicodeClassesAndInvalidUtf8) {
  const std::string yaml = "patterns: [{name: no_cjk, deny: '\\p{Han}'}, {name: has_letter, require: '\\pL'}]";
  EXPECT_EQ(failed(yaml, "mixed 中文 text"), Names{"no_cjk"});
  EXPECT_TRUE(failed(yaml, "caf\xc3\xa9 \xff\xfe ok").empty());
  EXPECT_EQ(failed(yaml, "\xff\xfe 123 \xc3"), Names{"has_letter"});
}

// ---- PII -----------------------------------------------------------------------

// The response after the default policy.
std::string redacted(const std::string& response) {
  static const Policy policy(params_of("{}"));
  return apply(policy, make_record(response)).record.response;
}

TEST(PolicyPii, EveryKindIsRedactedWithItsPlaceholder) {
  Policy policy(params_of("{}"));
  const Applied applied =
      apply(policy, make_record("Mail bob.smith@corp.io, call +1 (555) 123-4567 or (555) 987-6543, server 8.8.8.8 and "
                                "2606:4700:4700::1111, card 4111 1111 1111 1111, key sk-abc123def456ghi789jkl012."));
  EXPECT_TRUE(applied.failed.empty());
  EXPECT_EQ(applied.record.response,
            "Mail [EMAIL], call [PHONE] or [PHONE], server [IP] and [IP], card [CREDIT_CARD], key [SECRET].");
  EXPECT_EQ(annotation(applied.record, "policy_redacted"), "secret:1,credit_card:1,email:1,phone:2,ip:2");
  EXPECT_EQ(applied.outcome.redacted, (PiiCounts{1, 1, 1, 2, 2}));
  EXPECT_EQ(applied.record.id, content_id(applied.record));
  EXPECT_NE(applied.record.id, make_record("x").id);
}

TEST(PolicyPii, ThingsThatIdentifyNoOneAreLeftAlone) {
  const std::string text =
      "Use user@example.com or ops@mail.example.org, 127.0.0.1, 192.168.1.10, 10.1.2.3, ::1, fe80::1, "
      "2001:db8::1, std::vector<int>, at 12:30:45 on 2024-01-15, version 1.2.3.4.5, pi 3.14159265358979, "
      "order 4111 1111 1111 1112, id 0000 0000 0000 0000, sk-learn-style-hyphenated-words-here, "
      "MAC de:ad:be:ef:00:11.";
  Policy policy(params_of("{}"));
  const Applied applied = apply(policy, make_record(text));
  EXPECT_EQ(applied.record.response, text);
  EXPECT_EQ(annotation(applied.record, "policy_redacted"), "(none)");
  EXPECT_EQ(applied.record.id, make_record(text).id);
}

TEST(PolicyPii, PhoneShapes) {
  EXPECT_EQ(redacted("+44 20 7946 0958."), "[PHONE].");
  EXPECT_EQ(redacted("tel:+33 1 23 45 67 89"), "tel:[PHONE]");
  EXPECT_EQ(redacted("555-123-4567 and 555.123.4567"), "[PHONE] and [PHONE]");
  EXPECT_EQ(redacted("call 1234567 or +12 34"), "call 1234567 or +12 34");
  EXPECT_EQ(redacted("ISBN 978-3-16-148410-0"), "ISBN 978-3-16-148410-0");
}

TEST(PolicyPii, CardsNeedLuhnAndTheirOwnDigitRun) {
  EXPECT_EQ(redacted("5555-5555-5555-4444"), "[CREDIT_CARD]");
  EXPECT_EQ(redacted("Amex 378282246310005!"), "Amex [CREDIT_CARD]!");
  EXPECT_EQ(redacted("4111 1111 1111 1111 2222"), "4111 1111 1111 1111 2222");  // 20 digits in one run
  EXPECT_EQ(redacted("x4111111111111111"), "x4111111111111111");
}

TEST(PolicyPii, SecretShapes) {
  EXPECT_EQ(redacted("aws AKIAIOSFODNN7EXAMPLE end"), "aws [SECRET] end");
  EXPECT_EQ(redacted("gh ghp_0123456789abcdefghijABCDEFGHIJ012345"), "gh [SECRET]");
  EXPECT_EQ(redacted("slack xoxb-123456789012-abcdefABCDEF"), "slack [SECRET]");
  EXPECT_EQ(
      redacted(
          "before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc==\n-----END RSA PRIVATE KEY-----\nafter"),
      "before\n[SECRET]\nafter");
  EXPECT_EQ(redacted("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk"), "[SECRET]\nb3BlbnNzaC1rZXk");
  EXPECT_EQ(redacted("task-abc123def456ghi789jkl012"), "task-abc123def456ghi789jkl012");
}

TEST(PolicyPii, UnicodeAndInvalidBytesAroundAMatchSurvive) {
  EXPECT_EQ(redacted("电子邮件：bob@corp.io。"), "电子邮件：[EMAIL]。");
  EXPECT_EQ(redacted("\xff\xfe"
                     "bob@corp.io\xff"),
            "\xff\xfe[EMAIL]\xff");
}

TEST(PolicyPii, PromptMessagesAndReasoningAreRedactedToo) {
  Policy policy(params_of("{}"));
  Record record = make_record("ok");
  record.prompt[1].content = "I am alice@corp.io";
  record.reasoning = "user wrote alice@corp.io";
  const Applied applied = apply(policy, record);
  EXPECT_EQ(applied.record.prompt[0].content, "Be helpful.");
  EXPECT_EQ(applied.record.prompt[1].content, "I am [EMAIL]");
  EXPECT_EQ(applied.record.reasoning, "user wrote [EMAIL]");
  EXPECT_EQ(applied.outcome.redacted, (PiiCounts{0, 0, 2, 0, 0}));

  Policy response_only(params_of("pii: {fields: [response]}"));
  EXPECT_EQ(apply(response_only, record).record.prompt[1].content, "I am alice@corp.io");
}

TEST(PolicyPii, DropAndOffActions) {
  const std::string text = "mail bob@corp.io from 8.8.8.8";
  EXPECT_EQ(failed("pii: {email: drop}", text), Names{"pii_email"});
  Policy policy(params_of("pii: {email: off, ip: drop}"));
  EXPECT_EQ(apply(policy, make_record(text)).failed, Names{"pii_ip"});
  Policy off(params_of("pii: {email: off, ip: off}"));
  EXPECT_EQ(apply(off, make_record(text)).record.response, text);
}

TEST(PolicyPii, Luhn) {
  EXPECT_TRUE(luhn_valid("79927398713"));
  EXPECT_TRUE(luhn_valid("4111111111111111"));
  EXPECT_TRUE(luhn_valid("0"));
  EXPECT_FALSE(luhn_valid("79927398710"));
  EXPECT_FALSE(luhn_valid("4111111111111112"));
  EXPECT_FALSE(luhn_valid(""));
  EXPECT_FALSE(luhn_valid("4111-1111-1111-1111"));
}

TEST(PolicyPii, OverlappingSpansKeepTheEarliestLongest) {
  std::vector<PiiSpan> spans = {
      {5, 9, PiiKind::phone}, {0, 4, PiiKind::email}, {2, 8, PiiKind::ip}, {0, 6, PiiKind::secret}};
  remove_overlaps(spans);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].kind, PiiKind::secret);
  EXPECT_EQ(redact("0123456789", spans), "[SECRET]6789");
}

// ---- language ----------------------------------------------------------------------

TEST(PolicyLanguage, AllowedLanguagesAndAnnotation) {
  Policy policy(params_of("language: {allow: [en]}"));
  const Applied english = apply(policy, make_record(kGoodText));
  EXPECT_TRUE(english.failed.empty());
  EXPECT_EQ(annotation(english.record, "language"), "en");
  const Applied french = apply(policy, make_record(kFrenchText));
  EXPECT_EQ(french.failed, Names{"language"});
  EXPECT_EQ(annotation(french.record, "language"), "fr");
  EXPECT_TRUE(failed("language: {allow: [en, fr]}", kFrenchText).empty());
}

TEST(PolicyLanguage, MinimumShareAndUnknownText) {
  const std::string mixed = kGoodText + "\n" + kFrenchText;
  EXPECT_EQ(failed("language: {allow: [en, fr], min_confidence: 0.9}", mixed), Names{"language"});
  EXPECT_TRUE(failed("language: {allow: [en, fr], min_confidence: 0.3}", mixed).empty());
  EXPECT_TRUE(failed("language: {allow: [en]}", "12345 67890 + 7 = ?").empty());
  EXPECT_EQ(failed("language: {allow: [en], unknown: drop}", "12345 67890 + 7 = ?"), Names{"language"});
}

TEST(PolicyLanguage, InvalidUtf8AndControlCharactersAreReadAsSpaces) {
  const LanguageGuess guess = detect_language("\xff\x01" + kGoodText + "\xc3\x28\x7f");
  EXPECT_EQ(guess.code, "en");
  EXPECT_GT(guess.share, 0.9);
  EXPECT_FALSE(detect_language("\xff\xfe\xfd").known());
  EXPECT_EQ(language_from_code("he"), language_from_code("iw"));
  EXPECT_FALSE(language_from_code("xx").has_value());
}

// ---- quality presets ----------------------------------------------------------------

std::vector<std::string> quality_failures(const std::string& preset, const std::string& text) {
  Policy policy(params_of("mode: audit\nquality: {" + preset + ": [all]}"));
  Names out;
  for (const std::string& name : apply(policy, make_record(text)).failed)
    if (name != "refusal" && name != "finish_reason" && name != "response_too_short") out.push_back(name);
  return out;
}

TEST(PolicyQuality, OffByDefaultAndAllMeansEveryRuleOfThePreset) {
  EXPECT_TRUE(failed("{}", "Paris.").empty());
  Policy policy(params_of("quality: {c4: [all], fineweb: [short_lines, line_punct]}"));
  EXPECT_EQ(policy.rule_names(),
            (Names{"finish_reason", "response_too_short", "refusal", "c4_lorem_ipsum", "c4_curly_bracket",
                   "c4_too_few_sentences", "fineweb_line_punct", "fineweb_short_lines"}));
}

TEST(PolicyQuality, NaturalProsePassesEveryPreset) {
  for (const std::string preset : {"gopher_quality", "gopher_repetition", "c4", "fineweb"})
    EXPECT_TRUE(quality_failures(preset, kGoodText).empty()) << preset;
}

TEST(PolicyQuality, ShortAndCodeAnswersFailWebRules) {
  EXPECT_EQ(quality_failures("gopher_quality", "Paris."), (Names{"gopher_word_count", "gopher_stop_words"}));
  EXPECT_EQ(quality_failures("c4", "int main() { return 0; }"), (Names{"c4_curly_bracket", "c4_too_few_sentences"}));
  EXPECT_EQ(quality_failures("fineweb", "Paris."), (Names{"fineweb_short_lines"}));
}

TEST(PolicyQuality, GopherQualityRules) {
  std::string many_a;
  for (int i = 0; i < 60; ++i) many_a += "a the ";
  EXPECT_EQ(quality_failures("gopher_quality", many_a), Names{"gopher_mean_word_length"});
  std::string hashes = kGoodText;
  for (int i = 0; i < 20; ++i) hashes += " #";
  EXPECT_EQ(quality_failures("gopher_quality", hashes), Names{"gopher_symbol_ratio"});
  std::string bullets;
  for (int i = 0; i < 12; ++i)
    bullets += "\u2022 the item number " + std::to_string(i) + " of the list and more words\n- with it\n";
  EXPECT_EQ(quality_failures("gopher_quality", bullets), Names{"gopher_bullet_lines"});
  std::string trailing;
  for (int i = 0; i < 10; ++i) trailing += "and then the story of the night went on and on...\n";
  EXPECT_EQ(quality_failures("gopher_quality", trailing), Names{"gopher_ellipsis_lines"});  // 10 "..." in 120 words
  std::string numbers = "the and of";
  for (int i = 0; i < 60; ++i) numbers += " " + std::to_string(1000 + i);
  EXPECT_EQ(quality_failures("gopher_quality", numbers), Names{"gopher_alpha_words"});
  std::string no_stop_words;
  for (int i = 0; i < 20; ++i) no_stop_words += "Cats sleep often. Dogs bark loudly. ";
  EXPECT_EQ(quality_failures("gopher_quality", no_stop_words), Names{"gopher_stop_words"});
}

TEST(PolicyQuality, GopherRepetitionRules) {
  EXPECT_EQ(quality_failures("gopher_repetition", "Same paragraph here.\n\nSame paragraph here.\n\nAnother one."),
            (Names{"gopher_dup_paragraphs", "gopher_dup_paragraph_chars", "gopher_dup_lines", "gopher_dup_line_chars",
                   "gopher_top_ngrams"}));
  std::string spam;
  for (int i = 0; i < 10; ++i) spam += "buy now ";
  EXPECT_EQ(quality_failures("gopher_repetition", spam + kGoodText), (Names{"gopher_top_ngrams", "gopher_dup_ngrams"}));
  // Each bigram of the repeated sentence is only ~4% of the text, but the repeats are ~23%.
  const std::string sentence = "one two three four five six seven eight nine ten eleven twelve ";
  EXPECT_EQ(quality_failures("gopher_repetition", sentence + sentence + sentence + sentence + "\n" + kGoodText),
            Names{"gopher_dup_ngrams"});
  EXPECT_TRUE(quality_failures("gopher_repetition", sentence + "and " + sentence + kGoodText).empty());
}

TEST(PolicyQuality, C4Rules) {
  EXPECT_EQ(quality_failures("c4", kGoodText + "\nLorem Ipsum dolor sit amet."), Names{"c4_lorem_ipsum"});
  // Lines C4 drops (no end mark, too few words, javascript, cookie notices) hold no sentences.
  EXPECT_EQ(quality_failures("c4",
                             "A line without an end mark\nToo short.\nPlease enable JavaScript to see this page.\n"
                             "This site uses cookies to improve your visit."),
            Names{"c4_too_few_sentences"});
  // Without its citation the first line has no end mark, so only the second line's sentence counts.
  EXPECT_EQ(quality_failures("c4",
                             "The first of three sentences is here. The second one follows it [1]\n"
                             "\"And the third one ends with a quote mark.\"[citation needed]"),
            Names{"c4_too_few_sentences"});
  EXPECT_TRUE(quality_failures("c4",
                               "The first of three sentences is here. The second one follows it.[1]\n"
                               "\"And the third one ends with a quote mark.\"[citation needed]")
                  .empty());
}

TEST(PolicyQuality, FineWebRules) {
  EXPECT_EQ(quality_failures("fineweb",
                             "a heading without any punctuation at all here\n"
                             "another line that is long enough but has no end mark\n"
                             "and a third line of the same kind, also quite long"),
            Names{"fineweb_line_punct"});
  EXPECT_EQ(quality_failures("fineweb", kGoodText + "\n" + kGoodText.substr(0, kGoodText.find('\n'))),
            Names{"fineweb_dup_line_chars"});
  std::string list;  // 3 words per line, each line over 30 characters
  for (int i = 0; i < 10; ++i) list += "Internationalization considerations #" + std::to_string(i) + ".\n";
  EXPECT_EQ(quality_failures("fineweb", list), Names{"fineweb_list_ratio"});
  std::string long_list;
  for (int i = 0; i < 10; ++i) long_list += "Item number " + std::to_string(i) + " of the long list here.\n";
  EXPECT_TRUE(quality_failures("fineweb", long_list).empty());
}

// ---- modes and order ---------------------------------------------------------------

TEST(PolicyModes, EnforceStopsAtTheFirstRuleAndLeavesDroppedRecordsUntouched) {
  Policy policy(params_of("{}"));
  const Record before = make_record("I'm sorry, but I can't share bob@corp.io", "length");
  const Applied applied = apply(policy, before);
  EXPECT_EQ(applied.failed, Names{"finish_reason"});
  EXPECT_EQ(applied.record, before);
  EXPECT_EQ(applied.outcome.redacted, PiiCounts{});
}

TEST(PolicyModes, AuditEvaluatesEveryRuleAndChangesNoText) {
  Policy policy(params_of("mode: audit\npii: {ip: drop}"));
  EXPECT_EQ(policy.mode(), Mode::audit);
  const Record before = make_record("I'm sorry, but I can't share bob@corp.io or 8.8.4.4", "length");
  const Applied applied = apply(policy, before);
  EXPECT_EQ(applied.failed, (Names{"finish_reason", "refusal", "pii_ip"}));
  EXPECT_EQ(applied.record.response, before.response);
  EXPECT_EQ(applied.record.id, before.id);
  EXPECT_EQ(annotation(applied.record, "policy_would_drop"), "finish_reason,refusal,pii_ip");
  EXPECT_EQ(annotation(applied.record, "policy_would_redact"), "email:1");
  EXPECT_EQ(applied.outcome.redacted, (PiiCounts{0, 0, 1, 0, 0}));
  const Applied clean = apply(policy, make_record(kGoodText));
  EXPECT_TRUE(clean.failed.empty());
  EXPECT_TRUE(clean.record.annotations.empty());
}

TEST(PolicyModes, RulesRunInTheDocumentedOrder) {
  Policy policy(params_of(R"(mode: audit
quality: {fineweb: [all], c4: [curly_bracket], gopher_quality: [stop_words], gopher_repetition: [dup_lines]}
language: {allow: [en]}
pii: {ip: drop, phone: drop, email: drop, credit_card: drop, secret: drop}
patterns: [{name: no_urls, deny: 'https?://'}, {name: has_answer, require: Answer}]
response_length: {max_words: 1000}
prompt_length: {min_chars: 1, max_chars: 100}
annotations: [{name: low_score, annotation: score, min: 0.5}]
terms: {deny: [bad]}
teacher: {allow: ['t*']}
finish_reason: {missing: drop}
)"));
  EXPECT_EQ(policy.rule_names(), (Names{"finish_reason",
                                        "teacher",
                                        "terms",
                                        "low_score",
                                        "prompt_too_short",
                                        "prompt_too_long",
                                        "response_too_short",
                                        "response_too_long",
                                        "refusal",
                                        "no_urls",
                                        "has_answer",
                                        "pii_secret",
                                        "pii_credit_card",
                                        "pii_email",
                                        "pii_phone",
                                        "pii_ip",
                                        "language",
                                        "gopher_stop_words",
                                        "gopher_dup_lines",
                                        "c4_curly_bracket",
                                        "fineweb_line_punct",
                                        "fineweb_short_lines",
                                        "fineweb_dup_line_chars",
                                        "fineweb_list_ratio"}));
}

// ---- adversarial inputs ----------------------------------------------------------------

const std::string kEverything = R"(mode: audit
quality: {gopher_quality: [all], gopher_repetition: [all], c4: [all], fineweb: [all]}
language: {allow: [en]}
patterns: [{name: no_urls, deny: 'https?://\S+'}, {name: has_answer, require: '(?s)Answer.*done'}]
response_length: {max_chars: 2000000}
)";

std::string one_megabyte_of(const std::string& unit) {
  std::string text;
  while (text.size() < (1u << 20)) text += unit;
  return text;
}

TEST(PolicyAdversarial, OneMegabyteSingleLineWithEveryRule) {
  Policy policy(params_of(kEverything));
  const std::string text =
      one_megabyte_of("the student learns from its teacher while 42 models wait ") + " bob@corp.io";
  const Applied first = apply(policy, make_record(text));
  EXPECT_EQ(first.failed, (Names{"has_answer", "gopher_word_count", "gopher_top_ngrams", "gopher_dup_ngrams",
                                 "c4_too_few_sentences", "fineweb_line_punct"}));
  EXPECT_EQ(first.outcome.redacted, (PiiCounts{0, 0, 1, 0, 0}));
  EXPECT_EQ(annotation(first.record, "language"), "en");
  EXPECT_EQ(apply(policy, make_record(text)).failed, first.failed);  // same answer twice

  Policy enforce(params_of("{}"));
  const Applied redacted = apply(enforce, make_record(text));
  EXPECT_EQ(redacted.record.response.size(), text.size() - std::string("bob@corp.io").size() + 7);
  EXPECT_TRUE(redacted.record.response.ends_with(" [EMAIL]"));
}

TEST(PolicyAdversarial, MegabyteRunsOfDigitsColonsAndAtSignsFindNothing) {
  Policy policy(params_of(kEverything));
  for (const std::string unit : {"1", "1 ", "1-", "::", "a:", "a@", "a@b.", "+1 ", "1.", "-----BEGIN "}) {
    const Applied applied = apply(policy, make_record(one_megabyte_of(unit)));
    EXPECT_EQ(applied.outcome.redacted, PiiCounts{}) << "unit '" << unit << "'";
  }
}

TEST(PolicyAdversarial, MegabyteOfInvalidUtf8) {
  Policy policy(params_of(kEverything));
  Record record = make_record(one_megabyte_of("\xff\xc3\x28\xe2\x82"));
  record.prompt[1].content = record.response;
  const Applied applied = apply(policy, record);
  EXPECT_EQ(annotation(applied.record, "language"), "un");
  EXPECT_EQ(applied.record.response, record.response);
  EXPECT_EQ(failed("response_length: {max_chars: 1048575}", record), Names{"response_too_long"});
}

TEST(PolicyAdversarial, PrivateKeyHeaderWithoutEndInAMegabyte) {
  Policy policy(params_of("{}"));
  const std::string body = one_megabyte_of("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=");
  const Applied applied = apply(policy, make_record("-----BEGIN EC PRIVATE KEY-----" + body));
  EXPECT_EQ(applied.record.response, "[SECRET]" + body);
}

// ---- a bad policy block ----------------------------------------------------------------

TEST(PolicyErrors, BadPatternsNameTheirKey) {
  EXPECT_EQ(error_of("patterns: [{name: ok, deny: a}, {name: broken, deny: '(unclosed'}]"),
            "patterns[1].deny: invalid regular expression '(unclosed': missing ): (unclosed");
  EXPECT_EQ(error_of("patterns: [{name: bad, require: 'a{2,1}'}]"),
            "patterns[0].require: invalid regular expression 'a{2,1}': invalid repetition size: {2,1}");
  EXPECT_EQ(error_of("patterns: [{name: typo, denny: x}]"),
            "patterns[0].denny: unknown key 'denny'; valid keys: name, deny, require, fields");
  EXPECT_EQ(error_of("patterns: [{name: both, deny: x, require: y}]"),
            "patterns[0]: give exactly one of deny (drop when it matches) or require (drop unless it matches)");
  EXPECT_EQ(error_of("patterns: [{deny: x}]"),
            "patterns[0].name: missing name (the rule's name, which becomes its drop reason)");
  EXPECT_EQ(error_of("patterns: [{name: a, deny: x}, {name: a, deny: y}]"),
            "patterns[1].name: rule name 'a' is already used by another rule");
  EXPECT_EQ(error_of("patterns: [{name: refusal, deny: x}]"),
            "patterns[0].name: rule name 'refusal' is already used by another rule");
  EXPECT_EQ(error_of("patterns: [{name: 'two words', deny: x}]"),
            "patterns[0].name: rule name 'two words' must be letters, digits, '_', '-' or '.'");
  EXPECT_EQ(error_of("patterns: [{name: f, deny: x, fields: [body]}]"),
            "patterns[0].fields: expected one or more of: prompt, response, reasoning");
  EXPECT_EQ(error_of("patterns: {name: f}"), "patterns: expected a list of rules, each {name, deny, require, fields}");
  EXPECT_EQ(error_of("patterns: [{name: f, deny: [a, b]}]"), "patterns[0].deny: expected an RE2 regular expression");
  EXPECT_EQ(error_of("patterns: [{name: f, require: ''}]"),
            "patterns[0].require: the pattern is empty (it would match every text)");
}

TEST(PolicyErrors, BadAnnotationRulesLanguagesAndPhrases) {
  EXPECT_EQ(error_of("annotations: [{name: a, annotation: s}]"), "annotations[0]: give min, max or both");
  EXPECT_EQ(error_of("annotations: [{name: a, annotation: s, min: 2, max: 1}]"),
            "annotations[0].max: max is below min");
  EXPECT_EQ(error_of("annotations: [{name: a, annotation: s, min: low}]"),
            "annotations[0].min: expected a number, got 'low'");
  EXPECT_EQ(error_of("annotations: [{name: a, annotation: s, min: 1, missing: maybe}]"),
            "annotations[0].missing: expected keep or drop");
  EXPECT_EQ(error_of("annotations: [{name: a, annotaton: s, min: 1}]"),
            "annotations[0].annotaton: unknown key 'annotaton'; valid keys: name, annotation, min, max, missing");
  EXPECT_EQ(error_of("language: {allow: [en, xx]}"),
            "language.allow: unknown language code 'xx' (CLD2 codes: en, fr, de, es, zh, ja, ...)");
  EXPECT_EQ(error_of("refusal: {extra_phrases: ['  ']}"), "refusal.phrases: a refusal phrase is empty");
  EXPECT_EQ(error_of("annotations: [{name: a, annotation: s, min: 1}]\npatterns: [{name: a, deny: x}]"),
            "patterns[0].name: rule name 'a' is already used by another rule");
}

}  // namespace
