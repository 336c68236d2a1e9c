// Unit tests of the dedupe plugins' text normalisation (plugins/common/text_normalize.h).
#include "text_normalize.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace distill::text {
namespace {

NormalizeOptions only(bool nfkc, bool casefold, bool whitespace, bool punctuation, bool digits) {
  return NormalizeOptions{nfkc, casefold, whitespace, punctuation, digits};
}

const NormalizeOptions kNone = only(false, false, false, false, false);
const NormalizeOptions kNfkc = only(true, false, false, false, false);
const NormalizeOptions kCasefold = only(false, true, false, false, false);
const NormalizeOptions kWhitespace = only(false, false, true, false, false);
const NormalizeOptions kPunctuation = only(false, false, false, true, false);
const NormalizeOptions kDigits = only(false, false, false, false, true);
const NormalizeOptions kDefault{};

TEST(TextNormalize, NfkcUnfoldsCompatibilityCharacters) {
  EXPECT_EQ(normalize("\uFB01nance", kNfkc), "finance");                     // ﬁ ligature
  EXPECT_EQ(normalize("\uFF11\uFF12\uFF13", kNfkc), "123");                 // fullwidth digits
  EXPECT_EQ(normalize("\uFF28\uFF45\uFF4C\uFF4C\uFF4F", kNfkc), "Hello");  // fullwidth letters keep case
  EXPECT_EQ(normalize("x\u00B2 \u2460", kNfkc), "x2 1");                    // superscript two, circled one
}

TEST(TextNormalize, NfkcComposesCombiningMarks) {
  EXPECT_EQ(normalize("cafe\u0301", kNfkc), "caf\u00E9");
  EXPECT_EQ(normalize("caf\u00E9", kNfkc), "caf\u00E9");
}

TEST(TextNormalize, CasefoldAscii) {
  EXPECT_EQ(normalize("Hello WORLD 42!", kCasefold), "hello world 42!");
}

TEST(TextNormalize, CasefoldNonAsciiUsesFullFolding) {
  // Full case folding maps ß to "ss", so both spellings fold alike.
  EXPECT_EQ(normalize("Stra\u00DFe", kCasefold), "strasse");
  EXPECT_EQ(normalize("STRASSE", kCasefold), "strasse");
  EXPECT_EQ(normalize("\u00C9T\u00C9", kCasefold), "\u00E9t\u00E9");
  // Greek final sigma folds to the ordinary sigma.
  EXPECT_EQ(normalize("\u039F\u0394\u039F\u03A3", kCasefold), normalize("\u03BF\u03B4\u03BF\u03C2", kCasefold));
  EXPECT_EQ(normalize("\u03BF\u03B4\u03BF\u03C2", kCasefold), "\u03BF\u03B4\u03BF\u03C3");
}

TEST(TextNormalize, WhitespaceCollapsesAndTrims) {
  EXPECT_EQ(normalize(" \t a  \n\n b\r\n", kWhitespace), "a b");
  EXPECT_EQ(normalize("a\u00A0\u00A0b", kWhitespace), "a b");                   // non-breaking spaces
  EXPECT_EQ(normalize("\u3000\u00E9\u2003 \u2029x\u00A0", kWhitespace), "\u00E9 x");  // ideographic, em, paragraph separator
  EXPECT_EQ(normalize(" \t\n ", kWhitespace), "");
}

TEST(TextNormalize, WhitespaceOffKeepsSpacing) {
  EXPECT_EQ(normalize("  A  b ", kCasefold), "  a  b ");
}

TEST(TextNormalize, PunctuationAndSymbolsRemoved) {
  EXPECT_EQ(normalize("Hi, there! ($5 + 3 = 8)", kPunctuation), "Hi there 5  3  8");
  EXPECT_EQ(normalize("\u00ABoui\u00BB \u2014 \u00BFs\u00ED?", kPunctuation), "oui  s\u00ED");
}

TEST(TextNormalize, PunctuationRemovedBeforeWhitespaceCollapse) {
  EXPECT_EQ(normalize(" a , b ; ", only(false, false, true, true, false)), "a b");
}

TEST(TextNormalize, DigitsFolded) {
  EXPECT_EQ(normalize("call 555-1234", kDigits), "call 000-0000");
  EXPECT_EQ(normalize("\u0663\u0664 \u00E9t\u00E9 2024", kDigits), "00 \u00E9t\u00E9 0000");  // Arabic-Indic digits
  EXPECT_EQ(normalize("\uFF17", only(true, false, false, false, true)), "0");                     // fullwidth 7
}

TEST(TextNormalize, DefaultsCombine) {
  EXPECT_EQ(normalize("  \uFB01NE\u00A0\u00A0Stra\u00DFe\t", kDefault), "fine strasse");
  EXPECT_EQ(normalize("  FINE   STRASSE ", kDefault), "fine strasse");
}

TEST(TextNormalize, InvalidUtf8IsNormalisedBytewise) {
  const std::string invalid = "  AB\xFF  C\xC3";
  std::string out;
  EXPECT_NO_THROW(out = normalize(invalid, kDefault));
  EXPECT_EQ(out, "ab\xFF c\xC3");
  // Non-ASCII bytes are left alone (no Unicode case folding without valid UTF-8).
  EXPECT_EQ(normalize("\xC3\x89 \xFF", kCasefold), "\xC3\x89 \xFF");
  EXPECT_EQ(normalize("1,\xFE 2", only(false, false, false, true, true)), "0\xFE 0");
  // A stray byte must not normalise like the valid character of the same number (U+00FF).
  EXPECT_NE(normalize("\xFF", kDefault), normalize("\u00FF", kDefault));
}

TEST(TextNormalize, OptionsOffLeaveTextUnchanged) {
  for (const std::string text : {"  Hello,  WORLD 42!\t", "\uFB01  Stra\u00DFe \uFF11 e\u0301\u00A0", "bad\xFF utf8"})
    EXPECT_EQ(normalize(text, kNone), text);
}

TEST(TextNormalize, EmptyText) {
  EXPECT_EQ(normalize("", kDefault), "");
}

TEST(TextNormalize, OptionsFromParameterNames) {
  const NormalizeOptions none = normalize_options({});
  EXPECT_FALSE(none.nfkc || none.casefold || none.whitespace || none.punctuation || none.digits);
  const NormalizeOptions some = normalize_options({"digits", "nfkc"});
  EXPECT_TRUE(some.nfkc);
  EXPECT_TRUE(some.digits);
  EXPECT_FALSE(some.casefold || some.whitespace || some.punctuation);
}

TEST(TextNormalize, ParameterDeclaration) {
  const ParamSpec spec = normalize_param();
  EXPECT_EQ(spec.name, "normalize");
  EXPECT_EQ(spec.type, ParamType::StringList);
  EXPECT_EQ(spec.default_text, "[nfkc, casefold, whitespace]");
  EXPECT_EQ(spec.choices, (std::vector<std::string>{"nfkc", "casefold", "whitespace", "punctuation", "digits"}));
}

}  // namespace
}  // namespace distill::text
